"""Action-following accuracy: an inverse-dynamics model (IDM) as a controllability probe.

    model, report = train_idm(EpisodeDataset("data/coinrun_train"), spec, steps=1500)
    save_idm("runs/idm_coinrun.pt", model, spec, report.val_accuracy)
    result = action_following(model, wm, EpisodeDataset("data/coinrun_heldout"), windows=256)

`FrameIDM` reads two consecutive real frames and classifies the action taken
between them (one logit group per action factor). Trained on real data only, it
is then applied to frames a world model generated from recorded actions: if the
world follows its actions, the IDM recovers them about as well as on the real
pairs of the same windows (the ceiling); if it ignores them, accuracy falls
towards chance. Unlike PSNR this does not reward blurry average futures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from ochre.actions import ActionSpec, action_spec_from_dict
from ochre.checkpoint import config_from, load_weights
from ochre.config import to_dict
from ochre.data.store import EpisodeDataset
from ochre.data.windows import WindowSampler
from ochre.errors import OchreError
from ochre.frames import to_model
from ochre.io import load_torch, save_torch
from ochre.runtime import WorldModel

FORMAT = "ochre-idm"
FORMAT_VERSION = 1


@dataclass
class IDMConfig:
    frame_size: tuple[int, int] = (64, 64)  # (H, W) of the frames it reads
    factors: tuple[int, ...] = (15,)  # cardinality of each action factor (ActionSpec.factors)
    channels: tuple[int, ...] = (32, 64, 128, 128)  # one stride-2 conv per entry


class FrameIDM(nn.Module):
    """Two frames (and their difference) -> action logits, one group per factor."""

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        width = 9  # before, after, after - before
        for out in cfg.channels:
            layers += [nn.Conv2d(width, out, 4, stride=2, padding=1), nn.GroupNorm(min(8, out), out), nn.SiLU()]
            width = out
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, sum(cfg.factors))

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) frames in [-1, 1] -> [(B, factor) logits] per factor."""
        logits = self.head(self.body(torch.cat([before, after, after - before], dim=1)))
        return list(logits.split(list(self.cfg.factors), dim=1))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


@dataclass
class IDMReport:
    """What training did: steps, the last loss, per-factor accuracy on held-out episodes."""

    steps: int
    final_loss: float
    val_accuracy: list[float] = field(default_factory=list)
    val_pairs: int = 0

    @property
    def mean_val_accuracy(self) -> float:
        return float(np.mean(self.val_accuracy))


