"""Checkpoint files: plain dicts of tensors and containers, loadable with weights_only=True.

tokenizer checkpoint:  {"format": "ochre-tokenizer", config, state_dict, step, ...}
world checkpoint:      {"format": "ochre-world", tokenizer: {...}, dynamics: {...},
                        action_schema, configs, codebook_size, frame_shape, step, format_version}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ochre.config import from_dict, to_dict
from ochre.errors import OchreError
from ochre.io import load_torch, save_torch
from ochre.models.tokenizer import Tokenizer, TokenizerConfig

FORMAT_VERSION = 1


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
    return payload


def build_tokenizer(payload: dict[str, Any]) -> Tokenizer:
    """Tokenizer from the `tokenizer` section of a world checkpoint or a tokenizer checkpoint.

    The codebook size and embedding size recorded beside the config must match the
    model the config builds, so a checkpoint can never be read with the wrong codebook.
    """
    model = Tokenizer(from_dict(TokenizerConfig, payload["config"]))
    for key, built in (("codebook_size", model.codebook_size), ("embed_dim", model.cfg.embed_dim)):
        if key in payload and payload[key] != built:
            raise OchreError(f"tokenizer checkpoint records {key}={payload[key]} but its config builds {key}={built}")
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def load_tokenizer(path: str | Path) -> Tokenizer:
    return build_tokenizer(load_checkpoint(path, "ochre-tokenizer"))


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
    return build_tokenizer(load_tokenizer_payload(path))


def state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}
