"""preprocess.inspect: the numbers it reports on datasets whose actions we choose, and the files it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ochre.actions import PROCGEN_ACTIONS, FirstPersonActionSpec
from ochre.data.inspect import cooccurrence, dataset_stats, sample_grid, top_pairs
from ochre.data.store import DatasetWriter, EpisodeDataset
from preprocess.inspect import main

FP = FirstPersonActionSpec()
PLOTS = ("actions.png", "cooccurrence.png", "episode_lengths.png")


def write_dataset(root: Path, spec, episodes: list[np.ndarray], kind: str = "frames", shard_frames: int = 20_000) -> Path:
    """One episode per action array; frames are random 32x32 RGB, tokens random (4, 4) grids."""
    rng = np.random.default_rng(0)
    meta = {"world": "testworld", "action_schema": spec.to_dict(), "frame_shape": [32, 32, 3], "fps": 10}
    writer = DatasetWriter(root, kind, meta, shard_frames=shard_frames)
    for actions in episodes:
        if kind == "frames":
            rows = rng.integers(0, 256, (len(actions), 32, 32, 3), dtype=np.uint8)
        else:
            rows = rng.integers(0, 512, (len(actions), 4, 4), dtype=np.uint16)
        writer.add_episode(rows, actions)
    writer.close()
    return root


def procgen_episodes() -> list[np.ndarray]:
    """40 steps: 10 x left+down (0), 10 x right (7), 10 x noop (4), 10 x d (9), split 30 + 10 frames."""
    ids = np.repeat([0, 7, 4, 9], 10)
    return [ids[:30], ids[30:]]


def first_person(steps: int, camera: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Encoded first-person actions: yaw one bin right of still where `camera`, forward held where `forward`."""
    actions = FP.neutral(steps)
    actions[camera, FP.index("yaw")] = FP.still_bin + 1
    actions[forward, FP.index("forward")] = 1
    return actions


@pytest.fixture(scope="module")
def discrete_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("inspect") / "procgen", PROCGEN_ACTIONS, procgen_episodes(), shard_frames=30)


def test_cooccurrence_by_hand():
    active = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=bool)
    # a: 3 of 4 steps, b: 3 of 4, c: never; a and b together on 2 steps
    expected = np.array([[0.75, 2 / 3, 0.0], [2 / 3, 0.75, 0.0], [np.nan, np.nan, 0.0]])
    np.testing.assert_allclose(cooccurrence(active), expected, equal_nan=True)
    assert top_pairs(active, ("a", "b", "c")) == (("a", "b", 0.5),)


def test_discrete_stats(discrete_dir):
    stats = dataset_stats(EpisodeDataset(discrete_dir))
    assert (stats.shards, stats.frames, len(stats.episodes.lengths)) == (2, 40, 2)
    assert stats.episodes.to_dict() == {"min": 10, "median": 20.0, "mean": 20.0, "max": 30, "short": 1, "short_below": 16}
    freq = dict(zip(stats.action_labels, stats.action_frequency, strict=True))
    assert freq["left+down"] == freq["right"] == freq["noop"] == freq["d"] == 0.25 and freq["up"] == 0
    control = dict(zip(stats.controls, stats.control_frequency, strict=True))
    assert control == {**dict.fromkeys(stats.controls, 0.0), "left": 0.25, "down": 0.25, "right": 0.25, "d": 0.25}
    assert stats.no_control == 0.25
    assert stats.top_pairs == (("left", "down", 0.25),)
    left, down, right = (stats.controls.index(c) for c in ("left", "down", "right"))
    assert stats.cooccurrence[left, down] == stats.cooccurrence[down, left] == 1.0
    assert stats.cooccurrence[left, right] == 0.0 and stats.cooccurrence[left, left] == 0.25
    assert stats.camera_movement is None


@pytest.mark.parametrize(
    ("coupled", "expected"),
    [(True, 1.0), (False, 0.0)],
    ids=["camera-with-forward", "camera-isolated"],
)
def test_camera_movement_cooccurrence(tmp_path, coupled, expected):
    steps = np.arange(24)
    camera = steps % 3 == 0  # 8 camera steps
    forward = camera | (steps % 3 == 1) if coupled else steps % 3 == 1  # 16 or 8 forward steps
    data = EpisodeDataset(write_dataset(tmp_path / "fp", FP, [first_person(24, camera, forward)]))
    stats = dataset_stats(data)
    cm = stats.camera_movement
    assert (cm.camera_steps, cm.movement_steps) == (8, 16 if coupled else 8)
    assert cm.movement_given_camera == expected
    assert cm.camera_given_movement == (0.5 if coupled else 0.0)
    yaw, fwd = FP.index("yaw"), FP.index("forward")
    assert stats.cooccurrence[yaw, fwd] == expected
    assert stats.yaw_frequency[FP.still_bin + 1] == pytest.approx(1 / 3) and stats.pitch_frequency[FP.still_bin] == 1.0
    assert stats.no_control == pytest.approx(1 / 3)  # steps % 3 == 2 press nothing


