"""Validation of a latent world during training: open-loop rollouts on fixed held-out windows, decoded and scored.

The scores compare decoded frames with the decoding of the true latents (the
autoencoder's own reconstruction, the ceiling of any latent world), next to copy-last.
A flow world is scored on its deterministic rollout (noise 0, `val/rollout_*`) and on
one sampled rollout (unit noise, `val/sample_rollout_psnr`), drawn from a generator of
its own so validating never moves the training's random streams.
"""

from __future__ import annotations

import numpy as np
import torch

from ochre.data.windows import Batch
from ochre.images import image_grid
from ochre.metrics import mse, psnr
from ochre.models.flow import FlowSampling
from ochre.models.latent_flow import LatentFlow
from ochre.models.latent_space import LatentDynamics, rollout_latents
from ochre.models.tokenizer import Tokenizer
from ochre.training.latent_config import LatentLoopConfig
from ochre.training.logger import RunLogger

VAL_SEED = 1234  # the sampled validation rollout's generator seed


@torch.no_grad()
def decode_unit(tokenizer: Tokenizer, model: LatentDynamics, z: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """(..., C, h, w) normalised latents -> frames (..., 3, H, W) in [0, 1]."""
    lead, flat = z.shape[:-3], model.norm.denormalize(z.reshape(-1, *z.shape[-3:]))
    frames = torch.cat([tokenizer.decode_codes(flat[i : i + batch]) for i in range(0, len(flat), batch)])
    return frames.float().clamp(-1, 1).add(1).div(2).view(*lead, *frames.shape[1:])


def to_strip(frames: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8."""
    return (frames * 255).round().byte().movedim(1, -1).cpu().numpy()


@torch.no_grad()
def validate(
    model: LatentDynamics, tokenizer: Tokenizer, val: Batch, cfg: LatentLoopConfig, logger: RunLogger, step: int
) -> dict[str, float]:
    """val: fixed windows of val_context + val_horizon normalised latents (on the device) -> val/ metrics, plus
    an image strip (truth over prediction) and a rollout video of the first window."""
    k = cfg.val_context
    z, actions = val.rows, val.actions
    model.eval()
    flow = isinstance(model, LatentFlow)
    greedy = FlowSampling(model.cfg.flow_steps, model.cfg.guidance, noise=0.0) if flow else None
    pred = rollout_latents(model, z[:, :k], actions[:, : k - 1], actions[:, k - 1 : -1], greedy)
    sampled = None
    if flow:
        generator = torch.Generator(device=z.device).manual_seed(VAL_SEED)
        sampled = rollout_latents(model, z[:, :k], actions[:, : k - 1], actions[:, k - 1 : -1], model.cfg.sampling, generator)
    model.train()
    target = decode_unit(tokenizer, model, z[:, k:])
    frames = decode_unit(tokenizer, model, pred)
    copy = decode_unit(tokenizer, model, z[:, k - 1 : k]).expand_as(target)
    strip = [to_strip(x[0]) for x in (target, frames)]
    logger.image("val_rollout", step, image_grid(strip))
    logger.video("val_rollout", step, np.concatenate(strip, axis=2), fps=8)
    out = {
        "val/latent_mse@1": float(mse(pred[:, 0], z[:, k])),
        "val/psnr@1": psnr(frames[:, 0], target[:, 0]),
        "val/rollout_psnr": psnr(frames, target),
        f"val/rollout_psnr@{target.shape[1]}": psnr(frames[:, -1], target[:, -1]),
        "val/copy_psnr": psnr(copy, target),
    }
    if sampled is not None:
        out["val/sample_rollout_psnr"] = psnr(decode_unit(tokenizer, model, sampled), target)
    return out
