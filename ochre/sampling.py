"""Turning logits into tokens, and open-loop rollouts in token space."""

from __future__ import annotations

from typing import Literal

import torch

from ochre.models.dynamics import Dynamics, DynamicsState

Sampling = Literal["greedy", "sample"]


def sample_tokens(
    logits: torch.Tensor,
    sampling: Sampling = "greedy",
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """logits (B, K, h, w) -> tokens (B, h, w) long."""
    if sampling == "greedy" or temperature <= 0:
        return logits.argmax(1)
    b, k, h, w = logits.shape
    flat = logits.permute(0, 2, 3, 1).reshape(-1, k).float() / temperature
    if top_k is not None and 0 < top_k < k:
        kth = flat.topk(top_k, dim=-1).values[:, -1:]
        flat = flat.masked_fill(flat < kth, float("-inf"))
    picks = torch.multinomial(flat.softmax(-1), 1, generator=generator)
    return picks.view(b, h, w)


def warm_up(model: Dynamics, seed_tokens: torch.Tensor, seed_actions: torch.Tensor) -> DynamicsState:
    """Feed K seed frames and their K-1 actions; the state then holds frames 0..K-2 and actions 0..K-2.

    seed_tokens (B, K, h, w), seed_actions (B, K-1). The last seed frame is fed by the
    first `step` together with the first future action.
    """
    state = model.initial_state(seed_tokens.shape[0], seed_tokens.device)
    for t in range(seed_tokens.shape[1] - 1):
        state, _ = model.step(state, seed_tokens[:, t], seed_actions[:, t])
    return state


def rollout_tokens(
    model: Dynamics,
    seed_tokens: torch.Tensor,
    seed_actions: torch.Tensor,
    future_actions: torch.Tensor,
    sampling: Sampling = "greedy",
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, K, h, w), (B, K-1), (B, N) -> predicted tokens (B, N, h, w) for frames K..K+N-1."""
    state = warm_up(model, seed_tokens, seed_actions)
    tokens = seed_tokens[:, -1]
    out = []
    for j in range(future_actions.shape[1]):
        state, logits = model.step(state, tokens, future_actions[:, j])
        tokens = sample_tokens(logits, sampling, temperature, top_k, generator)
        out.append(tokens)
    return torch.stack(out, 1)
