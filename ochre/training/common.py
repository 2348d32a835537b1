"""Config sections and loop helpers shared by every training entry point."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Literal

import torch

from ochre.device import DeviceChoice, choose_device


@dataclass
class DataConfig:
    path: str = "data/coinrun_train"  # dataset folder: frames (tokenizer, pixel_film), tokens or latents (dynamics)
    val_every: int = 10  # every n-th episode is validation (split by episode, never by frame)


@dataclass
class LoggingConfig:
    wandb: Literal["off", "online", "offline"] = "off"  # Weights & Biases mode
    project: str = "ochre"  # W&B project
    wandb_timeout: float = 60.0  # seconds W&B may take to start before the run stops with an error
    log_every: int = 25  # steps between metrics.csv rows
    sample_every: int = 500  # steps between image/video samples and validation


@dataclass
class RunConfig:
    world: str = "coinrun"  # world name, used in the run folder name
    dir: str = "runs"  # parent folder of run folders
    name: str = ""  # run folder name; empty = <timestamp>_<world>_<stage>


@dataclass
class LoopConfig:
    """Optimizer-loop settings shared by every trainer."""

    max_steps: int = 2000  # optimizer steps
    batch_size: int = 32  # samples per step
    lr: float = 1e-3  # peak learning rate (cosine decay after warmup)
    warmup_steps: int = 100  # linear warmup steps
    grad_clip: float = 1.0  # max gradient norm
    seed: int = 0  # torch/numpy seed
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps, one this machine has (auto: cuda when there is one)
    threads: int = 0  # torch CPU threads (0 = torch default)
    checkpoint_every: int = 500  # steps between checkpoint writes
    prefetch: int = 2  # batches sampled ahead by a background thread (pinned memory on CUDA); 0 = on the main thread


def lr_at(step: int, cfg: LoopConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to 5% of it at cfg.max_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(opt: torch.optim.Optimizer, step: int, cfg: LoopConfig) -> float:
    lr = lr_at(step, cfg)
    for group in opt.param_groups:
        group["lr"] = lr
    return lr


def optimizer_step(
    opt: torch.optim.Optimizer,
    model: torch.nn.Module,
    loss: torch.Tensor,
    grad_clip: float,
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """Backward, clip, step (through `scaler` for fp16); returns the gradient norm before clipping."""
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        return float(norm)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(opt)
    scaler.update()
    return float(norm)


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA ("bf16" or "fp16"); a no-op on CPU or with "off"."""
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def grad_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler | None:
    """fp16 on CUDA needs loss scaling; bf16 and fp32 do not."""
    return torch.amp.GradScaler("cuda") if device.type == "cuda" and amp == "fp16" else None


def setup_torch(cfg: LoopConfig) -> DeviceChoice:
    """Seed torch, set CPU threads, and choose the device (train.device; see `ochre.device.choose_device`).
    On the CPU, denormal floats (below 1.2e-38) are flushed to zero: a trained network's small gradients and
    saturated gates reach that range, and CPU arithmetic on denormals is slow (the Pong dynamics preset's backward
    pass took 4.3 s per step at step 250 with them, 1.7 s flushed). On CUDA, cuDNN picks its fastest kernels for the
    (fixed) shapes and float32 matmuls and convolutions run as TF32."""
    torch.manual_seed(cfg.seed)
    torch.set_flush_denormal(True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    choice = choose_device(cfg.device, "train.device")
    if choice.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")  # TF32
    return choice


def to_floats(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Scalar tensors as Python floats, read from the device in one go (one wait instead of one per value)."""
    if not values:
        return {}
    first = next(iter(values.values()))
    stacked = torch.stack([v.detach().to(first.device, torch.float64) for v in values.values()])
    return dict(zip(values, stacked.tolist(), strict=True))


class StepTimer:
    """Time per phase of a training step (data / forward / backward / optimizer), averaged since the last summary.

    On the CPU the phases are timed by the wall clock. On CUDA by events recorded on the stream, so timing
    never makes the host wait for the device: a phase is added once its end event has completed (asked without
    waiting), and only `summary`, on log steps, waits for the last one.
    """

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.totals: dict[str, float] = {}  # seconds per phase since the last summary
        self.steps = 0
        self._mark: float | torch.cuda.Event = 0.0  # where the current phase began
        self._pending: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []  # CUDA phases not yet completed

    def start(self) -> None:
        self._mark = self._now()
        self.steps += 1

    def lap(self, name: str) -> None:
        now = self._now()
        if self.cuda:
            self._pending.append((name, self._mark, now))
            self._collect(wait=False)
        else:
            self.totals[name] = self.totals.get(name, 0.0) + now - self._mark
        self._mark = now

    def summary(self, frames_per_step: int) -> dict[str, float]:
        self._collect(wait=True)
        out = {f"time/{k}_ms": 1000 * v / self.steps for k, v in self.totals.items()}
        total = sum(self.totals.values()) / max(1, self.steps)
        out["throughput/frames_per_s"] = frames_per_step / total if total else 0.0
        self.totals, self.steps = {}, 0
        return out

    def _now(self) -> float | torch.cuda.Event:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def _collect(self, wait: bool) -> None:
        """Add the CUDA phases whose end event has completed; all of them, waiting for the device, when `wait`."""
        while self._pending and (wait or self._pending[0][2].query()):  # one stream: events complete in order
            name, begin, end = self._pending.pop(0)
            end.synchronize()
            self.totals[name] = self.totals.get(name, 0.0) + begin.elapsed_time(end) / 1000
