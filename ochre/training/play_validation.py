"""A small play test inside training: does the world follow a held key on validation episodes?

    probe = play_probe(data, "coinrun", context=4, horizon=16, val_every=10, count=64)   # None: nothing to score
    logs = validate_play(model, tokenizer, probe, context=4)

`train.playtest` plays the real game; a training run may have no game at hand (a GPU
machine without Procgen), so this check reads the validation episodes instead: windows
whose actions after the seed frames are one key held throughout (play-like data has many,
uniform-random data almost none). The world rolls each out open loop from the real seed
frames, and its decoded frames are scored against the true ones, decoded the same way,
with the play tests' own measures:

- `val/play_liveliness`: mean frame change, world over truth;
- `val/play_<dx|dy|zoom>_sign`: sign agreement of the summed view motion where the true
  view moved (`ochre.playtest.scores.motion_agreement`);
- `val/play_<object>`: share of predicted frames that draw each object of the world's finder
  where the true frame does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ochre.data.store import EpisodeDataset
from ochre.data.windows import Batch, WindowSampler
from ochre.errors import OchreError
from ochre.frames import to_uint8
from ochre.models.dynamics import Dynamics
from ochre.models.tokenizer import Tokenizer
from ochre.playtest.avatar import Finder
from ochre.playtest.checks import PlayChecks, play_checks
from ochre.playtest.scores import frame_change, motion_agreement, step_motion
from ochre.playtest.suite import MOVED
from ochre.sampling import rollout_tokens

SCAN = 4096  # validation windows looked at to find the held ones


def held_key_windows(data: EpisodeDataset, context: int, horizon: int, val_every: int, count: int, seed: int = 3) -> Batch | None:
    """Up to `count` validation windows whose `horizon` actions after the seed frames are one action held; None if none."""
    batch = WindowSampler(data, context + horizon, "val", val_every, seed=seed).fixed(SCAN, seed=seed)
    future = batch.actions[:, context - 1 : -1].reshape(len(batch.rows), horizon, -1)
    held = (future == future[:, :1]).all(dim=2).all(dim=1)
    picks = torch.nonzero(held).flatten()[:count]
    if len(picks) == 0:
        return None
    return Batch(batch.rows[picks], batch.actions[picks])


def decoded_frames(tokenizer: Tokenizer, tokens: torch.Tensor) -> np.ndarray:
    """(B, S, h, w) tokens -> (B, S, H, W, 3) uint8 frames."""
    decoded = to_uint8(tokenizer.decode_tokens(tokens.flatten(0, 1)).clamp(-1, 1))
    return decoded.reshape(*tokens.shape[:2], *decoded.shape[1:])


@dataclass
class PlayProbe:
    windows: Batch  # held-key validation windows
    checks: PlayChecks
    finder: Finder | None


def play_probe(data: EpisodeDataset, world: str, context: int, horizon: int, val_every: int, count: int) -> PlayProbe | None:
    """What the in-training play check scores, or None (with a line saying why) when there is nothing to score."""
    try:
        checks = play_checks(world, data.action_spec)
    except OchreError as err:
        print(f"play check off: {err}")
        return None
    windows = held_key_windows(data, context, horizon, val_every, count)
    if windows is None:
        print(f"play check off: no validation window of {data.path} holds one key for {horizon} steps (uniform-random data)")
        return None
    try:
        finder = checks.avatar() if checks.avatar else None
    except OchreError as err:
        print(f"play check without objects: {err}")
        finder = None
    return PlayProbe(windows, checks, finder)


@torch.no_grad()
def validate_play(model: Dynamics, tokenizer: Tokenizer, probe: PlayProbe, context: int) -> dict[str, float]:
    """The scores of the module docstring on `probe`'s windows, rolled out greedily from their first `context` frames."""
    windows, checks, finder = probe.windows, probe.checks, probe.finder
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    rows, actions = windows.rows.to(device), windows.actions.to(device)
    pred = rollout_tokens(model, rows[:, :context], actions[:, : context - 1], actions[:, context - 1 : -1])
    model.train(was_training)

    world = decoded_frames(tokenizer, torch.cat([rows[:, context - 1 : context], pred], 1))
    truth = decoded_frames(tokenizer, rows[:, context - 1 :])
    logs = {"val/play_windows": float(len(world))}
    real_change = frame_change(truth).mean()
    logs["val/play_liveliness"] = float(frame_change(world).mean() / real_change) if real_change > 0 else float("nan")
    if checks.motion:
        w, t = (step_motion(x, checks.motion, checks.motion_rows).sum(1) for x in (world, truth))
        for k, name in enumerate(checks.motion):
            agree = motion_agreement(w[:, k], t[:, k], MOVED[name])
            logs[f"val/play_{name}_sign"] = float("nan") if agree["sign_agreement"] is None else agree["sign_agreement"]
            logs[f"val/play_{name}_scored"] = float(agree["scored"])
    if finder is not None:
        fw = finder.find(world[:, 1:].reshape(-1, *world.shape[2:]))
        ft = finder.find(truth[:, 1:].reshape(-1, *truth.shape[2:]))
        for j, name in enumerate(finder.names):
            shown = ~np.isnan(ft[:, j, 0])
            logs[f"val/play_{name}"] = float(np.mean(~np.isnan(fw[shown, j, 0]))) if shown.any() else float("nan")
    return logs
