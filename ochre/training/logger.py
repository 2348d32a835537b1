"""Run folders: resolved config, metrics.csv, images/, videos/, plots/, checkpoints/; optional W&B.

runs/<timestamp>_<world>_<stage>/   (or runs/<run.name>/)

A run never writes into another run's folder: a named folder that already holds a run
is refused unless this run resumes the training state saved in it, and then its
metrics.csv keeps every earlier row and goes on from the resumed step.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from ochre.config import dump_yaml, to_dict
from ochre.errors import OchreError
from ochre.io import write_png, write_text, write_video


def make_run_dir(parent: str, world: str, stage: str, name: str = "", resume: str = "") -> Path:
    """The run's folder, made; `resume`: the train_state.pt this run continues (it may live in that folder)."""
    if name:
        run = Path(parent) / name
        held = holds_run(run)
        if held and not (resume and Path(resume).resolve().is_relative_to(run.resolve())):
            raise OchreError(
                f"{run}: already holds a run ({', '.join(held)}); choose another run.name, "
                f"or continue it with train.resume={run / 'checkpoints' / 'train_state.pt'}"
            )
    else:
        stem = Path(parent) / f"{time.strftime('%Y%m%d_%H%M%S')}_{world}_{stage}"
        run = next(p for i in range(1, 10_000) if not (p := stem.with_name(f"{stem.name}_{i}" if i > 1 else stem.name)).exists())
    for sub in ("images", "videos", "plots", "checkpoints"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    return run


def holds_run(folder: Path) -> list[str]:
    """What in `folder` shows an earlier run wrote there: its metrics and checkpoints (empty when nothing)."""
    found = [folder / "metrics.csv", *sorted((folder / "checkpoints").glob("*.pt"))]
    return [str(p.relative_to(folder)) for p in found if p.is_file()]


class RunLogger:
    """Writes metrics and samples into a run folder and, when enabled, to W&B."""

    def __init__(self, run_dir: Path, cfg: Any, wandb_mode: str = "off", project: str = "ochre"):
        self.dir = Path(run_dir)
        self.rows: list[dict[str, Any]] = []
        write_text(self.dir / "resolved_config.yaml", dump_yaml(cfg))
        self._wandb = None
        if wandb_mode != "off":
            import wandb

            self._wandb = wandb.init(project=project, dir=str(self.dir), name=self.dir.name, mode=wandb_mode, config=to_dict(cfg))

    def resume(self, start: int) -> None:
        """A resumed run goes on from step `start`: keep the folder's earlier metrics rows before it."""
        self.rows = earlier_rows(self.dir / "metrics.csv", start)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.rows.append({"step": step, **metrics})
        keys: list[str] = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.dir / "metrics.csv", buf.getvalue())
        if self._wandb:
            self._wandb.log(metrics, step=step)

    def image(self, name: str, step: int, image: np.ndarray) -> Path:
        path = self.dir / "images" / f"{name}_{step:07d}.png"
        write_png(path, image)
        if self._wandb:
            import wandb

            self._wandb.log({name: wandb.Image(image)}, step=step)
        return path

    def video(self, name: str, step: int, frames: np.ndarray, fps: float = 15) -> Path:
        path = self.dir / "videos" / f"{name}_{step:07d}.mp4"
        write_video(path, frames, fps=fps, scale=2)
        if self._wandb:
            import wandb

            # From the mp4 just written: wandb.Video on a raw array needs moviepy, which is not a dependency.
            self._wandb.log({name: wandb.Video(str(path), format="mp4")}, step=step)
        return path

    def close(self) -> None:
        if self._wandb:
            self._wandb.finish()


def earlier_rows(path: Path, start: int) -> list[dict[str, Any]]:
    """The rows of an earlier metrics.csv logged before step `start` (a resumed run logs the rest again)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = [{k: v for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
    return [row for row in rows if int(row["step"]) < start]


def image_grid(rows: list[np.ndarray], pad: int = 2, labels: list[str] | None = None) -> np.ndarray:
    """rows: list of (N, H, W, 3) uint8 -> one image with each list entry as a row, each row's label (if given) at its left."""
    h, w = rows[0].shape[1:3]
    n = max(len(r) for r in rows)
    margin = 6 * max(map(len, labels)) + 2 * pad if labels else 0  # the default bitmap font is 6 px per character
    out = np.full((len(rows) * (h + pad) + pad, margin + n * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = pad + i * (h + pad), margin + pad + j * (w + pad)
            out[y : y + h, x : x + w] = img
    if labels:
        from PIL import Image, ImageDraw

        image = Image.fromarray(out)
        draw = ImageDraw.Draw(image)
        for i, text in enumerate(labels):
            draw.text((pad, pad + i * (h + pad) + h // 2 - 5), text, fill=(0, 0, 0))
        out = np.asarray(image).copy()
    return out
