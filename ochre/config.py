"""Typed configs: YAML presets plus dotted command-line overrides.

    cfg = load_config(DynamicsTrainConfig, "configs/coinrun/dynamics.yaml", ["train.max_steps=5"])

Configs are plain dataclasses that live next to the code they configure. Loading
validates every key: an unknown key, a wrong type, a number that is not finite or
out of its range (`RULES`, by field name, for every config class at once) raises
`ConfigError` naming the dotted key, the value, what it accepts and an example, before
any run folder is made.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import yaml

from ochre.cli import ArgumentParser, device_problem, folder_problem, input_file, special_file
from ochre.config_help import config_help
from ochre.errors import ConfigError

C = TypeVar("C")


class Rule(Protocol):
    def problem(self, value: Any) -> str | None:
        """What is wrong with `value`, as "must ..." / "needs ..." (None when it is allowed)."""


@dataclass(frozen=True)
class Range:
    """Numbers a field accepts: from `low` (excluded when `low_open`) up to `high` (excluded when `high_open`);
    `zero`, when set, says what 0 means and lets it through (an "off" value below the range)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    zero: str = ""

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or (self.zero and value == 0):
            return None
        above = self.low is None or value > self.low or (value == self.low and not self.low_open)
        below = self.high is None or value < self.high or (value == self.high and not self.high_open)
        return None if above and below else f"must be {'an integer' if isinstance(value, int) else 'a number'} {self}"

    def __str__(self) -> str:
        if self.high is None:
            text = f"{'>' if self.low_open else '>='} {self.low:g}"
        else:
            text = f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        return f"{text}, or 0 ({self.zero})" if self.zero else text


class Unchecked:
    """No rule: any value of the field's type."""

    def problem(self, value: Any) -> str | None:
        return None


class Device:
    """A torch device that this machine has: auto, cpu, cuda, cuda:N or mps."""

    def problem(self, value: Any) -> str | None:
        return device_problem(value)


class Folder:
    """An output folder that exists or can be made, and can be written."""

    def problem(self, value: Any) -> str | None:
        reason = folder_problem(value) if isinstance(value, str) else None
        return f"must be a folder that can be made and written: {reason}" if reason else None


class ExistingFile:
    """A file there to read, or "" for none."""

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value or Path(value).is_file():
            return None
        found = "nothing is there" if not Path(value).exists() else f"it is {special_file(value) or 'a folder'}"
        return f"must name a file to read, or be empty for none ({found})"


ANY = Unchecked()
AT_LEAST_1 = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
SHARE = Range(0, 1)

