"""Sharded episode storage.

A dataset folder holds `manifest.json` and, per shard, three `.npy` files:

    shard_00000.frames.npy    (n, H, W, 3) uint8     (token datasets: .tokens.npy (n, h, w) uint16;
                                                      latent datasets: .latents.npy (n, C, h, w) float16)
    shard_00000.actions.npy   (n, ...) int64         action taken at that frame (frame t -> t+1)
    shard_00000.episodes.npy  (n,) int64             episode id of each row

Episodes are never split across shards, so a window inside one episode is a
contiguous slice of one shard. A shard appears in the manifest only after all
its files are written (each atomically), so a crash loses at most the shard in
progress.

Opening a dataset runs the cheap checks of `ochre.data.integrity` on every file
(headers, sizes, token and action ranges); `verify()` and `verify_once()` add
the sha256 check against the manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ochre.actions import ActionSpec, action_spec_from_dict
from ochre.data.integrity import Layout, Verification, open_checked, verify_dataset
from ochre.errors import OchreError
from ochre.io import save_npy, sha256_file, write_json

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check `path/manifest.json`, with a one-line error naming the problem."""
    path = Path(path)
    file = path / MANIFEST
    if not path.is_dir():
        raise OchreError(f"{path}: dataset folder not found")
    if not file.is_file():
        raise OchreError(f"{path}: no {MANIFEST} here; make a dataset with `python -m preprocess.generate --out {path}`")
    try:
        manifest = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise OchreError(f"{file}: not valid JSON ({err})") from None
    for key in ("format_version", "kind", "shards", "action_schema"):
        if key not in manifest:
            raise OchreError(f"{file}: missing field '{key}'")
    if manifest["format_version"] != FORMAT_VERSION:
        raise OchreError(f"{file}: format_version {manifest['format_version']} is not supported (expected {FORMAT_VERSION})")
    if not isinstance(manifest["shards"], list):
        raise OchreError(f"{file}: 'shards' must be a list; the manifest was edited or damaged, remake the dataset")
    for i, shard in enumerate(manifest["shards"]):
        if problem := _shard_entry_problem(shard, manifest["kind"]):
            raise OchreError(f"{file}: shard entry {i} {problem}; the manifest was edited or damaged, remake the dataset")
    return manifest


def _shard_entry_problem(shard: Any, kind: str) -> str | None:
    if not isinstance(shard, dict):
        return "is not an object"
    for key in ("name", "num_frames", "files"):
        if key not in shard:
            return f"has no '{key}'"
    if not isinstance(shard["files"], dict) or set(shard["files"]) != {kind, "actions", "episodes"}:
        return f"must list the files '{kind}', 'actions' and 'episodes'"
    return None


