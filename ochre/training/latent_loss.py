"""The training losses of the latent worlds on one batch of latent windows, and their parts.

    loss, logs = gru_window_loss(model, z, actions, cfg, p_ar=ar_probability(step, cfg))
    loss, logs = flow_window_loss(model, z, actions, cfg, p_ar)

z (B, T, C, h, w) normalised latents, actions (B, T[, F]). Causal teacher forcing as in
the token trainer: the input at step t is latent t, the real one or the model's own
prediction of it, the target is latent t+1. After `context` real inputs each later input
is the model's own prediction with probability p_ar, ramped linearly from 0 to `ar_max`
between `ar_start` and `ar_end` (scheduled sampling, the AR curriculum). Fed-back
predictions carry no gradient.

Context noise: every input gets Gaussian noise of a std drawn per window and step from
U(0, context_noise), so a rollout fed its own slightly-off latents has seen such inputs.
The flow model is told the level (it conditions on it); the bridge only sees the noise.

- bridge (`LatentGRU`): Huber loss between the predicted and the true next latent.
- flow (`LatentFlow`): rectified flow (`ochre.models.flow`) on the next latent (or its change
  from the observed one, `model.residual`) at a random flow time; the action is replaced by
  the null action on `action_dropout` of the samples (classifier-free guidance); fed-back
  inputs are samples drawn with `feedback_steps` Euler steps from noise of std
  `feedback_noise` (0: greedy), as the world draws them; `feedback_greedy` of them, drawn
  per sample, start from zero noise instead, so training sees both samplers' rollouts.

Logs stay detached tensors (read on log steps only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ochre.models.flow import FlowSampling, flow_loss, interpolate
from ochre.models.latent_flow import LatentFlow
from ochre.models.latent_gru import LatentGRU
from ochre.training.latent_config import LatentFlowLoopConfig, LatentGRULoopConfig, LatentLoopConfig


def ar_probability(step: int, cfg: LatentLoopConfig) -> float:
    """The probability of feeding back a prediction at `step`: 0 until ar_start, ar_max from ar_end, linear between."""
    ramp = min(1.0, max(0.0, (step - cfg.ar_start) / max(1, cfg.ar_end - cfg.ar_start)))
    return cfg.ar_max * ramp


def add_context_noise(z: torch.Tensor, max_level: float) -> tuple[torch.Tensor, torch.Tensor]:
    """z (B, C, h, w) -> (z + level * noise, level (B,)) with level ~ U(0, max_level) per sample."""
    level = torch.rand(z.shape[0], device=z.device) * max_level
    return z + level[:, None, None, None] * torch.randn_like(z), level


def next_input(real: torch.Tensor, predicted: torch.Tensor | None, p_ar: float) -> torch.Tensor:
    """Per sample, the model's (detached) prediction with probability p_ar, else the real latent."""
    if predicted is None or p_ar <= 0:
        return real
    fed = torch.rand(real.shape[0], device=real.device) < p_ar
    return torch.where(fed[:, None, None, None], predicted.detach(), real)


def gru_window_loss(
    model: LatentGRU, z: torch.Tensor, actions: torch.Tensor, cfg: LatentGRULoopConfig, p_ar: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Huber loss of the bridge's next-latent predictions over a window (mean over its T-1 steps)."""
    state = model.initial_state(z.shape[0], z.device)
    inp, losses, mses, copies = z[:, 0], [], [], []
    for t in range(z.shape[1] - 1):
        noisy, _ = add_context_noise(inp, cfg.context_noise)
        state, pred = model.step(state, noisy, actions[:, t])
        target = z[:, t + 1]
        losses.append(F.huber_loss(pred.float(), target, delta=cfg.huber_delta))
        mses.append(F.mse_loss(pred.detach().float(), target))
        copies.append(F.mse_loss(z[:, t], target))
        inp = next_input(target, pred, p_ar if t + 1 >= cfg.context else 0.0)
    loss = torch.stack(losses).mean()
    logs = {"loss": loss.detach(), "latent_mse": torch.stack(mses).mean(), "copy_mse": torch.stack(copies).mean()}
    return loss, logs | {"p_ar": torch.tensor(p_ar)}


def feedback_start(like: torch.Tensor, cfg: LatentFlowLoopConfig) -> torch.Tensor | None:
    """The starting noise of fed-back samples: std feedback_noise, zero on a feedback_greedy share of the samples
    (None without that share: the sampler draws it)."""
    if cfg.feedback_greedy <= 0:
        return None
    greedy = torch.rand(like.shape[0], device=like.device) < cfg.feedback_greedy
    return torch.randn_like(like) * cfg.feedback_noise * (~greedy).to(like.dtype)[:, None, None, None]


def flow_window_loss(
    model: LatentFlow, z: torch.Tensor, actions: torch.Tensor, cfg: LatentFlowLoopConfig, p_ar: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Rectified-flow loss on every next latent of a window (mean over its T-1 steps)."""
    b = z.shape[0]
    state = model.initial_state(b, z.device)
    feedback = FlowSampling(cfg.feedback_steps, noise=cfg.feedback_noise)
    inp, losses = z[:, 0], []
    for t in range(z.shape[1] - 1):
        noisy, level = add_context_noise(inp, cfg.context_noise)
        state = model.observe(state, noisy, level=level)
        target = z[:, t + 1]
        noise, time = torch.randn_like(target), torch.rand(b, device=z.device)
        keep = torch.rand(b, device=z.device) >= cfg.action_dropout
        goal = model.flow_target(target, noisy)
        v = model.velocity(state, interpolate(noise, goal, time), time, noisy, actions[:, t], level, keep)
        losses.append(flow_loss(v, noise, goal))
        p = p_ar if t + 1 >= cfg.context else 0.0
        sample = None
        if p > 0:
            with torch.no_grad():
                sample = model.sample(state, noisy, actions[:, t], feedback, level, start=feedback_start(target, cfg))
        inp = next_input(target, sample, p)
    loss = torch.stack(losses).mean()
    return loss, {"loss": loss.detach(), "p_ar": torch.tensor(p_ar)}
