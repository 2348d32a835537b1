"""The learned world as a Gymnasium env (`ochre/World-v0`), on the tiny trained world."""

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import ochre  # noqa: F401  (registers ochre/World-v0)
from ochre.actions import FirstPersonActionSpec
from ochre.errors import OchreError
from ochre.world_env import WorldEnv, _action_space

ACTIONS = [7, 5, 1, 7, 3]


@pytest.fixture(scope="module")
def seed_file(tiny_world, tmp_path_factory):
    """Two real 4-frame seed clips and their actions, saved as the seed loader reads them."""
    from ochre.data.store import EpisodeDataset
    from ochre.data.windows import WindowSampler

    batch = WindowSampler(EpisodeDataset(tiny_world["frames"]), 4, split="all").fixed(2)
    path = tmp_path_factory.mktemp("seeds") / "seed.npz"
    np.savez(path, frames=batch.rows.numpy(), actions=batch.actions.numpy()[:, :3])
    return path


@pytest.fixture(scope="module")
def make(tiny_world, seed_file):
    """gymnasium.make("ochre/World-v0", ...) on the tiny world, on the CPU; kwargs override."""

    def _make(**kwargs) -> gymnasium.Env:
        kwargs = {"checkpoint": tiny_world["world"], "seed_frames": seed_file, "device": "cpu", **kwargs}
        return gymnasium.make("ochre/World-v0", **kwargs)

    return _make


def play(env: gymnasium.Env, seed: int, actions: list[int]) -> np.ndarray:
    env.reset(seed=seed)
    return np.stack([env.step(a)[0] for a in actions])


def test_passes_gymnasium_env_checker(make):
    env = make(render_mode="rgb_array", sampling="sample")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    assert not [str(w.message) for w in caught if "WARN" in str(w.message)]  # gymnasium's logger.warn
    env.close()


def test_registered_id_spaces_and_reset(make, seed_file):
    assert gymnasium.spec("ochre/World-v0").entry_point == "ochre.world_env:WorldEnv"
    env = make(render_mode="rgb_array")
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    assert env.action_space == gymnasium.spaces.Discrete(15)
    seeds = np.load(seed_file)["frames"]
    for index in (0, 1):
        frame, info = env.reset(options={"seed_index": index})
        assert info == {"seed_index": index} and (frame == seeds[index, -1]).all()
        assert (env.render() == frame).all()
    picked = {env.reset(seed=s)[1]["seed_index"] for s in range(12)}
    assert picked == {0, 1}
    env.close()


def test_same_seed_same_frames_when_sampling(make):
    env = make(sampling="sample", temperature=1.0)
    first, again, other = play(env, 5, ACTIONS), play(env, 5, ACTIONS), play(env, 6, ACTIONS)
    assert (first == again).all()
    assert (first != other).any()
    env.close()


def test_truncates_at_max_episode_steps_with_zero_reward(make):
    env = make(max_episode_steps=3)
    env.reset(seed=0)
    results = [env.step(a)[1:4] for a in ACTIONS[:3]]
    assert results == [(0.0, False, False), (0.0, False, False), (0.0, False, True)]
    env.reset(seed=0)
    assert env.step(1)[3] is False
    env.close()


def test_imagine_leaves_the_env_untouched(make):
    env = make(sampling="sample")
    without = play(env, 1, ACTIONS)
    env.reset(seed=1)
    env.step(ACTIONS[0])
    before = env.render()
    plans = np.random.default_rng(0).integers(0, 15, (3, 4))
    video = env.unwrapped.imagine(plans)
    assert video.shape == (3, 4, 64, 64, 3) and video.dtype == np.uint8
    assert (env.render() == before).all()
    assert (env.unwrapped.imagine(plans, seed=2) == env.unwrapped.imagine(plans, seed=2)).all()
    after = np.stack([env.step(a)[0] for a in ACTIONS[1:]])
    assert (after == without[1:]).all()
    env.close()


def test_imagine_continues_from_the_current_state(make):
    env = make()
    stepped = play(env, 3, ACTIONS)
    env.reset(seed=3)
    env.step(ACTIONS[0])
    assert (env.unwrapped.imagine([ACTIONS[1:]])[0] == stepped[1:]).all()
    env.close()


def test_bad_checkpoint_names_the_path(make, tmp_path):
    missing = tmp_path / "nowhere" / "world.pt"
    with pytest.raises(OchreError, match=str(missing)):
        make(checkpoint=missing)


def test_seed_frames_of_another_size_are_refused(make, tmp_path):
    path = tmp_path / "small.npz"
    np.savez(path, frames=np.zeros((4, 32, 32, 3), np.uint8))
    with pytest.raises(OchreError, match="small.npz: seed frames"):
        make(seed_frames=path)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda env: env.step(15), "outside 0-14"),
        (lambda env: env.step(-1), "outside 0-14"),
        (lambda env: env.step([1, 2]), r"must have shape \(\)"),
        (lambda env: env.step(1.5), "must be integer"),
        (lambda env: env.unwrapped.imagine([1, 2, 3]), "imagine actions must have shape"),
        (lambda env: env.unwrapped.imagine([[1, 20]]), "outside 0-14"),
        (lambda env: env.reset(options={"seed_index": 2}), "seed_index"),
    ],
)
def test_bad_actions_are_one_clear_error(make, call, match):
    env = make().unwrapped  # the raw env, so the error is ours rather than a wrapper's
    env.reset(seed=0)
    with pytest.raises(OchreError, match=match):
        call(env)
    env.close()


def test_step_before_reset_and_after_close(tiny_world, seed_file):
    env = WorldEnv(tiny_world["world"], seed_file, device="cpu")
    with pytest.raises(OchreError, match="reset"):
        env.step(1)
    env.close()
    env.close()
    with pytest.raises(OchreError, match="closed"):
        env.reset(seed=0)


def test_first_person_worlds_get_multi_discrete_actions():
    spec = FirstPersonActionSpec()
    assert _action_space(spec) == gymnasium.spaces.MultiDiscrete(list(spec.factors))
