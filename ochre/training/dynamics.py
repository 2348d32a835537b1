"""Dynamics training on token windows: build a run, step it, log, validate and save.

    cfg = load_config(DynamicsTrainConfig, "configs/coinrun/dynamics.yaml", overrides)
    train_dynamics(cfg)

One training step, top to bottom (`train_step`): sample a batch of windows; the loss
(`sequence_loss`, dynamics_loss.py, which explains scheduled sampling and the loss terms)
under autocast; its logs averaged over ranks; a non-finite loss skips the step; backward,
clip, AdamW. The logs stay tensors on the device: a step reads one value (is the loss
finite?) and `log_and_validate` reads the rest, on log steps only. `fit` is the loop:
`build_run`, then per step `train_step`, `log_and_validate` (dynamics_validation.py)
and `save`.

Launched by torchrun, it trains data-parallel over all processes (DDP; see `fit`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ochre.actions import ActionSpec
from ochre.checkpoint import build_tokenizer, load_checkpoint, load_tokenizer_payload
from ochre.config import to_dict
from ochre.data.store import EpisodeDataset
from ochre.data.windows import Batch, WindowSampler
from ochre.errors import ConfigError, OchreError
from ochre.io import load_torch, sha256_file
from ochre.losses import LPIPSLoss, load_lpips
from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.models.tokenizer import Tokenizer
from ochre.playtest.checks import find_play_checks
from ochre.seed_contexts import SeedContexts, seed_contexts, tokenizer_decoder
from ochre.training import distributed
from ochre.training.common import StepTimer, autocast, grad_scaler, lr_at, set_lr, setup_torch, to_floats
from ochre.training.dynamics_config import DynamicsLoopConfig, DynamicsTrainConfig
from ochre.training.dynamics_loss import LossContext, WindowLoss, ar_probability, ramp
from ochre.training.dynamics_validation import validate, validate_ball
from ochre.training.hard_windows import focus_hard_windows
from ochre.training.logger import RunLogger, make_run_dir
from ochre.training.play_validation import PlayProbe, play_probe, validate_play
from ochre.training.prefetch import Prefetcher
from ochre.training.run_info import RunInfo, Throughput, run_info
from ochre.training.state import ResumePoint, load_train_state, save_train_state
from ochre.world import data_source, save_world
from ochre.world_checks import BALL_HORIZON


def init_weights(model: Dynamics, state: dict[str, torch.Tensor], path: str) -> None:
    """Start `model` from another world's dynamics weights; missing parameters keep their init.

    A weight with more input channels than the source (the head of `head_frames: 2`
    started from a `head_frames: 1` world) gets the source in its leading channels
    and zeros in the new ones, so the model starts out computing what the source did.
    """
    own = model.state_dict()
    for name, value in list(state.items()):
        want = own.get(name)
        if want is None or want.shape == value.shape:
            continue
        if (
            want.dim() > 1
            and want.shape[0] == value.shape[0]
            and want.shape[2:] == value.shape[2:]
            and want.shape[1] > value.shape[1]
        ):
            grown = torch.zeros_like(want)
            grown[:, : value.shape[1]] = value
            state[name] = grown
        else:
            raise OchreError(
                f"{path}: dynamics weight {name} has shape {tuple(value.shape)}, this model needs {tuple(want.shape)}"
            )
    model.load_state_dict(state, strict=False)


def starting_weights(path: str) -> dict[str, torch.Tensor]:
    """The dynamics weights of the world checkpoint at `path`, once they are known to be finite."""
    state = load_checkpoint(path, "ochre-world")["dynamics"]["state_dict"]
    bad = next((name for name, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()), None)
    if bad:
        raise OchreError(f"{path}: dynamics weights: {bad} holds NaN or infinite values; start from an earlier checkpoint")
    return state


MODULE_GROUPS = {
    "film": ("films", "camera_films", "action_embed", "camera_embed", "camera_shift", "move_zoom", "warp_gate"),
    "recurrent": ("stem", "cells"),
    "memory": ("memory",),
    "head": ("token_embed", "up", "head"),
    "idm": ("idm",),
}


def camera_shift_logs(model: Dynamics) -> dict[str, float]:
    """The learned camera warp at the fastest right turn and look up (token cells per step) and the movement zoom's
    largest and smallest log scale per step, to see them settle."""
    out = {}
    if model.cfg.camera_shift:
        shift = model.camera_shift.detach().cpu()
        out |= {"camera/yaw_right_cells": float(shift[model.cfg.factors[0] - 1]), "camera/pitch_up_cells": float(shift[-1])}
    if model.cfg.move_zoom:
        zoom = model.move_zoom.detach().cpu()
        out |= {"camera/zoom_in": float(zoom.max()), "camera/zoom_out": float(zoom.min())}
    return out


def grad_norms(model: Dynamics) -> dict[str, torch.Tensor]:
    """Gradient norm per module group (action conditioning vs the rest), to see what is learning; kept on the device."""
    out = {}
    for group, prefixes in MODULE_GROUPS.items():
        grads = [p.grad for n, p in model.named_parameters() if n.split(".")[0] in prefixes and p.grad is not None]
        if grads:
            out[f"grad_norm/{group}"] = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    return out


def resolve_model_config(cfg: DynamicsTrainConfig, data: EpisodeDataset, tokenizer: Tokenizer, tok_path: str) -> DynamicsConfig:
    """Codebook size, token grid and action count come from the tokenizer and data; a mismatch is an error."""
    m = cfg.model
    spec = data.action_spec
    factored = spec.kind != "discrete"
    checks = {
        "codebook_size": (tokenizer.codebook_size, f"tokenizer {tok_path}"),
        "token_grid": (list(tokenizer.cfg.token_grid), f"tokenizer {tok_path}"),
        "num_actions": (0 if factored else spec.n, f"dataset {data.path}"),
        "action_factors": (list(spec.factors) if factored else [], f"dataset {data.path}"),
        "camera_factors": (2 if spec.kind == "first_person" else 0, f"dataset {data.path}"),
    }
    values = {}
    for key, (truth, source) in checks.items():
        given = getattr(m, key)
        if given not in (0, []) and given != truth:
            raise ConfigError(f"model.{key}={given} but the {source} has {truth}; remove the override or set model.{key}={truth}")
        values[key] = truth
    if data.manifest.get("codebook_size") not in (None, tokenizer.codebook_size):
        raise OchreError(
            f"{data.path}: tokens were made with codebook size {data.manifest['codebook_size']} "
            f"but tokenizer {tok_path} has {tokenizer.codebook_size}"
        )
    if m.camera_warp:
        values["camera_shift"] = camera_shift(m.camera_warp, spec, tokenizer, f"dataset {data.path}")
    return DynamicsConfig(**(to_dict(m) | values))


def camera_shift(px_per_degree: list[float], spec: ActionSpec, tokenizer: Tokenizer, source: str) -> list[float]:
    """model.camera_warp [yaw, pitch] pixels per degree -> the start shift of every yaw and pitch bin, in token cells.

    Turning right (yaw > 0) moves the scene left, looking up (pitch > 0) moves it down.
    """
    if spec.kind != "first_person":
        raise ConfigError(f"model.camera_warp needs a first-person dataset; the {source} has a '{spec.kind}' action schema")
    if len(px_per_degree) != 2:
        raise ConfigError(f"model.camera_warp must be [yaw, pitch] pixels per degree, got {px_per_degree}")
    cell_h, cell_w = (f / g for f, g in zip(tokenizer.cfg.frame_size, tokenizer.cfg.token_grid, strict=True))
    degrees = spec.bin_centers * spec.max_deg
    dx = -degrees * px_per_degree[0] / cell_w
    dy = degrees * px_per_degree[1] / cell_h
    return [round(float(v), 4) for v in np.concatenate([dx, dy])]


def train_dynamics(cfg: DynamicsTrainConfig) -> Path:
    """Train, write the world checkpoint, and return its path (on every rank when launched by torchrun)."""
    launch = distributed.detect_launch()
    choice = setup_torch(replace(cfg.train, seed=cfg.train.seed + launch.rank))
    if launch.rank == 0:
        print(choice)
    device = distributed.rank_device(choice.device, launch)
    with distributed.process_group(launch, device, cfg.train.dist_backend):
        return fit(cfg, device, launch)


def fit(cfg: DynamicsTrainConfig, device: torch.device, launch: distributed.Launch) -> Path:
    """The training loop of one process; under torchrun, of one data-parallel (DDP) rank.

    Every rank builds the model and DDP gives all of them rank 0's weights; each rank
    samples its own windows (sampler and torch seeded with seed + rank), backward
    averages the gradients over ranks, so one optimizer step sees batch_size x world
    size windows (the learning rate is not rescaled) and every rank keeps identical
    weights. Metrics are averaged over ranks; rank 0 alone validates and writes the run
    folder, logs, samples and checkpoints.

    Resume under DDP: every rank loads the training state, whose per-rank RNG streams
    (`distributed.RankRNG`) put each rank back exactly where it was, so a run resumed
    with the same config and number of processes repeats the uninterrupted one (bit
    for bit on CPU; on GPU as far as its kernels are deterministic). On another number
    of processes each rank that has saved streams goes on with them, the others start
    fresh ones (rank 0 says which in one line); a single process goes on as rank 0.
    """
    run = build_run(cfg, device, launch)
    main = distributed.is_main()
    if run.start >= cfg.train.max_steps:
        if main:
            print(
                f"the run is finished (step {run.start} of train.max_steps={cfg.train.max_steps}); raise train.max_steps to go on"
            )
        if not run.checkpoint.world_path.is_file():  # resumed into a new folder: its world is the state's weights
            save(run, run.start)
    steps = range(run.start, cfg.train.max_steps)
    bar = tqdm(steps, initial=run.start, total=cfg.train.max_steps, desc="dynamics", unit="step", disable=not main)
    for step in bar:
        logs = train_step(run.trainer, step, grad_groups=step % cfg.logging.log_every == 0)
        if logs.skipped:
            count_bad_step(run, step, logs.metrics["train/loss"])
        elif main:
            log_and_validate(run, step, logs.metrics, bar)
        if (step + 1) % cfg.train.checkpoint_every == 0 or step + 1 == cfg.train.max_steps:
            save(run, step + 1)
    if main:
        run.logger.close()
        print(f"world checkpoint: {run.checkpoint.world_path}")
    distributed.barrier()  # the checkpoint is written before any rank returns its path
    return run.checkpoint.world_path


@dataclass
class Trainer:
    """What one optimizer step (`train_step`) needs."""

    model: Dynamics
    window_loss: nn.Module  # WindowLoss over `model`, wrapped in DDP under torchrun
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None  # fp16 on CUDA only
    batches: Prefetcher  # the training windows, drawn ahead on a background thread
    cfg: DynamicsLoopConfig
    device: torch.device
    timer: StepTimer
    distributed: bool = False  # under torchrun a skipped step still runs its backward (DDP expects it)


@dataclass
class Probes:
    """Rank 0's fixed validation windows; None where a check is off (and on every other rank)."""

    val: Batch | None = None  # rollouts and samples, on the device
    ball: Batch | None = None  # Pong's ball check
    play: PlayProbe | None = None  # held-key windows of the play check


