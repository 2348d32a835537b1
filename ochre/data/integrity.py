"""Dataset integrity: cheap checks on every open, full sha256 checks once per dataset state.

    array = open_checked(layout, shard, "frames")          # cheap: header, shape, dtype, size, value ranges
    report = verify_dataset(root, manifest, reuse_stamp=True)  # full: sha256 of what changed since the last check

The cheap checks read .npy headers, file sizes and the small arrays, plus one
vectorised max per token shard: a missing, truncated, foreign or out-of-range
file is refused with one line naming it and the fix. A flipped byte inside a
frames shard passes them; only the sha256 check finds it.

`verified.json` in the dataset folder records each file that passed a full
check (size, mtime_ns, sha256, when), so a later check with `reuse_stamp`
hashes only the files that changed since.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ochre.actions import ActionSpec, action_spec_from_dict
from ochre.errors import OchreError
from ochre.io import write_json

STAMP = "verified.json"
DTYPES = {
    "frames": np.dtype(np.uint8),
    "tokens": np.dtype(np.uint16),
    "latents": np.dtype(np.float16),
    "actions": np.dtype(np.int64),
    "episodes": np.dtype(np.int64),
}
HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


@dataclass(frozen=True)
class Damage:
    """One damaged file: which shard, which file, what is wrong and how to repair it."""

    shard: str
    file: Path
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}; {self.fix}"


class DamageError(OchreError):
    """A dataset file that fails a check; the message is one line naming the file and the fix."""

    def __init__(self, damage: Damage):
        super().__init__(str(damage))
        self.damage = damage


@dataclass(frozen=True)
class Layout:
    """What manifest.json promises about every shard file of the dataset at `root`."""

    root: Path
    kind: str  # "frames", "tokens" or "latents"
    row_shapes: dict[str, tuple[int, ...] | None]  # file key -> shape of one row (None: not recorded)
    codebook_size: int | None
    action_spec: ActionSpec
    fix: str  # how to repair a damaged file

    @classmethod
    def from_manifest(cls, root: str | Path, manifest: dict[str, Any]) -> Layout:
        spec = action_spec_from_dict(manifest["action_schema"])
        kind = manifest["kind"]
        row = {"frames": "frame_shape", "tokens": "token_grid", "latents": "latent_shape"}.get(kind, "token_grid")
        grid = manifest.get(row)
        shapes = {kind: tuple(grid) if grid else None, "actions": spec.shape, "episodes": ()}
        return cls(Path(root), kind, shapes, manifest.get("codebook_size"), spec, repair_hint(root, manifest))


def repair_hint(root: str | Path, manifest: dict[str, Any]) -> str:
    """How to remake a damaged file of this dataset, from what made it."""
    source = manifest.get("source", {})
    if manifest.get("kind") in ("tokens", "latents"):
        return f"delete {root} and rerun the same `python -m vqvae.tokenize` command"
    if "importer" in source:
        return f"delete {root} and rerun the same `python -m preprocess.import_videos` command"
    return "rerun the same `python -m preprocess.generate` command (it re-plays damaged shards)"


@dataclass(frozen=True)
class NpyHeader:
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int  # bytes before the array data

    @property
    def file_size(self) -> int:
        return self.offset + int(np.prod(self.shape)) * self.dtype.itemsize


def read_npy_header(path: Path) -> NpyHeader:
    """The header of an .npy file; raises ValueError if it is not one."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version not in HEADER_READERS:
            raise ValueError(f".npy format version {version} is not supported")
        shape, _, dtype = HEADER_READERS[version](f)
        return NpyHeader(tuple(shape), dtype, f.tell())


def open_checked(layout: Layout, shard: dict[str, Any], key: str) -> np.ndarray:
    """Memory-map one shard file after the cheap checks; raises DamageError naming the file."""
    path = layout.root / shard["files"][key]
    damage = lambda problem: DamageError(Damage(shard["name"], path, problem, layout.fix))
    if not path.is_file():
        raise damage("listed in manifest.json but missing")
    if problem := _header_problem(path, key, shard["num_frames"], layout.row_shapes[key]):
        raise damage(problem)
    array = np.load(path, mmap_mode="r")
    if problem := _value_problem(array, key, layout):
        raise damage(problem)
    return array


def _header_problem(path: Path, key: str, rows: int, row_shape: tuple[int, ...] | None) -> str | None:
    try:
        header = read_npy_header(path)
    except (OSError, ValueError, SyntaxError) as err:
        return f"not a readable .npy file ({str(err).splitlines()[0][:100]})"
    if header.dtype != DTYPES[key]:
        return f"holds {header.dtype} but {key} must be {DTYPES[key]}"
    if header.shape[:1] != (rows,) or (row_shape is not None and header.shape[1:] != row_shape):
        want = f"({rows}, {', '.join(map(str, row_shape))})" if row_shape is not None else f"{rows} rows"
        return f"has shape {header.shape} but manifest.json says {want}"
    size = path.stat().st_size
    if size < header.file_size:
        return f"file is truncated ({size:,} of {header.file_size:,} bytes)"
    if size > header.file_size:
        return f"has {size - header.file_size:,} bytes after the array ({size:,} of {header.file_size:,} bytes)"
    return None


