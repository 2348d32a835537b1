"""Weights & Biases: offline runs read back from their own files, a resumed run keeps its W&B run, online without a
network fails in one line.

The offline run files (`<run>/wandb/offline-run-*/run-<id>.wandb`) are read with `wandb_records`: the file is a
LevelDB-style log (a 7-byte file header, then 32 KiB blocks of records, each with a 7-byte header: checksum,
length, kind) whose records are `wandb_internal_pb2.Record` protobufs. The installed wandb has no Python reader.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from wandb.proto import wandb_internal_pb2

from ochre.errors import OchreError
from ochre.training.common import LoggingConfig
from ochre.training.logger import RunLogger, make_run_dir
from ochre.training.state import ResumePoint
from tests.conftest import ROOT

BLOCK, HEADER = 32768, 7
FULL, LAST = 1, 4  # record kinds that end a record (FIRST and MIDDLE continue it)


def wandb_records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of one offline .wandb file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pos, pending = [], HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        pending += data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@dataclass
class OfflineRun:
    """What one offline W&B run logged: its id, config keys and history (step -> key -> value)."""

    run_id: str
    config: set[str]
    history: dict[int, dict[str, object]] = field(default_factory=dict)

    def values(self, key: str) -> list[object]:
        return [row[key] for row in self.history.values() if key in row]


def finished_records(folder: Path, timeout: float = 30) -> list[wandb_internal_pb2.Record]:
    """The records of the run in `folder` once its file is complete: W&B's service writes the end of the file
    shortly after `finish()` returns."""
    (path,) = folder.glob("run-*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        records = wandb_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def read_offline_run(folder: Path) -> OfflineRun:
    run = OfflineRun("", set())
    for record in finished_records(folder):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id = record.run.run_id
            run.config |= {item.key for item in record.run.config.update}
        elif kind == "history":
            row: dict[str, object] = {}
            for item in record.history.item:  # a media value comes as one item per field: (key, field) -> value
                *parents, name = list(item.nested_key) or [item.key]
                node = row
                for parent in parents:
                    node = node.setdefault(parent, {})
                node[name] = json.loads(item.value_json)
            run.history.setdefault(int(row["_step"]), {}).update(row)
    return run


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """W&B's settings and cache in the test's folder, its terminal lines off, no mode forced from outside."""
    for var in ("WANDB_MODE", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb_data"))


@dataclass
class Cfg:
    lr: float = 0.001
    name: str = field(default="wb")


def test_an_image_and_a_video_of_one_name_both_reach_wandb(tmp_path, wandb_env):
    run = make_run_dir(str(tmp_path), "coinrun", "dynamics", "wb")
    logger = RunLogger(run, Cfg(), LoggingConfig(wandb="offline", project="ochre-test"))
    logger.log(0, {"train/loss": 1.5})
    logger.image("val_rollout", 0, np.zeros((16, 16, 3), np.uint8))
    logger.video("val_rollout", 0, np.random.default_rng(0).integers(0, 255, (6, 16, 16, 3), dtype=np.uint8))
    logger.log(1, {"train/loss": 1.0, "val/psnr": 20.0})
    logger.close()
    (folder,) = (run / "wandb").glob("offline-run-*")
    logged = read_offline_run(folder)
    assert logged.values("train/loss") == [1.5, 1.0]
    assert [v["_type"] for v in logged.values("images/val_rollout")] == ["image-file"]
    assert [v["_type"] for v in logged.values("videos/val_rollout")] == ["video-file"]
    assert [v["_type"] for v in logged.values("results")] == ["table-file"]  # the last validation metrics
    assert {".png", ".mp4"} <= {p.suffix for p in (folder / "files" / "media").rglob("*") if p.is_file()}


def test_offline_training_logs_samples_and_a_resumed_run_reopens_its_wandb_run(tiny_world, tmp_path, wandb_env):
    """A real tiny dynamics run: scalars, the validation images and video, the config and a results table reach
    W&B; resumed from its training state, it logs into the same W&B run from the resumed step on."""
    from ochre.config import load_config
    from ochre.training.dynamics import train_dynamics
    from ochre.training.dynamics_config import DynamicsTrainConfig

    args = [f"data.path={tiny_world['tokens']}", f"run.dir={tmp_path}", "run.name=wb", "data.val_every=4",
            "logging.wandb=offline", "logging.project=ochre-test"]  # fmt: skip
    train_dynamics(load_config(DynamicsTrainConfig, "configs/tiny/dynamics.yaml", args))
    state = tmp_path / "wb" / "checkpoints" / "train_state.pt"
    more = ["train.max_steps=6", f"train.resume={state}"]
    train_dynamics(load_config(DynamicsTrainConfig, "configs/tiny/dynamics.yaml", args + more))

    first, resumed = (read_offline_run(f) for f in sorted((tmp_path / "wb" / "wandb").glob("offline-run-*")))
    assert first.run_id and resumed.run_id == first.run_id
    assert {"train", "model", "logging"} <= first.config
    assert sorted(first.history) == [0, 2, 3] and sorted(resumed.history) == [4, 5]
    for logged in (first, resumed):
        assert all(np.isfinite(v) for v in logged.values("train/loss"))
        for key, kind in [("images/strips", "image-file"), ("images/action_response", "image-file"),
                          ("images/val_rollout", "image-file"), ("videos/val_rollout", "video-file"),
                          ("results", "table-file")]:  # fmt: skip
            assert kind in [v["_type"] for v in logged.values(key)], key
        assert logged.values("val/rollout_psnr") and logged.values("throughput/frames_per_s")
        assert logged.values("val/play_windows")  # the in-training play check's scores
    (table,) = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*"))[-1].glob("files/media/table/results_*.table.json")
    results = dict(json.loads(table.read_text())["data"])
    assert {"val/loss", "val/rollout_psnr", "val/play_windows"} <= set(results)


def test_resume_point_carries_the_wandb_run_id(tmp_path, wandb_env):
    run = make_run_dir(str(tmp_path), "coinrun", "dynamics", "wb")
    first = RunLogger(run, Cfg(), LoggingConfig(wandb="offline", project="ochre-test"))
    run_id = first.wandb_id
    first.close()
    again = RunLogger(run, Cfg(), LoggingConfig(wandb="offline", project="ochre-test"), ResumePoint(4, run_id))
    assert again.wandb_id == run_id
    again.close()
    assert RunLogger(run, Cfg(), LoggingConfig()).wandb_id == ""  # W&B off


def test_online_without_a_network_fails_in_one_line(tiny_world, tmp_path):
    """The real entry point, W&B online, its server unreachable: one error line within the init timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"WANDB_API_KEY": "0" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9", "OMP_NUM_THREADS": "1",
            "WANDB_CONFIG_DIR": str(tmp_path / "wandb_config"), "WANDB_CACHE_DIR": str(tmp_path / "wandb_cache")}  # fmt: skip
    cmd = [sys.executable, "-m", "train.dynamics", "--config", "configs/tiny/dynamics.yaml", f"data.path={tiny_world['tokens']}",
           f"run.dir={tmp_path}", "data.val_every=4", "logging.wandb=online", "logging.wandb_timeout=3"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: logging.wandb=online: W&B did not start ("), lines
    assert "logging.wandb=offline" in lines[0]


def test_online_start_errors_become_one_line(tmp_path, wandb_env, monkeypatch):
    import wandb

    def no_key(**kwargs):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.\nmore detail")

    monkeypatch.setattr(wandb, "init", no_key)
    with pytest.raises(OchreError, match=r"^logging.wandb=online: W&B did not start \(No API key configured[^\n]*$"):
        RunLogger(tmp_path, Cfg(), LoggingConfig(wandb="online"))
