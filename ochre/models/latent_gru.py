"""The deterministic latent predictor (the bridge): ConvGRU/FiLM dynamics that predict the next continuous latent.

    model = LatentGRU(LatentGRUConfig(latent_channels=8, latent_mean=..., latent_std=...))
    state, z_next = model.step(state, z_t, action_t)     # (B, C, h, w) normalised latents

The token dynamics' trunk over a continuous latent instead of token embeddings: the
latent (B, C, h, w) -> 3x3 conv embedding -> stride-2 stem (work at h/2 x w/2) ->
FiLM(action) on the input of each ConvGRU cell, cells stacked with residual
connections -> transposed conv back to h x w, concatenated with the input embedding ->
a change added to the input latent. The last conv starts at zero, so an untrained model
predicts copy-last. Trained with a Huber loss on the next latent and rolled out open
loop on its own predictions (`ochre.training.latent_loss`): the plan's phase 2, the
baseline the flow world must beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ochre.models.dynamics import ConvGRUCell, DynamicsState, FiLM, action_pathway
from ochre.models.flow import FlowSampling
from ochre.models.latent_space import LatentNorm, LatentSpaceConfig


@dataclass
class LatentGRUConfig(LatentSpaceConfig):
    embed_dim: int = 64  # latent embedding width at the latent's resolution
    hidden_dim: int = 96  # ConvGRU width (at half the latent's resolution)
    layers: int = 2  # stacked ConvGRU cells
    action_dim: int = 64  # action embedding width
    type: Literal["latent_gru"] = "latent_gru"  # model type (train.dynamics dispatches on it)


class LatentGRU(nn.Module):
    def __init__(self, cfg: LatentGRUConfig):
        super().__init__()
        self.cfg = cfg
        c, e, h, a = cfg.latent_channels, cfg.embed_dim, cfg.hidden_dim, cfg.action_dim
        self.norm = LatentNorm(cfg)
        self.embed = nn.Conv2d(c, e, 3, padding=1)
        self.action_embed = action_pathway(cfg.factors, a)
        self.films = nn.ModuleList(FiLM(a, h) for _ in range(cfg.layers))
        self.stem = nn.Conv2d(e, h, 4, stride=2, padding=1)
        self.cells = nn.ModuleList(ConvGRUCell(h) for _ in range(cfg.layers))
        self.up = nn.ConvTranspose2d(h, e, 4, stride=2, padding=1)
        self.head = nn.Sequential(nn.Conv2d(2 * e, e, 3, padding=1), nn.GELU(), nn.Conv2d(e, c, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> DynamicsState:
        h, w = (s // 2 for s in self.cfg.latent_grid)
        device = device or self.stem.weight.device
        return DynamicsState([torch.zeros(batch, self.cfg.hidden_dim, h, w, device=device) for _ in self.cells])

    def _advance(
        self, state: DynamicsState, z: torch.Tensor, action: torch.Tensor
    ) -> tuple[DynamicsState, torch.Tensor, torch.Tensor]:
        """-> (new state, top features (B, H, h/2, w/2), input embedding (B, E, h, w))."""
        cond = self.action_embed(action)
        emb = F.gelu(self.embed(z))
        x = F.gelu(self.stem(emb))
        hidden = []
        for film, cell, h in zip(self.films, self.cells, state.hidden, strict=True):
            h = cell(film(x, cond), h)
            hidden.append(h)
            x = x + h
        return DynamicsState(hidden, state.step + 1), x, emb

    def observe(self, state: DynamicsState, z: torch.Tensor, action: torch.Tensor) -> DynamicsState:
        """Take in latent z_t (B, C, h, w) and action_t without predicting (warm-up)."""
        return self._advance(state, z, action)[0]

    def step(
        self,
        state: DynamicsState,
        z: torch.Tensor,
        action: torch.Tensor,
        sampling: FlowSampling | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[DynamicsState, torch.Tensor]:
        """z_t (B, C, h, w), action_t (B,) or (B, F) long -> (new state, z_{t+1} (B, C, h, w)).

        Deterministic: `sampling` and `generator` are accepted (the latent interface) and not used.
        """
        state, x, emb = self._advance(state, z, action)
        change = self.head(torch.cat([F.gelu(self.up(x)), emb], 1))
        return state, z + change

    def forward(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Teacher-forced pass. z (B, T, C, h, w), actions (B, T[, F]) -> predictions (B, T, C, h, w) of z[:, 1:T+1]."""
        state = self.initial_state(z.shape[0], z.device)
        out = []
        for t in range(z.shape[1]):
            state, pred = self.step(state, z[:, t], actions[:, t])
            out.append(pred)
        return torch.stack(out, 1)
