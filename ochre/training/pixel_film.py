"""Training the pixel-space FiLM baseline (`model.type: pixel_film`) on a frame dataset.

    python -m train.dynamics --config configs/coinrun/pixel_film.yaml data.path=data/coinrun_train

Same plumbing as the token dynamics: typed config, run folder with metrics.csv,
image strips and rollout videos (and W&B), exact resume from train_state.pt, and a
checkpoint (`ochre-pixel-world`) that `ochre.pixel_world.PixelWorld` loads for
`python -m train.evaluate --baseline`. It trains in one process: under torchrun it
stops with one line saying so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from ochre.actions import ActionSpec
from ochre.checkpoint import FORMAT_VERSION, state_dict_cpu
from ochre.config import to_dict
from ochre.data.store import EpisodeDataset
from ochre.data.windows import Batch, WindowSampler
from ochre.errors import ConfigError, OchreError
from ochre.frames import to_unit
from ochre.images import image_grid
from ochre.io import save_torch
from ochre.metrics import psnr, ssim
from ochre.models.pixel_film import PixelFiLM, PixelFiLMConfig, motion_weighted_bce, rollout_frames
from ochre.seed_contexts import SeedContexts, seed_contexts
from ochre.training import distributed
from ochre.training.common import (
    DataConfig,
    LoggingConfig,
    LoopConfig,
    RunConfig,
    autocast,
    grad_scaler,
    optimizer_step,
    set_lr,
    setup_torch,
)
from ochre.training.logger import RunLogger, make_run_dir
from ochre.training.run_info import Throughput, run_info
from ochre.training.state import ResumePoint, load_train_state, save_train_state


@dataclass
class PixelFiLMLoopConfig(LoopConfig):
    motion_tau: float = 0.05  # a pixel moves when any channel changes by more than this (frames in [0, 1])
    motion_dilate: int = 2  # grow the motion mask by this many pixels
    motion_weight: float = 4.0  # moving pixels weigh 1 + motion_weight before normalising to mean 1
    amp: Literal["off", "bf16", "fp16"] = "bf16"  # mixed precision on CUDA (CPU always runs float32)
    val_windows: int = 64  # fixed validation windows
    val_horizon: int = 32  # open-loop validation steps after the P seed frames
    resume: str = ""  # train_state.pt of an earlier run: continue it exactly (same config)


@dataclass
class PixelFiLMTrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: PixelFiLMConfig = field(default_factory=PixelFiLMConfig)
    train: PixelFiLMLoopConfig = field(default_factory=PixelFiLMLoopConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    run: RunConfig = field(default_factory=RunConfig)


def resolve_model_config(cfg: PixelFiLMConfig, data: EpisodeDataset) -> PixelFiLMConfig:
    """Frame size and action factors come from the dataset; an override that disagrees is an error."""
    spec = data.action_spec
    factored = spec.kind != "discrete"
    truths = {
        "frame_size": list(data.manifest["frame_shape"][:2]),
        "num_actions": 0 if factored else spec.n,
        "action_factors": list(spec.factors) if factored else [],
    }
    for key, truth in truths.items():
        given = getattr(cfg, key)
        if given not in (0, []) and given != truth:
            raise ConfigError(f"model.{key}={given} but the dataset {data.path} has {truth}; remove the override")
    try:
        return PixelFiLMConfig(**(to_dict(cfg) | truths))
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None


def split_window(batch: Batch, p: int, f: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """A (B, P+F) window -> past frames, past actions (P-1), future actions (F), future frames; frames in [0, 1]."""
    frames = to_unit(batch.rows).to(device)
    actions = batch.actions.to(device)
    return frames[:, :p], actions[:, : p - 1], actions[:, p - 1 : p - 1 + f], frames[:, p : p + f]


def window_loss(model: PixelFiLM, batch: Batch, cfg: PixelFiLMLoopConfig, device: torch.device) -> tuple[torch.Tensor, dict]:
    p, f = model.cfg.past_frames, model.cfg.future_frames
    past, past_actions, future_actions, target = split_window(batch, p, f, device)
    logits = model(past, past_actions, future_actions)
    loss = motion_weighted_bce(logits.float(), target, past[:, -1], cfg.motion_tau, cfg.motion_dilate, cfg.motion_weight)
    with torch.no_grad():
        mse = (torch.sigmoid(logits.float()) - target).pow(2).mean()
    return loss, {"loss": float(loss), "psnr": float(10 * torch.log10(1 / mse.clamp_min(1e-10)))}


def save_pixel_world(
    path: Path, model: PixelFiLM, spec: ActionSpec, configs: dict, step: int, world: str, fps: float, seeds: SeedContexts
) -> None:
    """Write the pixel world checkpoint (atomically), with clips of its validation episodes (`seeds`)."""
    h, w = model.cfg.frame_size
    save_torch(
        path,
        {
            "format": "ochre-pixel-world",
            "format_version": FORMAT_VERSION,
            "world": world,
            "fps": float(fps),
            "frame_shape": [h, w, 3],
            "action_schema": spec.to_dict(),
            "model": {"config": to_dict(model.cfg), "state_dict": state_dict_cpu(model)},
            "configs": configs,
            "step": step,
            "seeds": seeds.to_payload(),
        },
    )


@torch.no_grad()
def validate(model: PixelFiLM, val: Batch, cfg: PixelFiLMLoopConfig, device: torch.device, logger: RunLogger, step: int) -> dict:
    """One-call loss/PSNR/SSIM on the first F future frames, and an open-loop rollout over val_horizon vs copy-last."""
    p = model.cfg.past_frames
    model.eval()
    _, one = window_loss(model, val, cfg, device)
    frames, actions = to_unit(val.rows).to(device), val.actions.to(device)
    target = frames[:, p:]
    pred = rollout_frames(model, frames[:, :p], actions[:, : p - 1], actions[:, p - 1 : -1])
    model.train()
    copy = frames[:, p - 1 : p].expand_as(target)
    strip = [(x[0] * 255).round().byte().movedim(1, -1).cpu().numpy() for x in (target, pred)]
    logger.image("val_rollout", step, image_grid(strip))
    logger.video("val_rollout", step, np.concatenate(strip, axis=2), fps=8)
    return {
        "val/loss": one["loss"],
        "val/psnr": one["psnr"],
        "val/ssim@1": ssim(pred[:, 0], target[:, 0]),
        "val/rollout_psnr": psnr(pred, target),
        "val/copy_psnr": psnr(copy, target),
        f"val/rollout_psnr@{target.shape[1]}": psnr(pred[:, -1], target[:, -1]),
    }


def train_pixel_film(cfg: PixelFiLMTrainConfig) -> Path:
    """Train, write the pixel-world checkpoint, and return its path."""
    distributed.refuse_launch("model.type=pixel_film", "python -m train.dynamics --config <preset> (without torchrun)")
    choice = setup_torch(cfg.train)
    print(choice)
    device = choice.device
    data = EpisodeDataset(cfg.data.path, expect_kind="frames")
    data.verify_once()  # sha256 of every shard the first time, then of what changed since
    model_cfg = resolve_model_config(cfg.model, data)
    p, f = model_cfg.past_frames, model_cfg.future_frames
    if cfg.train.val_horizon < 1:
        raise ConfigError("train.val_horizon must be at least 1")
    model = PixelFiLM(model_cfg).to(device)
    train = WindowSampler(data, p + f, "train", cfg.data.val_every, seed=cfg.train.seed)
    val = WindowSampler(data, p + cfg.train.val_horizon, "val", cfg.data.val_every, seed=cfg.train.seed + 1)
    val_batch = val.fixed(cfg.train.val_windows)
    run_dir = make_run_dir(cfg.run.dir, cfg.run.world, "pixel_film", cfg.run.name, cfg.train.resume)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=0.01)
    scaler = grad_scaler(device, cfg.train.amp)
    world_path, state_path = run_dir / "checkpoints" / "pixel_world.pt", run_dir / "checkpoints" / "train_state.pt"
    rng = distributed.RankRNG(train.rng, device, cfg.train.seed, distributed.Launch())
    resumed = load_train_state(cfg.train.resume, model, opt, rng, {"scaler": scaler}) if cfg.train.resume else ResumePoint()
    start = resumed.step
    logger = RunLogger(run_dir, cfg, cfg.logging, resumed)
    speed = Throughput(cfg.train.batch_size * f, start)
    world, fps = data.manifest.get("world", cfg.run.world), data.manifest.get("fps", 15)
    configs: dict[str, Any] = {"pixel_film_train": to_dict(cfg)}
    seeds = seed_contexts(data, p, cfg.data.val_every)  # P frames: what the model's rollout starts from

    def save(step: int) -> None:
        info = run_info(device, 1, speed, step)
        save_pixel_world(world_path, model, data.action_spec, configs | {"run_info": info.to_json()}, step, world, fps, seeds)
        save_train_state(state_path, model, opt, step, rng, {"scaler": scaler}, logger.wandb_id)
        info.write(run_dir)

    if start >= cfg.train.max_steps:
        print(f"the run is finished (step {start} of train.max_steps={cfg.train.max_steps}); raise train.max_steps to go on")
        if not world_path.is_file():  # resumed into a new folder: its world is the state's weights
            save(start)
    print(
        f"run folder: {run_dir}  ({sum(x.numel() for x in model.parameters()) / 1e6:.2f}M params, {device}, {len(train)} train windows)"
    )
    t0, bad = time.time(), 0
    for step in (
        bar := tqdm(range(start, cfg.train.max_steps), initial=start, total=cfg.train.max_steps, desc="pixel_film", unit="step")
    ):
        lr = set_lr(opt, step, cfg.train)
        with autocast(device, cfg.train.amp):
            loss, logs = window_loss(model, train.sample(cfg.train.batch_size), cfg.train, device)
        last = step + 1 == cfg.train.max_steps
        if not math.isfinite(logs["loss"]):
            bad += 1
            tqdm.write(f"warning: step {step}: loss is {logs['loss']}; step skipped ({bad} so far)")
            if bad > 10:
                raise OchreError(f"{bad} steps with a non-finite loss; lower train.lr. Last good checkpoint: {state_path}")
            opt.zero_grad(set_to_none=True)
        else:
            logs["grad_norm"] = optimizer_step(opt, model, loss, cfg.train.grad_clip, scaler)
            bar.set_postfix(loss=f"{logs['loss']:.4f}", psnr=f"{logs['psnr']:.2f}")
            row = {}
            if step % cfg.logging.log_every == 0 or last:
                row = {f"train/{k}": v for k, v in logs.items()} | {"lr": lr, "time_s": time.time() - t0}
            if step % cfg.logging.sample_every == 0 or last:
                row |= validate(model, val_batch, cfg.train, device, logger, step)
            if row:
                logger.log(step, row)
        if (step + 1) % cfg.train.checkpoint_every == 0 or last:
            save(step + 1)
    logger.close()
    print(f"pixel world checkpoint: {world_path}")
    return world_path
