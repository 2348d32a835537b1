"""Checkpoint files: plain dicts of tensors and containers, loadable with weights_only=True.

tokenizer checkpoint:  {"format": "ochre-tokenizer", config, state_dict, step, ...}
world checkpoint:      {"format": "ochre-world", tokenizer: {...}, dynamics: {...},
                        action_schema, configs, codebook_size, frame_shape, step, format_version,
                        seeds: {frames, actions, source}, source: {env, settings}}
pixel world:           {"format": "ochre-pixel-world", model: {...}, action_schema, ..., seeds}

`seeds` (optional; `ochre.seed_contexts`) holds a few clips of the world's own data, so
the world plays from its file alone; `add_seed_contexts` puts them into a checkpoint
written without them. `source` (optional; `ochre.world.data_source`) names the game and
env settings its data was drawn with, so ghost mode and play tests start that game.

Every checkpoint is checked before use, each failure one line that names the file:
its format and version, the sections its format needs (`SECTIONS`), and, as a
model takes its weights (`load_weights`), that the tensors are the ones its config
builds, in shape, and finite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch

from ochre.actions import ActionSpec, action_spec_from_dict
from ochre.config import from_dict, to_dict
from ochre.errors import OchreError
from ochre.io import load_torch, save_torch
from ochre.models.tokenizer import Tokenizer, TokenizerConfig
from ochre.seed_contexts import SeedContexts

C = TypeVar("C")
FORMAT_VERSION = 1
SECTIONS = {  # what each format must hold; a nested name is "section.key"
    "ochre-tokenizer": ("config", "state_dict"),
    "ochre-world": (
        "tokenizer.config",
        "tokenizer.state_dict",
        "dynamics.config",
        "dynamics.state_dict",
        "action_schema",
        "codebook_size",
    ),
    "ochre-pixel-world": ("model.config", "model.state_dict", "action_schema"),
}


def tokenizer_payload(model: Tokenizer, step: int, train_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "ochre-tokenizer",
        "format_version": FORMAT_VERSION,
        "config": to_dict(model.cfg),
        "state_dict": model.state_dict(),
        "codebook_size": model.codebook_size,
        "quantizer": model.cfg.quantizer,
        "embed_dim": model.cfg.embed_dim,
        "token_grid": list(model.cfg.token_grid),
        "step": step,
        "train_config": train_config,
    }


def save_tokenizer(path: str | Path, model: Tokenizer, step: int, train_config: dict[str, Any]) -> None:
    save_torch(path, tokenizer_payload(model, step, train_config))


def load_checkpoint(path: str | Path, expect: str) -> dict[str, Any]:
    """Load a checkpoint and check it is of format `expect` ("ochre-tokenizer" or "ochre-world")."""
    return checked(load_torch(path), path, expect)


def checked(payload: Any, path: str | Path, expect: str) -> dict[str, Any]:
    """A loaded checkpoint `payload`, once it is known to be of format `expect` and of this format version."""
    if not isinstance(payload, dict) or payload.get("format") != expect:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise OchreError(f"{path}: expected an {expect} checkpoint, found {found!r}")
    if payload.get("format_version") != FORMAT_VERSION:
        raise OchreError(f"{path}: checkpoint format_version {payload.get('format_version')} is not {FORMAT_VERSION}")
    for name in SECTIONS.get(expect, ()):
        node: Any = payload
        for key in name.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            raise OchreError(f"{path}: the {expect} checkpoint has no '{name}'; it is incomplete, write it again")
    return payload


def config_from(cls: type[C], payload: dict[str, Any], path: str | Path, section: str) -> C:
    """The config dataclass `cls` stored under `section`, with a config error naming the file."""
    try:
        return from_dict(cls, payload, f"{section}.")
    except OchreError as err:
        raise OchreError(f"{path}: {err}") from None


def load_weights(model: torch.nn.Module, state: Any, path: str | Path, section: str) -> None:
    """Load `state` into `model` once every tensor is known to be the one the model's config builds, and finite."""
    where = f"{path}: {section} weights"
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise OchreError(f"{where} are not a dict of tensors; the checkpoint is damaged, write it again")
    own = model.state_dict()
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    if missing or unexpected:
        listed = ", ".join([*(f"missing {k}" for k in missing[:3]), *(f"unexpected {k}" for k in unexpected[:3])])
        raise OchreError(f"{where} do not match the model their config builds ({listed}); the checkpoint is damaged or mixed")
    for name, value in state.items():
        if value.shape != own[name].shape:
            raise OchreError(
                f"{where}: {name} has shape {tuple(value.shape)} but the config builds {tuple(own[name].shape)}; "
                "the weights and config come from different models"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise OchreError(f"{where}: {name} holds NaN or infinite values; use an earlier checkpoint of the run")
    model.load_state_dict(state)


def build_tokenizer(payload: dict[str, Any], path: str | Path = "tokenizer checkpoint") -> Tokenizer:
    """Tokenizer from the `tokenizer` section of a world checkpoint or a tokenizer checkpoint.

    The codebook size and embedding size recorded beside the config must match the
    model the config builds, so a checkpoint can never be read with the wrong codebook.
    """
    model = Tokenizer(config_from(TokenizerConfig, payload["config"], path, "tokenizer.config"))
    for key, built in (("codebook_size", model.codebook_size), ("embed_dim", model.cfg.embed_dim)):
        if key in payload and payload[key] != built:
            raise OchreError(f"{path}: the tokenizer records {key}={payload[key]} but its config builds {key}={built}")
    load_weights(model, payload["state_dict"], path, "tokenizer")
    return model.eval()


def load_tokenizer(path: str | Path) -> Tokenizer:
    return build_tokenizer(load_checkpoint(path, "ochre-tokenizer"), path)


def load_tokenizer_payload(path: str | Path) -> dict[str, Any]:
    """The tokenizer payload of a tokenizer checkpoint, or of a world checkpoint's tokenizer section.

    A world's section gets back the tokenizer's training config from the world's `configs`,
    so a world trained on tokens made by another world's tokenizer records it as well.
    """
    payload = load_torch(path)  # read once, whichever kind it is
    if isinstance(payload, dict) and payload.get("format") == "ochre-world":
        world = checked(payload, path, "ochre-world")
        return world["tokenizer"] | {"train_config": world.get("configs", {}).get("tokenizer_train", {})}
    return checked(payload, path, "ochre-tokenizer")


def load_tokenizer_or_world(path: str | Path) -> Tokenizer:
    """A tokenizer from a tokenizer checkpoint or from the tokenizer section of a world checkpoint."""
    return build_tokenizer(load_tokenizer_payload(path), path)


def add_seed_contexts(path: str | Path, seeds: SeedContexts, data_spec: ActionSpec) -> dict[str, Any]:
    """Write `seeds` (cut from a dataset whose action schema is `data_spec`) into the world or pixel world checkpoint
    at `path`, in place and atomically, once they are known to fit it; returns the new payload."""
    payload = load_torch(path)
    kind = payload.get("format") if isinstance(payload, dict) else None
    payload = checked(payload, path, kind if kind in ("ochre-world", "ochre-pixel-world") else "ochre-world")
    spec = action_spec_from_dict(payload["action_schema"])
    if data_spec.to_dict() != spec.to_dict():
        raise OchreError(
            f"{path}: the world's action schema is '{spec.name}' but the dataset {seeds.source.get('dataset')} records "
            f"'{data_spec.name}' (or other settings of it); cut seeds from this world's own data"
        )
    SeedContexts.from_payload(seeds.to_payload(), path, tuple(payload["frame_shape"]), spec)  # fits, or one error line
    payload["seeds"] = seeds.to_payload()
    save_torch(path, payload)
    return payload


def state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}
