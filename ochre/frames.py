"""The one place where frames change representation.

On disk and at the API frames are uint8 RGB (..., H, W, 3); inside models they are
float tensors (..., 3, H, W) in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch


def to_model(frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames, device=device)
    return x.movedim(-1, -3).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] -> uint8 numpy (..., H, W, 3)."""
    x = x.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def to_unit(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [0, 1], for metrics."""
    x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
    return x.movedim(-1, -3).float().div(255.0)
