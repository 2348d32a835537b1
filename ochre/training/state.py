"""Training state for exact resume: weights, optimizer, step, every rank's random streams and the W&B run id.

rng = RankRNG(sampler.rng, device, cfg.train.seed, launch)
resumed = load_train_state("runs/x/checkpoints/train_state.pt", model, opt, rng, {"scaler": scaler})
...
rng.gather()  # under torchrun: every rank, before rank 0 saves
save_train_state(path, model, opt, step, rng, {"scaler": scaler}, wandb_id=logger.wandb_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from ochre.errors import OchreError
from ochre.io import load_torch, save_torch
from ochre.training.distributed import RankRNG


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class ResumePoint:
    """Where a run starts: step 0 for a new run, or the saved step and W&B run of the state it resumes."""

    step: int = 0
    wandb_id: str = ""  # the W&B run to reopen; empty = none was logged (or W&B was off)


def save_train_state(
    path: str | Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    step: int,
    rng: RankRNG,
    extra: dict[str, Stateful | None] | None = None,
    wandb_id: str = "",
) -> None:
    """`extra`: more objects with state (a discriminator, its optimizer, a grad scaler); None entries are skipped.
    Under torchrun the streams are the ones every rank handed over in `rng.gather()`."""
    state = {
        "format": "ochre-train-state",
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "rngs": rng.ranks if rng.launch.distributed else rng.gather(),
        "extra": {k: v.state_dict() for k, v in (extra or {}).items() if v is not None},
        "wandb_id": wandb_id,
    }
    save_torch(path, state)


def load_train_state(
    path: str | Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    rng: RankRNG,
    extra: dict[str, Stateful | None] | None = None,
) -> ResumePoint:
    """Restore everything in place (this rank's random streams mapped by rank, see `RankRNG.restore`)."""
    state = load_torch(path, "training state")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    step = int(state["step"])
    rng.restore(saved_streams(state), step)
    saved = state.get("extra", {})
    for key, obj in (extra or {}).items():
        if obj is not None:
            if key not in saved:
                raise OchreError(f"{path}: training state has no '{key}' (it was saved by a run with other settings)")
            obj.load_state_dict(saved[key])
    return ResumePoint(step, state.get("wandb_id", ""))


def saved_streams(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every saved rank's random streams, also from states written before they were kept per rank."""
    if "rngs" in state:
        return state["rngs"]
    if ranks := state.get("extra", {}).get("ranks", {}).get("ranks"):  # torchrun runs kept them as an extra
        return ranks
    own = {"torch": state["torch_rng"], "numpy": state["numpy_rng"]}
    if state.get("cuda_rng"):  # every visible GPU's stream; a single process trained on the first
        own["cuda"] = state["cuda_rng"][0]
    return [own]
