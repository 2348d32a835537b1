"""The world checkpoint: tokenizer + dynamics + action schema + configs in one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ochre.actions import ActionSpec
from ochre.checkpoint import FORMAT_VERSION, state_dict_cpu
from ochre.config import to_dict
from ochre.io import save_torch
from ochre.models.dynamics import Dynamics
from ochre.seed_contexts import SeedContexts


def save_world(
    path: str | Path,
    tokenizer_payload: dict[str, Any],
    dynamics: Dynamics,
    action_spec: ActionSpec,
    configs: dict[str, Any],
    step: int,
    world: str,
    fps: float,
    seeds: SeedContexts | None = None,
    source: dict[str, Any] | None = None,
) -> None:
    """Write the world checkpoint (atomically); `seeds`, clips of its data, let it play from the file alone, and
    `source` (`data_source` of its data's manifest) names the game and env settings the data was drawn with."""
    tok_cfg = tokenizer_payload["config"]
    save_torch(
        path,
        {
            "format": "ochre-world",
            "format_version": FORMAT_VERSION,
            "world": world,
            "fps": float(fps),
            "frame_shape": [*tok_cfg["frame_size"], 3],
            "codebook_size": int(tokenizer_payload["codebook_size"]),
            "action_schema": action_spec.to_dict(),
            "tokenizer": {
                k: tokenizer_payload[k] for k in ("config", "state_dict", "codebook_size", "embed_dim") if k in tokenizer_payload
            },
            "dynamics": {"config": to_dict(dynamics.cfg), "state_dict": state_dict_cpu(dynamics)},
            "configs": configs,
            "step": step,
        }
        | ({"seeds": seeds.to_payload()} if seeds is not None else {})
        | ({"source": source} if source is not None else {}),
    )


def data_source(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The game a dataset was drawn from, {"env": kind, "settings": {...}}, for the world checkpoint to keep;
    None where its manifest names no game (imported recordings)."""
    source = manifest.get("source")
    if not isinstance(source, dict) or "env" not in source or not isinstance(source.get("settings"), dict):
        return None
    return {"env": source["env"], "settings": dict(source["settings"])}
