"""Writing what was played: replayable recordings and screenshots.

A recording folder holds

    seed.npz       frames (K, H, W, 3) uint8 + actions (K-1, ...): what the session was reset with
    actions.npy    (N, ...) int64, every action since that reset, in the world's encoded form
    video.mp4      the frames that were shown
    session.json   checkpoint, sampling, steps, and the command that replays it:

    python inference.py --checkpoint C --seed-frames DIR/seed.npz --actions DIR/actions.npy --out DIR/replay

With greedy sampling the replay reproduces the shown frames exactly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ochre.io import atomic_path, save_npy, write_json, write_png, write_video


def new_path(root: Path, prefix: str = "", suffix: str = "") -> Path:
    """A fresh `root/<prefix><timestamp><suffix>` (numbered if that name is taken)."""
    stamp = time.strftime("%Y%m%d_%H%M%S")
    path, n = root / f"{prefix}{stamp}{suffix}", 1
    while path.exists():
        path, n = root / f"{prefix}{stamp}_{n}{suffix}", n + 1
    return path


def replay_command(checkpoint: str, out: Path) -> str:
    return f"python inference.py --checkpoint {checkpoint} --seed-frames {out}/seed.npz --actions {out}/actions.npy --out {out}/replay"


def write_replay(out: Path, seed_frames: np.ndarray, seed_actions: np.ndarray, actions: np.ndarray) -> None:
    """seed.npz and actions.npy, the two inputs `inference.py` replays a session from."""
    with atomic_path(out / "seed.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, frames=seed_frames, actions=seed_actions)
    save_npy(out / "actions.npy", actions)


def write_recording(
    out: Path, log: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], fps: float, info: dict[str, Any]
) -> None:
    """A session log (seed frames, seed actions, actions, frames) -> a recording folder."""
    seed_frames, seed_actions, actions, frames = log
    write_replay(out, seed_frames, seed_actions, actions)
    write_video(out / "video.mp4", frames, fps=fps, scale=4)
    checkpoint = str(info.get("checkpoint", "C"))
    write_json(out / "session.json", {**info, "steps": len(actions), "replay": replay_command(checkpoint, out)})


def write_screenshot(root: Path, image: np.ndarray) -> Path:
    """(H, W, 3) uint8 -> root/<timestamp>.png."""
    path = new_path(root, suffix=".png")
    write_png(path, image)
    return path
