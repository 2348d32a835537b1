"""Any Gymnasium env as a world (`gym:<id>`, `gym:<module>:<id>`): schemas from spaces, real generation runs
of three env families the project does not ship, a tiny world trained on one, and one-line errors.

This module also registers two small envs the error tests name as `gym:tests.test_gym_worlds:<id>`.
"""

import json

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from ochre import WorldModel
from ochre.actions import DiscreteActionSpec, FactoredActionSpec
from ochre.data.store import EpisodeDataset
from ochre.envs.gym import box_values, discrete_schema, factored_schema, meaning_label
from ochre.envs.worlds import default_num_envs, frame_shape, make_env, source_settings, world_kind, world_settings
from ochre.errors import OchreError
from ochre.playtest.suite import real_game_settings
from tests.conftest import run_module

HERE = "tests.test_gym_worlds"


class Canvas(gymnasium.Env):
    """A still 8x8 picture; subclasses set the action space and what it renders."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.last_action = None

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((8, 8, 3), np.uint8), {}

    def step(self, action):
        self.last_action = action
        return np.zeros((8, 8, 3), np.uint8), 0.0, False, False, {}

    def render(self):
        return np.full((8, 8, 3), 128, np.uint8)


class DictActions(Canvas):
    def __init__(self, render_mode=None):
        super().__init__(render_mode)
        self.action_space = spaces.Dict({"move": spaces.Discrete(3), "jump": spaces.MultiBinary(1)})


class NoFrames(Canvas):
    metadata = {"render_modes": ["human"], "render_fps": 10}

    def __init__(self, render_mode=None):
        super().__init__(render_mode)
        self.action_space = spaces.Discrete(2)


class Knobs(Canvas):
    def __init__(self, render_mode=None):
        super().__init__(render_mode)
        self.action_space = spaces.MultiDiscrete([3, 2], start=[-1, 0])


for env_class in (DictActions, NoFrames, Knobs):
    if f"OchreTest/{env_class.__name__}-v0" not in gymnasium.registry:
        gymnasium.register(f"OchreTest/{env_class.__name__}-v0", entry_point=env_class)


def generate(out, world, frames, *extra):
    run_module("preprocess.generate", "--world", world, "--frames", str(frames), "--out", str(out), "--quiet", *extra)
    return EpisodeDataset(out, expect_kind="frames")


def check_frames(data, frames):
    assert data.num_frames == frames and data.manifest["frame_shape"] == [64, 64, 3]
    rows, actions = data.rows(0, 0, 16)
    assert rows.dtype == np.uint8 and rows.shape[1:] == (64, 64, 3) and rows.std() > 1  # a picture, not a flat fill
    data.action_spec.validate(actions)


# -- schemas from spaces ------------------------------------------------------------------------------


def test_action_meanings_become_labels_and_combos_split():
    assert meaning_label("UPRIGHTFIRE") == "up+right+fire" and meaning_label("NOOP") == "noop"
    assert meaning_label("Move Forward") == "move_forward" and meaning_label("upper") == "upper"
    spec = discrete_schema("gym:X", 4, ["FIRE", "NOOP", "Jump", "Jump"])
    assert spec.labels == ("fire", "noop", "jump", "jump_3") and spec.noop == 1
    assert discrete_schema("gym:Y", 2, None).labels == ("action_0", "action_1")


def test_box_axes_are_binned_with_rest_as_a_bin():
    assert box_values(-2.0, 2.0, 5) == ((-2.0, -1.0, 0.0, 1.0, 2.0), 2)
    assert box_values(0.0, 1.0, 5) == ((0.0, 0.25, 0.5, 0.75, 1.0), 0)  # a throttle rests at its low end
    values, rest = box_values(-1.0, 3.0, 5)
    assert values[rest] == 0.0 and values[0] == -1.0 and values[-1] == 3.0 and len(values) == 5
    assert box_values(1.0, 3.0, 3) == ((1.0, 2.0, 3.0), 1)  # 0 out of range: the centre rests


def test_factored_schemas_from_multi_spaces():
    box = factored_schema("gym:B", spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, 1.0])), 3)
    assert box.controls == ("axis_0", "axis_1") and box.values == ((-1.0, 0.0, 1.0), (0.0, 0.5, 1.0)) and box.rest == (1, 0)
    multi = factored_schema("gym:M", spaces.MultiDiscrete([[2, 3]]), 5)
    assert multi.factors == (2, 3) and multi.rest == (0, 0)
    binary = factored_schema("gym:Z", spaces.MultiBinary(3), 5)
    assert binary.factors == (2, 2, 2) and binary.controls[-1] == "button_2"
    with pytest.raises(OchreError, match="unbounded"):
        factored_schema("gym:U", spaces.Box(-np.inf, np.inf, (1,)), 5)


def test_settings_split_ours_from_the_envs_kwargs():
    s = world_settings("gym:Pendulum-v1", {"g": 9.0, "frame_size": [32, 32], "box_bins": 7})
    assert (s.env_id, s.module, s.kwargs, s.frame_size, s.box_bins) == ("Pendulum-v1", "", {"g": 9.0}, (32, 32), 7)
    assert world_kind("gym:ale_py:ALE/Breakout-v5") == "gym" and default_num_envs("gym:CartPole-v1") == 1
    assert world_settings("gym:ale_py:ALE/Breakout-v5").module == "ale_py"
    assert frame_shape("gym:Pendulum-v1", s) == (32, 32, 3)
    with pytest.raises(OchreError, match="box_bins must be an odd"):
        world_settings("gym:Pendulum-v1", {"box_bins": 4})
    with pytest.raises(OchreError, match="CartPol.*Did you mean"):
        world_settings("gym:CartPol-v1")


def test_a_checkpoints_source_settings_start_its_real_game():
    source = {"env": "gym", "settings": {"env_id": "Pendulum-v1", "box_bins": 3, "kwargs": {"g": 9.0}, "gone": 1}}
    learned = source_settings("gym:Pendulum-v1", source)
    assert learned == {"env_id": "Pendulum-v1", "box_bins": 3, "kwargs": {"g": 9.0}}  # a key the settings lost is dropped
    s = world_settings("gym:Pendulum-v1", learned | {"frame_size": [32, 32]})
    assert (s.box_bins, s.kwargs, s.frame_size) == (3, {"g": 9.0}, (32, 32))
    assert source_settings("coinrun", source) == {} and source_settings("gym:Pendulum-v1", None) == {}
    held_out = real_game_settings("coinrun", (64, 64, 3), {"env": "procgen", "settings": {"distribution_mode": "easy"}})
    assert held_out == {"distribution_mode": "easy", "start_level": 1_000_000, "num_levels": 1_000}


def test_factored_env_takes_the_values_the_schema_names():
    env = make_env(f"gym:{HERE}:OchreTest/Knobs-v0", world_settings(f"gym:{HERE}:OchreTest/Knobs-v0"))
    spec = env.action_spec
    assert isinstance(spec, FactoredActionSpec) and spec.values == ((-1.0, 0.0, 1.0), (0.0, 1.0)) and spec.rest == (1, 0)
    assert env.reset(seed=0).shape == (64, 64, 3) and env.fps == 10
    env.step(np.array([2, 1]))
    taken = env._env.unwrapped.last_action
    assert taken.tolist() == [1, 1] and taken.dtype == env._env.action_space.dtype
    with pytest.raises(OchreError, match="'dim_0' value 3"):
        env.step(np.array([3, 0]))
    env.close()


# -- real envs through the entry points -------------------------------------------------------------


def test_cartpole_generates_a_discrete_dataset_that_inspect_reads(tmp_path):
    data = generate(tmp_path / "cartpole", "gym:CartPole-v1", 300, "--shard-frames", "150", "--policy", "uniform")
    check_frames(data, 300)
    assert data.manifest["action_schema"] == DiscreteActionSpec("gym:CartPole-v1", ("action_0", "action_1")).to_dict()
    assert data.manifest["fps"] == 50 and data.manifest["source"]["env"] == "gym"
    actions = np.concatenate([np.asarray(s["actions"]) for s in data.shards])
    assert set(np.unique(actions)) == {0, 1} and len(data.episodes()) > 2  # CartPole falls over quickly
    out = run_module("preprocess.inspect", str(data.path), "--out", str(tmp_path / "inspect"), "--samples", "2")
    assert "action_1" in out.stdout and (tmp_path / "inspect" / "stats.json").is_file()


def test_ale_game_through_the_generic_path(tmp_path):
    world = "gym:ale_py:ALE/Breakout-v5"
    data = generate(tmp_path / "breakout", world, 200, "--policy", "sticky", "--env", "repeat_action_probability=0.0")
    check_frames(data, 200)
    schema = data.manifest["action_schema"]
    assert schema["name"] == "gym:ALE/Breakout-v5" and schema["labels"] == ["noop", "fire", "right", "left"]
    assert data.manifest["source"]["settings"]["kwargs"] == {"repeat_action_probability": 0.0}


def test_box_env_trains_a_tiny_world_that_loads_and_plays(tmp_path):
    """Pendulum's torque (a Box) is binned, generated, tokenized, learned, loaded, then played beside the real game,
    which the checkpoint starts with the settings its data was drawn with (3 torque bins, not the default 5)."""
    world, runs, tokens = "gym:Pendulum-v1", tmp_path / "runs", tmp_path / "tokens"
    data = generate(tmp_path / "pendulum", world, 240, "--policy", "mixture", "--max-episode-frames", "60", "--env", "box_bins=3")
    check_frames(data, 240)
    spec = data.action_spec
    assert isinstance(spec, FactoredActionSpec) and spec.values == ((-2.0, 0.0, 2.0),) and spec.rest == (1,)
    out = run_module("preprocess.inspect", str(data.path), "--out", str(tmp_path / "inspect"), "--samples", "2")
    assert "control frequency" in out.stdout and (tmp_path / "inspect" / "actions.png").is_file()
    run_module("vqvae.train", "--config", "configs/tiny/vqvae.yaml", f"data.path={data.path}", f"run.dir={runs}",
               "run.name=vq", "data.val_every=4", f"run.world={world}")  # fmt: skip
    run_module("vqvae.tokenize", "--tokenizer", str(runs / "vq/checkpoints/tokenizer.pt"), "--data", str(data.path),
               "--out", str(tokens), "--device", "cpu")  # fmt: skip
    run_module("train.dynamics", "--config", "configs/tiny/dynamics.yaml", f"data.path={tokens}", f"run.dir={runs}",
               "run.name=dyn", "data.val_every=4", f"run.world={world}")  # fmt: skip
    checkpoint = runs / "dyn" / "checkpoints" / "world.pt"
    wm = WorldModel.load(checkpoint, device="cpu")
    assert wm.action_spec == spec and wm.frame_shape == (64, 64, 3) and wm.info["world"] == world
    assert wm.info["source"] == {"env": "gym", "settings": data.manifest["source"]["settings"]}
    frames, _ = data.rows(0, 0, 4)
    frame, _ = wm.step(wm.reset(frames, spec.neutral(3)), np.array([2]))
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    out = tmp_path / "play"
    run_module("live.play", "--checkpoint", str(checkpoint), "--headless", "--ghost", "--frames", "6", "--device", "cpu",
               "--out", str(out))  # fmt: skip
    psnr = [float(line.split(",")[1]) for line in (out / "ghost.csv").read_text().splitlines()[1:]]
    assert len(psnr) == 6 and np.load(out / "actions.npy").shape == (6, 1)


# -- one-line errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("world", "message"),
    [
        (f"gym:{HERE}:OchreTest/DictActions-v0", "action space Dict is not supported"),
        (f"gym:{HERE}:OchreTest/NoFrames-v0", "does not render 'rgb_array' frames"),
        ("gym:OchreTest/NoSuchGame-v0", "gym:<package>:OchreTest/NoSuchGame-v0"),
    ],
)
def test_unsupported_envs_stop_with_one_line(tmp_path, world, message):
    proc = run_module("preprocess.generate", "--world", world, "--frames", "10", "--out", str(tmp_path / "x"), check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert message in proc.stderr and world.split(":")[-1] in proc.stderr, proc.stderr
    assert not (tmp_path / "x").exists()  # nothing made before the env was known to work
    if "Dict" in message:
        assert "Discrete, MultiDiscrete, MultiBinary or Box" in proc.stderr


def test_bad_env_kwargs_name_the_key(tmp_path):
    proc = run_module("preprocess.generate", "--world", "gym:CartPole-v1", "--frames", "10", "--env", "gravity_typo=3",
                      "--out", str(tmp_path / "x"), check=False)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "gravity_typo" in proc.stderr, proc.stderr


def test_manifest_schema_survives_json(tmp_path):
    spec = factored_schema("gym:B", spaces.Box(-0.3, 0.7, (2,)), 5)
    assert FactoredActionSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
