"""The one place where frames change representation.

On disk and at the API frames are uint8 RGB (..., H, W, 3); inside models they are
float tensors (..., 3, H, W) in [-1, 1]. torch is imported inside the functions that
need it, so env and data workers that only resize frames start without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def to_model(frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    import torch

    x = torch.as_tensor(_writable(frames) if not torch.is_tensor(frames) else frames, device=device)
    return x.movedim(-1, -3).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] -> uint8 numpy (..., H, W, 3)."""
    import torch

    x = x.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def to_unit(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [0, 1], for metrics."""
    import torch

    x = torch.as_tensor(_writable(frames) if not torch.is_tensor(frames) else frames)
    return x.movedim(-1, -3).float().div(255.0)


def _writable(frames: np.ndarray) -> np.ndarray:
    """torch cannot wrap read-only arrays (memory-mapped dataset rows); copy those."""
    arr = np.asarray(frames)
    return arr if arr.flags.writeable else arr.copy()


def resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (..., H, W, 3) -> uint8 (..., h, w, 3); size is (h, w).

    Area averaging when shrinking (no aliasing of thin game sprites), bilinear when
    growing. Frames already at `size` come back unchanged.
    """
    from PIL import Image

    frames = np.asarray(frames)
    h, w = size
    if frames.shape[-3:-1] == (h, w):
        return frames
    shrink = frames.shape[-3] >= h and frames.shape[-2] >= w
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = np.stack([np.asarray(Image.fromarray(f).resize((w, h), method)) for f in flat])
    return out.reshape(*frames.shape[:-3], h, w, 3)
