"""Import recorded first-person gameplay (MineRL, GameFactory) into an Ochre frame dataset.

Every recording becomes one episode of a `DatasetWriter(out, "frames", meta)` dataset
whose actions follow `FirstPersonActionSpec()` (int64 (T, 10): yaw bin, pitch bin and
eight 0/1 buttons). These are the input formats this importer accepts:

MineRL (`--format minerl`)
    SRC holds recording folders at any depth; a recording is a folder that contains
    `recording.mp4`. Beside the video:

    metadata.json   a JSON object with
                      duration_ms     number > 0, the recording's real length
                      duration_steps  integer > 0, its number of action steps
    rendered.npz    per-step arrays, all of the same length S >= 1:
                      action$camera   (S, 2) [pitch, yaw] deltas in degrees, |value| <= 180;
                                      yaw > 0 turns right, pitch > 0 looks DOWN (flipped on
                                      import: in Ochre pitch > 0 looks up)
                      action$forward, action$left, action$back, action$right,
                      action$jump, action$attack, action$sprint, action$sneak
                                      (S,) 0/1, held during that step

    The step rate is S / (duration_ms / 1000) and step i shows decoded video frame
    round(linspace(0, n_frames - 1, S))[i]: no fixed fps is assumed. Checked against
    --tolerance (relative): S against duration_steps, and the video's length
    n_frames / container_fps against duration_ms.

GameFactory (`--format gamefactory`)
    SRC holds `video/<name>.mp4` and `metadata/<name>.json` for each recording <name>.
    The JSON is `{"actions": {"0": {...}, "1": {...}, ...}}` with one entry per video
    frame, keyed by the frame indices 0..N-1 (a JSON list in frame order is also
    accepted). Each entry holds

        ws           0 none, 1 W (forward), 2 S (back)
        ad           0 none, 1 A (left), 2 D (right)
        scs          0 none, 1 Space (jump), 2 Ctrl (sprint), 3 Shift (sneak)
        yaw_delta    degrees, |value| <= 180, > 0 turns right
        pitch_delta  degrees, |value| <= 180, > 0 looks up

    Steps are video frames and the step rate is the video's container fps. N must match
    the number of video frames within --tolerance; the first min(N, n_frames) are used.
    GameFactory does not record attack, so it is never pressed.

Resampling (both formats)
    The first --drop-seconds are dropped, then steps are kept at the target --fps in
    step space: stride = step_rate / fps, kept steps k = floor(arange(drop_seconds *
    step_rate, S, stride) + 0.5). Row i of the episode is the frame of kept step k_i,
    resized to --size, and the action taken from there to the next kept frame: the
    mean over steps k_i .. k_{i+1} - 1 (the last row: k_last .. S - 1) of the camera
    deltas, clipped to +-max_deg (15) and scaled to [-1, 1], and of each button (the
    fraction of steps held, pressed from 0.5), encoded by `FirstPersonActionSpec.encode`.
    A step rate below the target fps (by more than --tolerance) cannot be resampled and
    is a problem; within the tolerance every step is kept.

Bad input
    A recording with a missing file, an unreadable or truncated video, a missing or
    malformed field, a NaN or out-of-range value, or counts that disagree beyond the
    tolerance is skipped with one warning line `path: field: problem`; with `strict` the
    first such problem fails the whole import instead. The dataset is assembled in a
    hidden folder beside `out` and moved into place only when complete, so a failed
    import leaves no dataset and `out` never lists a shard that is not there.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ochre.actions import FirstPersonActionSpec
from ochre.data.store import MANIFEST, DatasetWriter
from ochre.errors import OchreError
from ochre.frames import resize
from ochre.io import VideoInfo, iter_video, video_info

SPEC = FirstPersonActionSpec()
CAMERA_LIMIT_DEG = 180.0  # larger per-step deltas are corrupt data, not fast mouse moves
GAMEFACTORY_CHOICES = {  # id k > 0 of each key presses buttons[k - 1]
    "ws": ("forward", "back"),
    "ad": ("left", "right"),
    "scs": ("jump", "sprint", "sneak"),
}
GAMEFACTORY_CAMERA = {"yaw_delta": "yaw", "pitch_delta": "pitch"}


@dataclass(frozen=True)
class ImportSettings:
    """How recordings are resampled; all of it is recorded in the manifest."""

    fps: float = 16.0
    size: tuple[int, int] = (64, 64)  # (height, width)
    drop_seconds: float = 0.0
    tolerance: float = 0.1  # relative disagreement allowed between counts and durations

    def __post_init__(self) -> None:
        if self.fps <= 0 or min(self.size) <= 0:
            raise OchreError(f"fps and size must be positive, got fps {self.fps:g} and size {self.size}")
        if self.drop_seconds < 0 or self.tolerance < 0:
            raise OchreError(f"drop seconds and tolerance cannot be negative, got {self.drop_seconds:g} and {self.tolerance:g}")


class RecordingError(OchreError):
    """One recording cannot be imported; the message is `path: field: problem`."""

    def __init__(self, path: Path, field: str, problem: str):
        super().__init__(f"{path}: {field}: {problem}")
        self.path, self.field, self.problem = path, field, problem


@dataclass(frozen=True)
class Steps:
    """A recording's actions before resampling, already in Ochre's convention."""

    actions: np.ndarray  # (S, 2 + B) float: yaw, pitch in degrees (> 0: right, up), buttons 0/1
    frames: np.ndarray  # (S,) int64: the video frame shown at each step (non-decreasing)
    rate: float  # steps per second


@dataclass(frozen=True)
class Recording:
    """One recording found under the source folder: its video and how to read its actions."""

    name: str
    video: Path
    read_steps: Callable[[VideoInfo, float], Steps]  # (probed video, tolerance) -> Steps


@dataclass(frozen=True)
class Format:
    """An input format: how to find its recordings, and where they are expected (for errors)."""

    find: Callable[[Path], list[Recording]]
    layout: str


# --- validation helpers -------------------------------------------------------


def read_json(path: Path) -> Any:
    """The parsed JSON file, or a recording error for a missing or malformed one."""
    if not path.is_file():
        raise RecordingError(path, "file", "not found")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RecordingError(path, "file", f"not valid JSON ({err})") from None


def positive_field(meta: dict[str, Any], key: str, path: Path, integer: bool = False) -> float:
    """meta[key] as a finite positive number (an integer if asked), or raise naming the key."""
    if key not in meta:
        raise RecordingError(path, key, "missing")
    value = meta[key]
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value <= 0 or (integer and value != int(value)):
        raise RecordingError(path, key, f"must be a positive {'integer' if integer else 'number'}, got {value!r}")
    return float(value)


def as_numbers(values: Any, path: Path, field: str) -> np.ndarray:
    """`values` as a float64 array, or raise if they are not numbers."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise RecordingError(path, field, f"must hold numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def require(ok: np.ndarray, values: np.ndarray, path: Path, field: str, unit: str, expected: str) -> None:
    """Raise naming the first row (step or frame) of `values` where `ok` is False."""
    bad = np.flatnonzero(~ok.reshape(len(ok), -1).all(axis=1))
    if len(bad):
        i = int(bad[0])
        raise RecordingError(path, field, f"{unit} {i} is {values[i].tolist()}; expected {expected}")


