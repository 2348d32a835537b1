"""Config of latent dynamics training (`python -m train.dynamics` with model.type=latent_gru or latent_flow).

    cfg = load_config(LatentFlowTrainConfig, "configs/coinrun/latent_flow.yaml", ["train.max_steps=3000"])

The model sections are `ochre.models.latent_gru.LatentGRUConfig` and
`ochre.models.latent_flow.LatentFlowConfig`; `latent_loss.py` documents the loss terms,
the scheduled sampling and the context noise these settings switch on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ochre.models.latent_flow import LatentFlowConfig
from ochre.models.latent_gru import LatentGRUConfig
from ochre.training.common import DataConfig, LoggingConfig, LoopConfig, RunConfig


@dataclass
class LatentLoopConfig(LoopConfig):
    max_steps: int = 3000  # optimizer steps
    batch_size: int = 16  # windows per step
    seq_len: int = 12  # latents per window (seq_len - 1 predicted transitions)
    context: int = 3  # leading inputs always the real latents
    ar_max: float = 0.5  # final probability of feeding the model's own prediction as the next input
    ar_start: int = 300  # step where that probability starts ramping up (linearly) from 0
    ar_end: int = 1500  # step where it reaches ar_max
    context_noise: float = 0.3  # inputs get Gaussian noise of a std drawn from U(0, this), normalised latent units
    amp: Literal["off", "bf16", "fp16"] = "bf16"  # mixed precision on CUDA (CPU runs float32)
    max_bad_steps: int = 10  # non-finite losses skipped before the run stops
    resume: str = ""  # train_state.pt of an earlier run: continue it exactly (same config)
    val_context: int = 4  # seed latents of validation rollouts
    val_horizon: int = 16  # predicted frames of validation rollouts
    val_windows: int = 32  # windows in the fixed validation set


@dataclass
class LatentGRULoopConfig(LatentLoopConfig):
    huber_delta: float = 1.0  # Huber loss on the next latent: quadratic below this error, linear above


@dataclass
class LatentFlowLoopConfig(LatentLoopConfig):
    action_dropout: float = 0.1  # share of steps trained with the null action (for classifier-free guidance)
    feedback_steps: int = 1  # Euler steps of the samples fed back as inputs (scheduled sampling)
    feedback_noise: float = 1.0  # starting-noise std of those samples (0: greedy, as the app plays by default)
    feedback_greedy: float = 0.0  # share of the fed-back samples drawn greedily (zero noise) whatever feedback_noise


@dataclass
class LatentTokenizerRef:
    path: str = ""  # continuous tokenizer or world checkpoint; empty = the one recorded in the latent dataset's manifest


@dataclass
class LatentGRUTrainConfig:
    data: DataConfig = field(default_factory=lambda: DataConfig(path="data/coinrun_play_latents"))
    tokenizer: LatentTokenizerRef = field(default_factory=LatentTokenizerRef)
    model: LatentGRUConfig = field(default_factory=LatentGRUConfig)
    train: LatentGRULoopConfig = field(default_factory=LatentGRULoopConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class LatentFlowTrainConfig:
    data: DataConfig = field(default_factory=lambda: DataConfig(path="data/coinrun_play_latents"))
    tokenizer: LatentTokenizerRef = field(default_factory=LatentTokenizerRef)
    model: LatentFlowConfig = field(default_factory=LatentFlowConfig)
    train: LatentFlowLoopConfig = field(default_factory=LatentFlowLoopConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    run: RunConfig = field(default_factory=RunConfig)


LatentTrainConfig = LatentGRUTrainConfig | LatentFlowTrainConfig
