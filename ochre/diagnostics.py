"""Diagnostics that show whether a world model uses its actions, and what it predicts.

Plain functions: they return numbers and images, the trainer logs them.

- `action_sensitivity`: how far two rollouts from the same state drift apart when
  they are driven by different random actions. A world that ignores its actions
  scores exactly 0.
- `action_response_grid`: one row per control group (plus a do-nothing row), the
  control held for a few steps, to see what each control does.
- `prediction_stats`: entropy, confidence and code usage of predicted logits.
- `teacher_forced_tokens` and `rollout_strips`: one-step predictions from real
  inputs beside open-loop ones (from `ochre.sampling.rollout_tokens`), as strips.

Every function that runs a model does so without gradients, in eval mode
(the training flags are restored afterwards), with greedy decoding, on the
model's device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from ochre.actions import ActionSpec
from ochre.data.policies import isolated_groups
from ochre.frames import to_uint8
from ochre.images import image_grid
from ochre.metrics import codebook_usage
from ochre.models.dynamics import Dynamics, DynamicsState
from ochre.models.tokenizer import Tokenizer
from ochre.sampling import rollout_tokens, warm_up

DEFAULT_SEED = 0  # action draws when no generator is given: the same sequences at every validation


@contextmanager
def _inference(*modules: nn.Module) -> Iterator[None]:
    """No autograd and eval mode inside the block; every submodule's training flag is restored after it."""
    flags = [(m, m.training) for module in modules for m in module.modules()]
    try:
        for module in modules:
            module.eval()
        with torch.no_grad():
            yield
    finally:
        for m, flag in flags:
            m.training = flag


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _decode(tokenizer: Tokenizer, tokens: torch.Tensor) -> torch.Tensor:
    """tokens (..., h, w) -> frames (..., 3, H, W) in [-1, 1], decoded in one batch on the tokenizer's device."""
    frames = tokenizer.decode_tokens(tokens.flatten(0, -3).to(_device(tokenizer))).clamp(-1, 1)
    return frames.unflatten(0, tokens.shape[:-2])


