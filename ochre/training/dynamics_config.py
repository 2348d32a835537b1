"""Config of dynamics training (`python -m train.dynamics`), loaded from a YAML preset with dotted overrides.

    cfg = load_config(DynamicsTrainConfig, "configs/coinrun/dynamics.yaml", ["train.max_steps=3000"])

`DynamicsLoopConfig` holds the loop and loss settings (`dynamics_loss.py` documents the
scheduled sampling and the loss terms they switch on); the model section is
`ochre.models.dynamics.DynamicsConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ochre.models.dynamics import DynamicsConfig
from ochre.training.common import DataConfig, LoggingConfig, LoopConfig, RunConfig


@dataclass
class DynamicsLoopConfig(LoopConfig):
    max_steps: int = 3000  # optimizer steps
    batch_size: int = 24  # windows per step and process (under torchrun one step sees batch_size x world size)
    seq_len: int = 12  # frames per window (seq_len - 1 predicted transitions)
    context: int = 3  # leading steps always teacher-forced
    ar_max: float = 0.5  # final probability of feeding the model's own prediction
    ar_start: int = 300  # step where p_ar starts ramping up from 0
    ar_end: int = 1500  # step where p_ar reaches ar_max (inverse sigmoid: its midpoint)
    ar_schedule: Literal["linear", "inverse_sigmoid"] = "linear"  # shape of the p_ar ramp
    ar_len: int = 0  # final number of trailing window steps that are always fed back (ramped like p_ar)
    feedback: Literal["greedy", "gumbel"] = "greedy"  # what is fed back: argmax tokens or Gumbel-softmax samples
    gumbel_tau: float = 1.0  # Gumbel-softmax temperature
    detach_feedback: bool = False  # gumbel: cut the gradient at fed-back inputs (saves memory)
    token_noise: float = 0.02  # fraction of input tokens replaced by random codes
    change_weight: float = 0.0  # cross-entropy weight 1 + w on cells whose true token changes (normalised to mean 1)
    pixel_weight: float = 0.0  # L1 between decoded predicted and target frames (through the frozen decoder)
    pixel_change_weight: float = 0.0  # that L1 weighted 1 + w on pixels that change from the previous frame (mean 1)
    lpips_weight: float = 0.0  # LPIPS on the same decoded frames (needs the backbone weights)
    lpips_weights: str = ""  # LPIPS backbone weights file; empty = torch hub cache
    pixel_samples: int = 4  # windows per batch that are decoded for the pixel terms
    idm_weight: float = 0.0  # inverse dynamics on real frame pairs (needs model.idm_span > 0)
    idm_pred_weight: float = 0.0  # the frozen IDM head on predicted frames: predictions must show the action
    amp: Literal["off", "bf16", "fp16"] = "bf16"  # mixed precision on CUDA (CPU runs float32)
    compile: bool = False  # torch.compile the one-timestep forward (the first steps pay for the compilation)
    max_bad_steps: int = 10  # non-finite losses skipped before the run stops
    resume: str = ""  # train_state.pt of an earlier run: continue it exactly (same config)
    init_from: str = ""  # world checkpoint whose dynamics weights start this run (fresh optimizer)
    hard_share: float = 0.0  # share of every batch drawn from the hardest training windows, as init_from's world scores them
    hard_pool: float = 0.1  # that pool: this share of the scored windows, the ones with the highest loss on changing cells
    hard_scan: int = 8192  # training windows scored for the pool, evenly spaced
    val_context: int = 4  # seed frames for validation rollouts
    val_horizon: int = 16  # predicted frames in validation rollouts
    val_windows: int = 32  # windows in the fixed validation set
    ball_windows: int = 256  # Pong only: validation windows of the ball check (val/ball@6); 0 turns it off
    play_windows: int = (
        64  # held-key validation windows of the play check (val/play_*, ochre/training/play_validation.py); 0 = off
    )
    dist_backend: Literal["", "nccl", "gloo"] = ""  # torchrun process-group backend; empty = nccl on CUDA, gloo on CPU


@dataclass
class TokenizerRef:
    path: str = ""  # tokenizer or world checkpoint; empty = the one recorded in the token dataset's manifest


@dataclass
class DynamicsTrainConfig:
    data: DataConfig = field(default_factory=lambda: DataConfig(path="data/coinrun_train_tokens"))
    tokenizer: TokenizerRef = field(default_factory=TokenizerRef)
    model: DynamicsConfig = field(default_factory=lambda: DynamicsConfig(codebook_size=0))
    train: DynamicsLoopConfig = field(default_factory=DynamicsLoopConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    run: RunConfig = field(default_factory=RunConfig)
