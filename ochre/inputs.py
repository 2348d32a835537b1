"""Reading seed frames and action scripts for `inference.py` and the app.

Seed frames: .npz (`frames` (K,H,W,3) or (B,K,H,W,3) uint8, optional `actions`),
.mp4 (all frames are the seed), or a folder of PNGs (sorted by name).
Actions: .npy (N,) / (B,N); .json (a list, or a list of lists); .csv (one action
per row; for discrete worlds several columns = a batch, one column per sequence; for
factored worlds such as first person, one step per row with one column per action
component, e.g. `yaw_bin,pitch_bin,forward,...`, and a single sequence).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ochre.errors import OchreError
from ochre.io import read_png_folder, read_video


def load_seed(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """-> (frames (K,H,W,3) or (B,K,H,W,3) uint8, actions (K-1,) / (B,K-1) or None)."""
    path = Path(path)
    if not path.exists():
        raise OchreError(f"{path}: seed frames not found")
    if path.is_dir():
        return read_png_folder(path), None
    if path.suffix == ".npz":
        try:
            data = np.load(path)
        except Exception as err:
            raise OchreError(f"{path}: not a readable .npz ({err})") from None
        if "frames" not in data:
            raise OchreError(f"{path}: .npz has no 'frames' array (found: {', '.join(data.files) or 'nothing'})")
        frames = data["frames"]
        if frames.dtype != np.uint8:
            raise OchreError(f"{path}: 'frames' must be uint8, got {frames.dtype}")
        if frames.ndim not in (4, 5) or frames.shape[-1] != 3:
            raise OchreError(f"{path}: 'frames' must be (K,H,W,3) or (B,K,H,W,3), got shape {frames.shape}")
        return frames, data.get("actions")
    if path.suffix in (".mp4", ".avi", ".mkv", ".webm", ".gif"):
        return read_video(path), None
    raise OchreError(f"{path}: unsupported seed file type '{path.suffix}' (use .npz, .mp4 or a folder of PNGs)")


def load_actions(path: str | Path, components: int = 0) -> np.ndarray:
    """-> actions (N,) or (B, N) for discrete worlds; (N, C) or (B, N, C) when one action has `components` > 0 parts."""
    path = Path(path)
    if not path.is_file():
        raise OchreError(f"{path}: actions file not found")
    try:
        if path.suffix == ".npy":
            return np.load(path)
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                if "actions" not in data:
                    raise OchreError(f"{path}: JSON object has no 'actions' list")
                data = data["actions"]
            return np.asarray(data)
        if path.suffix == ".csv":
            rows = [r for r in csv.reader(path.read_text().splitlines()) if r and not r[0].startswith("#")]
            if rows and not _is_number(rows[0][0]):
                rows = rows[1:]  # header
            arr = np.asarray([[float(v) for v in r] for r in rows])
            if components:
                if arr.ndim != 2 or arr.shape[1] != components:
                    raise OchreError(
                        f"{path}: each row must hold the {components} components of one action, got {arr.shape[-1]} columns"
                    )
                return arr
            return arr[:, 0] if arr.shape[1] == 1 else arr.T
    except OchreError:
        raise
    except Exception as err:
        raise OchreError(f"{path}: cannot read actions ({type(err).__name__}: {err})") from None
    raise OchreError(f"{path}: unsupported actions file type '{path.suffix}' (use .npy, .json or .csv)")


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