def _as_actions(actions: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(actions, dtype=torch.long, device=device)


def random_action_pairs(spec: ActionSpec, rng: np.random.Generator, size: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Two random action arrays of `size` (+ spec.shape) from `spec.sample` that differ at every position.

    Positions where the second draw equals the first are redrawn until none do, so
    each pair of rollouts is pushed apart at every step.
    """
    if math.prod(spec.factors) < 2:
        raise ValueError(f"action schema '{spec.name}' has a single action; no two rollouts can differ")
    first, second = spec.sample(rng, size=size), spec.sample(rng, size=size)
    event_dims = tuple(range(len(size), first.ndim))
    same = (first == second).all(axis=event_dims)
    while same.any():
        second[same] = spec.sample(rng, size=int(same.sum()))
        same = (first == second).all(axis=event_dims)
    return first, second


def _numpy_rng(generator: torch.Generator | None) -> np.random.Generator:
    """A numpy Generator seeded from `generator`, or from DEFAULT_SEED without one."""
    if generator is None:
        return np.random.default_rng(DEFAULT_SEED)
    return np.random.default_rng(int(torch.randint(0, 2**62, (), generator=generator, device=generator.device)))


def _continue_rollout(model: Dynamics, state: DynamicsState, tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Greedy open loop from a warmed-up state: last seed frame (B, h, w), actions (B, N[, F]) -> (B, N, h, w)."""
    out = []
    for j in range(actions.shape[1]):
        state, logits = model.step(state, tokens, actions[:, j])
        tokens = logits.argmax(1)
        out.append(tokens)
    return torch.stack(out, 1)


def action_sensitivity(
    model: Dynamics,
    tokenizer: Tokenizer,
    seed_tokens: torch.Tensor,
    seed_actions: torch.Tensor,
    spec: ActionSpec,
    horizons: Sequence[int] = (1, 5, 10),
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """How much the future depends on the actions: two rollouts that differ only in their (random) actions.

    seed_tokens (B, K, h, w), seed_actions (B, K-1[, F]). Both rollouts start from
    the same warmed-up state and run max(horizons) greedy steps with action
    sequences that differ at every step. Returns, per horizon h,
    "action_sensitivity@h": mean |frame_a - frame_b| of the decoded frames, in
    [0, 1] pixel units, and "token_sensitivity@h": the fraction of tokens that
    disagree. Both are exactly 0 for a model that ignores its actions.
    """
    if not horizons or min(horizons) < 1:
        raise ValueError(f"horizons {list(horizons)} must be positive step counts")
    device = _device(model)
    seed_tokens, seed_actions = seed_tokens.to(device), seed_actions.to(device)
    first, second = random_action_pairs(spec, _numpy_rng(generator), (seed_tokens.shape[0], max(horizons)))
    picks = [h - 1 for h in horizons]
    with _inference(model, tokenizer):
        state = warm_up(model, seed_tokens, seed_actions)
        a = _continue_rollout(model, state, seed_tokens[:, -1], _as_actions(first, device))[:, picks]
        b = _continue_rollout(model, state, seed_tokens[:, -1], _as_actions(second, device))[:, picks]
        pixel = (_decode(tokenizer, a) - _decode(tokenizer, b)).abs().mean((0, 2, 3, 4)) / 2  # [-1, 1] -> [0, 1] units
        token = (a != b).float().mean((0, 2, 3))
    return {f"action_sensitivity@{h}": float(pixel[i]) for i, h in enumerate(horizons)} | {
        f"token_sensitivity@{h}": float(token[i]) for i, h in enumerate(horizons)
    }


def action_response_grid(
    model: Dynamics,
    tokenizer: Tokenizer,
    seed_tokens: torch.Tensor,
    seed_actions: torch.Tensor,
    spec: ActionSpec,
    steps: int = 8,
) -> tuple[np.ndarray, list[str]]:
    """What each control does, from the first seed: one row per held action, frames left to right.

    Row 0 holds the neutral action ("noop"); then one row per control group of
    `isolated_groups(spec)`, holding the group's first action (the first key, or the
    first camera bin) for `steps` greedy steps. Each row starts with the last seed
    frame, so a row has steps + 1 frames. Returns (uint8 image (H', W', 3) with each row's
    label drawn at its left, row labels).
    """
    groups = isolated_groups(spec)
    labels = ["noop", *groups]
    held = np.stack([spec.neutral(), *(acts[0] for acts in groups.values())])  # (R, *spec.shape)
    rows = len(labels)
    device = _device(model)
    seeds = seed_tokens[:1].to(device).expand(rows, *seed_tokens.shape[1:])
    seed_acts = seed_actions[:1].to(device).expand(rows, *seed_actions.shape[1:])
    actions = _as_actions(held, device)[:, None].expand(rows, steps, *held.shape[1:])
    with _inference(model, tokenizer):
        pred = rollout_tokens(model, seeds, seed_acts, actions)
        frames = to_uint8(_decode(tokenizer, torch.cat([seeds[:, -1:], pred], 1)))  # (R, steps + 1, H, W, 3)
    return image_grid(list(frames), labels=labels), labels


def prediction_stats(logits: torch.Tensor) -> dict[str, float]:
    """Confidence and diversity of predicted logits (..., K, h, w), e.g. one step's (B, K, h, w).

    "entropy": mean entropy (nats) of the per-position distribution (log K when
    uniform, 0 when certain); "max_prob": mean probability of the top code;
    "codes_in_use" and "code_perplexity" of the argmax tokens (a model stuck on
    a few codes shows few in use).
    """
    with torch.no_grad():
        log_p = logits.detach().float().log_softmax(-3)
        entropy = -(log_p.exp() * log_p).sum(-3).mean()
        max_prob = log_p.max(-3).values.exp().mean()
        in_use, perplexity = codebook_usage(logits.argmax(-3), logits.shape[-3])
    return {"entropy": float(entropy), "max_prob": float(max_prob), "codes_in_use": in_use, "code_perplexity": perplexity}


def teacher_forced_tokens(model: Dynamics, tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Greedy one-step predictions from real inputs: tokens (B, T, h, w), actions (B, >=T-1[, F]) -> (B, T-1, h, w).

    Prediction t is the model's guess of frame t+1 after seeing real frames 0..t and
    actions 0..t, on the model's device.
    """
    device = _device(model)
    tokens, actions = tokens.to(device), actions.to(device)
    out = []
    with _inference(model):
        state = model.initial_state(tokens.shape[0], device)
        for t in range(tokens.shape[1] - 1):
            state, logits = model.step(state, tokens[:, t], actions[:, t])
            out.append(logits.argmax(1))
    return torch.stack(out, 1)


def rollout_strips(
    tokenizer: Tokenizer,
    truth: torch.Tensor,
    teacher_forced: torch.Tensor,
    autoregressive: torch.Tensor,
    max_items: int = 4,
) -> np.ndarray:
    """Token tensors (B, N, h, w) -> uint8 image: per item (up to max_items) three rows, frames left to right.

    Rows per item: ground truth, teacher-forced predictions, autoregressive predictions.
    """
    with _inference(tokenizer):
        strips = [to_uint8(_decode(tokenizer, t[:max_items])) for t in (truth, teacher_forced, autoregressive)]
    return image_grid([strip[i] for i in range(len(strips[0])) for strip in strips])
