"""A world checkpoint plays from its file alone: it carries seed contexts of its data, and live.play, inference.py
and gymnasium.make need no seed file; Gymnasium's max_episode_steps is the env's only time limit."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch

import ochre  # noqa: F401  (registers ochre/World-v0)
from ochre import WorldModel
from ochre.config import load_config
from ochre.data.store import EpisodeDataset
from ochre.errors import OchreError
from ochre.pixel_world import PixelWorld
from ochre.seed_contexts import seed_contexts
from tests.conftest import run_module


@pytest.fixture(scope="module")
def bare_world(tiny_world, tmp_path_factory):
    """The tiny world as a checkpoint written before seed contexts existed: the same file without its `seeds`."""
    payload = torch.load(tiny_world["world"], weights_only=True)
    del payload["seeds"]
    path = tmp_path_factory.mktemp("bare") / "world.pt"
    torch.save(payload, path)
    return path


def test_the_trained_world_carries_seed_contexts_of_its_validation_episodes(tiny_world):
    payload = torch.load(tiny_world["world"], weights_only=True)  # still tensors and plain containers only
    seeds = payload["seeds"]
    data = EpisodeDataset(tiny_world["tokens"])
    val_context = 2  # configs/tiny/dynamics.yaml
    assert seeds["frames"].dtype == torch.uint8 and seeds["frames"].shape[1:] == (val_context, 64, 64, 3)
    assert 1 <= len(seeds["frames"]) <= 8 and seeds["actions"].shape == (len(seeds["frames"]), val_context - 1)
    source = seeds["source"]
    assert source["split"] == "val" and all(i % 4 == 3 for i in source["episodes"])  # data.val_every=4
    assert len(set(source["episodes"])) == len(source["episodes"])  # each clip from another episode
    episodes = data.episodes()
    assert source["rows"][0] == episodes[source["episodes"][0]][1]  # the first clip starts at its level's start
    wm = WorldModel.load(tiny_world["world"], device="cpu")
    assert np.array_equal(wm.seeds.frames, seeds["frames"].numpy())


def test_seed_frames_are_the_decoded_tokens_of_the_dataset(tiny_world):
    wm = WorldModel.load(tiny_world["world"], device="cpu")
    data = EpisodeDataset(tiny_world["tokens"])
    source = wm.seeds.source
    shard, _, _ = data.episodes()[source["episodes"][0]]
    tokens, actions = data.rows(shard, source["rows"][0], 2)
    assert np.array_equal(wm.seeds.frames[0], wm.decode(torch.as_tensor(tokens)))
    assert np.array_equal(wm.seeds.actions[0], actions[:-1])


def test_inference_needs_no_seed_file_nor_actions(tiny_world, tmp_path):
    run_module("inference.py", "--checkpoint", str(tiny_world["world"]), "--out", str(tmp_path), "--steps", "3",
               "--device", "cpu")  # fmt: skip
    frames = np.load(tmp_path / "frames.npz")["frames"]
    count = len(WorldModel.load(tiny_world["world"], device="cpu").seeds)
    assert frames.shape == (count, 3, 64, 64, 3) and (tmp_path / "video.mp4").is_file()


def test_live_play_starts_from_the_checkpoints_seeds(tiny_world, tmp_path):
    run_module("live.play", "--checkpoint", str(tiny_world["world"]), "--headless", "--frames", "3", "--out", str(tmp_path),
               "--device", "cpu")  # fmt: skip
    played = np.load(tmp_path / "seed.npz")
    wm = WorldModel.load(tiny_world["world"], device="cpu")
    assert np.array_equal(played["frames"], wm.seeds.frames[0]) and np.array_equal(played["actions"], wm.seeds.actions[0])


def test_gymnasium_make_needs_only_the_checkpoint(tiny_world):
    env = gymnasium.make("ochre/World-v0", checkpoint=str(tiny_world["world"]), device="cpu")
    seeds = env.unwrapped.world.seeds
    frame, info = env.reset(seed=0)
    assert env.unwrapped.num_seeds == len(seeds) and np.array_equal(frame, seeds.frames[info["seed_index"], -1])
    assert env.step(env.action_space.sample())[0].shape == (64, 64, 3)
    env.close()


def test_max_episode_steps_of_gymnasium_make_is_the_only_limit(tiny_world):
    env = gymnasium.make("ochre/World-v0", checkpoint=str(tiny_world["world"]), device="cpu", max_episode_steps=1002)
    assert env.spec.max_episode_steps == 1002 and env.unwrapped.max_episode_steps is None
    env.reset(seed=0)
    truncated = [env.step(0)[3] for _ in range(1002)]
    assert not any(truncated[:-1]) and truncated[-1]  # past the 1,000 the env once stopped at by itself
    env.close()
    default = gymnasium.make("ochre/World-v0", checkpoint=str(tiny_world["world"]), device="cpu")
    assert default.spec.max_episode_steps == 1000  # the registered limit
    default.close()


def test_a_checkpoint_without_seeds_says_how_to_add_them(bare_world, tmp_path):
    with pytest.raises(OchreError, match=f"{bare_world}: this checkpoint carries no seed contexts.*train.seeds"):
        gymnasium.make("ochre/World-v0", checkpoint=str(bare_world), device="cpu")
    proc = run_module("inference.py", "--checkpoint", str(bare_world), "--out", str(tmp_path), check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "carries no seed contexts" in proc.stderr


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda s: s.update(frames=s["frames"][:, :, :32]), r"seeds: frames are uint8 \(.*, 2, 32, 64, 3\), this world needs"),
        (lambda s: s.update(frames=s["frames"].float()), "seeds: frames are float32"),
        (lambda s: s.update(actions=s["actions"] + 99), "seeds: actions"),
        (lambda s: s.update(actions=s["actions"][:1]), r"seeds: actions have shape \(1, 1\), the frames need"),
        (lambda s: s.pop("frames"), "seeds must hold 'frames' and 'actions' tensors"),
    ],
)  # fmt: skip
def test_damaged_seed_contexts_are_refused_with_one_line_naming_the_file(tiny_world, tmp_path, edit, says):
    payload = torch.load(tiny_world["world"], weights_only=True)
    edit(payload["seeds"])
    path = tmp_path / "world.pt"
    torch.save(payload, path)
    with pytest.raises(OchreError, match=f"{path}: {says}") as err:
        WorldModel.load(path, device="cpu")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("dataset", ["frames", "tokens"])
def test_train_seeds_adds_contexts_to_an_older_checkpoint(bare_world, tiny_world, tmp_path, dataset):
    path = tmp_path / "world.pt"
    path.write_bytes(bare_world.read_bytes())
    proc = run_module("train.seeds", "--checkpoint", str(path), "--data", str(tiny_world[dataset]), "--count", "3",
                      "--context", "4", "--val-every", "0")  # fmt: skip
    assert "3 seed contexts of 4 frames" in proc.stdout
    wm = WorldModel.load(path, device="cpu")
    assert wm.seeds.frames.shape == (3, 4, 64, 64, 3) and wm.seeds.source["split"] == "all"
    assert path.stat().st_size - bare_world.stat().st_size < 200_000  # 3 x 4 frames of 64x64 RGB and some bytes
    env = gymnasium.make("ochre/World-v0", checkpoint=str(path), device="cpu")
    env.reset(seed=1)
    env.close()


def test_seeds_of_another_world_are_refused_and_the_file_is_left_alone(bare_world, tiny_world, tmp_path):
    from ochre.actions import FirstPersonActionSpec
    from ochre.checkpoint import add_seed_contexts
    from ochre.seed_contexts import SeedContexts

    path = tmp_path / "world.pt"
    path.write_bytes(bare_world.read_bytes())
    data = EpisodeDataset(tiny_world["frames"])
    seeds = seed_contexts(data, 4, 0, count=2)
    with pytest.raises(OchreError, match=f"{path}: the world's action schema is 'procgen' but the dataset"):
        add_seed_contexts(path, seeds, FirstPersonActionSpec())
    small = SeedContexts(seeds.frames[:, :, :32, :32], seeds.actions, seeds.source)
    with pytest.raises(OchreError, match=f"{path}: seeds: frames are uint8 \\(2, 4, 32, 32, 3\\)"):
        add_seed_contexts(path, small, data.action_spec)
    assert path.read_bytes() == bare_world.read_bytes()


def test_pixel_film_worlds_carry_seed_contexts_of_their_past_frames(frames_dataset, tmp_path):
    from ochre.training.pixel_film import PixelFiLMTrainConfig, train_pixel_film

    cfg = load_config(PixelFiLMTrainConfig, "configs/tiny/pixel_film.yaml", [f"data.path={frames_dataset}",
                      f"run.dir={tmp_path}", "run.name=pf", "train.max_steps=1", "train.device=cpu"])  # fmt: skip
    pw = PixelWorld.load(train_pixel_film(cfg), device="cpu")
    p = pw.model.cfg.past_frames
    assert pw.seeds.frames.shape[1:] == (p, 64, 64, 3) and pw.seeds.source["split"] == "val"
    future = np.zeros((len(pw.seeds), 2), np.int64)
    assert pw.rollout(pw.seeds.frames, pw.seeds.actions, future).shape == (len(pw.seeds), 2, 64, 64, 3)


@pytest.mark.parametrize("world", ["coinrun", "doom", "pong"])
def test_shipped_worlds_play_from_their_file_alone(world):
    path = f"checkpoints/{world}.pt"
    seeds = torch.load(path, weights_only=True)["seeds"]
    assert seeds["frames"].shape == (8, 4, 64, 64, 3) and "heldout" in seeds["source"]["dataset"]
    env = gymnasium.make("ochre/World-v0", checkpoint=path, device="cpu")
    frame, info = env.reset(seed=0)
    assert np.array_equal(frame, seeds["frames"][info["seed_index"], -1].numpy())
    assert env.step(env.action_space.sample())[0].std() > 10  # a picture
    env.close()
