"""Open-loop evaluation on held-out episodes (DESIGN.md protocol).

K seed frames with their K-1 actions, then N future actions from the data (the
random policy); the model predicts N frames. Per-horizon MSE is averaged over all
windows before PSNR = 10 log10(1/MSE). Scored on native RGB and on grayscale 84x84.
Baselines in the same run: copy-last-frame, and the model fed random actions
(for controllability, delta PSNR = true actions - random actions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ochre.data.store import EpisodeDataset
from ochre.data.windows import WindowSampler
from ochre.frames import to_unit
from ochre.metrics import psnr_from_mse, ssim, to_gray84
from ochre.runtime import WorldModel


@dataclass
class EvalSettings:
    context: int = 4  # seed frames K
    horizon: int = 32  # predicted frames N
    windows: int = 256  # evaluation windows (sampled without replacement)
    batch: int = 32  # windows per rollout batch
    seed: int = 0  # window selection and random actions


class HorizonStats:
    """Accumulates per-horizon squared error and SSIM for one predictor."""

    def __init__(self, horizon: int):
        self.sse = {"rgb": np.zeros(horizon), "gray84": np.zeros(horizon)}
        self.ssim = {"rgb": np.zeros(horizon), "gray84": np.zeros(horizon)}
        self.count = 0

    def add(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        """pred, gt: (B, N, 3, H, W) in [0, 1]."""
        views = {"rgb": (pred, gt), "gray84": (to_gray84(pred), to_gray84(gt))}
        b = pred.shape[0]
        for name, (p, g) in views.items():
            err = (p - g).pow(2).flatten(2).mean(-1)  # (B, N)
            self.sse[name] += err.sum(0).numpy()
            self.ssim[name] += np.array([ssim(p[:, h], g[:, h]) * b for h in range(p.shape[1])])
        self.count += b

    def table(self, name: str) -> dict[str, np.ndarray]:
        mse = self.sse[name] / self.count
        return {"mse": mse, "psnr": np.array([psnr_from_mse(m) for m in mse]), "ssim": self.ssim[name] / self.count}


def evaluate_world(wm: WorldModel, data: EpisodeDataset, settings: EvalSettings) -> dict[str, HorizonStats]:
    k, n = settings.context, settings.horizon
    sampler = WindowSampler(data, k + n, split="all", seed=settings.seed)
    batch = sampler.fixed(settings.windows, seed=settings.seed)
    rng = np.random.default_rng(settings.seed)
    stats = {name: HorizonStats(n) for name in ("model", "copy_last", "model_random_actions")}
    for i in tqdm(range(0, len(batch.rows), settings.batch), desc="evaluate", unit="batch"):
        frames = batch.rows[i : i + settings.batch].numpy()
        actions = batch.actions[i : i + settings.batch].numpy()
        seed, gt = frames[:, :k], to_unit(frames[:, k:])
        seed_actions, future = actions[:, : k - 1], actions[:, k - 1 : k - 1 + n]
        random_future = wm.action_spec.sample(rng, size=future.shape[:2])
        stats["model"].add(to_unit(wm.rollout(seed, seed_actions, future)), gt)
        stats["model_random_actions"].add(to_unit(wm.rollout(seed, seed_actions, random_future)), gt)
        stats["copy_last"].add(to_unit(np.repeat(seed[:, -1:], n, axis=1)), gt)
    return stats


def summary_rows(stats: dict[str, HorizonStats]) -> list[dict[str, float]]:
    """One row per horizon with every predictor's PSNR/SSIM/MSE on both views."""
    horizon = len(next(iter(stats.values())).sse["rgb"])
    rows = [{"horizon": h + 1} for h in range(horizon)]
    for name, s in stats.items():
        for view in ("rgb", "gray84"):
            t = s.table(view)
            for metric in ("psnr", "ssim", "mse"):
                for h in range(horizon):
                    rows[h][f"{name}/{view}/{metric}"] = float(t[metric][h])
    return rows


def format_table(rows: list[dict[str, float]], view: str, names: list[str]) -> str:
    """A small text table: PSNR at a few horizons and the mean over all horizons."""
    horizon = len(rows)
    show = [h for h in (1, 2, 4, 8, 16, 32, 64) if h <= horizon]
    head = f"{view:<22}" + "".join(f"{'@' + str(h):>8}" for h in show) + f"{'mean':>8}"
    lines = [head, "-" * len(head)]
    for name in names:
        vals = [rows[h - 1][f"{name}/{view}/psnr"] for h in show]
        mean = np.mean([r[f"{name}/{view}/psnr"] for r in rows])
        lines.append(f"{name:<22}" + "".join(f"{v:8.2f}" for v in vals) + f"{mean:8.2f}")
    return "\n".join(lines)
