import json

import numpy as np
import pytest
import torch

from ochre.actions import PROCGEN_ACTIONS, FirstPersonActionSpec
from ochre.data.store import DatasetWriter, EpisodeDataset
from ochre.data.windows import WindowSampler, split_episodes
from ochre.errors import OchreError


def write_dataset(path, lengths, shard_frames=10):
    writer = DatasetWriter(
        path, "frames", {"world": "test", "action_schema": PROCGEN_ACTIONS.to_dict(), "frame_shape": [4, 4, 3]}, shard_frames
    )
    for e, n in enumerate(lengths):
        frames = np.full((n, 4, 4, 3), e, np.uint8)
        frames[:, 0, 0, 0] = np.arange(n)  # frame index inside the episode
        writer.add_episode(frames, np.arange(n) % 15)
    return writer.close()


def test_round_trip_and_manifest(tmp_path):
    manifest = write_dataset(tmp_path / "d", [5, 7, 3, 12])
    assert manifest["num_frames"] == 27 and manifest["num_episodes"] == 4
    on_disk = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert on_disk["shards"] == manifest["shards"] and all(s["sha256"] for s in on_disk["shards"])
    data = EpisodeDataset(tmp_path / "d")
    assert [n for _, _, n in data.episodes()] == [5, 7, 3, 12]
    rows, actions = data.rows(*data.episodes()[1][:2], 7)
    assert (rows[:, 1, 1, 0] == 1).all() and list(actions) == list(range(7))


def test_windows_never_cross_episodes(tmp_path):
    write_dataset(tmp_path / "d", [5, 7, 3, 12, 6, 9])
    sampler = WindowSampler(EpisodeDataset(tmp_path / "d"), length=4, split="all")
    batch = sampler.sample(200)
    episode = batch.rows[:, :, 1, 1, 0]
    assert (episode == episode[:, :1]).all()
    index = batch.rows[:, :, 0, 0, 0].long()
    assert (index[:, 1:] - index[:, :-1] == 1).all()
    assert (batch.actions == index % 15).all()


def test_split_is_by_episode():
    episodes = [(0, i * 10, 10) for i in range(20)]
    train, val = split_episodes(episodes, "train", 5), split_episodes(episodes, "val", 5)
    assert len(val) == 4 and not set(train) & set(val) and len(train) + len(val) == 20