@dataclass
class Checkpoint:
    """What `save` writes, where, and the provenance that goes with the weights."""

    world_path: Path  # <run folder>/checkpoints/world.pt
    state_path: Path  # <run folder>/checkpoints/train_state.pt
    tok_payload: dict[str, Any]
    configs: dict[str, Any]  # the resolved dynamics config and the tokenizer's training config
    world: str
    fps: float
    rng: distributed.RankRNG  # every rank's random streams (the sampler's and torch's)
    extra: dict[str, Any]  # more training state: the fp16 scaler
    info: Callable[[int], RunInfo]  # step -> device, torch version and throughput, for the run folder and checkpoint
    seeds: SeedContexts | None = None  # clips of validation episodes, so the world plays alone (rank 0 only)
    source: dict[str, Any] | None = None  # the game and env settings the data was drawn with (data_source)


@dataclass
class Run:
    """One process's training run, as `build_run` made it."""

    cfg: DynamicsTrainConfig
    trainer: Trainer
    tokenizer: Tokenizer
    spec: ActionSpec
    probes: Probes
    logger: RunLogger | None  # rank 0 only
    checkpoint: Checkpoint
    start: int  # the first step: 0, or where the resumed run stopped
    frames_per_step: int  # predicted frames per optimizer step, over all ranks
    t0: float = field(default_factory=time.time)
    bad_steps: int = 0  # steps skipped for a non-finite loss


