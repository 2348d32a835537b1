"""Config sections shared by every training entry point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch


@dataclass
class DataConfig:
    path: str = "data/coinrun_train"  # dataset folder (frames for the tokenizer, tokens for dynamics)
    val_every: int = 10  # every n-th episode is validation (split by episode, never by frame)


@dataclass
class LoggingConfig:
    wandb: Literal["off", "online", "offline"] = "off"  # Weights & Biases mode
    project: str = "ochre"  # W&B project
    log_every: int = 25  # steps between metrics.csv rows
    sample_every: int = 500  # steps between image/video samples and validation


@dataclass
class RunConfig:
    world: str = "coinrun"  # world name, used in the run folder name
    dir: str = "runs"  # parent folder of run folders
    name: str = ""  # run folder name; empty = <timestamp>_<world>_<stage>


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
