"""The latent flow world: rectified flow on the next continuous latent, given the past latents and the action.

    model = LatentFlow(LatentFlowConfig(latent_channels=8, latent_mean=..., latent_std=...))
    state, z_next = model.step(state, z_t, action_t, FlowSampling(steps=2, guidance=1.0, noise=1.0), generator)

Two parts. A recurrent trunk (ConvGRU at half the latent's resolution, as in the token
dynamics) reads the latents only: z_t -> 3x3 conv -> stride-2 stem -> cells, each input
FiLM-modulated by the embedding of the context-noise level. A small U-Net
(`latent_unet.py`) predicts the velocity that carries noise x_0 to z_{t+1}, from
[x_tau, z_t] at full resolution, the trunk's top hidden map at half resolution, and a
conditioning vector: the action embedding + the flow-time embedding + the context-noise
embedding. The sampler integrates it with a few Euler steps (`flow.euler`). With
`residual` the flow draws the change z_{t+1} - z_t instead of z_{t+1}: what stays still
is the zero change, so the few-step sampler's error lands only where the picture moves.

The action enters the U-Net alone, so classifier-free guidance on it is exact: training
replaces it by a learned null embedding for a share of the samples (`train.action_dropout`),
and sampling with guidance g != 1 runs the conditional and the null action in one batch
and extrapolates (`flow.guided`). Past actions reach the model through the latents they
produced.

Context noise (GameNGen, Valevski et al. 2024, https://arxiv.org/abs/2408.14837): training
adds Gaussian noise of a random level to the conditioning latent z_t and gives the model
the level, so a rollout fed its own slightly-off latents stays on track; sampling
conditions on level 0 (clean context).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ochre.models.dynamics import ConvGRUCell, DynamicsState, FiLM, action_pathway
from ochre.models.flow import FlowSampling, euler, guided
from ochre.models.latent_space import LatentNorm, LatentSpaceConfig
from ochre.models.latent_unet import LatentUNet, LevelEmbedding


@dataclass
class LatentFlowConfig(LatentSpaceConfig):
    embed_dim: int = 32  # trunk: latent embedding width at the latent's resolution
    hidden_dim: int = 64  # trunk: ConvGRU width (at half the latent's resolution)
    layers: int = 1  # trunk: stacked ConvGRU cells
    width: int = 32  # U-Net width at the latent's resolution (twice this at half of it)
    cond_dim: int = 64  # width of the action, flow-time and noise-level embeddings
    flow_steps: int = 2  # Euler steps a world samples with unless told otherwise (the app's default)
    guidance: float = 1.0  # classifier-free guidance scale a world samples with unless told otherwise
    residual: bool = False  # the flow draws the change z_{t+1} - z_t, added to z_t (a still picture is no change)
    type: Literal["latent_flow"] = "latent_flow"  # model type (train.dynamics dispatches on it)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.flow_steps <= 64:
            raise ValueError(f"flow_steps must lie in 1-64 (1-8 is the useful range), got {self.flow_steps}")

    @property
    def sampling(self) -> FlowSampling:
        """The default sampler: flow_steps Euler steps, guidance, unit noise."""
        return FlowSampling(self.flow_steps, self.guidance)


class LatentFlow(nn.Module):
    def __init__(self, cfg: LatentFlowConfig):
        super().__init__()
        self.cfg = cfg
        c, e, h, d = cfg.latent_channels, cfg.embed_dim, cfg.hidden_dim, cfg.cond_dim
        self.norm = LatentNorm(cfg)
        self.embed = nn.Conv2d(c, e, 3, padding=1)
        self.stem = nn.Conv2d(e, h, 4, stride=2, padding=1)
        self.level_embed = LevelEmbedding(d)  # context-noise level, in the trunk and the U-Net
        self.films = nn.ModuleList(FiLM(d, h) for _ in range(cfg.layers))
        self.cells = nn.ModuleList(ConvGRUCell(h) for _ in range(cfg.layers))
        self.time_embed = LevelEmbedding(d)
        self.action_embed = action_pathway(cfg.factors, d)
        self.null_action = nn.Parameter(torch.zeros(d))  # the "no action" of classifier-free guidance
        self.unet = LatentUNet(2 * c, c, cfg.width, h, d)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> DynamicsState:
        h, w = (s // 2 for s in self.cfg.latent_grid)
        device = device or self.stem.weight.device
        return DynamicsState([torch.zeros(batch, self.cfg.hidden_dim, h, w, device=device) for _ in self.cells])

    def observe(
        self, state: DynamicsState, z: torch.Tensor, action: torch.Tensor | None = None, level: torch.Tensor | None = None
    ) -> DynamicsState:
        """The trunk takes in latent z_t (B, C, h, w), noised to `level` (B,) (None: clean). The action is not used
        (the latent interface passes it): it conditions the sampler."""
        level = z.new_zeros(z.shape[0]) if level is None else level
        cond = self.level_embed(level)
        x = F.gelu(self.stem(F.gelu(self.embed(z))))
        hidden = []
        for film, cell, h in zip(self.films, self.cells, state.hidden, strict=True):
            h = cell(film(x, cond), h)
            hidden.append(h)
            x = x + h
        return DynamicsState(hidden, state.step + 1)

    def condition(self, action: torch.Tensor, level: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """The action and context-noise part of the U-Net's conditioning, (B, cond_dim); the same at every Euler step.
        keep (B,) bool: where False the action is replaced by the null action (None: kept everywhere)."""
        a = self.action_embed(action)
        if keep is not None:
            a = torch.where(keep[:, None], a, self.null_action.to(a.dtype))
        return a + self.level_embed(level)

    def velocity(
        self,
        state: DynamicsState,
        x: torch.Tensor,
        t: torch.Tensor,
        z: torch.Tensor,
        action: torch.Tensor,
        level: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The velocity at x (B, C, h, w), flow time t (B,), after `state` observed z (B, C, h, w) at `level` (B,)
        (None: clean); keep as in `condition`."""
        level = z.new_zeros(z.shape[0]) if level is None else level
        return self._velocity(state, x, t, z, self.condition(action, level, keep))

    def _velocity(
        self, state: DynamicsState, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        return self.unet(torch.cat([x, z], 1), state.hidden[-1], cond + self.time_embed(t))

    def flow_target(self, z_next: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """What the flow carries noise to, given the latent z_t the trunk observed: z_{t+1}, or with `residual` the
        change z_{t+1} - z_t (`sample` adds z_t back)."""
        return z_next - z if self.cfg.residual else z_next

    def sample(
        self,
        state: DynamicsState,
        z: torch.Tensor,
        action: torch.Tensor,
        sampling: FlowSampling,
        level: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw z_{t+1} (B, C, h, w): Euler from noise of std `sampling.noise` (drawn from `generator`), guided;
        `start` (B, C, h, w) is the starting noise itself, in place of a draw."""
        level = z.new_zeros(z.shape[0]) if level is None else level
        x0 = torch.zeros_like(z) if start is None else start
        if start is None and sampling.noise > 0:
            x0 = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype) * sampling.noise
        if sampling.guidance == 1.0:
            cond = self.condition(action, level)
            drawn = euler(lambda x, t: self._velocity(state, x, t, z, cond), x0, sampling.steps)
        else:
            b = z.shape[0]
            both, z2 = state.map(lambda h: torch.cat([h, h])), torch.cat([z, z])
            keep = torch.arange(2 * b, device=z.device) < b  # the first half conditional, the second unconditional
            cond = self.condition(torch.cat([action, action]), torch.cat([level, level]), keep)

            def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                v = self._velocity(both, torch.cat([x, x]), torch.cat([t, t]), z2, cond)
                return guided(*v.chunk(2), sampling.guidance)

            drawn = euler(velocity, x0, sampling.steps)
        return z + drawn if self.cfg.residual else drawn

    def step(
        self,
        state: DynamicsState,
        z: torch.Tensor,
        action: torch.Tensor,
        sampling: FlowSampling | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[DynamicsState, torch.Tensor]:
        """z_t (B, C, h, w), action_t (B,) or (B, F) long -> (new state, a sample of z_{t+1}); sampling None: the
        config's steps and guidance with unit noise."""
        state = self.observe(state, z)
        return state, self.sample(state, z, action, sampling or self.cfg.sampling, generator=generator)