# Allowed values by field name, for every config class (a dotted "section.field" entry wins over the field
# name alone); list fields are checked item by item. Fields not named here take any value of their type.
RULES: dict[str, Rule] = {
    # training loops (ochre/training): steps, samples, rates
    "max_steps": AT_LEAST_1,
    "batch_size": AT_LEAST_1,
    "checkpoint_every": AT_LEAST_1,
    "warmup_steps": NON_NEGATIVE,
    "threads": NON_NEGATIVE,  # 0 = torch's default
    "prefetch": NON_NEGATIVE,  # 0 = draw batches on the main thread
    "seed": NON_NEGATIVE,
    "lr": POSITIVE,
    "disc_lr": POSITIVE,
    "grad_clip": POSITIVE,
    "device": Device(),
    "seq_len": Range(2),  # a window needs a frame to predict from and one to predict
    "context": NON_NEGATIVE,
    "ar_max": SHARE,
    "ar_start": NON_NEGATIVE,
    "ar_end": NON_NEGATIVE,
    "ar_len": NON_NEGATIVE,
    "gumbel_tau": POSITIVE,
    "token_noise": SHARE,
    "pixel_samples": AT_LEAST_1,
    "max_bad_steps": NON_NEGATIVE,
    "hard_share": SHARE,
    "hard_pool": Range(0, 1, low_open=True),
    "hard_scan": AT_LEAST_1,
    "val_context": AT_LEAST_1,
    "val_horizon": AT_LEAST_1,
    "val_windows": AT_LEAST_1,
    "ball_windows": NON_NEGATIVE,
    "play_windows": NON_NEGATIVE,
    "adv_start": NON_NEGATIVE,
    "detail_tau": NON_NEGATIVE,
    "motion_tau": NON_NEGATIVE,
    "motion_dilate": NON_NEGATIVE,
    # data, logging, run folders
    "val_every": Range(2, zero="no held-out episodes"),  # 1 would leave no training episodes
    "log_every": AT_LEAST_1,
    "sample_every": AT_LEAST_1,
    "wandb_timeout": POSITIVE,
    "run.dir": Folder(),
    "resume": ExistingFile(),
    "init_from": ExistingFile(),
    "lpips_weights": ExistingFile(),
    "tokenizer.path": ExistingFile(),
    # models (ochre/models)
    "codebook_size": NON_NEGATIVE,  # 0 = the token dataset's
    "num_actions": NON_NEGATIVE,  # 0 = the dataset's
    "action_factors": AT_LEAST_1,
    "token_grid": AT_LEAST_1,
    "frame_size": AT_LEAST_1,
    "channels": AT_LEAST_1,
    "fsq_levels": Range(2),
    "embed_dim": AT_LEAST_1,
    "hidden_dim": AT_LEAST_1,
    "layers": AT_LEAST_1,
    "action_dim": AT_LEAST_1,
    "memory": NON_NEGATIVE,
    "memory_pool": AT_LEAST_1,
    "memory_heads": AT_LEAST_1,
    "idm_span": NON_NEGATIVE,
    "head_frames": Range(1, 2),
    "camera_factors": NON_NEGATIVE,
    "res_blocks": NON_NEGATIVE,
    "encoder_res_blocks": Range(-1),  # -1 = res_blocks
    "latent_channels": Range(1, zero="latent worlds: read from the tokenizer"),  # tokenizers refuse 0 themselves
    "vq_codes": Range(2),
    "vq_dim": AT_LEAST_1,
    "vq_decay": Range(0, 1, high_open=True),
    "vq_commitment": NON_NEGATIVE,
    "vq_dead_threshold": NON_NEGATIVE,
    "past_frames": AT_LEAST_1,
    "future_frames": AT_LEAST_1,
    "groups": AT_LEAST_1,
    # latent worlds (ochre/models/latent_*.py, ochre/training/latent_config.py)
    "width": AT_LEAST_1,
    "cond_dim": AT_LEAST_1,
    "flow_steps": Range(1, 64),  # 1-8 is the useful range
    "feedback_steps": Range(1, 64),
    "feedback_noise": NON_NEGATIVE,
    "feedback_greedy": SHARE,
    "guidance": NON_NEGATIVE,  # 1 = conditional only, 0 = the action ignored
    "latent_std": POSITIVE,
    "huber_delta": POSITIVE,
    "context_noise": NON_NEGATIVE,
    "action_dropout": SHARE,
    # worlds and generation (ochre/envs, ochre/data)
    "frames": AT_LEAST_1,
    "num_envs": AT_LEAST_1,
    "shard_frames": AT_LEAST_1,
    "max_episode_frames": NON_NEGATIVE,  # 0 = no limit
    "frame_skip": AT_LEAST_1,
    "episode_timeout": NON_NEGATIVE,  # 0 = none
    "start_level": NON_NEGATIVE,
    "num_levels": NON_NEGATIVE,  # 0 = unlimited
    "fps": NON_NEGATIVE,  # 0 = the env's own
    "box_bins": Range(3),
    "hold_min": AT_LEAST_1,
    "hold_max": AT_LEAST_1,
    "jump_hold": AT_LEAST_1,
}
PATTERNS: dict[str, Rule] = {"*_weight": NON_NEGATIVE, "*_prob": SHARE, "*_probability": SHARE}


def rule_for(key: str) -> Rule | None:
    """The rule of dotted config key `key` ("train.batch_size", "dynamics.config.memory"), or None."""
    parts = key.split(".")
    for name in (".".join(parts[-2:]), parts[-1]):
        if name in RULES:
            return RULES[name]
    return next((rule for pattern, rule in PATTERNS.items() if fnmatch.fnmatchcase(parts[-1], pattern)), None)


def check_field(cls: type, prefix: str, name: str, value: Any) -> None:
    """Raise `ConfigError` when `value` of field `name` breaks its rule (or is not finite): one line with the key,
    the value, what the field accepts and a fix (its default, when that passes)."""
    key = f"{prefix}{name}"
    rule = rule_for(key) or ANY
    for i, item in enumerate(_items(value)):
        problem = _problem(rule, item)
        if problem:
            where = f"{key}[{i}]" if isinstance(value, list | tuple) else key
            example = _example(cls, name, rule)
            fix = f"; set it, e.g. {key}={example}" if example else ""
            raise ConfigError(f"config key '{where}' {problem} (got {item!r}){fix}")


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _problem(rule: Rule, item: Any) -> str | None:
    if isinstance(item, float) and not math.isfinite(item):
        return "must be a finite number"
    return rule.problem(item)


