"""Makers of bad inputs for the fault corpus, each built from a good input of the session fixtures.

A maker is `make(goods, tmp) -> Path`: it writes one bad file or folder under `tmp` and
returns its path, which a case names as `{bad}`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ochre.actions import FirstPersonActionSpec
from ochre.io import save_torch, write_png, write_video


@dataclass(frozen=True)
class Goods:
    """The good inputs the bad ones are made from (a real tiny CoinRun dataset and world)."""

    world: Path
    tokenizer: Path
    frames: Path
    tokens: Path
    seed: Path  # frames (4, 64, 64, 3) uint8 and actions (3,)
    seed_batch: Path  # frames (2, 4, 64, 64, 3) and actions (2, 3)
    actions: Path  # (6,) int64


Maker = Callable[[Goods, Path], Path]
FRAMES = np.zeros((4, 64, 64, 3), np.uint8)  # a seed of the tiny world's frame shape


def garbage(name: str, size: int = 4096) -> Maker:
    """Random bytes under a name that promises something else."""
    return lambda goods, tmp: _write(tmp / name, np.random.default_rng(0).bytes(size))


def truncated(good: str, keep: float = 0.5) -> Maker:
    """The first `keep` share of a good file (`good`: a Goods field)."""

    def make(goods: Goods, tmp: Path) -> Path:
        src = getattr(goods, good)
        data = src.read_bytes()
        return _write(tmp / f"truncated_{src.name}", data[: int(len(data) * keep)])

    return make


def text(name: str, content: str) -> Maker:
    return lambda goods, tmp: _write(tmp / name, content.encode())


def json_file(name: str, value: object) -> Maker:
    return text(name, json.dumps(value))


def npz(name: str = "seed.npz", **arrays: np.ndarray) -> Maker:
    def make(goods: Goods, tmp: Path) -> Path:
        np.savez(tmp / name, **arrays)
        return tmp / name

    return make


def npy(name: str, array: np.ndarray) -> Maker:
    def make(goods: Goods, tmp: Path) -> Path:
        np.save(tmp / name, array)
        return tmp / name

    return make


def fifo(name: str = "pipe") -> Maker:
    """A named pipe: opening it for reading blocks until a writer comes, which none does."""

    def make(goods: Goods, tmp: Path) -> Path:
        os.mkfifo(tmp / name)
        return tmp / name

    return make


def folder(name: str, files: dict[str, bytes] | None = None) -> Maker:
    def make(goods: Goods, tmp: Path) -> Path:
        (tmp / name).mkdir()
        for file, data in (files or {}).items():
            (tmp / name / file).write_bytes(data)
        return tmp / name

    return make


def png_folder(*shapes: tuple[int, int]) -> Maker:
    """A folder of PNG seed frames of the given (H, W) sizes."""

    def make(goods: Goods, tmp: Path) -> Path:
        for i, (h, w) in enumerate(shapes):
            write_png(tmp / "pngs" / f"{i:03d}.png", np.zeros((h, w, 3), np.uint8))
        return tmp / "pngs"

    return make


def dataset(good: str, damage: Callable[[Path], None]) -> Maker:
    """A copy of a good dataset (`frames` or `tokens`), then damaged."""

    def make(goods: Goods, tmp: Path) -> Path:
        root = Path(
            shutil.copytree(getattr(goods, good), tmp / f"damaged_{good}", ignore=shutil.ignore_patterns("verified.json"))
        )
        damage(root)
        return root

    return make


def checkpoint(good: str, edit: Callable[[dict], None]) -> Maker:
    """A copy of a good checkpoint (`world` or `tokenizer`) with its payload edited."""

    def make(goods: Goods, tmp: Path) -> Path:
        payload = torch.load(getattr(goods, good), weights_only=True)
        edit(payload)
        save_torch(tmp / f"damaged_{good}.pt", payload)
        return tmp / f"damaged_{good}.pt"

    return make


def manifest(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    """A dataset damage: manifest.json replaced by `edit(manifest)` (a dict edited in place when it returns None)."""

    def damage(root: Path) -> None:
        data = json.loads((root / "manifest.json").read_text())
        result = edit(data)
        (root / "manifest.json").write_text(json.dumps(data if result is None else result))

    return damage


def minerl(**damage: object) -> Maker:
    """A MineRL source folder with one recording, damaged as `minerl_recording` says."""

    def make(goods: Goods, tmp: Path) -> Path:
        minerl_recording(tmp / "minerl", "rec", **damage)
        return tmp / "minerl"

    return make


def minerl_recording(root: Path, name: str, **damage: object) -> Path:
    """One MineRL recording (20 steps, 15 frames at 15 fps) in root/name; `damage` replaces its parts: video (bytes;
    empty: cut in half), metadata (dict or bytes), camera (array), forward (array), rendered (None: left out)."""
    rec = root / name
    rec.mkdir(parents=True)
    steps, frames = 20, 15
    write_video(rec / "recording.mp4", np.full((frames, 48, 64, 3), 90, np.uint8), fps=15)
    if "video" in damage:
        data = (rec / "recording.mp4").read_bytes()
        (rec / "recording.mp4").write_bytes(damage["video"] or data[: len(data) // 2])
    meta = damage.get("metadata", {"duration_ms": frames / 15 * 1000, "duration_steps": steps})
    (rec / "metadata.json").write_bytes(meta if isinstance(meta, bytes) else json.dumps(meta).encode())
    arrays = {"action$camera": damage.get("camera", np.zeros((steps, 2)))}
    arrays |= {f"action${b}": np.zeros(steps, np.int64) for b in FirstPersonActionSpec().buttons}
    arrays["action$forward"] = damage.get("forward", arrays["action$forward"])
    if damage.get("rendered", True) is not None:
        np.savez(rec / "rendered.npz", **arrays)
    return rec


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