def test_missing_manifest_names_folder_and_fix(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(OchreError, match=r"empty: no manifest.json .*preprocess.generate"):
        EpisodeDataset(tmp_path / "empty")


def test_wrong_kind_is_explained(tmp_path):
    write_dataset(tmp_path / "d", [5])
    with pytest.raises(OchreError, match="vqvae.tokenize"):
        EpisodeDataset(tmp_path / "d", expect_kind="tokens")


def test_generated_coinrun_data(frames_dataset):
    data = EpisodeDataset(frames_dataset)
    assert data.manifest["world"] == "coinrun" and data.manifest["fps"] == 15
    assert data.num_frames >= 320
    rows, actions = data.rows(0, 0, 5)
    assert rows.dtype == np.uint8 and rows.shape == (5, 64, 64, 3) and rows.std() > 0
    assert actions.min() >= 0 and actions.max() < 15
    assert max(n for _, _, n in data.episodes()) <= 20


def test_generate_refuses_unknown_game_and_writes_nothing(tmp_path):
    from tests.conftest import run_module

    proc = run_module("preprocess.generate", "--world", "coinrunn", "--steps", "10", "--out", str(tmp_path / "d"), check=False)
    assert proc.returncode == 2 and "unknown world 'coinrunn'" in proc.stderr
    assert not (tmp_path / "d").exists()


def test_generate_refuses_to_overwrite(frames_dataset, tmp_path):
    from tests.conftest import run_module

    proc = run_module("preprocess.generate", "--frames", "10", "--out", str(frames_dataset), check=False)
    assert proc.returncode == 2 and "other settings (differs in: env, frames" in proc.stderr
    write_dataset(tmp_path / "d", [5])
    proc = run_module("preprocess.generate", "--frames", "10", "--out", str(tmp_path / "d"), check=False)
    assert proc.returncode == 2 and "already exists" in proc.stderr


def test_procgen_env_interface():
    from ochre.envs.procgen import ProcgenEnv, ProcgenSettings

    env = ProcgenEnv(ProcgenSettings(num_levels=10), seed=0)
    first = env.reset()
    frame, reward, done = env.step(7)
    assert first.shape == frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert isinstance(reward, float) and isinstance(done, bool)


def test_focus_draws_its_share_of_every_batch_from_the_pool(tmp_path):
    write_dataset(tmp_path / "d", [5, 7, 3, 12, 6, 9])
    data = EpisodeDataset(tmp_path / "d")
    plain, focused = WindowSampler(data, 4, split="all", seed=3), WindowSampler(data, 4, split="all", seed=3)
    focused.focus(np.array([0]), 0.0)  # share 0 leaves the draws as they were
    assert torch.equal(plain.sample(16).rows, focused.sample(16).rows)
    focused.focus(np.array([len(focused) - 1]), 0.25)  # the last window of the last episode: frames 5..8 of episode 5
    for _ in range(5):
        rows = focused.sample(16).rows
        from_pool = (rows[:, :, 1, 1, 0] == 5).all(1) & (rows[:, 0, 0, 0, 0] == 5)
        assert from_pool[:4].all() and from_pool.sum() >= 4
    with pytest.raises(OchreError, match=r"share must lie in \[0, 1\]"):
        focused.focus(np.array([0]), 1.5)
    with pytest.raises(OchreError, match="pool of windows to focus on is empty"):
        focused.focus(np.array([], dtype=np.int64), 0.5)


def test_open_checks_sizes_and_ranges_but_not_content(tmp_path):
    write_dataset(tmp_path / "d", [5, 7, 3, 12])
    shard = tmp_path / "d" / "shard_00001.frames.npy"
    shard.write_bytes(shard.read_bytes() + b"extra")
    with pytest.raises(OchreError, match=r"shard_00001.frames.npy: has 5 bytes after the array .*; rerun the same"):
        EpisodeDataset(tmp_path / "d")
    shard.write_bytes(shard.read_bytes()[:-5])
    data = shard.read_bytes()
    shard.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # a changed pixel: only the sha256 tells
    with pytest.raises(OchreError, match=r"shard_00001.frames.npy: sha256 \w+… differs from"):
        EpisodeDataset(tmp_path / "d").verify(progress=False)


def test_first_person_actions_are_checked_per_control(tmp_path):
    spec = FirstPersonActionSpec()
    writer = DatasetWriter(tmp_path / "d", "frames", {"action_schema": spec.to_dict(), "frame_shape": [4, 4, 3]})
    actions = spec.neutral(6)
    actions[2, 0] = spec.camera_bins  # one past the last yaw bin
    writer.add_episode(np.zeros((6, 4, 4, 3), np.uint8), actions)
    writer.close()
    with pytest.raises(OchreError, match=rf"actions.npy: 'yaw' value {spec.camera_bins} is outside 0-{spec.camera_bins - 1}"):
        EpisodeDataset(tmp_path / "d")


def test_an_edited_manifest_is_refused_with_one_line(tmp_path):
    write_dataset(tmp_path / "d", [5, 7])
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    del manifest["shards"][0]["files"]["episodes"]
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OchreError, match=r"manifest.json: shard entry 0 must list the files 'frames', 'actions' and 'episodes'"):
        EpisodeDataset(tmp_path / "d")


def test_resuming_a_writer_refuses_a_damaged_finished_shard(tmp_path):
    writer = DatasetWriter(tmp_path / "d", "frames", {"action_schema": PROCGEN_ACTIONS.to_dict()}, shard_frames=4)
    writer.add_episode(np.zeros((5, 4, 4, 3), np.uint8), np.zeros(5))
    (tmp_path / "d" / "shard_00000.episodes.npy").write_bytes(b"")
    with pytest.raises(OchreError, match=r"shard_00000.episodes.npy: not a readable .npy file"):
        DatasetWriter(tmp_path / "d", "frames", {}).resume()
