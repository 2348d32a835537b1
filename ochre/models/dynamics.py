"""Action-conditioned ConvGRU dynamics over token grids.

    state = model.initial_state(batch)
    state, logits = model.step(state, tokens_t, action_t)   # logits for tokens_{t+1}

tokens_t (B, h, w) -> embedding -> stride-2 conv stem (work at h/2 x w/2) ->
FiLM(action) on the input of each ConvGRU cell (so the action enters the hidden
state) -> transposed-conv back to h x w, concatenated with the input embedding
(copying what does not move is easy) -> per-position logits over the codebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DynamicsConfig:
    codebook_size: int = 1000  # must equal the tokenizer's (checked when training starts)
    token_grid: list[int] = field(default_factory=lambda: [16, 16])  # (h, w) of token grids
    num_actions: int = 15  # size of the discrete action set
    embed_dim: int = 64  # token embedding width
    hidden_dim: int = 96  # ConvGRU width (at half the token resolution)
    layers: int = 2  # stacked ConvGRU cells
    action_dim: int = 64  # action embedding width

    def __post_init__(self) -> None:
        if any(s % 2 for s in self.token_grid):
            raise ValueError(f"token_grid {self.token_grid} must be even (the stem halves it)")


@dataclass
class DynamicsState:
    """Recurrent state: one (B, C, h/2, w/2) hidden map per layer, plus the step count."""

    hidden: list[torch.Tensor]
    step: int = 0

    def clone(self) -> DynamicsState:
        return DynamicsState([h.clone() for h in self.hidden], self.step)


class ConvGRUCell(nn.Module):
    """ConvGRU with the update and reset gates computed by one fused convolution."""

    def __init__(self, dim: int):
        super().__init__()
        self.gates = nn.Conv2d(2 * dim, 2 * dim, 3, padding=1)
        self.candidate = nn.Conv2d(2 * dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        n = torch.tanh(self.candidate(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * n


class FiLM(nn.Module):
    """x * (1 + gamma(a)) + beta(a); starts as the identity (zero-initialised projection)."""

    def __init__(self, cond_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(cond)[:, :, None, None].chunk(2, 1)
        return x * (1 + gamma) + beta


class Dynamics(nn.Module):
    def __init__(self, cfg: DynamicsConfig):
        super().__init__()
        self.cfg = cfg
        e, c = cfg.embed_dim, cfg.hidden_dim
        self.token_embed = nn.Embedding(cfg.codebook_size, e)
        self.action_embed = nn.Sequential(
            nn.Embedding(cfg.num_actions, cfg.action_dim), nn.GELU(), nn.Linear(cfg.action_dim, cfg.action_dim)
        )
        self.stem = nn.Conv2d(e, c, 4, stride=2, padding=1)
        self.films = nn.ModuleList(FiLM(cfg.action_dim, c) for _ in range(cfg.layers))
        self.cells = nn.ModuleList(ConvGRUCell(c) for _ in range(cfg.layers))
        self.up = nn.ConvTranspose2d(c, e, 4, stride=2, padding=1)
        self.head = nn.Sequential(nn.Conv2d(2 * e, e, 3, padding=1), nn.GELU(), nn.Conv2d(e, cfg.codebook_size, 1))

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> DynamicsState:
        h, w = (s // 2 for s in self.cfg.token_grid)
        device = device or self.stem.weight.device
        return DynamicsState([torch.zeros(batch, self.cfg.hidden_dim, h, w, device=device) for _ in self.cells])

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, h, w) long -> (B, E, h, w)."""
        return self.token_embed(tokens).permute(0, 3, 1, 2)

    def embed_soft(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) distribution over codes -> (B, E, h, w); differentiable in probs."""
        return torch.einsum("bkhw,ke->behw", probs, self.token_embed.weight)

    def step(self, state: DynamicsState, tokens: torch.Tensor, action: torch.Tensor) -> tuple[DynamicsState, torch.Tensor]:
        """tokens (B, h, w) long, action (B,) long -> (new state, logits (B, K, h, w) for the next frame)."""
        return self.step_embedded(state, self.embed(tokens), action)

    def step_embedded(self, state: DynamicsState, emb: torch.Tensor, action: torch.Tensor) -> tuple[DynamicsState, torch.Tensor]:
        cond = self.action_embed(action)
        x = F.gelu(self.stem(emb))
        hidden = []
        for film, cell, h in zip(self.films, self.cells, state.hidden, strict=True):
            h = cell(film(x, cond), h)
            hidden.append(h)
            x = x + h
        logits = self.head(torch.cat([F.gelu(self.up(x)), emb], 1))
        return DynamicsState(hidden, state.step + 1), logits

    def forward(
        self, tokens: torch.Tensor, actions: torch.Tensor, state: DynamicsState | None = None
    ) -> tuple[DynamicsState, torch.Tensor]:
        """Teacher-forced pass. tokens (B, T, h, w), actions (B, T) -> (state, logits (B, T, K, h, w)).

        logits[:, t] predicts tokens at t+1 from tokens[:, :t+1] and actions[:, :t+1].
        """
        state = state or self.initial_state(tokens.shape[0], tokens.device)
        out = []
        for t in range(tokens.shape[1]):
            state, logits = self.step(state, tokens[:, t], actions[:, t])
            out.append(logits)
        return state, torch.stack(out, 1)
