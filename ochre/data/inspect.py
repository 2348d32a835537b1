"""Dataset summaries: does this data teach every control?

A world model can only learn what a control does if the data shows that control,
alone and together with the others. `dataset_stats` reads a dataset's actions
(small, loaded whole) and episode ids and returns a `DatasetStats`: sizes,
episode lengths, how often each control is active, how often controls are active
together, and for first-person data the camera+movement co-occurrence (a mouse-look
world trained on recordings where the camera never turns while walking cannot
render that combination). `format_report` turns it into the text the CLI prints,
the `plot_*` functions draw it, and `sample_grid` reads only the frames it shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ochre.actions import DiscreteActionSpec, FirstPersonActionSpec
from ochre.data.store import EpisodeDataset
from ochre.images import image_grid
from ochre.io import atomic_path

SHORT_EPISODE_FRAMES = 16  # episodes shorter than this give few or no training windows
MOVEMENT_KEYS = ("forward", "left", "back", "right")
TOP_PAIRS = 5


@dataclass(frozen=True)
class EpisodeLengths:
    """Summary of episode lengths in frames."""

    lengths: np.ndarray
    short_below: int = SHORT_EPISODE_FRAMES

    @property
    def short(self) -> int:
        """How many episodes are shorter than `short_below` frames."""
        return int(np.sum(self.lengths < self.short_below))

    def to_dict(self) -> dict[str, Any]:
        lengths = self.lengths
        return {
            "min": int(lengths.min()),
            "median": float(np.median(lengths)),
            "mean": float(lengths.mean()),
            "max": int(lengths.max()),
            "short": self.short,
            "short_below": self.short_below,
        }


@dataclass(frozen=True)
class CameraMovement:
    """First-person camera+movement co-occurrence (None where the condition never happens)."""

    camera_steps: int
    movement_steps: int
    both_steps: int

    @property
    def movement_given_camera(self) -> float | None:
        """Fraction of camera-active steps that also hold a movement key."""
        return self.both_steps / self.camera_steps if self.camera_steps else None

    @property
    def camera_given_movement(self) -> float | None:
        """Fraction of movement steps that also move the camera."""
        return self.both_steps / self.movement_steps if self.movement_steps else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "camera_steps": self.camera_steps,
            "movement_steps": self.movement_steps,
            "both_steps": self.both_steps,
            "movement_given_camera": self.movement_given_camera,
            "camera_given_movement": self.camera_given_movement,
        }


@dataclass(frozen=True)
class DatasetStats:
    """Everything `preprocess.inspect` prints and plots about one dataset.

    `cooccurrence[i, j]` is P(control j active | control i active), with the
    frequency of control i on the diagonal and NaN in rows of controls never active.
    """

    path: str
    world: str
    kind: str
    schema_name: str
    schema_kind: str
    row_shape: tuple[int, ...]
    frame_shape: tuple[int, ...] | None
    fps: float | None
    shards: int
    frames: int
    episodes: EpisodeLengths
    controls: tuple[str, ...]
    control_frequency: np.ndarray
    no_control: float
    cooccurrence: np.ndarray
    action_labels: tuple[str, ...] | None = None
    action_frequency: np.ndarray | None = None
    pitch_frequency: np.ndarray | None = None
    yaw_frequency: np.ndarray | None = None
    bin_degrees: np.ndarray | None = None
    still_bin: int | None = None
    camera_movement: CameraMovement | None = None
    top_pairs: tuple[tuple[str, str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: plain numbers and lists, NaN as null."""
        out: dict[str, Any] = {
            "path": self.path,
            "world": self.world,
            "kind": self.kind,
            "action_schema": {"name": self.schema_name, "kind": self.schema_kind},
            "row_shape": list(self.row_shape),
            "frame_shape": list(self.frame_shape) if self.frame_shape else None,
            "fps": self.fps,
            "shards": self.shards,
            "frames": self.frames,
            "episodes": len(self.episodes.lengths),
            "episode_lengths": self.episodes.to_dict(),
            "control_frequency": dict(zip(self.controls, _floats(self.control_frequency), strict=True)),
            "no_control": self.no_control,
            "cooccurrence": {"controls": list(self.controls), "matrix": [_floats(row) for row in self.cooccurrence]},
        }
        if self.action_frequency is not None and self.action_labels is not None:
            out["action_frequency"] = [
                {"id": i, "label": label, "frequency": f}
                for i, (label, f) in enumerate(zip(self.action_labels, _floats(self.action_frequency), strict=True))
            ]
        if self.yaw_frequency is not None and self.pitch_frequency is not None and self.bin_degrees is not None:
            out["camera_bins"] = {
                "degrees": _floats(self.bin_degrees),
                "still_bin": self.still_bin,
                "yaw": _floats(self.yaw_frequency),
                "pitch": _floats(self.pitch_frequency),
            }
        if self.camera_movement is not None:
            out["camera_movement"] = self.camera_movement.to_dict()
        if self.top_pairs:
            out["top_pairs"] = [{"controls": [a, b], "frequency": f} for a, b, f in self.top_pairs]
        return out


