"""Atomic file writes and video/image I/O (PyAV for mp4, Pillow for gif/png).

Every writer here writes to `<name>.tmp` in the same folder and renames, so a
crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ochre.errors import OchreError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def save_torch(path: str | Path, obj: Any) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def load_torch(path: str | Path, what: str = "checkpoint") -> Any:
    """Load a weights-only torch file, with a one-line error for a bad path or file."""
    path = Path(path)
    if not path.is_file():
        raise OchreError(f"{path}: {what} not found (check the path)")
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt/non-torch files
        raise OchreError(f"{path}: not a readable {what} ({type(err).__name__}: {str(err)[:120]})") from None


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_video(path: str | Path, frames: np.ndarray, fps: float = 15, scale: int = 1) -> None:
    """Write (T, H, W, 3) uint8 frames as H.264 mp4 (or gif if the suffix says so)."""
    frames = np.asarray(frames)
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    if Path(path).suffix == ".gif":
        write_gif(path, frames, fps)
        return
    import av

    # H.264 with yuv420p needs even sizes.
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for frame in frames:
            packet = stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgb24"))
            container.mux(packet)
        container.mux(stream.encode())


def write_gif(path: str | Path, frames: np.ndarray, fps: float = 15) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in np.asarray(frames)]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


def write_png(path: str | Path, image: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image)).save(tmp, format="PNG")


def read_video(path: str | Path) -> np.ndarray:
    """Read a video file into (T, H, W, 3) uint8."""
    import av

    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except Exception as err:
        raise OchreError(f"{path}: cannot decode video ({type(err).__name__}: {err})") from None
    if not frames:
        raise OchreError(f"{path}: video has no frames")
    return np.stack(frames)


def read_png_folder(path: str | Path) -> np.ndarray:
    """Read a folder of PNGs (sorted by name) into (T, H, W, 3) uint8."""
    from PIL import Image

    files = sorted(Path(path).glob("*.png"))
    if not files:
        raise OchreError(f"{path}: folder has no .png files")
    frames = []
    for f in files:
        try:
            frames.append(np.asarray(Image.open(f).convert("RGB")))
        except (OSError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
            raise OchreError(f"{f}: not a readable PNG ({type(err).__name__}); replace or remove it") from None
    if len({f.shape for f in frames}) != 1:
        raise OchreError(f"{path}: PNG files differ in size")
    return np.stack(frames)


@dataclass(frozen=True)
class VideoInfo:
    """What a video container says about its first video stream."""

    frames: int  # counted from the demuxed packets, not trusted from the header
    fps: float  # the stream's average frame rate

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def video_info(path: str | Path) -> VideoInfo:
    """Probe a video without decoding it; raise OchreError naming `path` if it cannot be read.

    The frame count comes from demuxing every packet (no decoding), not from the
    header, so it counts what the file really holds; a decoder can check it got as many.
    """
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            frames = sum(1 for packet in container.demux(stream) if packet.size)
    except Exception as err:  # PyAV raises many types for missing, truncated or non-video files
        raise OchreError(f"{path}: cannot read video ({_av_problem(err)})") from None
    if not frames:
        raise OchreError(f"{path}: video has no frames")
    if not rate:
        raise OchreError(f"{path}: video stream has no frame rate")
    return VideoInfo(frames, float(rate))


def iter_video(path: str | Path) -> Iterator[np.ndarray]:
    """Yield a video's frames one at a time as (H, W, 3) uint8, so a long video never sits in memory."""
    import av

    try:
        with av.open(str(path)) as container:
            container.streams.video[0].thread_type = "AUTO"
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except Exception as err:  # PyAV raises many types for corrupt data
        raise OchreError(f"{path}: cannot decode video ({_av_problem(err)})") from None


def _av_problem(err: Exception) -> str:
    """A PyAV/OS error without the file name it repeats (callers name the file already)."""
    return f"{type(err).__name__}: {getattr(err, 'strerror', None) or err}"
