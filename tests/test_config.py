from dataclasses import dataclass, field
from typing import Literal

import pytest

from ochre.config import dump_yaml, from_dict, load_config, parse_overrides
from ochre.errors import ConfigError
from ochre.training.dynamics_config import DynamicsTrainConfig
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
