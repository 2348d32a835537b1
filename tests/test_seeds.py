"""preprocess.seeds cuts seed files from episodes, at the start or further in."""

import numpy as np

from ochre.data.store import EpisodeDataset
from tests.conftest import run_module


def test_seeds_start_offset_frames_into_their_episodes(tmp_path, frames_dataset):
    out = tmp_path / "seed.npz"
    run_module("preprocess.seeds", "--data", str(frames_dataset), "--out", str(out), "--count", "2", "--context", "4",
               "--offset", "5")  # fmt: skip
    seed = np.load(out)
    assert seed["frames"].shape == (2, 4, 64, 64, 3) and seed["actions"].shape == (2, 3)
    data = EpisodeDataset(frames_dataset)
    shard, start, _ = [e for e in data.episodes() if e[2] > 9][0]
    frames, actions = data.rows(shard, start + 5, 4)
    assert np.array_equal(seed["frames"][0], frames) and np.array_equal(seed["actions"][0], actions[:-1])


def test_seeds_name_the_shortfall(tmp_path, frames_dataset):
    proc = run_module("preprocess.seeds", "--data", str(frames_dataset), "--out", str(tmp_path / "s.npz"),
                      "--offset", "500", check=False)  # fmt: skip
    assert proc.returncode != 0 and "episodes longer than 504 frames (--offset + --context)" in proc.stderr
    assert not (tmp_path / "s.npz").exists()