def _example(cls: type, name: str, rule: Rule) -> str:
    """The field's default as an override value, when it passes its own rule ("" otherwise)."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if field.default is not dataclasses.MISSING:
        default = field.default
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        return ""
    if default in (None, "") or any(_problem(rule, v) for v in _items(default)):
        return ""
    return _yaml_scalar(default)


def _yaml_scalar(value: Any) -> str:
    return yaml.safe_dump(_plain(value), default_flow_style=True).strip().removesuffix("...").strip()


def from_dict(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    """Build dataclass `cls` from a nested dict, checking keys and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise ConfigError(f"unknown config key '{prefix}{key}' (known keys here: {', '.join(names)})")
    kwargs = {k: _coerce(hints[k], v, f"{prefix}{k}") for k, v in data.items()}
    for k, v in kwargs.items():
        check_field(cls, prefix, k, v)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {err}") from None


def _coerce(typ: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if dataclasses.is_dataclass(typ):
        return from_dict(typ, value if value is not None else {}, key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key '{key}' must be one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return value
    return value


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """['a.b=1', 'c=x'] -> {'a': {'b': 1}, 'c': 'x'}; values are parsed as YAML scalars."""
    tree: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"override '{item}': the value is not valid YAML ({' '.join(str(err).split())})") from None
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' sets a key inside the non-mapping '{part}'")
        node[parts[-1]] = value
    return tree


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge `update` into a copy of `base`."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        found = "is a folder" if path.is_dir() else f"is {special_file(path)}" if special_file(path) else "not found"
        raise ConfigError(f"{path}: config file {found}; give a YAML preset with --config")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of config sections")
    return data


def load_config(cls: type[C], preset: str | Path | None, overrides: list[str] | None = None) -> C:
    """Load preset YAML (optional), apply dotted overrides, validate into `cls`."""
    data = load_yaml(preset) if preset else {}
    data = merge(data, parse_overrides(overrides or []))
    where = f"{preset}: " if preset else ""
    try:
        return from_dict(cls, data)
    except ConfigError as err:
        raise ConfigError(f"{where}{err}") from None


ConfigChooser = Callable[[str, list[str]], type]  # (preset, overrides) -> the config class they are for


def preset_args(
    default_preset: str, argv: list[str] | None, doc: str | None, config_for: ConfigChooser | None = None
) -> tuple[str, list[str]]:
    """The shared CLI of every trainer: `--config PRESET key.sub=value ...` -> (preset, overrides).

    `--help` also lists every key of the config class `config_for` picks for the preset and overrides given
    with it, with its default, choices, the preset's value and its comment (`ochre.config_help`)."""
    args = sys.argv[1:] if argv is None else argv
    epilog = _keys_help(default_preset, args, config_for) if config_for and {"-h", "--help"} & set(args) else None
    p = ArgumentParser(description=doc, epilog=epilog)
    p.add_argument("--config", type=input_file, default=default_preset, help="YAML preset")
    p.add_argument("overrides", nargs="*", help="dotted overrides key.sub=value, e.g. train.max_steps=5 (keys below)")
    parsed = p.parse_args(argv)
    return parsed.config, parsed.overrides


def _keys_help(default_preset: str, args: list[str], config_for: ConfigChooser) -> str:
    """The config keys part of `--help`, for the preset and overrides among `args`."""
    pre = ArgumentParser(add_help=False)
    pre.add_argument("--config", default=default_preset)
    pre.add_argument("overrides", nargs="*")
    known, _ = pre.parse_known_args([a for a in args if a not in ("-h", "--help")])
    try:
        cls, preset = config_for(known.config, known.overrides), load_yaml(known.config)
    except ConfigError as err:
        return f"config keys: not listed, the preset cannot be read ({err})"
    head = f"config keys of {cls.__name__} (key=default {{choices}} (preset: its value in {known.config}), then what it does):"
    return f"{head}\n{config_help(cls, preset)}"


def config_from_argv(cls: type[C], default_preset: str, argv: list[str] | None, doc: str | None) -> C:
    """`--config PRESET key.sub=value ...` -> validated config."""
    return load_config(cls, *preset_args(default_preset, argv, doc, lambda *_: cls))


def peek(preset: str | Path | None, overrides: list[str], key: str, default: Any) -> Any:
    """One dotted key of preset + overrides before validation (to choose which config class validates them)."""
    node: Any = merge(load_yaml(preset) if preset else {}, parse_overrides(overrides))
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (lists, not tuples) safe for YAML and weights-only checkpoints."""
    return _plain(dataclasses.asdict(cfg))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
