"""Weights & Biases, offline: a run logs scalars, an image and a video without extra dependencies."""

from dataclasses import dataclass, field

import numpy as np

from ochre.training.logger import RunLogger, make_run_dir


@dataclass
class Cfg:
    lr: float = 0.001
    name: str = field(default="wb")


def test_offline_wandb_logs_scalars_an_image_and_the_run_s_own_video(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = make_run_dir(str(tmp_path), "coinrun", "dynamics", "wb")
    logger = RunLogger(run, Cfg(), wandb_mode="offline", project="ochre-test")
    logger.log(0, {"train/loss": 1.5})
    logger.image("strips", 0, np.zeros((16, 16, 3), np.uint8))
    video = logger.video("val_rollout", 0, np.random.default_rng(0).integers(0, 255, (6, 16, 16, 3), dtype=np.uint8))
    logger.close()
    files = list((run / "wandb").glob("offline-run-*/files"))
    assert video.is_file() and len(files) == 1
    media = {p.suffix for p in (files[0] / "media").rglob("*") if p.is_file()}
    assert {".png", ".mp4"} <= media
    assert list((run / "wandb").glob("offline-run-*/run-*.wandb"))  # the scalars' log
