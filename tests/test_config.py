import dataclasses
import fnmatch
import typing
from dataclasses import dataclass, field
from typing import Literal

import pytest

from ochre.config import dump_yaml, from_dict, load_config, parse_overrides
from ochre.errors import ConfigError
from ochre.training.dynamics_config import DynamicsTrainConfig
from ochre.training.latent_config import LatentFlowTrainConfig, LatentGRUTrainConfig
from ochre.training.tokenizer import TokenizerTrainConfig


@dataclass
class Inner:
    steps: int = 3
    rate: float = 0.5
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    name: str = "x"
    sizes: list[int] = field(default_factory=lambda: [1, 2])


def test_overrides_parse_yaml_scalars():
    assert parse_overrides(["a.b=5", "a.c=0.1", "d=true", "e=[1, 2]", "f=hello"]) == {
        "a": {"b": 5, "c": 0.1},
        "d": True,
        "e": [1, 2],
        "f": "hello",
    }


def test_from_dict_fills_defaults_and_coerces_int_to_float():
    cfg = from_dict(Outer, {"inner": {"rate": 1}})
    assert cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float) and cfg.inner.steps == 3


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"inner": {"stepz": 1}}, "inner.stepz"),
        ({"inner": {"steps": "many"}}, "inner.steps"),
        ({"inner": {"mode": "c"}}, "inner.mode"),
        ({"sizes": [1, "x"]}, "sizes[1]"),
        ({"inner": {"steps": True}}, "inner.steps"),
    ],
)
def test_bad_keys_and_values_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        from_dict(Outer, data)


def test_presets_load_and_round_trip(tmp_path):
    for cls, preset in [
        (TokenizerTrainConfig, "configs/coinrun/vqvae.yaml"),
        (DynamicsTrainConfig, "configs/coinrun/dynamics.yaml"),
        (TokenizerTrainConfig, "configs/coinrun/latent_ae.yaml"),
        (LatentGRUTrainConfig, "configs/coinrun/latent_gru.yaml"),
        (LatentFlowTrainConfig, "configs/coinrun/latent_flow.yaml"),
    ]:
        cfg = load_config(cls, preset, ["train.max_steps=5"])
        assert cfg.train.max_steps == 5
        saved = tmp_path / "resolved.yaml"
        saved.write_text(dump_yaml(cfg))
        assert load_config(cls, saved) == cfg


def test_preset_error_names_file_and_key():
    with pytest.raises(ConfigError, match=r"vqvae.yaml: .*train.max_stepz"):
        load_config(TokenizerTrainConfig, "configs/coinrun/vqvae.yaml", ["train.max_stepz=5"])


def test_missing_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="not found"):
        load_config(TokenizerTrainConfig, "configs/nope.yaml")


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("train.batch_size=-4", "config key 'train.batch_size' must be an integer >= 1 (got -4); set it, e.g. train.batch_size="),
        ("train.lr=-1", "config key 'train.lr' must be a number > 0 (got -1.0); set it, e.g. train.lr=0.001"),
        ("train.lr=.nan", "config key 'train.lr' must be a finite number (got nan)"),
        ("train.max_steps=0", "config key 'train.max_steps' must be an integer >= 1 (got 0)"),
        ("train.ar_max=1.5", "config key 'train.ar_max' must be a number in [0, 1] (got 1.5)"),
        ("train.change_weight=-1", "config key 'train.change_weight' must be a number >= 0"),
        ("data.val_every=1", "config key 'data.val_every' must be an integer >= 2, or 0 (no held-out episodes) (got 1)"),
        ("model.token_grid=[16,0]", "config key 'model.token_grid[1]' must be an integer >= 1 (got 0); set it, e.g. model.token_grid=[16, 16]"),
        ("train.device=tpu", "config key 'train.device' must be auto, cpu, cuda, cuda:N or mps (got 'tpu')"),
        ("train.resume=/nonexistent/state.pt", "config key 'train.resume' must name a file to read, or be empty for none"),
        ("run.dir=/proc/ochre_runs", "config key 'run.dir' must be a folder that can be made and written: /proc/ochre_runs"),
    ],
)  # fmt: skip
def test_values_out_of_range_stop_in_load_config_with_one_line(override, says):
    with pytest.raises(ConfigError) as err:
        load_config(DynamicsTrainConfig, "configs/tiny/dynamics.yaml", [override])
    message = str(err.value)
    assert message.startswith("configs/tiny/dynamics.yaml: ") and says in message and "\n" not in message, message