@dataclass
class StepLogs:
    """One step's metrics, still tensors on the device: train/<key> and, when asked for, grad_norm/<group>."""

    metrics: dict[str, torch.Tensor]
    skipped: bool  # the loss was not finite (on some rank): nothing was updated


def build_run(cfg: DynamicsTrainConfig, device: torch.device, launch: distributed.Launch) -> Run:
    """Data, tokenizer, model, optimizer, probes, run folder and logger; then resume, init_from and the hard-window
    focus when asked, and last the DDP wrapper. (The order matters: resume restores the RNG streams the earlier
    steps drew from.)"""
    main = distributed.is_main()
    data = EpisodeDataset(cfg.data.path, expect_kind="tokens")
    data.verify_once()  # sha256 of every shard the first time, then of what changed since
    tok_path, tok_payload = tokenizer_payload(cfg, data)
    tokenizer = build_tokenizer(tok_payload).to(device).requires_grad_(False)
    model_cfg = resolve_model_config(cfg, data, tokenizer, tok_path)
    check_loop_config(cfg.train, model_cfg)
    # a damaged training state or starting world stops here, before the run folder exists
    if cfg.train.resume:
        saved = load_torch(cfg.train.resume, "training state")
        if not isinstance(saved, dict) or saved.get("format") != "ochre-train-state":
            raise OchreError(f"{cfg.train.resume}: not a training state (train_state.pt); point train.resume at one")
    uses_start = cfg.train.init_from and (not cfg.train.resume or cfg.train.hard_share > 0)
    start = starting_weights(cfg.train.init_from) if uses_start else None  # read once, for the model and the scorer
    model = Dynamics(model_cfg).to(device)
    if cfg.train.compile:
        compile_step(model)
    train = WindowSampler(data, cfg.train.seq_len, "train", cfg.data.val_every, seed=cfg.train.seed + launch.rank)
    probes = build_probes(cfg, data, device) if main else Probes()
    run_dir = distributed.broadcast_from_main(
        make_run_dir(cfg.run.dir, cfg.run.world, "dynamics", cfg.run.name, cfg.train.resume) if main else None
    )
    opt = adamw(model, cfg.train)
    scaler = grad_scaler(device, cfg.train.amp)
    ctx = LossContext(tokenizer, lpips_critic(cfg.train, device))
    rng, extra = distributed.RankRNG(train.rng, device, cfg.train.seed, launch), {"scaler": scaler}
    resumed = ResumePoint()
    if cfg.train.resume:
        resumed = load_train_state(cfg.train.resume, model, opt, rng, extra)
    elif start is not None:
        init_weights(model, dict(start), cfg.train.init_from)
    logger = RunLogger(run_dir, cfg, cfg.logging, resumed) if main else None
    if cfg.train.hard_share > 0:
        scorer = Dynamics(model_cfg).to(device)
        init_weights(scorer, dict(start), cfg.train.init_from)
        focus_hard_windows(train, scorer, cfg.train, device, run_dir / "hard_windows.csv" if main else None)
    window_loss = distributed.data_parallel(WindowLoss(model, cfg.train, ctx), device)
    batches = Prefetcher(lambda: train.sample(cfg.train.batch_size), train.rng, cfg.train.prefetch, pin=device.type == "cuda")
    trainer = Trainer(model, window_loss, opt, scaler, batches, cfg.train, device, StepTimer(device), launch.distributed)
    configs = {"dynamics_train": to_dict(cfg), "tokenizer_train": tok_payload.get("train_config", {})}
    world, fps = data.manifest.get("world", cfg.run.world), data.manifest.get("fps", 15)
    frames_per_step = cfg.train.batch_size * (cfg.train.seq_len - 1) * launch.world_size
    speed = Throughput(frames_per_step, resumed.step)
    paths = run_dir / "checkpoints" / "world.pt", run_dir / "checkpoints" / "train_state.pt"
    info = functools.partial(run_info, device, launch.world_size, speed)
    decode = tokenizer_decoder(tokenizer, device)
    seeds = seed_contexts(data, cfg.train.val_context, cfg.data.val_every, decode) if main else None
    checkpoint = Checkpoint(*paths, tok_payload, configs, world, fps, rng, extra, info, seeds, data_source(data.manifest))
    if main:
        procs = f", {launch.world_size} processes" if launch.distributed else ""
        print(
            f"run folder: {run_dir}  ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, {device}{procs}, {len(train)} train windows)"
        )
    return Run(cfg, trainer, tokenizer, data.action_spec, probes, logger, checkpoint, resumed.step, frames_per_step)


