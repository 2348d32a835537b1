"""The pixel-space FiLM baseline: P past frames + past/future actions -> F future frames at once.

The predictor of the pixel world model report (DESIGN.md's published numbers), here
on the world's native RGB frames so it is scored by the same evaluator as the token
worlds: the stacked past frames plus two coordinate channels go through four
stride-2 conv blocks and back up through four nearest-neighbour upsampling blocks;
every block is conv -> GroupNorm -> FiLM ((1 + gamma) h + beta) -> ReLU, with gamma
and beta projected from one flat vector of the P-1 past and F future action
embeddings. The output is F frames of Bernoulli logits, trained with a
motion-weighted binary cross-entropy.

Frames are float (B, T, 3, H, W) in [0, 1] here (BCE targets), not [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ochre.models.dynamics import FactoredEmbedding


@dataclass
class PixelFiLMConfig:
    type: Literal["pixel_film"] = "pixel_film"  # model type (train.dynamics dispatches on it)
    frame_size: list[int] = field(default_factory=list)  # (H, W); [] = the dataset's
    past_frames: int = 4  # P input frames (and the P-1 actions between them)
    future_frames: int = 4  # F frames predicted per call (with their F actions)
    num_actions: int = 0  # discrete worlds: size of the action set (0 = the dataset's)
    action_factors: list[int] = field(default_factory=list)  # factored actions: size of each component
    action_dim: int = 64  # embedding width of one action
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])  # width of each encoder stage
    groups: int = 8  # GroupNorm groups

    def __post_init__(self) -> None:
        if self.past_frames < 1 or self.future_frames < 1:
            raise ValueError(f"past_frames {self.past_frames} and future_frames {self.future_frames} must be at least 1")
        stride = 2 ** len(self.channels)
        if self.frame_size and any(s % stride for s in self.frame_size):
            raise ValueError(f"frame_size {self.frame_size} must be divisible by {stride} ({len(self.channels)} stride-2 stages)")
        if any(c % self.groups for c in self.channels):
            raise ValueError(f"channels {self.channels} must be divisible by groups {self.groups}")

    @property
    def factors(self) -> list[int]:
        return list(self.action_factors) or [self.num_actions]

    @property
    def cond_actions(self) -> int:
        return self.past_frames - 1 + self.future_frames


class FiLMBlock(nn.Module):
    """conv3x3 (stride 1 or 2) -> GroupNorm -> FiLM -> ReLU; FiLM starts as the identity."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, groups: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.norm = nn.GroupNorm(groups, c_out)
        self.film = nn.Linear(cond_dim, 2 * c_out)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond)[:, :, None, None].chunk(2, 1)
        return F.relu(self.norm(self.conv(x)) * (1 + gamma) + beta)


class PixelFiLM(nn.Module):
    def __init__(self, cfg: PixelFiLMConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        cond_dim = cfg.cond_actions * cfg.action_dim
        self.action_embed = FactoredEmbedding(cfg.factors, cfg.action_dim)
        widths = [3 * cfg.past_frames + 2, *c]
        self.down = nn.ModuleList(
            FiLMBlock(a, b, cond_dim, cfg.groups, stride=2) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        ups = [*c[::-1], c[0]]  # 4x4 -> back to full resolution, ending at the first stage's width
        self.up = nn.ModuleList(FiLMBlock(a, b, cond_dim, cfg.groups) for a, b in zip(ups[:-1], ups[1:], strict=True))
        self.out = nn.Conv2d(c[0], 3 * cfg.future_frames, 3, 1, 1)

    def forward(self, past: torch.Tensor, past_actions: torch.Tensor, future_actions: torch.Tensor) -> torch.Tensor:
        """past (B, P, 3, H, W) in [0, 1], actions (B, P-1, ...) and (B, F, ...) -> logits (B, F, 3, H, W)."""
        b, p, _, h, w = past.shape
        actions = torch.cat([past_actions, future_actions], 1)  # (B, P-1+F, ...)
        cond = self.action_embed(actions.reshape(b * actions.shape[1], -1)).view(b, -1)
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, h, device=past.device), torch.linspace(-1, 1, w, device=past.device), indexing="ij"
        )
        x = torch.cat([past.reshape(b, p * 3, h, w) * 2 - 1, torch.stack([xs, ys]).expand(b, 2, h, w)], 1)
        for block in self.down:
            x = block(x, cond)
        for block in self.up:
            x = block(F.interpolate(x, scale_factor=2, mode="nearest"), cond)
        return self.out(x).view(b, self.cfg.future_frames, 3, h, w)


def motion_weighted_bce(
    logits: torch.Tensor, target: torch.Tensor, last_input: torch.Tensor, tau: float, dilate: int, weight: float
) -> torch.Tensor:
    """Mean of w * BCE(logits, target) with w = 1 + weight * (dilated |target - last input| > tau), normalised to mean 1.

    logits, target: (B, F, 3, H, W); last_input: (B, 3, H, W); all frames in [0, 1].
    """
    moving = ((target - last_input[:, None]).abs().amax(2) > tau).float()  # (B, F, H, W), any channel
    if dilate > 0:
        moving = F.max_pool2d(moving, 2 * dilate + 1, stride=1, padding=dilate)
    w = 1 + weight * moving
    w = (w / w.mean()).unsqueeze(2)
    return (w * F.binary_cross_entropy_with_logits(logits, target, reduction="none")).mean()


@torch.no_grad()
def rollout_frames(
    model: PixelFiLM, seed: torch.Tensor, seed_actions: torch.Tensor, future_actions: torch.Tensor
) -> torch.Tensor:
    """Open loop, F frames per call, each chunk fed back: seed (B, K >= P, 3, H, W) in [0, 1],
    seed_actions (B, K-1, ...), future_actions (B, N, ...) -> (B, N, 3, H, W) in [0, 1]."""
    p, f = model.cfg.past_frames, model.cfg.future_frames
    n = future_actions.shape[1]
    frames, actions = seed[:, -p:], seed_actions[:, seed_actions.shape[1] - (p - 1) :]
    out = []
    for start in range(0, n, f):
        chunk = future_actions[:, start : start + f]
        if chunk.shape[1] < f:  # the last chunk: repeat its final action, keep only the frames asked for
            chunk = torch.cat([chunk, chunk[:, -1:].expand(-1, f - chunk.shape[1], *chunk.shape[2:])], 1)
        pred = torch.sigmoid(model(frames, actions, chunk))
        out.append(pred)
        frames = torch.cat([frames, pred], 1)[:, -p:]
        actions = torch.cat([actions, chunk], 1)[:, f:]  # the P-1 actions between the new last P frames
    return torch.cat(out, 1)[:, :n]
