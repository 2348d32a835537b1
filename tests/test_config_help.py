"""Every trainer's --help lists each config key with its default, its choices and its comment; every key has one."""

from dataclasses import dataclass

import pytest

from ochre.config import load_config
from ochre.config_help import config_keys, field_comments, missing_comments
from ochre.errors import ConfigError
from ochre.training.dynamics_config import DynamicsTrainConfig
from ochre.training.latent_config import LatentFlowTrainConfig, LatentGRUTrainConfig
from ochre.training.pixel_film import PixelFiLMTrainConfig
from ochre.training.tokenizer import TokenizerTrainConfig

TRAINERS = {  # config class -> the command line whose --help lists it
    TokenizerTrainConfig: ("vqvae.train", []),
    DynamicsTrainConfig: ("train.dynamics", []),
    PixelFiLMTrainConfig: ("train.dynamics", ["--config", "configs/coinrun/pixel_film.yaml"]),
    LatentGRUTrainConfig: ("train.dynamics", ["model.type=latent_gru"]),
    LatentFlowTrainConfig: ("train.dynamics", ["--config", "configs/coinrun/latent_flow.yaml"]),
}


def help_text(module: str, args: list[str], capsys) -> str:
    main = __import__(module, fromlist=["main"]).main
    with pytest.raises(SystemExit) as done:
        main([*args, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("cls", list(TRAINERS), ids=lambda c: c.__name__)
def test_every_config_key_of_every_trainer_has_a_comment(cls):
    assert missing_comments(cls) == []


@pytest.mark.parametrize("cls", list(TRAINERS), ids=lambda c: c.__name__)
def test_help_lists_every_key_with_its_default_and_comment(cls, capsys):
    module, args = TRAINERS[cls]
    out = help_text(module, args, capsys)
    flat = " ".join(out.split())  # long comments wrap onto indented lines
    assert f"config keys of {cls.__name__}" in out
    for key, _, _, comment in config_keys(cls):
        assert f"  {key}=" in out, key
        assert " ".join(comment.split()) in flat, (key, comment)
    assert "train.amp=bf16 {'off', bf16, fp16}" in out  # choices beside the default
    assert "train.max_steps=" in out and "optimizer steps" in out


def test_help_shows_the_presets_value_where_it_differs(capsys):
    out = help_text("train.dynamics", ["--config", "configs/tiny/dynamics.yaml"], capsys)
    assert "train.max_steps=3000 (preset: 4)" in out and "model.embed_dim=64 (preset: 16)" in out


@dataclass
class Base:
    steps: int = 3  # how many steps
    rate: float = 0.5  # a comment inside a wrapped declaration


@dataclass
class Child(Base):
    steps: int = 5
    rate: float = 0.1  # the child's own words


def test_a_redeclared_field_keeps_its_base_classes_comment_unless_it_has_its_own():
    assert field_comments(Base) == {"steps": "how many steps", "rate": "a comment inside a wrapped declaration"}
    assert field_comments(Child) == {"steps": "how many steps", "rate": "the child's own words"}


def test_choice_keys_refuse_other_values_and_list_the_choices():
    with pytest.raises(ConfigError, match=r"'train.amp' must be one of \['off', 'bf16', 'fp16'\], got 'fp8'"):
        load_config(DynamicsTrainConfig, "configs/tiny/dynamics.yaml", ["train.amp=fp8"])
    with pytest.raises(ConfigError, match=r"'logging.wandb' must be one of \['off', 'online', 'offline'\]"):
        load_config(TokenizerTrainConfig, "configs/tiny/vqvae.yaml", ["logging.wandb=cloud"])
    with pytest.raises(ConfigError, match=r"'train.device' must be auto, cpu, cuda, cuda:N or mps \(got 'tpu'\)"):
        load_config(LatentFlowTrainConfig, "configs/tiny/latent_flow.yaml", ["train.device=tpu"])


def test_flag_trainers_show_each_flags_default(capsys):
    out = help_text("train.idm", [], capsys)
    flat = " ".join(out.split())
    assert "training steps (default: 2000)" in flat and "frame pairs per step (default: 64)" in flat
    assert "--device DEVICE auto | cpu | cuda | cuda:N | mps (default: auto)" in flat