def tokenizer_payload(cfg: DynamicsTrainConfig, data: EpisodeDataset) -> tuple[str, dict[str, Any]]:
    """The tokenizer checkpoint (tokenizer.path, or the one that made the tokens): its path and payload."""
    tok_path = cfg.tokenizer.path or data.manifest["tokenizer"]["path"]
    payload = load_tokenizer_payload(tok_path)
    made_by = data.manifest.get("tokenizer", {}).get("sha256")
    if made_by and made_by != sha256_file(tok_path):
        raise OchreError(
            f"{data.path}: these tokens were made by another tokenizer ({data.manifest['tokenizer']['path']}) than {tok_path}; "
            "re-run `python -m vqvae.tokenize` with this tokenizer or drop tokenizer.path"
        )
    return tok_path, payload


def check_loop_config(cfg: DynamicsLoopConfig, model_cfg: DynamicsConfig) -> None:
    """Settings that need another: the IDM losses need the IDM head, the hard-window focus a starting world."""
    if (cfg.idm_weight > 0 or cfg.idm_pred_weight > 0) and not model_cfg.idm_span:
        raise ConfigError("train.idm_weight / train.idm_pred_weight need the IDM head: set model.idm_span=1 (or more)")
    if cfg.hard_share > 0 and not cfg.init_from:
        raise ConfigError("train.hard_share needs train.init_from: the starting world scores the windows")
    if cfg.hard_share > 0 and not 0.0 < cfg.hard_pool <= 1.0:
        raise ConfigError(f"train.hard_pool must lie in (0, 1], got {cfg.hard_pool}")


