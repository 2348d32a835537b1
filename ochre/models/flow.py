"""Rectified flow (flow matching on straight paths): the training objective and a few-step Euler sampler.

    x_t = interpolate(noise, data, t)                     # (1 - t) * noise + t * data, t in [0, 1]
    loss = flow_loss(model(x_t, t), noise, data)          # regress the velocity data - noise
    data = euler(lambda x, t: model(x, t), noise, steps=2)

Liu et al. 2022, "Flow Straight and Fast" (https://arxiv.org/abs/2209.03003); Lipman et al.
2022, "Flow Matching for Generative Modeling" (https://arxiv.org/abs/2210.02747). t = 0 is
noise, t = 1 is data. Classifier-free guidance (Ho & Salimans 2022,
https://arxiv.org/abs/2207.12598) extrapolates from the unconditional velocity through the
conditional one: `guided(v_cond, v_uncond, 1.0)` is the conditional velocity itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x (B, ...), t (B,)) -> velocity like x


@dataclass(frozen=True)
class FlowSampling:
    """How a flow world draws the next latent."""

    steps: int = 2  # Euler steps from noise to data (1-8)
    guidance: float = 1.0  # classifier-free guidance scale on the action (1 = conditional only, one pass per step)
    noise: float = 1.0  # std of the starting noise (0: deterministic, the flow from the origin)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"flow steps must be at least 1, got {self.steps}")
        if self.noise < 0:
            raise ValueError(f"flow noise scale must be 0 or more, got {self.noise}")


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) broadcastable against `like`."""
    return t.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def interpolate(noise: torch.Tensor, data: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The straight path at time t (B,): (1 - t) * noise + t * data."""
    t = _expand(t, data)
    return (1 - t) * noise + t * data


def velocity_target(noise: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """The path's constant velocity d x_t / dt = data - noise."""
    return data - noise


def flow_loss(velocity: torch.Tensor, noise: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """Mean squared error between a predicted velocity and the path's (float32)."""
    return F.mse_loss(velocity.float(), velocity_target(noise, data).float())


def guided(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: v_uncond + scale * (v_cond - v_uncond)."""
    return v_uncond + scale * (v_cond - v_uncond)


def euler(velocity: Velocity, x0: torch.Tensor, steps: int) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t) from t = 0 (x0, noise) to t = 1 in `steps` equal Euler steps."""
    x, dt = x0, 1.0 / steps
    for i in range(steps):
        t = torch.full((x.shape[0],), i * dt, device=x.device)
        x = x + dt * velocity(x, t)
    return x