@dataclass
class DatasetWriter:
    """Append whole episodes; flush a shard once it holds `shard_frames` rows.

    kind: "frames" (rows are (H, W, 3) uint8), "tokens" (rows are (h, w) uint16) or "latents"
    (rows are (C, h, w) float16, the manifest's `latent_shape`).
    """

    root: Path
    kind: str
    meta: dict[str, Any]
    shard_frames: int = 20_000
    _buffer: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    _buffered: int = 0
    _shards: list[dict[str, Any]] = field(default_factory=list)
    _episodes: int = 0
    _complete: bool = False

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def num_frames(self) -> int:
        return sum(s["num_frames"] for s in self._shards) + self._buffered

    def add_episode(self, rows: np.ndarray, actions: np.ndarray) -> None:
        """rows: (T, ...) frames or tokens; actions: (T, ...), action t taken at row t."""
        if len(rows) != len(actions):
            raise ValueError(f"episode has {len(rows)} rows but {len(actions)} actions")
        if len(rows) == 0:
            return
        self._buffer.append((rows, actions))
        self._buffered += len(rows)
        if self._buffered >= self.shard_frames:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        name = f"shard_{len(self._shards):05d}"
        rows = np.concatenate([r for r, _ in self._buffer])
        actions = np.concatenate([a for _, a in self._buffer]).astype(np.int64)
        episodes = np.concatenate([np.full(len(r), self._episodes + i, dtype=np.int64) for i, (r, _) in enumerate(self._buffer)])
        arrays = {self.kind: rows, "actions": actions, "episodes": episodes}
        files = {}
        for key, array in arrays.items():
            files[key] = f"{name}.{key}.npy"
            save_npy(self.root / files[key], array)
        self._shards.append(
            {
                "name": name,
                "num_frames": len(rows),
                "num_episodes": len(self._buffer),
                "files": files,
                "sha256": {k: sha256_file(self.root / f) for k, f in files.items()},
            }
        )
        self._episodes += len(self._buffer)
        self._buffer, self._buffered = [], 0
        self._write_manifest()

    def close(self) -> dict[str, Any]:
        self.flush()
        self._complete = True
        return self._write_manifest()

    def resume(self) -> int:
        """Keep the shards an interrupted writer of this folder finished (checked by sha256); returns how many there are."""
        manifest = read_manifest(self.root)
        verify_dataset(self.root, manifest, reuse_stamp=True).raise_first()
        self._shards = list(manifest["shards"])
        self._episodes = int(manifest["num_episodes"])
        return len(self._shards)

    def _write_manifest(self) -> dict[str, Any]:
        manifest = {
            "format": "ochre-dataset",
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            **self.meta,
            "complete": self._complete,
            "num_frames": sum(s["num_frames"] for s in self._shards),
            "num_episodes": self._episodes,
            "shards": self._shards,
        }
        write_json(self.root / MANIFEST, manifest)
        return manifest


class EpisodeDataset:
    """Read-only view over a dataset folder; arrays are memory-mapped after the cheap checks.

    Trainers call `verify_once()` before the first step: a full sha256 check the
    first time, then only of files changed since.
    """

    def __init__(self, path: str | Path, expect_kind: str | None = None):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self.kind: str = self.manifest["kind"]
        if expect_kind and self.kind != expect_kind:
            hints = {
                "tokens": "run `python -m vqvae.tokenize` first",
                "latents": "run `python -m vqvae.tokenize` with a tokenizer trained with model.quantizer=continuous",
            }
            hint = hints.get(expect_kind, "pass a frame dataset")
            raise OchreError(f"{self.path}: this is a '{self.kind}' dataset but '{expect_kind}' is needed ({hint})")
        self.action_spec: ActionSpec = action_spec_from_dict(self.manifest["action_schema"])
        layout = Layout.from_manifest(self.path, self.manifest)
        self.shards = [{key: open_checked(layout, s, key) for key in s["files"]} for s in self.manifest["shards"]]
        if not self.shards:
            raise OchreError(f"{self.path}: dataset has no complete shards")

    def verify(self, progress: bool = True) -> Verification:
        """Hash every shard file against manifest.json; raise one line naming the first damaged file."""
        report = verify_dataset(self.path, self.manifest, progress)
        report.raise_first()
        return report

    def verify_once(self, progress: bool = True) -> Verification:
        """`verify()`, hashing only the files whose size or mtime changed since they last passed."""
        report = verify_dataset(self.path, self.manifest, progress, reuse_stamp=True)
        report.raise_first()
        return report

    @property
    def num_frames(self) -> int:
        return sum(len(s["actions"]) for s in self.shards)

    def episodes(self) -> list[tuple[int, int, int]]:
        """[(shard index, start row, length)] for every episode, in order."""
        out = []
        for i, shard in enumerate(self.shards):
            ids = np.asarray(shard["episodes"])
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            ends = np.r_[starts[1:], len(ids)]
            out += [(i, int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]
        return out

    def rows(self, shard: int, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows (length, ...), actions (length, ...)) as in-memory arrays."""
        s = self.shards[shard]
        return np.asarray(s[self.kind][start : start + length]), np.asarray(s["actions"][start : start + length])