def build_probes(cfg: DynamicsTrainConfig, data: EpisodeDataset, device: torch.device) -> Probes:
    """The fixed validation windows, and those of the ball check (worlds that register one) and the play check."""
    t, val_every = cfg.train, cfg.data.val_every
    val = WindowSampler(data, t.val_context + t.val_horizon, "val", val_every, seed=t.seed + 1).fixed(t.val_windows)
    world = str(data.manifest.get("world", cfg.run.world))
    registered = find_play_checks(world, data.action_spec)
    ball = None
    if registered is not None and "ball" in registered.evaluator and t.ball_windows:
        ball = WindowSampler(data, t.val_context + BALL_HORIZON, "val", val_every, seed=t.seed + 2).fixed(t.ball_windows)
    play = play_probe(data, world, t.val_context, t.val_horizon, val_every, t.play_windows) if t.play_windows else None
    return Probes(val.to(device), ball, play)


def compile_step(model: Dynamics) -> None:
    """torch.compile the one-timestep forward the loss calls seq_len - 1 times per window (train.compile=true).
    The weights stay the model's own, so checkpoints are unchanged; the first steps pay for the compilation."""
    model.step_embedded = torch.compile(model.step_embedded)


def adamw(model: Dynamics, cfg: DynamicsLoopConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.99))


def lpips_critic(cfg: DynamicsLoopConfig, device: torch.device) -> LPIPSLoss | None:
    """The LPIPS network when train.lpips_weight > 0; None (with a warning) when its weights cannot be loaded."""
    if cfg.lpips_weight <= 0:
        return None
    lpips = load_lpips("alex", cfg.lpips_weights, warn=lambda msg: tqdm.write(f"warning: {msg}"))
    return lpips.to(device) if lpips is not None else None