def factor_targets(actions: np.ndarray | torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """Actions (B, *spec.shape) -> (B, F) int64, one column per factor (discrete ids become one column)."""
    return torch.as_tensor(np.asarray(actions)).long().reshape(-1, len(factors))


def idm_loss(model: FrameIDM, before: torch.Tensor, after: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over factors."""
    logits = model(before, after)
    return torch.stack([F.cross_entropy(lg, targets[:, i]) for i, lg in enumerate(logits)]).mean()


@torch.inference_mode()
def predict(model: FrameIDM, before: np.ndarray, after: np.ndarray, batch: int = 256) -> np.ndarray:
    """uint8 (B, H, W, 3) pairs -> predicted actions (B, F) int64."""
    model.eval()
    out = []
    for i in range(0, len(before), batch):
        b, a = to_model(before[i : i + batch], model.device), to_model(after[i : i + batch], model.device)
        out.append(torch.stack([lg.argmax(1) for lg in model(b, a)], dim=1).cpu())
    return torch.cat(out).numpy()


def accuracy(model: FrameIDM, before: np.ndarray, after: np.ndarray, actions: np.ndarray) -> list[float]:
    """Per-factor fraction of pairs whose action the IDM recovers; before/after uint8 (B, H, W, 3)."""
    targets = factor_targets(actions, model.cfg.factors).numpy()
    return (predict(model, np.asarray(before), np.asarray(after)) == targets).mean(0).tolist()


def chance_level(factors: tuple[int, ...]) -> float:
    """Accuracy of uniform guessing, averaged over factors."""
    return float(np.mean([1.0 / f for f in factors]))


def train_idm(
    data: EpisodeDataset,
    spec: ActionSpec,
    steps: int = 2000,
    batch: int = 64,
    lr: float = 1e-3,
    val_every: int = 10,
    seed: int = 0,
    device: str | torch.device = "cpu",
    channels: tuple[int, ...] = IDMConfig.channels,
    val_pairs: int = 1024,
    progress: bool = True,
) -> tuple[FrameIDM, IDMReport]:
    """Train on (frame t, frame t+1, action t) from the train episodes; score the held-out ones.

    `val_every`: every n-th episode is held out (as in WindowSampler), so the
    validation accuracy is on episodes the IDM never saw.
    """
    if data.kind != "frames":
        raise OchreError(f"{data.path}: the IDM needs a frame dataset, this one holds '{data.kind}'")
    torch.manual_seed(seed)
    h, w = data.manifest["frame_shape"][:2]
    cfg = IDMConfig(frame_size=(h, w), factors=tuple(spec.factors), channels=tuple(channels))
    model = FrameIDM(cfg).to(device)
    train = WindowSampler(data, 2, split="train", val_every=val_every, seed=seed)
    val = WindowSampler(data, 2, split="val", val_every=val_every, seed=seed).fixed(val_pairs, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    loss = torch.zeros(())
    model.train()
    for _ in (bar := tqdm(range(steps), desc="idm", unit="step", disable=not progress)):
        pairs = train.sample(batch)
        frames = to_model(pairs.rows, device)
        loss = idm_loss(model, frames[:, 0], frames[:, 1], factor_targets(pairs.actions[:, 0], cfg.factors).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    val_acc = accuracy(model, val.rows[:, 0].numpy(), val.rows[:, 1].numpy(), val.actions[:, 0].numpy())
    return model, IDMReport(steps, float(loss.item()), val_acc, len(val.rows))


def save_idm(path: str | Path, model: FrameIDM, spec: ActionSpec, val_accuracy: list[float]) -> None:
    """Write a weights-only checkpoint (atomic)."""
    save_torch(
        path,
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": to_dict(model.cfg),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "action_schema": spec.to_dict(),
            "frame_shape": [*model.cfg.frame_size, 3],
            "val_accuracy": [float(a) for a in val_accuracy],
        },
    )


def load_idm(path: str | Path, device: str | torch.device = "cpu") -> tuple[FrameIDM, ActionSpec]:
    """Read a checkpoint written by `save_idm`; errors name the file and the problem."""
    payload = load_torch(path, "IDM checkpoint")
    kind = payload.get("format") if isinstance(payload, dict) else None
    if kind != FORMAT:
        raise OchreError(
            f"{path}: not an IDM checkpoint (format {kind!r}, expected '{FORMAT}'); train one with `python -m train.idm`"
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise OchreError(
            f"{path}: IDM format_version {payload.get('format_version')} is not supported (expected {FORMAT_VERSION})"
        )
    for key in ("config", "state_dict", "action_schema"):
        if key not in payload:
            raise OchreError(f"{path}: the IDM checkpoint has no '{key}'; it is incomplete, train it again")
    model = FrameIDM(config_from(IDMConfig, payload["config"], path, "config"))
    load_weights(model, payload["state_dict"], path, "IDM")
    return model.to(device).eval(), action_spec_from_dict(payload["action_schema"])


def check_compatible(idm: FrameIDM, wm: WorldModel) -> None:
    """The IDM must read the world's frame size and predict its action factors."""
    if tuple(idm.cfg.frame_size) != tuple(wm.frame_shape[:2]):
        raise OchreError(f"the IDM reads {list(idm.cfg.frame_size)} frames but the world makes {list(wm.frame_shape[:2])} frames")
    if tuple(idm.cfg.factors) != tuple(wm.action_spec.factors):
        raise OchreError(
            f"the IDM predicts action factors {list(idm.cfg.factors)} but the world's "
            f"'{wm.action_spec.name}' schema has {list(wm.action_spec.factors)}"
        )


def action_following(
    idm: FrameIDM,
    wm: WorldModel,
    frames_dataset: EpisodeDataset,
    windows: int = 256,
    context: int = 4,
    horizon: int = 8,
    seed: int = 0,
    batch: int = 32,
) -> dict[str, Any]:
    """IDM accuracy on generated vs real transitions of the same held-out windows.

    Each window: K real seed frames and their K-1 actions, then the world rolls out
    N frames from the recorded actions. Scored pairs are (generated t, generated t+1,
    recorded action t) for the N-1 transitions inside the rollout, and the real
    frames at the same positions for the ceiling. All episodes of `frames_dataset`
    are used, so pass held-out data.
    """
    check_compatible(idm, wm)
    if horizon < 2 or context < 1:
        raise OchreError("action following needs --horizon of at least 2 and --context of at least 1")
    k, n = context, horizon
    picked = WindowSampler(frames_dataset, k + n, split="all", seed=seed).fixed(windows, seed=seed)
    real_hits, gen_hits = [], []
    for i in tqdm(range(0, len(picked.rows), batch), desc="action following", unit="batch"):
        frames, actions = picked.rows[i : i + batch].numpy(), picked.actions[i : i + batch].numpy()
        generated = wm.rollout(frames[:, :k], actions[:, : k - 1], actions[:, k - 1 : k - 1 + n], seed=seed)
        real = frames[:, k:]
        taken = actions[:, k : k + n - 1]  # action between predicted frame t and t+1
        real_hits.append(_hits(idm, real, taken))
        gen_hits.append(_hits(idm, generated, taken))
    real_acc, gen_acc = np.concatenate(real_hits), np.concatenate(gen_hits)  # (W, N-1, F)
    return {
        "windows": len(picked.rows),
        "pairs": int(real_acc.shape[0] * real_acc.shape[1]),
        "context": k,
        "horizon": n,
        "real_accuracy": float(real_acc.mean()),
        "generated_accuracy": float(gen_acc.mean()),
        "chance": chance_level(tuple(idm.cfg.factors)),
        "real_per_factor": real_acc.mean((0, 1)).tolist(),
        "generated_per_factor": gen_acc.mean((0, 1)).tolist(),
        "generated_by_step": gen_acc.mean((0, 2)).tolist(),
    }


def _hits(idm: FrameIDM, frames: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """frames (B, N, H, W, 3), actions (B, N-1, ...) -> (B, N-1, F) bool: IDM right per pair and factor."""
    b, n = frames.shape[:2]
    before, after = frames[:, :-1].reshape(-1, *frames.shape[2:]), frames[:, 1:].reshape(-1, *frames.shape[2:])
    targets = factor_targets(actions, idm.cfg.factors).numpy()
    return (predict(idm, before, after) == targets).reshape(b, n - 1, -1)


def format_action_following(result: dict[str, Any]) -> str:
    """A small text table: accuracy on real pairs, generated pairs and chance."""
    lines = [
        f"action following: {result['windows']} windows, {result['pairs']} pairs "
        f"(context {result['context']}, horizon {result['horizon']})",
        f"  {'real (ceiling)':<18}{result['real_accuracy']:8.3f}",
        f"  {'generated':<18}{result['generated_accuracy']:8.3f}",
        f"  {'chance':<18}{result['chance']:8.3f}",
        "  generated by step " + " ".join(f"{a:.2f}" for a in result["generated_by_step"]),
    ]
    return "\n".join(lines)