@pytest.mark.parametrize(
    ("cls", "override", "says"),
    [
        (LatentFlowTrainConfig, "train.action_dropout=1.5", "'train.action_dropout' must be a number in [0, 1] (got 1.5)"),
        (LatentFlowTrainConfig, "model.flow_steps=0", "'model.flow_steps' must be an integer in [1, 64] (got 0)"),
        (LatentFlowTrainConfig, "model.width=0", "'model.width' must be an integer >= 1 (got 0)"),
        (LatentFlowTrainConfig, "model.cond_dim=-2", "'model.cond_dim' must be an integer >= 1 (got -2)"),
        (LatentFlowTrainConfig, "model.guidance=-1", "'model.guidance' must be a number >= 0 (got -1.0)"),
        (LatentFlowTrainConfig, "model.latent_std=[1.0,0]", "'model.latent_std[1]' must be a number > 0 (got 0.0)"),
        (LatentFlowTrainConfig, "train.context_noise=-0.1", "'train.context_noise' must be a number >= 0 (got -0.1)"),
        (LatentFlowTrainConfig, "train.feedback_greedy=1.5", "'train.feedback_greedy' must be a number in [0, 1] (got 1.5)"),
        (LatentFlowTrainConfig, "train.feedback_noise=-1", "'train.feedback_noise' must be a number >= 0 (got -1.0)"),
        (LatentGRUTrainConfig, "train.huber_delta=0", "'train.huber_delta' must be a number > 0 (got 0.0)"),
        (LatentGRUTrainConfig, "train.context_noise=-1", "'train.context_noise' must be a number >= 0 (got -1.0)"),
    ],
)  # fmt: skip
def test_latent_world_values_out_of_range_stop_in_load_config(cls, override, says):
    preset = f"configs/tiny/{'latent_flow' if cls is LatentFlowTrainConfig else 'latent_gru'}.yaml"
    with pytest.raises(ConfigError) as err:
        load_config(cls, preset, [override])
    assert says in str(err.value) and "\n" not in str(err.value), err.value


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CUDA is available here")
def test_a_cuda_device_without_cuda_is_refused():
    with pytest.raises(ConfigError, match=r"'train.device' needs CUDA, but .* \(use cpu or auto\) \(got 'cuda'\)"):
        load_config(TokenizerTrainConfig, "configs/tiny/vqvae.yaml", ["train.device=cuda"])


def test_a_run_dir_under_a_file_is_refused_before_anything_is_made(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"'run.dir' .* is a file, not a folder"):
        load_config(TokenizerTrainConfig, "configs/tiny/vqvae.yaml", [f"run.dir={tmp_path / 'file' / 'runs'}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_every_rule_names_a_field_of_some_config():
    from ochre.config import PATTERNS, RULES
    from ochre.data.generate import GenerateJob
    from ochre.envs.atari import AtariSettings
    from ochre.envs.doom import DoomSettings
    from ochre.envs.gym import GymSettings
    from ochre.envs.procgen import ProcgenSettings
    from ochre.training.pixel_film import PixelFiLMTrainConfig

    keys: set[str] = set()

    def walk(cls, prefix=""):
        for f in dataclasses.fields(cls):
            kind = typing.get_type_hints(cls)[f.name]
            if dataclasses.is_dataclass(kind):
                walk(kind, f"{f.name}.")
            keys.update({f.name, f"{prefix}{f.name}"})

    roots = [DynamicsTrainConfig, TokenizerTrainConfig, PixelFiLMTrainConfig, LatentGRUTrainConfig, LatentFlowTrainConfig]
    roots.append(GenerateJob)
    for cls in [*roots, ProcgenSettings, DoomSettings, AtariSettings, GymSettings]:
        walk(cls)
    assert set(RULES) <= keys, f"rules for no field: {sorted(set(RULES) - keys)}"
    assert all(any(fnmatch.fnmatchcase(k, p) for k in keys) for p in PATTERNS)


def test_presets_and_shipped_checkpoints_pass_the_rules():
    """No preset breaks a rule under the config class it is written for (the first that knows all its keys)."""
    from pathlib import Path

    from ochre import WorldModel
    from ochre.training.pixel_film import PixelFiLMTrainConfig

    classes = (DynamicsTrainConfig, TokenizerTrainConfig, PixelFiLMTrainConfig, LatentGRUTrainConfig, LatentFlowTrainConfig)
    for preset in sorted(Path("configs").glob("*/*.yaml")):
        if preset.name == "recipe.yaml":  # a recipe lists stages, it is no trainer's config
            continue
        for cls in classes:
            try:
                load_config(cls, preset, ["train.device=auto"])  # the GPU presets ask for cuda
                break
            except ConfigError as err:  # another class's preset: its keys or model.type are not this class's
                assert "unknown config key" in str(err) or "'model.type' must be one of" in str(err), err
        else:
            raise AssertionError(f"{preset}: no trainer's config class loads it")
    for world in sorted(Path("checkpoints").glob("*.pt")):
        WorldModel.load(world, device="cpu")


def test_bad_flags_stop_in_argparse_with_exit_2_and_one_line(tmp_path, capsys):
    from ochre.cli import ArgumentParser, known_device, positive_float, positive_int, unit_float, writable_dir

    p = ArgumentParser()
    p.add_argument("--steps", type=positive_int)
    p.add_argument("--fps", type=positive_float)
    p.add_argument("--share", type=unit_float)
    p.add_argument("--device", type=known_device)
    p.add_argument("--out", type=writable_dir)
    (tmp_path / "file").write_text("x")
    for argv, says in [
        (["--steps", "-1"], "argument --steps: must be an integer >= 1 (got '-1')"),
        (["--steps", "two"], "argument --steps: must be an integer (got 'two')"),
        (["--fps", "0"], "argument --fps: must be a number > 0 (got '0')"),
        (["--fps", "nan"], "argument --fps: must be a finite number (got 'nan')"),
        (["--share", "1.5"], "argument --share: must be a number in [0, 1] (got '1.5')"),
        (["--device", "tpu"], "argument --device: must be auto, cpu, cuda, cuda:N or mps (got 'tpu')"),
        (["--out", str(tmp_path / "file" / "out")], f"argument --out: {tmp_path / 'file' / 'out'} cannot be made"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            p.parse_args(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.startswith(f"error: {says}") and err.count("\n") == 1, err
    assert p.parse_args(["--steps", "3", "--out", str(tmp_path / "new" / "out")]).steps == 3
    assert not (tmp_path / "new").exists()  # checked, not made
