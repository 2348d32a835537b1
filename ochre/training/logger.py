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
from ochre.training.common import LoggingConfig
from ochre.training.state import ResumePoint
from ochre.training.wandb_run import finish_wandb, start_wandb


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
    """Writes metrics and samples into a run folder and, when `logging.wandb` is on, to W&B.

    resumed: the training state this run continues; its earlier metrics rows stay, and W&B reopens its run.
    """

    def __init__(self, run_dir: Path, cfg: Any, logging: LoggingConfig, resumed: ResumePoint | None = None):
        resumed = resumed or ResumePoint()
        self.dir = Path(run_dir)
        self.rows = earlier_rows(self.dir / "metrics.csv", resumed.step)
        write_text(self.dir / "resolved_config.yaml", dump_yaml(cfg))
        self._wandb = start_wandb(self.dir, to_dict(cfg), logging, resumed.wandb_id) if logging.wandb != "off" else None
        self._wandb_from = self._wandb.step if self._wandb else 0  # a reopened W&B run keeps the steps it has

    def _to_wandb(self, step: int) -> bool:
        """W&B takes steps in order only: a run resumed from an earlier checkpoint than W&B saw logs from there on."""
        return self._wandb is not None and step >= self._wandb_from

    @property
    def wandb_id(self) -> str:
        """The W&B run's id, kept in the training state so a resumed run reopens it; empty when W&B is off."""
        return self._wandb.id if self._wandb else ""

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
        if self._to_wandb(step):
            self._wandb.log(metrics, step=step)

    def image(self, name: str, step: int, image: np.ndarray) -> Path:
        """image: (H, W, 3) uint8 -> images/<name>_<step>.png; in W&B under images/<name>."""
        path = self.dir / "images" / f"{name}_{step:07d}.png"
        write_png(path, image)
        if self._to_wandb(step):
            import wandb

            self._wandb.log({f"images/{name}": wandb.Image(image)}, step=step)
        return path

    def video(self, name: str, step: int, frames: np.ndarray, fps: float = 15) -> Path:
        """frames: (T, H, W, 3) uint8 -> videos/<name>_<step>.mp4; in W&B under videos/<name>."""
        path = self.dir / "videos" / f"{name}_{step:07d}.mp4"
        write_video(path, frames, fps=fps, scale=2)
        if self._to_wandb(step):
            import wandb

            # From the mp4 just written: wandb.Video on a raw array needs moviepy, which is not a dependency.
            self._wandb.log({f"videos/{name}": wandb.Video(str(path), format="mp4")}, step=step)
        return path

    def close(self) -> None:
        """Finish the W&B run, with the last validation metrics as its results table."""
        if not self._wandb:
            return
        validated = [row for row in self.rows if any(k.startswith("val/") for k in row)]
        if validated and self._to_wandb(int(self.rows[-1]["step"])):
            import wandb

            results = [[k, float(v)] for k, v in validated[-1].items() if k.startswith("val/")]
            self._wandb.log({"results": wandb.Table(columns=["metric", "value"], data=results)}, step=int(self.rows[-1]["step"]))
        finish_wandb(self._wandb)
        self._wandb = None


def earlier_rows(path: Path, start: int) -> list[dict[str, Any]]:
    """The rows of an earlier metrics.csv logged before step `start` (a resumed run logs the rest again)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = [{k: v for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
    return [row for row in rows if int(row["step"]) < start]
