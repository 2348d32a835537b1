"""Does this data look like play? How long keys are held, how far the view travels per episode.

    holds = hold_lengths(data)              # HoldLengths: every run of one action, in steps
    travel = view_travel(data, episodes=32)  # ViewTravel: per episode, the scene's summed shift

A world learns what holding a key does only from data where keys are held: uniform
random actions change every step, so the player jitters in place and the view hardly
travels. `preprocess.inspect` prints both next to the control frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ochre.data.store import EpisodeDataset
from ochre.playtest.scores import step_motion

LONG_HOLD = 8  # steps: a hold at least this long is one a player would notice


@dataclass(frozen=True)
class HoldLengths:
    lengths: np.ndarray  # (R,) steps each run of one unchanged action lasted

    def to_dict(self) -> dict[str, Any]:
        x = self.lengths
        return {
            "runs": int(len(x)),
            "median": float(np.median(x)),
            "mean": float(x.mean()),
            "p90": float(np.percentile(x, 90)),
            "steps_in_long_holds": float(x[x >= LONG_HOLD].sum() / x.sum()),
        }


@dataclass(frozen=True)
class ViewTravel:
    net_dx: np.ndarray  # (E,) summed horizontal scene shift per episode, px (> 0: the content moved right)
    path_px: np.ndarray  # (E,) summed |shift| per episode, px
    steps: np.ndarray  # (E,) episode lengths

    def to_dict(self) -> dict[str, Any]:
        return {
            "episodes": int(len(self.steps)),
            "median_net_dx_px": float(np.median(self.net_dx)),
            "median_abs_net_dx_px": float(np.median(np.abs(self.net_dx))),
            "median_path_px": float(np.median(self.path_px)),
            "median_steps": float(np.median(self.steps)),
        }


def _runs(actions: np.ndarray) -> np.ndarray:
    """(T, ...) actions of one episode -> lengths of its runs of identical actions."""
    flat = actions.reshape(len(actions), -1)
    change = np.flatnonzero(np.any(flat[1:] != flat[:-1], axis=1)) + 1
    return np.diff(np.r_[0, change, len(actions)])


def hold_lengths(data: EpisodeDataset) -> HoldLengths:
    """Every run of one unchanged action, within episodes."""
    runs = [_runs(np.asarray(data.shards[s]["actions"][start : start + n])) for s, start, n in data.episodes() if n > 0]
    return HoldLengths(np.concatenate(runs) if runs else np.zeros(1, dtype=np.int64))


def view_travel(data: EpisodeDataset, episodes: int = 32, seed: int = 0) -> ViewTravel:
    """The scene's shift between consecutive frames (phase correlation), summed over `episodes` random episodes."""
    eps = [e for e in data.episodes() if e[2] > 1]
    picks = np.random.default_rng(seed).choice(len(eps), size=min(episodes, len(eps)), replace=False)
    net, path, steps = [], [], []
    for i in sorted(picks):
        s, start, n = eps[i]
        frames = np.asarray(data.shards[s]["frames"][start : start + n])
        dx = step_motion(frames[None], ("dx",))[0, :, 0]
        net.append(dx.sum())
        path.append(np.abs(dx).sum())
        steps.append(n)
    return ViewTravel(np.array(net), np.array(path), np.array(steps))


def format_play_stats(holds: HoldLengths, travel: ViewTravel | None) -> str:
    h = holds.to_dict()
    lines = [
        f"keys held: {h['runs']} runs of one action, median {h['median']:g} steps, mean {h['mean']:.1f}, 90th percentile "
        f"{h['p90']:g}; {100 * h['steps_in_long_holds']:.1f}% of steps in holds of {LONG_HOLD}+ steps",
    ]
    if travel is not None:
        t = travel.to_dict()
        lines.append(
            f"view travel over {t['episodes']} episodes (median {t['median_steps']:g} steps): net horizontal "
            f"{t['median_net_dx_px']:+.1f} px (|net| {t['median_abs_net_dx_px']:.1f} px), path {t['median_path_px']:.1f} px"
        )
    return "\n".join(lines)
