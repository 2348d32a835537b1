"""Training state for exact resume: weights, optimizer, step and every RNG the loop draws from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ochre.io import load_torch, save_torch


def save_train_state(
    path: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, rng: np.random.Generator
) -> None:
    save_torch(
        path,
        {
            "format": "ochre-train-state",
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "step": step,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": rng.bit_generator.state,
        },
    )


def load_train_state(path: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer, rng: np.random.Generator) -> int:
    """Restore everything in place; returns the step to continue from."""
    state = load_torch(path, "training state")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    rng.bit_generator.state = state["numpy_rng"]
    return int(state["step"])