def _value_problem(array: np.ndarray, key: str, layout: Layout) -> str | None:
    if not len(array):
        return None
    if key == "tokens" and layout.codebook_size and (top := int(array.max())) >= layout.codebook_size:
        return f"token id {top} is outside 0-{layout.codebook_size - 1} (codebook_size {layout.codebook_size} in manifest.json)"
    if key == "actions":
        return _action_problem(array.reshape(len(array), -1), layout.action_spec)
    if key == "episodes" and (falls := np.flatnonzero(np.diff(array) < 0)).size:
        return f"episode ids decrease at row {int(falls[0]) + 1} (an episode's rows must be contiguous)"
    return None


def _action_problem(actions: np.ndarray, spec: ActionSpec) -> str | None:
    """actions: (n, columns) encoded; the first value outside its factor's range, if any."""
    low, high = actions.min(0), actions.max(0)
    for col, factor in enumerate(spec.factors):
        if low[col] < 0 or high[col] >= factor:
            value = int(low[col] if low[col] < 0 else high[col])
            what = "action id" if len(spec.factors) == 1 else f"'{spec.control_names[col]}' value"
            return f"{what} {value} is outside 0-{factor - 1} (the '{spec.name}' action schema)"
    return None


@dataclass(frozen=True)
class Verification:
    """What a full check of one dataset found."""

    damage: tuple[Damage, ...]
    shards: int
    frames: int
    total_bytes: int  # size of every shard file
    hashed_bytes: int  # bytes read and hashed (files unchanged since the stamp are skipped)
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.damage

    def raise_first(self) -> None:
        """Raise the first damage as one line (with a count of the rest)."""
        if self.damage:
            more = f" (and {len(self.damage) - 1} more damaged files)" if len(self.damage) > 1 else ""
            first = self.damage[0]
            raise DamageError(replace(first, fix=first.fix + more))


def verify_dataset(root: str | Path, manifest: dict[str, Any], progress: bool = False, reuse_stamp: bool = False) -> Verification:
    """Cheap checks plus sha256 of every shard file against manifest.json; records the files that pass in the stamp.

    reuse_stamp: skip hashing files whose size, mtime_ns and expected sha256 match `verified.json`.
    """
    t0 = time.perf_counter()
    layout = Layout.from_manifest(root, manifest)
    before = read_stamp(layout.root)
    stamp = before if reuse_stamp else {}
    damage, todo, kept = [], [], {}
    for shard in manifest["shards"]:
        for key, name in shard["files"].items():
            try:
                open_checked(layout, shard, key)
            except DamageError as err:
                damage.append(err.damage)
                continue
            expected = shard.get("sha256", {}).get(key)
            if _still_verified(stamp.get(name), layout.root / name, expected):
                kept[name] = stamp[name]
            else:
                todo.append((shard, key, expected))
    fresh, hashed = _hash_files(layout, todo, damage, progress)
    if kept | fresh != before:
        write_stamp(layout.root, kept | fresh)
    files = [layout.root / f for s in manifest["shards"] for f in s["files"].values()]
    size = sum(f.stat().st_size for f in files if f.is_file())
    frames = sum(int(s["num_frames"]) for s in manifest["shards"])
    return Verification(tuple(damage), len(manifest["shards"]), frames, size, hashed, time.perf_counter() - t0)


def _hash_files(
    layout: Layout, todo: list[tuple[dict[str, Any], str, str | None]], damage: list[Damage], progress: bool
) -> tuple[dict[str, dict[str, Any]], int]:
    """Hash each (shard, key, expected sha256); append mismatches to `damage`; return (stamp entries, bytes hashed)."""
    total = sum((layout.root / s["files"][k]).stat().st_size for s, k, _ in todo)
    bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"sha256 {layout.root.name}", disable=not progress or not todo)
    fresh = {}
    for shard, key, expected in todo:
        path = layout.root / shard["files"][key]
        st = path.stat()
        got = _sha256(path, bar.update)
        if got == expected:
            when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            fresh[path.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": got, "checked_at": when}
        elif expected is None:
            damage.append(Damage(shard["name"], path, "manifest.json records no sha256 for it", layout.fix))
        else:
            problem = f"sha256 {got[:12]}… differs from {expected[:12]}… in manifest.json (the file changed after it was written)"
            damage.append(Damage(shard["name"], path, problem, layout.fix))
    bar.close()
    return fresh, total


def _sha256(path: Path, progress: Callable[[int], None] = lambda n: None, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, reporting bytes read to `progress`."""
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(chunk))
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(buffer[:n])
            progress(n)
    return digest.hexdigest()


def _still_verified(entry: dict[str, Any] | None, path: Path, expected: str | None) -> bool:
    """Whether a stamp entry still describes `path` as it was when it matched `expected`."""
    if not entry or expected is None or entry.get("sha256") != expected:
        return False
    st = path.stat()
    return entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns


def read_stamp(root: Path) -> dict[str, dict[str, Any]]:
    """File name -> stamp entry; an unreadable stamp counts as none (everything is hashed again)."""
    try:
        files = json.loads((root / STAMP).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {k: v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}


def write_stamp(root: Path, files: dict[str, dict[str, Any]]) -> None:
    """Record the verified files atomically; a read-only dataset simply is not stamped."""
    with contextlib.suppress(OSError):
        write_json(root / STAMP, {"note": "files whose sha256 matched manifest.json, as they were then", "files": files})