def check_degrees(values: np.ndarray, path: Path, field: str, unit: str) -> None:
    """Camera deltas must be finite and within +-180 degrees (anything larger is corrupt data)."""
    ok = np.isfinite(values) & (np.abs(values) <= CAMERA_LIMIT_DEG)
    require(ok, values, path, field, unit, f"finite degrees within +-{CAMERA_LIMIT_DEG:g}")


def check_counts_agree(found: float, expected: float, tolerance: float, path: Path, field: str, problem: str) -> None:
    """Two counts (or durations) of one recording must agree within the relative `tolerance`."""
    if abs(found - expected) > tolerance * expected:
        raise RecordingError(path, field, f"{problem}, more than the tolerance {tolerance:g} apart")


# --- MineRL -------------------------------------------------------------------


def find_minerl(root: Path) -> list[Recording]:
    """Every folder under `root` (at any depth) that holds recording.mp4, in path order."""
    return [
        Recording(str(video.parent.relative_to(root)), video, functools.partial(read_minerl_steps, video.parent))
        for video in sorted(root.rglob("recording.mp4"))
    ]


def read_minerl_arrays(path: Path) -> dict[str, np.ndarray]:
    """The action arrays of rendered.npz, checked for presence, type, shape and range."""
    keys = ["action$camera", *(f"action${b}" for b in SPEC.buttons)]
    if not path.is_file():
        raise RecordingError(path, "file", "not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            found = {k: npz[k] for k in keys if k in npz.files}
    except Exception as err:  # numpy and zipfile raise many types for corrupt or non-npz files
        raise RecordingError(path, "file", f"not a readable npz archive ({type(err).__name__}: {err})") from None
    missing = [k for k in keys if k not in found]
    if missing:
        raise RecordingError(path, missing[0], "missing")
    arrays = {k: as_numbers(v, path, k) for k, v in found.items()}
    camera = arrays["action$camera"]
    if camera.ndim != 2 or camera.shape[1] != 2 or len(camera) == 0:
        raise RecordingError(path, "action$camera", f"must have shape (steps, 2) with steps >= 1, got {camera.shape}")
    check_degrees(camera, path, "action$camera", "step")
    for key in keys[1:]:
        if arrays[key].shape != (len(camera),):
            raise RecordingError(path, key, f"has shape {arrays[key].shape} but action$camera has {len(camera)} steps")
        require(np.isin(arrays[key], (0, 1)), arrays[key], path, key, "step", "0 or 1")
    return arrays


def read_minerl_steps(folder: Path, video: VideoInfo, tolerance: float) -> Steps:
    """Validate a MineRL recording folder against its probed video and convert its actions."""
    meta_path, npz_path = folder / "metadata.json", folder / "rendered.npz"
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise RecordingError(meta_path, "file", f"must hold a JSON object, got {type(meta).__name__}")
    duration_ms = positive_field(meta, "duration_ms", meta_path)
    duration_steps = positive_field(meta, "duration_steps", meta_path, integer=True)
    arrays = read_minerl_arrays(npz_path)
    camera = arrays["action$camera"]
    steps, seconds = len(camera), duration_ms / 1000
    check_counts_agree(
        steps,
        duration_steps,
        tolerance,
        meta_path,
        "duration_steps",
        f"says {duration_steps:g} steps but {npz_path.name} has {steps}",
    )
    check_counts_agree(
        video.seconds,
        seconds,
        tolerance,
        meta_path,
        "duration_ms",
        f"says {seconds:g} s but the video lasts {video.seconds:g} s ({video.frames} frames at {video.fps:g} fps)",
    )
    actions = np.zeros((steps, *SPEC.shape))
    actions[:, SPEC.index("yaw")] = camera[:, 1]
    actions[:, SPEC.index("pitch")] = -camera[:, 0]  # MineRL pitch > 0 looks down
    for button in SPEC.buttons:
        actions[:, SPEC.index(button)] = arrays[f"action${button}"]
    frames = np.round(np.linspace(0, video.frames - 1, steps)).astype(np.int64)
    return Steps(actions, frames, steps / seconds)


# --- GameFactory --------------------------------------------------------------


def find_gamefactory(root: Path) -> list[Recording]:
    """One recording per name seen in video/*.mp4 or metadata/*.json (a missing half is reported later)."""
    names = {p.stem for p in (root / "video").glob("*.mp4")} | {p.stem for p in (root / "metadata").glob("*.json")}
    return [
        Recording(
            name, root / "video" / f"{name}.mp4", functools.partial(read_gamefactory_steps, root / "metadata" / f"{name}.json")
        )
        for name in sorted(names)
    ]


def gamefactory_entries(raw: Any, path: Path) -> list[Any]:
    """The per-frame entries in frame order, from a list or an object keyed "0".."N-1"."""
    if isinstance(raw, dict):
        try:
            by_frame = {int(key): entry for key, entry in raw.items()}
        except ValueError:
            raise RecordingError(path, "actions", "keys must be frame indices ('0', '1', ...)") from None
        missing = sorted(set(range(len(raw))) - by_frame.keys())
        if missing:
            raise RecordingError(path, "actions", f"no entry for frame {missing[0]} (keys must be 0..{len(raw) - 1})")
        raw = [by_frame[i] for i in range(len(raw))]
    if not isinstance(raw, list) or not raw:
        raise RecordingError(path, "actions", "must be a non-empty object keyed by frame index, or a list")
    return raw


def gamefactory_column(entries: list[Any], key: str, path: Path) -> np.ndarray:
    """entries[i][key] for every frame, as floats; raise naming the first frame without a number."""
    values = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise RecordingError(path, "actions", f"frame {i} is {type(entry).__name__}; expected an object")
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            problem = "missing" if key not in entry else f"is {value!r}; expected a number"
            raise RecordingError(path, key, f"frame {i} {problem}")
        values.append(value)
    return np.asarray(values, dtype=np.float64)


def read_gamefactory_steps(path: Path, video: VideoInfo, tolerance: float) -> Steps:
    """Validate a GameFactory metadata file against its probed video and convert its actions."""
    data = read_json(path)
    if not isinstance(data, dict) or "actions" not in data:
        raise RecordingError(path, "actions", "missing")
    entries = gamefactory_entries(data["actions"], path)
    check_counts_agree(
        len(entries), video.frames, tolerance, path, "actions", f"{len(entries)} entries but the video has {video.frames} frames"
    )
    actions = np.zeros((len(entries), *SPEC.shape))
    for key, buttons in GAMEFACTORY_CHOICES.items():
        ids = gamefactory_column(entries, key, path)
        require(np.isin(ids, range(len(buttons) + 1)), ids, path, key, "frame", f"an id in 0..{len(buttons)}")
        for k, button in enumerate(buttons, start=1):
            actions[:, SPEC.index(button)] = ids == k
    for key, control in GAMEFACTORY_CAMERA.items():
        degrees = gamefactory_column(entries, key, path)
        check_degrees(degrees, path, key, "frame")
        actions[:, SPEC.index(control)] = degrees
    steps = min(len(entries), video.frames)
    return Steps(actions[:steps], np.arange(steps, dtype=np.int64), video.fps)


FORMATS = {
    "minerl": Format(find_minerl, "a recording is a folder holding recording.mp4, metadata.json and rendered.npz"),
    "gamefactory": Format(find_gamefactory, "expected video/<name>.mp4 with metadata/<name>.json"),
}


# --- resampling and decoding ----------------------------------------------------


def kept_steps(num_steps: int, rate: float, settings: ImportSettings) -> np.ndarray:
    """Indices of the steps kept at `settings.fps` once the first `drop_seconds` are dropped.

    Rounding a float arange spreads a fractional stride evenly (20 -> 16 fps keeps
    4 of every 5 steps); a stride below 1 keeps every step.
    """
    stride = max(rate / settings.fps, 1.0)
    kept = np.floor(np.arange(settings.drop_seconds * rate, num_steps, stride) + 0.5).astype(np.int64)
    return kept[kept < num_steps]


def aggregate_actions(actions: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Encoded action of each kept step: the mean of the steps up to the next kept one (the last: to the end).

    `actions` is (S, 2 + B) continuous with the camera in degrees; `kept` is strictly
    increasing, so no interval is empty.
    """
    counts = np.diff(np.r_[kept, len(actions)])
    mean = np.add.reduceat(actions, kept, axis=0) / counts[:, None]
    return SPEC.encode(np.concatenate([SPEC.normalise_degrees(mean[:, :2]), mean[:, 2:]], axis=1))


def video_problem(video: Path, err: OchreError) -> RecordingError:
    """An `ochre.io` video error as a `path: file: problem` recording error."""
    return RecordingError(video, "file", str(err).removeprefix(f"{video}: "))


def probe(video: Path) -> VideoInfo:
    """Frame count and rate of `video`, or a recording error if it is missing or unreadable."""
    if not video.is_file():
        raise RecordingError(video, "file", "not found")
    try:
        return video_info(video)
    except OchreError as err:
        raise video_problem(video, err) from None


def decode_frames(video: Path, info: VideoInfo, wanted: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Decode `video` streaming, keeping only frames `wanted` (non-decreasing, repeats allowed), resized.

    Decodes to the end even past the last wanted frame, so a truncated file is caught.
    """
    out = np.empty((len(wanted), *size, 3), dtype=np.uint8)
    decoded = 0
    try:
        for index, frame in enumerate(iter_video(video)):
            lo, hi = np.searchsorted(wanted, [index, index + 1])
            if hi > lo:
                out[lo:hi] = resize(frame, size)
            decoded = index + 1
    except OchreError as err:
        raise video_problem(video, err) from None
    if decoded != info.frames:
        raise RecordingError(video, "file", f"decoded {decoded} frames but the container holds {info.frames} (truncated?)")
    return out


def load_recording(recording: Recording, settings: ImportSettings) -> tuple[np.ndarray, np.ndarray]:
    """Validate one recording fully; return its (frames (T, h, w, 3) uint8, actions (T, 10) int64)."""
    info = probe(recording.video)
    steps = recording.read_steps(info, settings.tolerance)
    if steps.rate < settings.fps * (1 - settings.tolerance):
        raise RecordingError(
            recording.video, "fps", f"{steps.rate:.3g} steps/s is below the target {settings.fps:g} fps (lower --fps)"
        )
    kept = kept_steps(len(steps.actions), steps.rate, settings)
    if not len(kept):
        seconds = len(steps.actions) / steps.rate
        raise RecordingError(
            recording.video,
            "duration",
            f"{seconds:.3g} s long, nothing left after dropping the first {settings.drop_seconds:g} s",
        )
    actions = aggregate_actions(steps.actions, kept)
    frames = decode_frames(recording.video, info, steps.frames[kept], settings.size)
    return frames, actions


# --- the import -----------------------------------------------------------------


def publish(staging: Path, out: Path) -> None:
    """Move a finished dataset into `out`: shard files first, the manifest last."""
    out.mkdir(parents=True, exist_ok=True)
    for file in sorted(staging.iterdir()):
        if file.name != MANIFEST:
            os.replace(file, out / file.name)
    os.replace(staging / MANIFEST, out / MANIFEST)


def add_recordings(
    writer: DatasetWriter, recordings: list[Recording], settings: ImportSettings, strict: bool, progress: bool
) -> None:
    """Validate each recording fully, then add it as an episode; note it in the "imported" or "skipped" list of
    writer.meta["source"], or with `strict` raise at the first one that cannot be imported."""
    source = writer.meta["source"]
    with tqdm(recordings, desc=f"import {source['importer']}", unit="recording", disable=not progress) as bar:
        for recording in bar:
            try:
                frames, actions = load_recording(recording, settings)
            except RecordingError as err:
                if strict:
                    raise OchreError(f"{err} (--strict: no dataset was written)") from None
                tqdm.write(f"warning: {err}", file=sys.stderr)
                source["skipped"].append(
                    {"recording": recording.name, "path": str(err.path), "field": err.field, "problem": err.problem}
                )
                continue
            writer.add_episode(frames, actions)
            source["imported"].append(recording.name)


def import_recordings(
    fmt: str,
    src: str | Path,
    out: str | Path,
    settings: ImportSettings,
    *,
    strict: bool = False,
    world: str = "minecraft",
    shard_frames: int = 20_000,
    progress: bool = True,
) -> dict[str, Any]:
    """Import every recording of format `fmt` under `src` as one episode each; return the manifest.

    Skipped recordings are warned about on stderr and listed in manifest["source"]["skipped"];
    with `strict` the first one raises instead and nothing is written.
    """
    src, out = Path(src), Path(out)
    if fmt not in FORMATS:
        raise OchreError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if (out / MANIFEST).exists():
        raise OchreError(f"{out}: a dataset already exists here; choose another --out or delete it")
    if out.exists() and not out.is_dir():
        raise OchreError(f"{out}: exists and is not a folder")
    if not src.is_dir():
        raise OchreError(f"{src}: source folder not found")
    recordings = FORMATS[fmt].find(src)
    if not recordings:
        raise OchreError(f"{src}: no {fmt} recordings found ({FORMATS[fmt].layout})")

    source = {
        "importer": fmt,
        "root": str(src),
        "fps": settings.fps,
        "drop_seconds": settings.drop_seconds,
        "tolerance": settings.tolerance,
        "imported": [],  # recording name of each episode, in episode order
        "skipped": [],  # {"recording", "path", "field", "problem"} of each skipped recording
    }
    meta = {
        "world": world,
        "action_schema": SPEC.to_dict(),
        "frame_shape": [*settings.size, 3],
        "fps": settings.fps,
        "source": source,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".importing", dir=out.parent))
    try:
        writer = DatasetWriter(staging, "frames", meta, shard_frames=shard_frames)
        add_recordings(writer, recordings, settings, strict, progress)
        if not source["imported"]:
            raise OchreError(f"{src}: none of the {len(recordings)} recordings could be imported (see the warnings above)")
        manifest = writer.close()
        publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
