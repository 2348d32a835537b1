"""What a player notices, measured on frames: motion of the view, liveliness, detail.

    change = frame_change(frames)                 # (B, N, H, W, 3) -> (B, N-1) mean |frame t - frame t-1|
    detail = laplacian_variance(frames)           # (B, N) high-frequency energy of each frame
    motion = step_motion(frames, ("dx", "zoom"))  # (B, N-1, 2) per-step scene shift / log zoom

Each score compares the learned world with the real game under the same input, so a
world that copies its last frame (no motion, no change) or washes out (no detail) is
seen at once, whatever its PSNR.

Motion: "dy"/"dx" are the scene's shift between consecutive frames by phase correlation
(`ochre.world_checks.phase_correlation`: dx > 0 means the content moved right), "zoom"
is the log of the scale that best maps one frame onto the next about the centre
(> 0: the scene grows, as when walking forward).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ochre.world_checks import phase_correlation, to_gray

ZOOM_RANGE = 0.08  # largest |log scale| per step searched (walking forward scales Doom's view ~2% a step)
ZOOM_SAMPLES = 17
MOTION_COMPONENTS = ("dy", "dx", "zoom")


def frame_change(frames: np.ndarray) -> np.ndarray:
    """(B, N, H, W, 3) uint8 -> (B, N-1) mean absolute change between consecutive frames, 0-255."""
    out = []
    for clip in frames:  # one seed at a time: 64 seeds x 300 steps held at once as int16 would take gigabytes
        x = np.asarray(clip, dtype=np.int16)
        out.append(np.abs(x[1:] - x[:-1]).mean(axis=(1, 2, 3)))
    return np.stack(out) if out else np.zeros((0, max(frames.shape[1] - 1, 0)))


def laplacian_variance(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (...) variance of the 4-neighbour Laplacian of the luma: fine detail."""
    frames = np.asarray(frames)
    if frames.ndim > 4:  # one leading item at a time, to keep the float copies small
        return np.stack([laplacian_variance(f) for f in frames]) if len(frames) else np.zeros(frames.shape[:-3])
    g = to_gray(np.asarray(frames, dtype=np.float64) / 255.0)
    lap = -4 * g[..., 1:-1, 1:-1] + g[..., :-2, 1:-1] + g[..., 2:, 1:-1] + g[..., 1:-1, :-2] + g[..., 1:-1, 2:]
    return lap.reshape(*lap.shape[:-2], -1).var(-1)


def _zoom_grids(size: tuple[int, int], scales: np.ndarray) -> torch.Tensor:
    """(S, h, w, 2) sampling grids that scale an image by each of `scales` about its centre."""
    h, w = size
    ys, xs = torch.linspace(-1, 1, h), torch.linspace(-1, 1, w)
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (h, w, 2) as (x, y)
    return base[None] / torch.as_tensor(scales, dtype=torch.float32)[:, None, None, None]


def log_zoom(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P, h, w) gray pairs -> (P,) log scale s that best maps a onto b (b ~ a scaled by e^s about the centre)."""
    logs = np.linspace(-ZOOM_RANGE, ZOOM_RANGE, ZOOM_SAMPLES)
    grids = _zoom_grids(a.shape[1:], np.exp(logs))
    ta, tb = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    h, w = a.shape[1:]
    mh, mw = h // 6, w // 6  # compare away from the border, where a zoom pulls in unseen content
    errors = []
    for grid in grids:  # (h, w, 2)
        warped = F.grid_sample(ta[:, None], grid.expand(len(ta), -1, -1, -1), align_corners=True, padding_mode="border")
        errors.append(((warped[:, 0] - tb)[:, mh:-mh, mw:-mw] ** 2).mean((1, 2)))
    err = torch.stack(errors, 1).numpy()  # (P, S)
    best = np.clip(err.argmin(1), 1, ZOOM_SAMPLES - 2)
    rows = np.arange(len(err))
    left, mid, right = err[rows, best - 1], err[rows, best], err[rows, best + 1]
    denom = left - 2 * mid + right
    offset = np.where(denom > 0, np.clip(0.5 * (left - right) / np.where(denom > 0, denom, 1), -0.5, 0.5), 0.0)
    step = logs[1] - logs[0]
    return logs[best] + offset * step


def step_motion(frames: np.ndarray, components: tuple[str, ...], rows: float = 1.0) -> np.ndarray:
    """(B, N, H, W, 3) uint8 -> (B, N-1, len(components)) motion between consecutive frames, on the top `rows` share."""
    unknown = set(components) - set(MOTION_COMPONENTS)
    if unknown:
        raise ValueError(f"unknown motion components {sorted(unknown)} (known: {', '.join(MOTION_COMPONENTS)})")
    b, n, h = frames.shape[:3]
    if b > 1:  # one seed at a time, to keep the float copies small
        return np.concatenate([step_motion(frames[i : i + 1], components, rows) for i in range(b)])
    g = to_gray(np.asarray(frames, dtype=np.float64) / 255.0)[:, :, : max(8, round(rows * h))]
    out = np.zeros((b, max(n - 1, 0), len(components)))
    if n < 2:
        return out
    if "dy" in components or "dx" in components:
        shifts = np.array([[phase_correlation(g[i, t], g[i, t + 1]) for t in range(n - 1)] for i in range(b)])
        for k, name in enumerate(components):
            if name in ("dy", "dx"):
                out[..., k] = shifts[..., ("dy", "dx").index(name)]
    if "zoom" in components:
        a, nxt = g[:, :-1].reshape(-1, *g.shape[2:]), g[:, 1:].reshape(-1, *g.shape[2:])
        out[..., components.index("zoom")] = log_zoom(a, nxt).reshape(b, n - 1)
    return out


def motion_agreement(model: np.ndarray, real: np.ndarray, moved: float) -> dict[str, float | int | None]:
    """Summed motion up to a horizon, model (B,) against real (B,): sign agreement and magnitude ratio.

    Scored over the seeds whose real view moved at least `moved`; the ratio is the model's
    motion along the real direction over the real motion (1: as far, 0: still, < 0: backwards).
    """
    scored = np.abs(real) >= moved
    if not scored.any():
        return {"scored": 0, "sign_agreement": None, "magnitude_ratio": None}
    sign = np.sign(real[scored])
    agree = float(np.mean(np.sign(model[scored]) == sign))
    ratio = float(np.sum(model[scored] * sign) / np.sum(np.abs(real[scored])))
    return {"scored": int(scored.sum()), "sign_agreement": agree, "magnitude_ratio": ratio}