def _floats(values: np.ndarray) -> list[float | None]:
    """Array -> list of Python floats, NaN as None (JSON has no NaN)."""
    return [None if math.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def load_actions(data: EpisodeDataset) -> np.ndarray:
    """All actions of the dataset in row order, checked against its schema."""
    actions = np.concatenate([np.asarray(s["actions"]) for s in data.shards])
    return data.action_spec.validate(actions, source=f"{data.path} actions")


def cooccurrence(active: np.ndarray) -> np.ndarray:
    """(N, C) bool -> (C, C): P(j active | i active) off the diagonal, frequency of i on it.

    Rows of controls that are never active are NaN off the diagonal (undefined).
    """
    a = np.asarray(active, dtype=np.float64)
    counts = a.T @ a  # counts[i, j] = steps with both i and j active
    own = np.diag(counts).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = counts / own[:, None]
    out[own == 0] = np.nan
    np.fill_diagonal(out, own / max(len(a), 1))
    return out


def top_pairs(active: np.ndarray, names: tuple[str, ...], k: int = TOP_PAIRS) -> tuple[tuple[str, str, float], ...]:
    """The `k` control pairs most often active together, as (a, b, fraction of steps); ties keep control order."""
    a = np.asarray(active, dtype=np.float64)
    joint = a.T @ a / max(len(a), 1)
    i, j = np.triu_indices(len(names), k=1)
    order = np.argsort(-joint[i, j], kind="stable")[:k]
    return tuple((names[i[o]], names[j[o]], float(joint[i[o], j[o]])) for o in order if joint[i[o], j[o]] > 0)


def camera_movement(spec: FirstPersonActionSpec, active: np.ndarray) -> CameraMovement:
    """Count camera steps (yaw or pitch off the still bin), movement-key steps and both."""
    camera = active[:, spec.index("yaw")] | active[:, spec.index("pitch")]
    keys = [spec.index(k) for k in MOVEMENT_KEYS if k in spec.buttons]
    movement = active[:, keys].any(axis=1) if keys else np.zeros(len(active), dtype=bool)
    return CameraMovement(int(camera.sum()), int(movement.sum()), int((camera & movement).sum()))


def episode_lengths(data: EpisodeDataset) -> EpisodeLengths:
    """Length of every episode, from the episode-id arrays only."""
    return EpisodeLengths(np.array([length for _, _, length in data.episodes()], dtype=np.int64))


def dataset_stats(data: EpisodeDataset) -> DatasetStats:
    """Compute every summary of `data`; reads actions and episode ids, never frames."""
    spec = data.action_spec
    actions = load_actions(data)
    active = spec.active_controls(actions)
    n = len(actions)  # never 0: a dataset holds at least one non-empty shard
    manifest = data.manifest
    frame_shape = manifest.get("frame_shape")
    common: dict[str, Any] = {
        "path": str(data.path),
        "world": str(manifest.get("world", "?")),
        "kind": data.kind,
        "schema_name": spec.name,
        "schema_kind": spec.kind,
        "row_shape": tuple(data.shards[0][data.kind].shape[1:]),
        "frame_shape": tuple(frame_shape) if frame_shape else None,
        "fps": manifest.get("fps"),
        "shards": len(data.shards),
        "frames": len(actions),
        "episodes": episode_lengths(data),
        "controls": spec.control_names,
        "control_frequency": active.mean(axis=0),
        "no_control": float(np.sum(~active.any(axis=1)) / n),
        "cooccurrence": cooccurrence(active),
    }
    if isinstance(spec, DiscreteActionSpec):
        return DatasetStats(
            **common,
            action_labels=spec.labels,
            action_frequency=np.bincount(actions, minlength=spec.n) / n,
            top_pairs=top_pairs(active, spec.control_names),
        )
    if not isinstance(spec, FirstPersonActionSpec):  # factored: control frequencies and pairs, no camera bins
        return DatasetStats(**common, top_pairs=top_pairs(active, spec.control_names))
    return DatasetStats(
        **common,
        yaw_frequency=np.bincount(actions[:, spec.index("yaw")], minlength=spec.camera_bins) / n,
        pitch_frequency=np.bincount(actions[:, spec.index("pitch")], minlength=spec.camera_bins) / n,
        bin_degrees=spec.bin_centers * spec.max_deg,
        still_bin=spec.still_bin,
        camera_movement=camera_movement(spec, active),
    )


# --- text -----------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _shape(shape: tuple[int, ...] | None) -> str:
    return "x".join(str(s) for s in shape) if shape else "?"


def format_report(stats: DatasetStats) -> str:
    """The human-readable summary the CLI prints."""
    ep = stats.episodes.to_dict()
    shape = f"frame shape {_shape(stats.row_shape)}"
    if stats.kind == "tokens":
        shape = f"token grid {_shape(stats.row_shape)} (frames {_shape(stats.frame_shape)})"
    lines = [
        f"dataset {stats.path}",
        f"  world {stats.world}, kind {stats.kind}, action schema '{stats.schema_name}' ({stats.schema_kind})",
        f"  {shape}, fps {stats.fps if stats.fps is not None else '?'}",
        f"  {stats.shards} shards, {stats.frames} frames, {len(stats.episodes.lengths)} episodes",
        f"episode length: min {ep['min']}, median {ep['median']:g}, mean {ep['mean']:.1f}, max {ep['max']}; "
        f"{ep['short']} shorter than {ep['short_below']} frames",
        "control frequency (fraction of steps active):",
    ]
    width = max(len(c) for c in stats.controls) if stats.controls else 0
    lines += [f"  {c:<{width}}  {_pct(f)}" for c, f in zip(stats.controls, stats.control_frequency, strict=True)]
    lines.append(f"no control active: {_pct(stats.no_control)}")
    if stats.action_frequency is not None and stats.action_labels is not None:
        lines.append("action frequency:")
        lines += [
            f"  {i:>2} {label:<{max(map(len, stats.action_labels))}}  {_pct(f)}"
            for i, (label, f) in enumerate(zip(stats.action_labels, stats.action_frequency, strict=True))
        ]
    if stats.yaw_frequency is not None and stats.pitch_frequency is not None and stats.bin_degrees is not None:
        lines.append("camera bins (centre in degrees, still bin marked *):")
        for name, freq in (("yaw", stats.yaw_frequency), ("pitch", stats.pitch_frequency)):
            cells = [
                f"{deg:+.1f}{'*' if b == stats.still_bin else ''} {_pct(f)}"
                for b, (deg, f) in enumerate(zip(stats.bin_degrees, freq, strict=True))
            ]
            lines.append(f"  {name:<5}  " + " | ".join(cells))
    if stats.camera_movement is not None:
        cm = stats.camera_movement
        lines += [
            f"camera+movement co-occurrence: {_pct(cm.movement_given_camera)} of {cm.camera_steps} camera steps hold a movement key",
            f"  reverse: {_pct(cm.camera_given_movement)} of {cm.movement_steps} movement steps also move the camera",
        ]
    if stats.top_pairs:
        lines.append("most frequent co-active control pairs (fraction of steps):")
        pairs = [(f"{a}+{b}", f) for a, b, f in stats.top_pairs]
        width = max(len(p) for p, _ in pairs)
        lines += [f"  {p:<{width}}  {_pct(f)}" for p, f in pairs]
    elif stats.schema_kind == "discrete":
        lines.append("no two controls are ever active together")
    return "\n".join(lines)


# --- pictures -------------------------------------------------------------------


def sample_grid(data: EpisodeDataset, samples: int, per_episode: int = 8, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """A grid of frames: one row per random episode, `per_episode` frames spread across it.

    Reads only the frames shown (the arrays are memory-mapped). Returns the image
    and, per row, the episode index and the frame offsets shown.
    """
    episodes = data.episodes()
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(episodes), size=min(samples, len(episodes)), replace=False))
    rows, picked = [], []
    for e in chosen:
        shard, start, length = episodes[e]
        offsets = np.unique(np.linspace(0, length - 1, per_episode).round().astype(np.int64))
        rows.append(np.asarray(data.shards[shard][data.kind][start + offsets]))
        picked.append({"episode": int(e), "frames": offsets.tolist()})
    return image_grid(rows), picked


