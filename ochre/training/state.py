"""Training state for exact resume: weights, optimizer, step and every RNG the loop draws from."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ochre.errors import OchreError
from ochre.io import load_torch, save_torch


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


def save_train_state(
    path: str | Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    step: int,
    rng: np.random.Generator,
    extra: dict[str, Stateful | None] | None = None,
) -> None:
    """`extra`: more objects with state (a discriminator, its optimizer, a grad scaler); None entries are skipped."""
    state = {
        "format": "ochre-train-state",
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": rng.bit_generator.state,
        "extra": {k: v.state_dict() for k, v in (extra or {}).items() if v is not None},
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    save_torch(path, state)


def load_train_state(
    path: str | Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    rng: np.random.Generator,
    extra: dict[str, Stateful | None] | None = None,
) -> int:
    """Restore everything in place; returns the step to continue from."""
    state = load_torch(path, "training state")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    rng.bit_generator.state = state["numpy_rng"]
    saved = state.get("extra", {})
    for key, obj in (extra or {}).items():
        if obj is not None:
            if key not in saved:
                raise OchreError(f"{path}: training state has no '{key}' (it was saved by a run with other settings)")
            obj.load_state_dict(saved[key])
    return int(state["step"])
