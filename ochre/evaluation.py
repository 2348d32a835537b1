"""Open-loop evaluation on held-out episodes (DESIGN.md protocol).

K seed frames with their K-1 actions, then N future actions from the data (the
random policy); the model predicts N frames. Per-horizon MSE is averaged over all
windows before PSNR = 10 log10(1/MSE). Scored on native RGB and on grayscale 84x84.
Baselines in the same run: copy-last-frame, the model fed random actions (for
controllability, delta PSNR = true actions - random actions), and any other world
with the same batched `rollout` (the pixel FiLM baseline, `ochre.pixel_world`) on
the same windows. With an LPIPS model, the mean LPIPS distance per horizon is added
on RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from ochre.data.store import EpisodeDataset
from ochre.data.windows import WindowSampler
from ochre.frames import to_unit
from ochre.losses import LPIPSLoss
from ochre.metrics import psnr_from_mse, ssim, to_gray84
from ochre.runtime import WorldModel

PREDICTORS = ("model", "copy_last", "model_random_actions")  # always scored; baselines are added after these
VIEWS = ("rgb", "gray84")


class Predictor(Protocol):
    """Anything that rolls out uint8 frames like `WorldModel.rollout` (B, K, H, W, 3), (B, K-1, ...), (B, N, ...)."""

    def rollout(
        self, seed_frames: np.ndarray, seed_actions: np.ndarray, future_actions: np.ndarray, **kwargs: Any
    ) -> np.ndarray: ...


@dataclass
class EvalSettings:
    context: int = 4  # seed frames K
    horizon: int = 32  # predicted frames N
    windows: int = 256  # evaluation windows (sampled without replacement)
    batch: int = 32  # windows per rollout batch
    seed: int = 0  # window selection and random actions


class HorizonStats:
    """Accumulates per-horizon squared error, SSIM and (optionally) RGB LPIPS for one predictor."""

    def __init__(self, horizon: int, lpips: LPIPSLoss | None = None):
        self.sse = {view: np.zeros(horizon) for view in VIEWS}
        self.ssim = {view: np.zeros(horizon) for view in VIEWS}
        self.lpips_model = lpips
        self.lpips = np.zeros(horizon)
        self.count = 0

    @torch.inference_mode()
    def add(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        """pred, gt: (B, N, 3, H, W) in [0, 1]."""
        views = {"rgb": (pred, gt), "gray84": (to_gray84(pred), to_gray84(gt))}
        b, n = pred.shape[:2]
        for name, (p, g) in views.items():
            err = (p - g).pow(2).flatten(2).mean(-1)  # (B, N)
            self.sse[name] += err.sum(0).cpu().numpy()
            self.ssim[name] += np.array([ssim(p[:, h], g[:, h]) * b for h in range(n)])
        if self.lpips_model is not None:  # LPIPS takes [-1, 1]; its mean is over the batch, so weight by b
            self.lpips += np.array([float(self.lpips_model(pred[:, h] * 2 - 1, gt[:, h] * 2 - 1)) * b for h in range(n)])
        self.count += b

    def table(self, name: str) -> dict[str, np.ndarray]:
        """Per-horizon mse, psnr, ssim of one view, and lpips on "rgb" when an LPIPS model was given."""
        mse = self.sse[name] / self.count
        out = {"mse": mse, "psnr": np.array([psnr_from_mse(m) for m in mse]), "ssim": self.ssim[name] / self.count}
        if name == "rgb" and self.lpips_model is not None:
            out["lpips"] = self.lpips / self.count
        return out


@dataclass
class Evaluation:
    """Per-predictor statistics plus what the report shows besides numbers.

    samples: uint8 (S, K + N, H, W, 3) per name ("ground_truth", "model",
    "model_random_actions", then each baseline) for the first S windows, each starting with the K seed frames.
    seed_frames / seed_actions: the first window's seed (K, H, W, 3) and its K-1 actions,
    the start of the long-horizon stability rollouts.
    """

    stats: dict[str, HorizonStats]
    samples: dict[str, np.ndarray]
    seed_frames: np.ndarray
    seed_actions: np.ndarray


def evaluate_world(
    wm: WorldModel,
    data: EpisodeDataset,
    settings: EvalSettings,
    lpips: LPIPSLoss | None = None,
    keep: int = 4,
    baselines: dict[str, Predictor] | None = None,
) -> Evaluation:
    """Score the model, copy-last, the model with random actions and each baseline on fixed held-out windows;
    keep `keep` samples."""
    baselines = baselines or {}
    k, n = settings.context, settings.horizon
    sampler = WindowSampler(data, k + n, split="all", seed=settings.seed)
    batch = sampler.fixed(settings.windows, seed=settings.seed)
    device = getattr(wm, "device", torch.device("cpu"))  # metrics are computed where the rollout ran
    if lpips is not None:
        lpips = lpips.to(device)
    rng = np.random.default_rng(settings.seed)
    stats = {name: HorizonStats(n, lpips) for name in (*PREDICTORS, *baselines)}
    kept: dict[str, list[np.ndarray]] = {name: [] for name in ("ground_truth", "model", "model_random_actions", *baselines)}
    for i in tqdm(range(0, len(batch.rows), settings.batch), desc="evaluate", unit="batch"):
        frames = batch.rows[i : i + settings.batch].numpy()
        actions = batch.actions[i : i + settings.batch].numpy()
        seed, gt = frames[:, :k], frames[:, k:]
        seed_actions, future = actions[:, : k - 1], actions[:, k - 1 : k - 1 + n]
        random_future = wm.action_spec.sample(rng, size=future.shape[:2])
        preds = {
            "model": wm.rollout(seed, seed_actions, future),
            "model_random_actions": wm.rollout(seed, seed_actions, random_future),
        } | {name: baseline.rollout(seed, seed_actions, future) for name, baseline in baselines.items()}
        gt_unit = to_unit(gt).to(device)
        for name, pred in preds.items():
            stats[name].add(to_unit(pred).to(device), gt_unit)
        stats["copy_last"].add(to_unit(np.repeat(seed[:, -1:], n, axis=1)).to(device), gt_unit)
        room = keep - sum(len(x) for x in kept["ground_truth"])
        if room > 0:
            for name, future_frames in {"ground_truth": gt, **preds}.items():
                kept[name].append(np.concatenate([seed, future_frames], axis=1)[:room])
    first = batch.rows[0].numpy(), batch.actions[0].numpy()
    samples = {name: np.concatenate(parts) for name, parts in kept.items()} if keep > 0 else {}
    return Evaluation(stats, samples, first[0][:k], first[1][: k - 1])


def summary_rows(stats: dict[str, HorizonStats]) -> list[dict[str, float]]:
    """One row per horizon with every predictor's metrics on both views (keys "<name>/<view>/<metric>")."""
    horizon = len(next(iter(stats.values())).sse["rgb"])
    rows = [{"horizon": h + 1} for h in range(horizon)]
    for name, s in stats.items():
        for view in VIEWS:
            for metric, values in s.table(view).items():
                for h in range(horizon):
                    rows[h][f"{name}/{view}/{metric}"] = float(values[h])
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
