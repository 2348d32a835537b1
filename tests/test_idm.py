"""Inverse-dynamics model: it learns visible actions, round-trips through its checkpoint, scores a world."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ochre.actions import DiscreteActionSpec
from ochre.data.store import DatasetWriter, EpisodeDataset
from ochre.errors import OchreError
from ochre.idm import accuracy, action_following, load_idm, save_idm, train_idm
from ochre.io import save_torch
from ochre.runtime import WorldModel
from tests.conftest import run_module

SPEC = DiscreteActionSpec("block", ("noop", "left", "right", "up", "down"))
MOVES = {0: (0, 0), 1: (0, -3), 2: (0, 3), 3: (-3, 0), 4: (3, 0)}  # (dy, dx) per action id
SIZE, BLOCK = 32, 6
CHANNELS = (16, 32, 32)


def block_episode(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    """A white block on a noisy dark background; action t moves it (with wrap-around) into frame t+1."""
    actions = rng.integers(0, SPEC.n, size=length)
    y, x = rng.integers(0, SIZE, size=2)
    frames = rng.integers(0, 40, size=(length, SIZE, SIZE, 3)).astype(np.uint8)
    for t in range(length):
        rows, cols = (np.arange(BLOCK) + y) % SIZE, (np.arange(BLOCK) + x) % SIZE
        frames[t][np.ix_(rows, cols)] = 255
        dy, dx = MOVES[int(actions[t])]
        y, x = (y + dy) % SIZE, (x + dx) % SIZE
    return frames, actions


@pytest.fixture(scope="module")
def block_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("idm") / "blocks"
    writer = DatasetWriter(root, "frames", {"world": "blocks", "action_schema": SPEC.to_dict(), "frame_shape": [SIZE, SIZE, 3]})
    rng = np.random.default_rng(0)
    for _ in range(30):
        writer.add_episode(*block_episode(rng, 24))
    writer.close()
    return root


@pytest.fixture(scope="module")
def trained(block_data):
    data = EpisodeDataset(block_data)
    return train_idm(data, SPEC, steps=150, batch=32, lr=3e-3, val_every=5, device="cpu", channels=CHANNELS, progress=False)


def test_idm_learns_visible_actions(trained):
    model, report = trained
    assert report.steps == 150 and report.val_pairs > 0
    assert report.mean_val_accuracy > 0.9, report


def test_save_load_round_trip(trained, tmp_path):
    model, report = trained
    path = tmp_path / "idm.pt"
    save_idm(path, model, SPEC, report.val_accuracy)
    loaded, spec = load_idm(path)
    assert spec == SPEC and loaded.cfg == model.cfg
    rng = np.random.default_rng(5)
    frames, actions = block_episode(rng, 16)
    args = (frames[:-1], frames[1:], actions[:-1])
    assert accuracy(loaded, *args) == accuracy(model, *args)


def test_load_rejects_other_files(tmp_path):
    other = tmp_path / "world.pt"
    save_torch(other, {"format": "ochre-world", "format_version": 1})
    with pytest.raises(OchreError, match=r"world\.pt: not an IDM checkpoint"):
        load_idm(other)
    with pytest.raises(OchreError, match="missing.pt"):
        load_idm(tmp_path / "missing.pt")


def test_action_following_on_tiny_world(tiny_world, tmp_path):
    wm = WorldModel.load(tiny_world["world"], device="cpu")
    data = EpisodeDataset(tiny_world["frames"])
    model, _ = train_idm(data, data.action_spec, steps=5, batch=8, val_every=4, channels=(8, 8), progress=False)
    result = action_following(model, wm, data, windows=6, context=2, horizon=4)
    assert result["windows"] == 6 and result["pairs"] == 6 * 3
    for key in ("real_accuracy", "generated_accuracy", "chance"):
        assert 0.0 <= result[key] <= 1.0
    assert result["chance"] == pytest.approx(1 / 15)
    assert len(result["generated_by_step"]) == 3


def test_action_following_rejects_frame_size_mismatch(trained, tiny_world):
    wm = WorldModel.load(tiny_world["world"], device="cpu")
    with pytest.raises(OchreError, match="frames but the world makes"):
        action_following(trained[0], wm, EpisodeDataset(tiny_world["frames"]), windows=2)


def test_cli_trains_and_scores(tiny_world, tmp_path):
    out = tmp_path / "idm.pt"
    proc = run_module("train.idm", "--data", str(tiny_world["frames"]), "--out", str(out), "--steps", "3", "--batch", "4",
                      "--channels", "8", "8", "--val-every", "4", "--world", str(tiny_world["world"]),
                      "--eval-data", str(tiny_world["frames"]), "--windows", "4", "--context", "2", "--horizon", "3",
                      "--device", "cpu")  # fmt: skip
    assert "generated" in proc.stdout and "chance" in proc.stdout
    _, spec = load_idm(out)
    report = json.loads(out.with_suffix(".action_following.json").read_text())
    assert report["windows"] == 4 and spec.n == 15


def test_cli_errors_are_one_line(tmp_path, block_data, tiny_world):
    proc = run_module("train.idm", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x.pt"), check=False)
    assert proc.returncode == 2 and "dataset folder not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_module("train.idm", "--data", str(block_data), "--out", str(tmp_path / "x.pt"), "--world",
                      str(tiny_world["world"]), "--eval-data", str(tiny_world["frames"]), check=False)  # fmt: skip
    assert proc.returncode == 2 and "but the world" in proc.stderr and "Traceback" not in proc.stderr
