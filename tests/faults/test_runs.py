"""Runs are never overwritten: a used run.name is refused, a resumed run keeps its earlier metrics rows,
and a finished run resumed says so and leaves a world behind."""

from __future__ import annotations

import csv

import torch

from tests.conftest import run_module


def _dynamics(tiny_world, runs, *overrides: str, check: bool = True):
    args = ["--config", "configs/tiny/dynamics.yaml", f"data.path={tiny_world['tokens']}", f"run.dir={runs}", "data.val_every=4"]
    return run_module("train.dynamics", *args, *overrides, check=check)


def _steps(path) -> list[int]:
    with open(path, newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def test_a_used_run_name_is_refused_and_nothing_in_it_changes(tiny_world, tmp_path):
    _dynamics(tiny_world, tmp_path, "run.name=first", "train.max_steps=2", "train.checkpoint_every=2")
    world = tmp_path / "first" / "checkpoints" / "world.pt"
    before = world.read_bytes(), (tmp_path / "first" / "metrics.csv").read_text()
    again = _dynamics(tiny_world, tmp_path, "run.name=first", "train.max_steps=2", check=False)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    last = again.stderr.strip().splitlines()[-1]
    assert "first: already holds a run (metrics.csv, checkpoints/train_state.pt, checkpoints/world.pt)" in last
    assert "train.resume=" in last
    assert (world.read_bytes(), (tmp_path / "first" / "metrics.csv").read_text()) == before


def test_resuming_in_place_keeps_every_earlier_metrics_row(tiny_world, tmp_path):
    _dynamics(tiny_world, tmp_path, "run.name=long", "train.max_steps=4", "train.checkpoint_every=2")
    full = _steps(tmp_path / "long" / "metrics.csv")
    state = tmp_path / "long" / "checkpoints" / "train_state.pt"
    _dynamics(tiny_world, tmp_path, "run.name=long", "train.max_steps=6", "train.checkpoint_every=2", f"train.resume={state}")
    steps = _steps(tmp_path / "long" / "metrics.csv")
    assert steps[: len(full)] == full and steps[-1] == 5 and steps == sorted(steps)  # earlier rows kept, then on from 4


def test_a_finished_run_resumed_says_so_and_leaves_its_world(tiny_world, tmp_path):
    _dynamics(tiny_world, tmp_path, "run.name=done", "train.max_steps=2", "train.checkpoint_every=2")
    state = tmp_path / "done" / "checkpoints" / "train_state.pt"
    again = _dynamics(tiny_world, tmp_path, "run.name=copy", "train.max_steps=2", f"train.resume={state}")
    assert "the run is finished (step 2 of train.max_steps=2)" in again.stdout
    world = torch.load(tmp_path / "copy" / "checkpoints" / "world.pt", weights_only=True)
    assert world["step"] == 2
