"""Image metrics on float frames in [0, 1], shaped (..., 3, H, W).

PSNR = 10 log10(1 / MSE) with MSE averaged over everything passed in, so a
per-horizon PSNR averages MSE over the batch first (DESIGN.md protocol).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred.float() - target.float()).pow(2).mean()


def psnr_from_mse(m: torch.Tensor | float) -> float:
    return float(10 * torch.log10(1.0 / torch.as_tensor(m).clamp_min(1e-10)))


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    return psnr_from_mse(mse(pred, target))


def to_gray84(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> (..., 1, 84, 84) gray, area-resized (the pixel world model protocol)."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device).view(3, 1, 1)
    gray = (x * w).sum(-3, keepdim=True)
    lead = gray.shape[:-3]
    out = F.interpolate(gray.reshape(-1, 1, *gray.shape[-2:]), size=(84, 84), mode="area")
    return out.reshape(*lead, 1, 84, 84)


def _gaussian_window(size: int = 11, sigma: float = 1.5, channels: int = 3, device=None) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).unsqueeze(0)
    return (g.t() @ g).expand(channels, 1, size, size).contiguous()


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5) over (..., C, H, W) in [0, 1]."""
    c = pred.shape[-3]
    x = pred.reshape(-1, c, *pred.shape[-2:]).float()
    y = target.reshape(-1, c, *target.shape[-2:]).float()
    win = _gaussian_window(channels=c, device=x.device)
    blur = lambda t: F.conv2d(t, win, groups=c)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return float(s.mean())


def codebook_usage(tokens: torch.Tensor, codebook_size: int) -> tuple[int, float]:
    """(codes in use, perplexity) of a token tensor."""
    counts = torch.bincount(tokens.flatten(), minlength=codebook_size).float()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return int((counts > 0).sum()), float(entropy.exp())