def _pyplot():
    """matplotlib.pyplot on the headless Agg backend, imported only when plotting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    _pyplot().close(fig)


def _bars(ax, labels: list[str], values: np.ndarray, title: str, highlight: int | None = None) -> None:
    colors = ["tab:orange" if i == highlight else "tab:blue" for i in range(len(values))]
    ax.bar(range(len(values)), values, color=colors)
    ax.set_xticks(range(len(values)), labels, rotation=45, ha="right", fontsize=8)
    ax.set(title=title, ylabel="fraction of steps")
    ax.grid(axis="y", alpha=0.3)


def plot_actions(stats: DatasetStats, path: Path) -> None:
    """Per-id bars (discrete) or per-control bars plus yaw/pitch bin histograms (first-person)."""
    plt = _pyplot()
    if stats.action_frequency is not None and stats.action_labels is not None:
        fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(stats.action_labels)), 3.8))
        labels = [f"{i} {label}" for i, label in enumerate(stats.action_labels)]
        _bars(ax, labels, stats.action_frequency, f"action frequency ({stats.schema_name})")
    elif stats.yaw_frequency is None:
        fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(stats.controls)), 3.8))
        _bars(ax, list(stats.controls), stats.control_frequency, f"control frequency ({stats.schema_name})")
    else:
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        _bars(axes[0], list(stats.controls), stats.control_frequency, "control frequency")
        degrees = [f"{d:+.1f}°" for d in stats.bin_degrees]
        _bars(axes[1], degrees, stats.yaw_frequency, "yaw bins (orange = still)", stats.still_bin)
        _bars(axes[2], degrees, stats.pitch_frequency, "pitch bins (orange = still)", stats.still_bin)
    fig.tight_layout()
    _save(fig, path)


def plot_cooccurrence(stats: DatasetStats, path: Path) -> None:
    """C x C heat map of P(column active | row active), frequency on the diagonal, numbers written in."""
    plt = _pyplot()
    c = len(stats.controls)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * c, 0.8 + 0.6 * c))
    image = ax.imshow(stats.cooccurrence, vmin=0, vmax=1, cmap="viridis")
    for i in range(c):
        for j in range(c):
            value = stats.cooccurrence[i, j]
            if not math.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.6 else "black")
    ax.set_xticks(range(c), stats.controls, rotation=45, ha="right")
    ax.set_yticks(range(c), stats.controls)
    ax.set(xlabel="control j", ylabel="control i", title="P(j active | i active); diagonal = frequency of i")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    _save(fig, path)


def plot_episode_lengths(stats: DatasetStats, path: Path) -> None:
    """Histogram of episode lengths, with the short-episode threshold marked."""
    plt = _pyplot()
    lengths = stats.episodes.lengths
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(lengths, bins=min(50, max(1, len(np.unique(lengths)))), color="tab:blue")
    ax.axvline(stats.episodes.short_below, color="tab:red", ls="--", label=f"shorter than {stats.episodes.short_below}")
    ax.set(xlabel="episode length (frames)", ylabel="episodes", title=f"{len(lengths)} episodes")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