def train_step(trainer: Trainer, step: int, grad_groups: bool = False) -> StepLogs:
    """One optimizer step on a fresh batch. It reads one value from the device (is the loss finite?); its metrics
    stay tensors. grad_groups: also the gradient norm of each module group (`grad_norms`)."""
    cfg, timer = trainer.cfg, trainer.timer
    set_lr(trainer.opt, step, cfg)
    timer.start()
    batch = trainer.batches.next().to(trainer.device)
    timer.lap("data")
    with autocast(trainer.device, cfg.amp):
        loss, logs = trainer.window_loss(batch, ar_probability(step, cfg), round(cfg.ar_len * ramp(step, cfg)))
    logs = distributed.all_reduce_mean(logs)  # a non-finite loss on any rank skips the step on all of them
    timer.lap("forward")
    if not torch.isfinite(logs["loss"]):
        if trainer.distributed:
            loss.backward()  # DDP expects the backward of every forward (it completes the reduction); the grads are dropped
        trainer.opt.zero_grad(set_to_none=True)
        return StepLogs({f"train/{k}": v for k, v in logs.items()}, skipped=True)
    trainer.opt.zero_grad(set_to_none=True)
    (trainer.scaler.scale(loss) if trainer.scaler else loss).backward()
    timer.lap("backward")
    norms = grad_norms(trainer.model) if grad_groups else {}
    logs["grad_norm"] = clip_and_step(trainer.model, trainer.opt, cfg.grad_clip, trainer.scaler)
    timer.lap("optimizer")
    return StepLogs({f"train/{k}": v for k, v in logs.items()} | norms, skipped=False)


def count_bad_step(run: Run, step: int, loss: torch.Tensor) -> None:
    """A step skipped for a non-finite loss: a warning on rank 0; past train.max_bad_steps the run stops."""
    run.bad_steps += 1
    if distributed.is_main():
        tqdm.write(f"warning: step {step}: loss is {float(loss)}; step skipped ({run.bad_steps} so far)")
    if run.bad_steps > run.cfg.train.max_bad_steps:
        raise OchreError(
            f"{run.bad_steps} steps with a non-finite loss (train.max_bad_steps={run.cfg.train.max_bad_steps}); "
            f"lower train.lr or check the data. Last good checkpoint: {run.checkpoint.state_path}"
        )


def log_and_validate(run: Run, step: int, metrics: dict[str, torch.Tensor], bar: tqdm) -> None:
    """Rank 0 after a good step: on log steps a metrics row (the step's metrics read in one go) and the progress
    bar; on sample steps the validation scores, images and rollout video."""
    cfg, model, probes = run.cfg, run.trainer.model, run.probes
    last = step + 1 == cfg.train.max_steps
    row = {}
    if step % cfg.logging.log_every == 0 or last:
        row = to_floats(metrics) | run.trainer.timer.summary(run.frames_per_step)
        row |= {"lr": lr_at(step, cfg.train), "time_s": time.time() - run.t0, "bad_steps": run.bad_steps}
        row |= camera_shift_logs(model)
        bar.set_postfix(loss=f"{row['train/loss']:.3f}", acc=f"{row['train/acc']:.3f}", copy=f"{row['train/copy_acc']:.3f}")
    if step % cfg.logging.sample_every == 0 or last:
        context = cfg.train.val_context
        row |= validate(model, run.tokenizer, probes.val, cfg.train, run.logger, step, run.spec)
        row |= validate_ball(model, run.tokenizer, probes.ball, context) if probes.ball else {}
        row |= validate_play(model, run.tokenizer, probes.play, context) if probes.play else {}
    if row:
        run.logger.log(step, row)


def save(run: Run, step: int) -> None:
    """Rank 0 writes the world checkpoint and the training state after `step` steps; under torchrun every rank
    first hands over its RNG streams (a collective)."""
    ck, model = run.checkpoint, run.trainer.model
    run.trainer.batches.rewind()  # the sampler's stream as the steps so far left it, not as the prefetch thread did
    ck.rng.gather()
    if distributed.is_main():
        info = ck.info(step)
        configs = ck.configs | {"run_info": info.to_json()}
        save_world(ck.world_path, ck.tok_payload, model, run.spec, configs, step, ck.world, ck.fps, ck.seeds, ck.source)
        save_train_state(ck.state_path, model, run.trainer.opt, step, ck.rng, ck.extra, run.logger.wandb_id)
        info.write(ck.world_path.parent.parent)


def clip_and_step(
    model: Dynamics, opt: torch.optim.Optimizer, grad_clip: float, scaler: torch.amp.GradScaler | None
) -> torch.Tensor:
    """Clip the (unscaled) gradients and step; returns the gradient norm before clipping, on the device (unread)."""
    if scaler:
        scaler.unscale_(opt)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    return norm
