"""Typed configs: YAML presets plus dotted command-line overrides.

    cfg = load_config(DynamicsTrainConfig, "configs/coinrun/dynamics.yaml", ["train.max_steps=5"])

Configs are plain dataclasses that live next to the code they configure. Loading
validates every key: an unknown key, a wrong type or a bad value raises
`ConfigError` naming the dotted key and what it accepts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from ochre.errors import ConfigError

C = TypeVar("C")


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
        value = yaml.safe_load(raw) if raw.strip() else ""
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
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
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


def preset_args(default_preset: str, argv: list[str] | None, doc: str | None) -> tuple[str, list[str]]:
    """The shared CLI of every trainer: `--config PRESET key.sub=value ...` -> (preset, overrides)."""
    import argparse

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=default_preset, help="YAML preset")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=5")
    args = p.parse_args(argv)
    return args.config, args.overrides


def config_from_argv(cls: type[C], default_preset: str, argv: list[str] | None, doc: str | None) -> C:
    """`--config PRESET key.sub=value ...` -> validated config."""
    return load_config(cls, *preset_args(default_preset, argv, doc))


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