def test_camera_movement_undefined_without_camera(tmp_path):
    data = EpisodeDataset(write_dataset(tmp_path / "fp", FP, [first_person(20, np.zeros(20, bool), np.ones(20, bool))]))
    cm = dataset_stats(data).camera_movement
    assert cm.movement_given_camera is None and cm.camera_given_movement == 0.0


def test_sample_grid_shows_frames_across_episodes(discrete_dir):
    data = EpisodeDataset(discrete_dir)
    grid, picked = sample_grid(data, samples=5, per_episode=4, seed=0)
    assert [p["episode"] for p in picked] == [0, 1]  # only two episodes exist
    assert picked[0]["frames"] == [0, 10, 19, 29] and picked[1]["frames"] == [0, 3, 6, 9]
    assert grid.shape == (2 * 34 + 2, 4 * 34 + 2, 3)
    first_episode_last_frame = np.asarray(data.shards[0]["frames"][29])
    np.testing.assert_array_equal(grid[2:34, 2 + 3 * 34 : 34 + 3 * 34], first_episode_last_frame)


def test_cli_discrete_writes_everything(discrete_dir, capsys):
    main([str(discrete_dir), "--samples", "4"])
    text = capsys.readouterr().out
    for fragment in ("world testworld", "kind frames", "'procgen' (discrete)", "frame shape 32x32x3", "fps 10",
                     "2 shards, 40 frames, 2 episodes", "min 10, median 20, mean 20.0, max 30; 1 shorter than 16",
                     "no control active: 25.0%", "left+down", "samples.png"):  # fmt: skip
        assert fragment in text, fragment
    out = discrete_dir / "inspect"
    for name in (*PLOTS, "samples.png", "stats.json"):
        assert (out / name).stat().st_size > 0, name
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["frames"], stats["episodes"], stats["shards"]) == (40, 2, 2)
    assert stats["no_control"] == 0.25 and stats["top_pairs"] == [{"controls": ["left", "down"], "frequency": 0.25}]
    assert stats["action_frequency"][4] == {"id": 4, "label": "noop", "frequency": 0.25}
    assert len(stats["samples"]) == 2


def test_cli_first_person_reports_camera_movement(tmp_path, capsys):
    steps = np.arange(32)
    root = write_dataset(tmp_path / "fp", FP, [first_person(32, steps % 2 == 0, steps % 2 == 0)])
    main([str(root), "--out", str(tmp_path / "plots"), "--samples", "1", "--seed", "3"])
    text = capsys.readouterr().out
    assert "camera+movement co-occurrence: 100.0% of 16 camera steps" in text
    assert "yaw" in text and "pitch" in text
    stats = json.loads((tmp_path / "plots" / "stats.json").read_text())
    assert stats["camera_movement"]["movement_given_camera"] == 1.0
    assert stats["camera_bins"]["still_bin"] == FP.still_bin
    assert (tmp_path / "plots" / "samples.png").stat().st_size > 0


def test_cli_tokens_skip_samples(tmp_path, capsys):
    root = write_dataset(tmp_path / "tok", PROCGEN_ACTIONS, procgen_episodes(), kind="tokens")
    main([str(root), "--out", str(tmp_path / "plots")])
    text = capsys.readouterr().out
    assert "kind tokens" in text and "token grid 4x4 (frames 32x32x3)" in text and "no samples.png" in text
    for name in (*PLOTS, "stats.json"):
        assert (tmp_path / "plots" / name).stat().st_size > 0, name
    assert not (tmp_path / "plots" / "samples.png").exists()
    assert "samples" not in json.loads((tmp_path / "plots" / "stats.json").read_text())


def test_cli_refuses_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no manifest.json here" in capsys.readouterr().err


def test_hold_lengths_count_runs_within_episodes_and_view_travel_sums_the_scroll(tmp_path):
    from ochre.data.play_stats import hold_lengths, view_travel

    data = EpisodeDataset(write_dataset(tmp_path / "d", PROCGEN_ACTIONS, procgen_episodes()))
    holds = hold_lengths(data).to_dict()
    assert holds["runs"] == 4 and holds["median"] == 10 and holds["steps_in_long_holds"] == 1.0  # runs of 10, 10, 10 and 10
    scene = np.kron(np.random.default_rng(1).integers(0, 256, (8, 40, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    frames = np.stack([scene[:, 96 - 2 * t : 128 - 2 * t] for t in range(12)])  # the content moves 2 px right a step
    meta = {"world": "testworld", "action_schema": PROCGEN_ACTIONS.to_dict(), "frame_shape": [32, 32, 3], "fps": 10}
    writer = DatasetWriter(tmp_path / "scroll", "frames", meta)
    writer.add_episode(frames, np.full(12, 7))
    writer.close()
    travel = view_travel(EpisodeDataset(tmp_path / "scroll"), episodes=1).to_dict()
    assert travel["median_net_dx_px"] == pytest.approx(22, abs=1.5) and travel["median_path_px"] == pytest.approx(22, abs=1.5)
