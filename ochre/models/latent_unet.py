"""The flow world's denoiser: a small two-level U-Net over the latent grid, conditioned by a vector (adaptive norm).

    unet = LatentUNet(in_channels=16, out_channels=8, width=32, context_channels=64, cond_dim=64)
    v = unet(x, context, cond)     # x (B, 16, h, w), context (B, 64, h/2, w/2), cond (B, 64) -> (B, 8, h, w)

Full resolution (width W) -> stride-2 conv to h/2 x w/2 (2W), where the recurrent
context (the flow world's ConvGRU state, already at half resolution) is added through a
1x1 conv -> two residual blocks -> transposed conv back up, plus the skip -> one block ->
output conv. Every residual block modulates its group-normalised input by a scale and
shift from the conditioning vector (the noise level, action and context-noise
embeddings summed), an adaptive GroupNorm as in DDPM-style U-Nets and adaLN in DiT; the
modulation and the output conv start at zero, so the untrained net predicts zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """(B,) scalars (noise levels in about [0, 1]) -> (B, dim) sin/cos features over geometric frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = scale * t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], -1)


class LevelEmbedding(nn.Module):
    """A scalar per sample (flow time, context-noise level) -> (B, dim): sinusoidal features and a small MLP."""

    def __init__(self, dim: int, features: int = 64):
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(features, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal(t, self.features))


def groups(channels: int) -> int:
    """GroupNorm groups: 8 where the width allows, at least 4 channels per group."""
    return max(1, min(8, channels // 4))


class CondResBlock(nn.Module):
    """x + conv(gelu(norm(conv(gelu(norm(x) * (1 + scale) + shift))))), scale and shift from the conditioning vector."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups(channels), channels)
        self.modulation = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups(channels), channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.modulation(cond)[:, :, None, None].chunk(2, 1)
        h = self.conv1(F.gelu(self.norm1(x) * (1 + scale) + shift))
        return x + self.conv2(F.gelu(self.norm2(h)))


class LatentUNet(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int, context_channels: int, cond_dim: int):
        super().__init__()
        w2 = 2 * width
        self.inp = nn.Conv2d(in_channels, width, 3, padding=1)
        self.block_in = CondResBlock(width, cond_dim)
        self.down = nn.Conv2d(width, w2, 4, stride=2, padding=1)
        self.context = nn.Conv2d(context_channels, w2, 1)
        self.mid = nn.ModuleList([CondResBlock(w2, cond_dim), CondResBlock(w2, cond_dim)])
        self.up = nn.ConvTranspose2d(w2, width, 4, stride=2, padding=1)
        self.block_out = CondResBlock(width, cond_dim)
        self.out_norm = nn.GroupNorm(groups(width), width)
        self.out = nn.Conv2d(width, out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, in, h, w), context (B, context_channels, h/2, w/2), cond (B, cond_dim) -> (B, out, h, w)."""
        skip = self.block_in(self.inp(x), cond)
        d = self.down(skip) + self.context(context)
        for block in self.mid:
            d = block(d, cond)
        u = self.block_out(self.up(d) + skip, cond)
        return self.out(F.gelu(self.out_norm(u)))
