"""What the latent worlds share: the latent's shape and normalisation, the model interface, open-loop rollouts.

    z = model.norm.normalize(raw)                                  # tokenizer latents -> unit scale per channel
    state = warm_up(model, z_seed, a_seed)                         # (B, K, C, h, w), (B, K-1[, F])
    z_next = rollout_latents(model, z_seed, a_seed, a_future)      # -> (B, N, C, h, w)

The two latent dynamics models, `latent_gru.LatentGRU` (a deterministic predictor, the
bridge from the token world) and `latent_flow.LatentFlow` (rectified flow), take the
continuous tokenizer's latents normalised per channel by the training data's mean and
std (recorded in the latent dataset's manifest and copied into the model config, so a
world checkpoint carries them). Both keep the token dynamics' conventions: an explicit
recurrent `DynamicsState`, and `step(state, z_t, action_t)` returning the state and
frame t+1's latent; warm-up feeds seed frames 0..K-2, the first step the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from ochre.models.dynamics import DynamicsState
from ochre.models.flow import FlowSampling


@dataclass
class LatentSpaceConfig:
    latent_channels: int = 0  # C of the continuous tokenizer's latent (0: read from the tokenizer when training starts)
    latent_grid: list[int] = field(default_factory=lambda: [16, 16])  # (h, w) of the latent (the tokenizer's token grid)
    latent_mean: list[float] = field(default_factory=list)  # per channel, of the training latents (from the manifest)
    latent_std: list[float] = field(default_factory=list)  # per channel, of the training latents (from the manifest)
    num_actions: int = 15  # discrete worlds: size of the action set
    action_factors: list[int] = field(default_factory=list)  # factored actions: size of each component ([] = [num_actions])

    def __post_init__(self) -> None:
        if len(self.latent_grid) != 2 or any(s % 2 for s in self.latent_grid):
            raise ValueError(f"latent_grid {self.latent_grid} must be [h, w], both even (the models work at half of it)")
        stats = (len(self.latent_mean), len(self.latent_std))
        if self.latent_channels and stats != (0, 0) and stats != (self.latent_channels,) * 2:
            raise ValueError(
                f"latent_mean and latent_std need one value per channel ({self.latent_channels}), got {stats[0]} and {stats[1]}"
            )
        if any(s <= 0 for s in self.latent_std):
            raise ValueError(f"latent_std must be positive, got {self.latent_std}")

    @property
    def factors(self) -> list[int]:
        return list(self.action_factors) or [self.num_actions]


class LatentNorm(nn.Module):
    """Per-channel (z - mean) / std; the identity when the config records no statistics. Not saved in the
    state dict: the statistics live in the config."""

    def __init__(self, cfg: LatentSpaceConfig):
        super().__init__()
        c = cfg.latent_channels
        mean = torch.tensor(cfg.latent_mean or [0.0] * c, dtype=torch.float32).view(1, c, 1, 1)
        std = torch.tensor(cfg.latent_std or [1.0] * c, dtype=torch.float32).view(1, c, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """(..., C, h, w) tokenizer latents -> model latents."""
        return (z - self.mean) / self.std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """(..., C, h, w) model latents -> tokenizer latents."""
        return z * self.std + self.mean


class LatentDynamics(Protocol):
    """The interface of `LatentGRU` and `LatentFlow` (latents normalised, actions (B,) or (B, F) long)."""

    cfg: LatentSpaceConfig
    norm: LatentNorm

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> DynamicsState: ...

    def observe(self, state: DynamicsState, z: torch.Tensor, action: torch.Tensor) -> DynamicsState: ...

    def step(
        self,
        state: DynamicsState,
        z: torch.Tensor,
        action: torch.Tensor,
        sampling: FlowSampling | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[DynamicsState, torch.Tensor]: ...


def warm_up(model: LatentDynamics, z_seed: torch.Tensor, a_seed: torch.Tensor) -> DynamicsState:
    """Observe seed latents 0..K-2 with their actions; z_seed (B, K, C, h, w), a_seed (B, K-1[, F])."""
    state = model.initial_state(z_seed.shape[0], z_seed.device)
    for t in range(z_seed.shape[1] - 1):
        state = model.observe(state, z_seed[:, t], a_seed[:, t])
    return state


def rollout_latents(
    model: LatentDynamics,
    z_seed: torch.Tensor,
    a_seed: torch.Tensor,
    a_future: torch.Tensor,
    sampling: FlowSampling | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, K, C, h, w), (B, K-1[, F]), (B, N[, F]) -> predicted latents (B, N, C, h, w) of frames K..K+N-1."""
    state = warm_up(model, z_seed, a_seed)
    z, out = z_seed[:, -1], []
    for j in range(a_future.shape[1]):
        state, z = model.step(state, z, a_future[:, j], sampling, generator)
        out.append(z)
    return torch.stack(out, 1)
