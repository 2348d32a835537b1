"""Dynamics training on token windows.

Causal teacher forcing: the input at step t is frame t (the real one, or the
model's own prediction of it), the target is frame t+1 — never the target itself.
After `context` teacher-forced warm-up steps, each later input is replaced by
the model's own prediction with probability p_ar (scheduled sampling), which
ramps from 0 to `ar_max` linearly or along an inverse sigmoid; the last `ar_len`
steps of a window become fully autoregressive on the same schedule. Fed-back
predictions are greedy tokens, or Gumbel-softmax samples whose straight-through
gradient crosses the fed-back step (`feedback=gumbel`).

Per step the loss is cross-entropy, plus optional terms: pixel L1 (and LPIPS)
between the frozen tokenizer's decoding of the predicted distribution and of the
target tokens, so perceptual errors train the dynamics; inverse dynamics on
real frame pairs; and the same (frozen) inverse-dynamics head on predicted frames,
which rewards predictions that show the action that was taken.

    cfg = load_config(DynamicsTrainConfig, "configs/coinrun/dynamics.yaml", overrides)
    train_dynamics(cfg)

Launched by torchrun, it trains data-parallel over all processes (DDP; see `fit`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from tqdm import tqdm

from ochre.actions import ActionSpec
from ochre.checkpoint import build_tokenizer, load_checkpoint, load_tokenizer_payload
from ochre.config import to_dict
from ochre.data.store import EpisodeDataset
from ochre.data.windows import Batch, WindowSampler
from ochre.diagnostics import action_response_grid, action_sensitivity, prediction_stats, rollout_strips, teacher_forced_tokens
from ochre.errors import ConfigError, OchreError
from ochre.frames import to_uint8
from ochre.io import sha256_file, write_text
from ochre.losses import LPIPSLoss, load_lpips
from ochre.metrics import psnr
from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.models.tokenizer import Tokenizer
from ochre.playtest.checks import find_play_checks
from ochre.sampling import rollout_tokens, warm_up
from ochre.training import distributed
from ochre.training.common import DataConfig, LoggingConfig, LoopConfig, RunConfig, autocast, grad_scaler, set_lr, setup_torch
from ochre.training.logger import RunLogger, image_grid, make_run_dir
from ochre.training.play_validation import decoded_frames, play_probe, validate_play
from ochre.training.state import load_train_state, save_train_state
from ochre.world import save_world
from ochre.world_checks import BALL_HORIZON, BALL_TOL_PX, ball_errors


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


def ramp(step: int, cfg: DynamicsLoopConfig) -> float:
    """0 -> 1 between ar_start and ar_end: linear, or an inverse sigmoid centred on ar_end's midpoint."""
    if cfg.ar_schedule == "linear":
        return float(np.clip((step - cfg.ar_start) / max(1, cfg.ar_end - cfg.ar_start), 0.0, 1.0))
    if step < cfg.ar_start:
        return 0.0
    mid, width = (cfg.ar_start + cfg.ar_end) / 2, max(1.0, (cfg.ar_end - cfg.ar_start) / 10)
    return 1.0 / (1.0 + math.exp(-(step - mid) / width))


def ar_probability(step: int, cfg: DynamicsLoopConfig) -> float:
    return cfg.ar_max * ramp(step, cfg)


def corrupt(tokens: torch.Tensor, fraction: float, codebook_size: int) -> torch.Tensor:
    if fraction <= 0:
        return tokens
    mask = torch.rand(tokens.shape, device=tokens.device) < fraction
    return torch.where(mask, torch.randint_like(tokens, codebook_size), tokens)


@dataclass
class LossContext:
    """What the optional loss terms need besides the model: the frozen tokenizer and LPIPS."""

    tokenizer: Tokenizer | None = None
    lpips: LPIPSLoss | None = None


def frozen_idm_logits(model: Dynamics, before: torch.Tensor, after: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """The IDM head with its weights detached: gradients reach only the frames it reads."""
    params = {k: v.detach() for k, v in model.idm.named_parameters()}
    return functional_call(model.idm, params, (before, after, span))


def idm_real_loss(model: Dynamics, tokens: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse dynamics on real frames: one random (end, span) per batch; -> (loss, accuracy)."""
    t_len, max_span = tokens.shape[1], model.cfg.idm_span
    k = int(torch.randint(1, min(max_span, t_len - 1) + 1, ()))
    end = int(torch.randint(k, t_len, ()))
    span = torch.full((tokens.shape[0],), k, device=tokens.device)
    logits = model.idm(model.embed(tokens[:, end - k]), model.embed(tokens[:, end]), span)
    return model.idm.loss(logits, actions[:, end - k : end])


def change_weighted_mean(loss: torch.Tensor, changed: torch.Tensor, weight: float) -> torch.Tensor:
    """Mean of a per-position loss with positions where `changed` is true weighted 1 + `weight`, normalised to mean 1."""
    w = 1.0 + weight * changed.float()
    return (loss * w).sum() / w.sum()


def changed_weighted_ce(logits: torch.Tensor, target: torch.Tensor, previous: torch.Tensor, weight: float) -> torch.Tensor:
    """Cross-entropy over (B, K, h, w) logits, cells whose true token differs from the previous frame's weighted
    1 + `weight` and the weights normalised to mean 1: a small moving object (Pong's ball, a few of 256 cells)
    counts as much as the still field it moves over. weight 0: plain cross-entropy."""
    if weight <= 0:
        return F.cross_entropy(logits, target)
    return change_weighted_mean(F.cross_entropy(logits, target, reduction="none"), target != previous, weight)


def changed_weighted_l1(pred: torch.Tensor, target: torch.Tensor, previous: torch.Tensor, weight: float) -> torch.Tensor:
    """L1 over (B, 3, H, W) frames, pixels whose target differs from the previous frame (by more than 0.05 in
    any channel, frames in [-1, 1]) weighted 1 + `weight`, the weights normalised to mean 1: a one-pixel ball
    counts as much as the field around it. weight 0: plain L1."""
    if weight <= 0:
        return F.l1_loss(pred, target)
    changed = (target - previous).abs().amax(1) > 0.05
    return change_weighted_mean((pred - target).abs().mean(1), changed, weight)


def sequence_loss(
    model: Dynamics, batch: Batch, cfg: DynamicsLoopConfig, p_ar: float, ctx: LossContext | None = None, ar_tail: int = 0
) -> tuple[torch.Tensor, dict[str, float]]:
    """batch.rows (B, T, h, w) tokens, batch.actions (B, T[, F]). Returns (mean loss over T-1 steps, logs).

    The per-step losses are summed as they are computed (no stack of all logits).
    ar_tail: the last `ar_tail` inputs are the model's own predictions for every window.
    """
    ctx = ctx or LossContext()
    tokens, actions = batch.rows, batch.actions
    b, t_len = tokens.shape[:2]
    k_size = model.cfg.codebook_size
    state = model.initial_state(b, tokens.device)
    emb = model.embed(corrupt(tokens[:, 0], cfg.token_noise, k_size))
    n_pix = min(cfg.pixel_samples, b)
    use_pixels = ctx.tokenizer is not None and (cfg.pixel_weight > 0 or (cfg.lpips_weight > 0 and ctx.lpips is not None))
    if use_pixels:
        with torch.no_grad():
            target_frames = ctx.tokenizer.decode_tokens(tokens[:n_pix].flatten(0, 1)).unflatten(0, (n_pix, t_len))
    use_idm_pred = cfg.idm_pred_weight > 0 and model.cfg.idm_span > 0
    total = tokens.new_zeros((), dtype=torch.float32)
    sums = dict.fromkeys(("ce", "pixel", "lpips", "idm_pred"), 0.0)
    correct = copied = fed_back = 0.0
    for t in range(t_len - 1):
        target = tokens[:, t + 1]  # frame t+1: what action t does to frame t
        state, logits = model.step_embedded(state, emb, actions[:, t])
        logits = logits.float()
        ce = changed_weighted_ce(logits, target, tokens[:, t], cfg.change_weight)
        step_loss = ce
        sums["ce"] += ce.item()
        probs = None  # the pixel terms read the first n_pix windows only; idm_pred reads all of them
        if use_pixels or use_idm_pred:
            probs = (logits if use_idm_pred else logits[:n_pix]).softmax(1)
        if use_pixels:
            pred_frames = ctx.tokenizer.decode_embeddings(probs[:n_pix])
            if cfg.pixel_weight > 0:
                pix = changed_weighted_l1(pred_frames, target_frames[:, t + 1], target_frames[:, t], cfg.pixel_change_weight)
                step_loss = step_loss + cfg.pixel_weight * pix
                sums["pixel"] += pix.item()
            if cfg.lpips_weight > 0 and ctx.lpips is not None:
                perceptual = ctx.lpips(pred_frames, target_frames[:, t + 1])
                step_loss = step_loss + cfg.lpips_weight * perceptual
                sums["lpips"] += perceptual.item()
        if use_idm_pred:
            span = torch.ones(b, dtype=torch.long, device=tokens.device)
            idm_logits = frozen_idm_logits(model, emb.detach(), model.embed_soft(probs), span)
            idm_loss, _ = model.idm.loss(idm_logits, actions[:, t : t + 1])
            step_loss = step_loss + cfg.idm_pred_weight * idm_loss
            sums["idm_pred"] += idm_loss.item()
        total = total + step_loss
        pred = logits.detach().argmax(1)
        correct += (pred == target).float().mean().item()
        copied += (tokens[:, t] == target).float().mean().item()
        emb = model.embed(corrupt(target, cfg.token_noise, k_size))
        if t + 1 >= cfg.context and (p_ar > 0 or t + 1 >= t_len - 1 - ar_tail):
            own = torch.rand(b, device=tokens.device) < p_ar
            if t + 1 >= t_len - 1 - ar_tail:
                own[:] = True
            if cfg.feedback == "gumbel" and not cfg.detach_feedback:
                soft = F.gumbel_softmax(logits, tau=cfg.gumbel_tau, hard=True, dim=1)
                own_emb = model.embed_soft(soft)
            else:
                own_emb = model.embed(corrupt(pred, cfg.token_noise, k_size))
            emb = torch.where(own[:, None, None, None], own_emb, emb)
            fed_back += own.float().mean().item()
    n = t_len - 1
    loss = total / n
    logs = {"loss": 0.0, "ce": sums["ce"] / n, "acc": correct / n, "copy_acc": copied / n, "p_ar": p_ar, "fed_back": fed_back / n}
    enabled = {
        "pixel": use_pixels and cfg.pixel_weight > 0,
        "lpips": use_pixels and ctx.lpips is not None and cfg.lpips_weight > 0,
    }
    enabled["idm_pred"] = use_idm_pred
    logs |= {k: sums[k] / n for k, on in enabled.items() if on}  # same keys on every rank, whatever the values
    if cfg.idm_weight > 0 and model.cfg.idm_span > 0:
        idm_loss, idm_acc = idm_real_loss(model, tokens, actions)
        loss = loss + cfg.idm_weight * idm_loss
        logs |= {"idm": idm_loss.item(), "idm_acc": idm_acc.item()}
    logs["loss"] = loss.item()
    return loss, logs


class WindowLoss(nn.Module):
    """`sequence_loss` as a module's forward, so that DistributedDataParallel can wrap it.

    DDP averages gradients over ranks only for work done inside its own forward: that
    call opens the iteration whose backward then all-reduces each gradient bucket as it
    fills. The loss drives the model through initial_state / embed / step_embedded /
    idm, never Dynamics.forward, so the whole per-window loss runs here and DDP wraps
    this module. Its only submodule is the dynamics model: DDP syncs exactly those
    weights, while the frozen tokenizer and LPIPS in `ctx` stay plain attributes. The
    IDM head gets no gradient unless idm_weight > 0 (idm_pred reads it detached), which
    `distributed.data_parallel` allows for.
    """

    def __init__(self, model: Dynamics, cfg: DynamicsLoopConfig, ctx: LossContext):
        super().__init__()
        self.model, self.cfg, self.ctx = model, cfg, ctx

    def forward(self, batch: Batch, p_ar: float, ar_tail: int) -> tuple[torch.Tensor, dict[str, float]]:
        return sequence_loss(self.model, batch, self.cfg, p_ar, self.ctx, ar_tail)


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


def grad_norms(model: Dynamics) -> dict[str, float]:
    """Gradient norm per module group (action conditioning vs the rest), to see what is learning."""
    out = {}
    for group, prefixes in MODULE_GROUPS.items():
        grads = [p.grad for n, p in model.named_parameters() if n.split(".")[0] in prefixes and p.grad is not None]
        if grads:
            out[f"grad_norm/{group}"] = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
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
    device = distributed.rank_device(setup_torch(replace(cfg.train, seed=cfg.train.seed + launch.rank)), launch)
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
    for bit on CPU; on GPU as far as its kernels are deterministic). Another number of
    processes is refused; a single process resuming a DDP state goes on as rank 0.
    """
    main = distributed.is_main()
    data = EpisodeDataset(cfg.data.path, expect_kind="tokens")
    tok_path = cfg.tokenizer.path or data.manifest["tokenizer"]["path"]
    tok_payload = load_tokenizer_payload(tok_path)
    made_by = data.manifest.get("tokenizer", {}).get("sha256")
    if made_by and made_by != sha256_file(tok_path):
        raise OchreError(
            f"{data.path}: these tokens were made by another tokenizer ({data.manifest['tokenizer']['path']}) than {tok_path}; "
            "re-run `python -m vqvae.tokenize` with this tokenizer or drop tokenizer.path"
        )
    tokenizer = build_tokenizer(tok_payload).to(device).requires_grad_(False)
    model_cfg = resolve_model_config(cfg, data, tokenizer, tok_path)
    if (cfg.train.idm_weight > 0 or cfg.train.idm_pred_weight > 0) and not model_cfg.idm_span:
        raise ConfigError("train.idm_weight / train.idm_pred_weight need the IDM head: set model.idm_span=1 (or more)")
    model = Dynamics(model_cfg).to(device)
    train = WindowSampler(data, cfg.train.seq_len, "train", cfg.data.val_every, seed=cfg.train.seed + launch.rank)
    val = None
    if main:
        val_len = cfg.train.val_context + cfg.train.val_horizon
        val = WindowSampler(data, val_len, "val", cfg.data.val_every, seed=cfg.train.seed + 1).fixed(cfg.train.val_windows)
    ball = None
    registered = find_play_checks(str(data.manifest.get("world", cfg.run.world)), data.action_spec)
    if main and registered is not None and "ball" in registered.evaluator and cfg.train.ball_windows:
        ball_len = cfg.train.val_context + BALL_HORIZON
        ball = WindowSampler(data, ball_len, "val", cfg.data.val_every, seed=cfg.train.seed + 2).fixed(cfg.train.ball_windows)
    play = None
    if main and cfg.train.play_windows:
        world = str(data.manifest.get("world", cfg.run.world))
        play = play_probe(data, world, cfg.train.val_context, cfg.train.val_horizon, cfg.data.val_every, cfg.train.play_windows)
    run_dir = distributed.broadcast_from_main(
        make_run_dir(cfg.run.dir, cfg.run.world, "dynamics", cfg.run.name) if main else None
    )
    logger = RunLogger(run_dir, cfg, cfg.logging.wandb, cfg.logging.project) if main else None
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=0.01, betas=(0.9, 0.99))
    scaler = grad_scaler(device, cfg.train.amp)
    lpips = None
    if cfg.train.lpips_weight > 0:
        lpips = load_lpips("alex", cfg.train.lpips_weights, warn=lambda msg: tqdm.write(f"warning: {msg}"))
        lpips = lpips.to(device) if lpips is not None else None
    ctx = LossContext(tokenizer, lpips)
    world_path = run_dir / "checkpoints" / "world.pt"
    state_path = run_dir / "checkpoints" / "train_state.pt"
    extra = {"scaler": scaler, "ranks": distributed.RankRNG(train.rng, device) if launch.distributed else None}
    start = 0
    if cfg.train.resume:
        start = load_train_state(cfg.train.resume, model, opt, train.rng, extra)
    elif cfg.train.init_from:
        init_weights(model, load_checkpoint(cfg.train.init_from, "ochre-world")["dynamics"]["state_dict"], cfg.train.init_from)
    if cfg.train.hard_share > 0:
        focus_hard_windows(train, model_cfg, cfg.train, device, run_dir / "hard_windows.csv" if main else None)
    window_loss = distributed.data_parallel(WindowLoss(model, cfg.train, ctx), device)
    configs = {"dynamics_train": to_dict(cfg), "tokenizer_train": tok_payload.get("train_config", {})}
    world, fps = data.manifest.get("world", cfg.run.world), data.manifest.get("fps", 15)
    if main:
        procs = f", {launch.world_size} processes" if launch.distributed else ""
        print(
            f"run folder: {run_dir}  ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, {device}{procs}, {len(train)} train windows)"
        )
    t0, bad_steps, timer = time.time(), 0, StepTimer(device)
    frames_per_step = cfg.train.batch_size * (cfg.train.seq_len - 1) * launch.world_size
    steps = range(start, cfg.train.max_steps)
    for step in (bar := tqdm(steps, initial=start, total=cfg.train.max_steps, desc="dynamics", unit="step", disable=not main)):
        lr = set_lr(opt, step, cfg.train)
        timer.start()
        batch = train.sample(cfg.train.batch_size).to(device)
        timer.lap("data")
        with autocast(device, cfg.train.amp):
            tail = round(cfg.train.ar_len * ramp(step, cfg.train))
            loss, logs = window_loss(batch, ar_probability(step, cfg.train), tail)
        logs = distributed.all_reduce_mean(logs)  # a non-finite loss on any rank skips the step on all of them
        timer.lap("forward")
        last = step + 1 == cfg.train.max_steps
        if not math.isfinite(logs["loss"]):
            bad_steps += 1
            if main:
                tqdm.write(f"warning: step {step}: loss is {logs['loss']}; step skipped ({bad_steps} so far)")
            if bad_steps > cfg.train.max_bad_steps:
                raise OchreError(
                    f"{bad_steps} steps with a non-finite loss (train.max_bad_steps={cfg.train.max_bad_steps}); "
                    f"lower train.lr or check the data. Last good checkpoint: {state_path}"
                )
            if launch.distributed:
                loss.backward()  # DDP expects the backward of every forward (it completes the reduction); the grads are dropped
            opt.zero_grad(set_to_none=True)
        else:
            opt.zero_grad(set_to_none=True)
            (scaler.scale(loss) if scaler else loss).backward()
            timer.lap("backward")
            norms = grad_norms(model) if step % cfg.logging.log_every == 0 else {}
            logs["grad_norm"] = clip_and_step(model, opt, cfg.train.grad_clip, scaler)
            timer.lap("optimizer")
            bar.set_postfix(loss=f"{logs['loss']:.3f}", acc=f"{logs['acc']:.3f}", copy=f"{logs['copy_acc']:.3f}")
            row = {}
            if main and (step % cfg.logging.log_every == 0 or last):
                row = {f"train/{k}": v for k, v in logs.items()} | norms | timer.summary(frames_per_step)
                row |= {"lr": lr, "time_s": time.time() - t0, "bad_steps": bad_steps} | camera_shift_logs(model)
            if main and (step % cfg.logging.sample_every == 0 or last):
                row |= validate(model, tokenizer, val.to(device), cfg.train, logger, step, data.action_spec)
                row |= validate_ball(model, tokenizer, ball, cfg.train.val_context) if ball else {}
                row |= validate_play(model, tokenizer, play, cfg.train.val_context) if play else {}
            if row:
                logger.log(step, row)
        if (step + 1) % cfg.train.checkpoint_every == 0 or last:
            if extra["ranks"]:
                extra["ranks"].gather()
            if main:
                save_world(world_path, tok_payload, model, data.action_spec, configs, step + 1, world, fps)
                save_train_state(state_path, model, opt, step + 1, train.rng, extra)
    if main:
        logger.close()
        print(f"world checkpoint: {world_path}")
    distributed.barrier()  # the checkpoint is written before any rank returns its path
    return world_path


def clip_and_step(model: Dynamics, opt: torch.optim.Optimizer, grad_clip: float, scaler: torch.amp.GradScaler | None) -> float:
    """Clip the (unscaled) gradients and step; returns the gradient norm before clipping."""
    if scaler:
        scaler.unscale_(opt)
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
    if scaler:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    return norm


def focus_hard_windows(
    sampler: WindowSampler, model_cfg: DynamicsConfig, cfg: DynamicsLoopConfig, device: torch.device, out: Path | None = None
) -> None:
    """Point `sampler` at the windows the starting world (init_from) predicts worst, for cfg.hard_share of each batch.

    The pool comes from the init_from weights even on resume, so a resumed run draws from the same pool.
    out: a CSV of every scored window (shard, row, score, in_pool), hardest first, to look at what the pool holds;
    given on the main process only, which also prints the progress.
    """
    verbose = out is not None
    if not cfg.init_from:
        raise ConfigError("train.hard_share needs train.init_from: the starting world scores the windows")
    if not 0.0 < cfg.hard_pool <= 1.0:
        raise ConfigError(f"train.hard_pool must lie in (0, 1], got {cfg.hard_pool}")
    scorer = Dynamics(model_cfg).to(device)
    init_weights(scorer, load_checkpoint(cfg.init_from, "ochre-world")["dynamics"]["state_dict"], cfg.init_from)
    index = np.unique(np.linspace(0, len(sampler) - 1, min(cfg.hard_scan, len(sampler))).round().astype(np.int64))
    t0 = time.time()
    scores = window_difficulty(scorer, sampler, index, cfg.context, device, verbose)
    order = np.argsort(-scores, kind="stable")
    pool = index[order[: max(1, round(cfg.hard_pool * len(index)))]]
    sampler.focus(pool, cfg.hard_share)
    if out is not None:
        ranked = zip(sampler.starts[index[order]], scores[order], strict=True)
        rows = [f"{sh},{row},{score:.5f},{int(rank < len(pool))}" for rank, ((sh, row), score) in enumerate(ranked)]
        write_text(out, "shard,row,score,in_pool\n" + "\n".join(rows) + "\n")
        tqdm.write(
            f"hard windows: scored {len(index)} in {time.time() - t0:.0f} s; {cfg.hard_share:.0%} of each batch comes from "
            f"the {len(pool)} hardest (loss on changing cells >= {scores[order[len(pool) - 1]]:.3f}, median {np.median(scores):.3f})"
        )


@torch.no_grad()
def window_difficulty(
    model: Dynamics,
    sampler: WindowSampler,
    index: np.ndarray,
    context: int,
    device: torch.device,
    verbose: bool = False,
    batch: int = 64,
) -> np.ndarray:
    """For the windows sampler.starts[index]: the teacher-forced cross-entropy averaged over every token cell that
    changes from one frame to the next, in the predictions of frames `context` on; a window where nothing changes scores 0."""
    was_training = model.training
    model.eval()
    out = []
    for i in tqdm(range(0, len(index), batch), desc="scoring windows", unit="batch", disable=not verbose, leave=False):
        windows = sampler.gather(sampler.starts[index[i : i + batch]]).to(device)
        tokens, actions = windows.rows, windows.actions
        state = model.initial_state(len(tokens), device)
        total, count = torch.zeros(len(tokens), device=device), torch.zeros(len(tokens), device=device)
        for t in range(tokens.shape[1] - 1):
            state, logits = model.step(state, tokens[:, t], actions[:, t])
            if t + 1 < context:
                continue
            changed = (tokens[:, t + 1] != tokens[:, t]).float()
            ce = F.cross_entropy(logits.float(), tokens[:, t + 1], reduction="none")
            total = total + (ce * changed).sum((1, 2))
            count = count + changed.sum((1, 2))
        out.append((total / count.clamp(min=1)).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out).astype(np.float64)


class StepTimer:
    """Wall time per phase of a training step (data / forward / backward / optimizer), averaged since the last summary."""

    def __init__(self, device: torch.device):
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.totals: dict[str, float] = {}
        self.steps = 0
        self._t = 0.0

    def start(self) -> None:
        self.sync()
        self._t = time.perf_counter()
        self.steps += 1

    def lap(self, name: str) -> None:
        self.sync()
        now = time.perf_counter()
        self.totals[name] = self.totals.get(name, 0.0) + now - self._t
        self._t = now

    def summary(self, frames_per_step: int) -> dict[str, float]:
        out = {f"time/{k}_ms": 1000 * v / self.steps for k, v in self.totals.items()}
        total = sum(self.totals.values()) / max(1, self.steps)
        out["throughput/frames_per_s"] = frames_per_step / total if total else 0.0
        self.totals, self.steps = {}, 0
        return out


@torch.no_grad()
def validate(
    model: Dynamics, tokenizer: Tokenizer, batch: Batch, cfg: DynamicsLoopConfig, logger: RunLogger, step: int, spec: ActionSpec
) -> dict[str, float]:
    """Held-out episodes: teacher-forced vs autoregressive loss, an open-loop rollout scored in decoded-frame space,
    and whether the actions matter (action sensitivity, action-response grid, IDM accuracy)."""
    k = cfg.val_context
    seed_tokens, seed_actions = batch.rows[:8, :k], batch.actions[:8, : k - 1]
    sensitivity = action_sensitivity(model, tokenizer, seed_tokens, seed_actions, spec)
    grid, _ = action_response_grid(model, tokenizer, seed_tokens, seed_actions, spec)
    logger.image("action_response", step, grid)
    tf = teacher_forced_tokens(model, batch.rows[:4], batch.actions[:4])
    model.eval()
    clean = DynamicsLoopConfig(token_noise=0.0, context=cfg.val_context - 1)
    _, logs = sequence_loss(model, batch, clean, 0.0)
    _, ar_logs = sequence_loss(model, batch, clean, 1.0)  # every input after the context is the model's own
    pred = rollout_tokens(model, batch.rows[:, :k], batch.actions[:, : k - 1], batch.actions[:, k - 1 : -1])
    stats = prediction_stats(
        model.step(warm_up(model, batch.rows[:, :k], batch.actions[:, : k - 1]), batch.rows[:, k - 1], batch.actions[:, k - 1])[1]
    )
    model.train()
    ar = torch.cat([batch.rows[:4, 1:k], pred[:4]], 1)  # real context frames, then the model's own
    logger.image("strips", step, rollout_strips(tokenizer, batch.rows[:4, 1:], tf, ar))

    def decode(tokens: torch.Tensor) -> torch.Tensor:  # (B, N, h, w) -> (B, N, 3, H, W) in [0, 1]
        frames = tokenizer.decode_tokens(tokens.flatten(0, 1)).clamp(-1, 1)
        return ((frames + 1) / 2).unflatten(0, tokens.shape[:2])

    target, frames = decode(batch.rows[:, k:]), decode(pred)
    copy = decode(batch.rows[:, k - 1 : k].expand_as(batch.rows[:, k:]))
    per_h = [psnr(frames[:, h], target[:, h]) for h in range(frames.shape[1])]
    gt_u8, pred_u8 = to_uint8(target[0] * 2 - 1), to_uint8(frames[0] * 2 - 1)
    logger.image("val_rollout", step, image_grid([gt_u8, pred_u8]))
    logger.video("val_rollout", step, np.concatenate([gt_u8, pred_u8], axis=2), fps=8)
    idm = {}
    if model.cfg.idm_span:
        _, idm_acc = idm_real_loss(model, batch.rows, batch.actions)
        idm = {"val/idm_acc": float(idm_acc)}
    return (
        idm
        | {f"val/{name}": v for name, v in sensitivity.items()}
        | {
            "val/entropy": stats["entropy"],
            "val/codes_in_use": stats["codes_in_use"],
            "val/loss": logs["loss"],
            "val/loss_ar": ar_logs["loss"],
            "val/ar_gap": ar_logs["loss"] - logs["loss"],
            "val/acc": logs["acc"],
            "val/copy_acc": logs["copy_acc"],
            "val/rollout_psnr": psnr(frames, target),
            "val/copy_psnr": psnr(copy, target),
            "val/rollout_psnr@1": per_h[0],
            f"val/rollout_psnr@{len(per_h)}": per_h[-1],
        }
    )


@torch.no_grad()
def validate_ball(model: Dynamics, tokenizer: Tokenizer, windows: Batch, context: int, batch: int = 64) -> dict[str, float]:
    """Pong's target on validation episodes: open-loop rollouts of the windows' actions, is the ball within
    BALL_TOL_PX of the true one at step BALL_HORIZON (of the cases where the true ball is on screen)?
    Step 1 is scored too: what is lost there is the one-step prediction, the rest is drift.

    The truth is the true tokens decoded, so a frame whose ball the tokenizer loses is not a case;
    `python -m train.evaluate` scores held-out games against the real frames.
    """
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    steps = [0, BALL_HORIZON - 1]  # rollout indices of steps 1 and BALL_HORIZON

    pred_frames, true_frames = [], []
    for i in range(0, len(windows.rows), batch):
        rows, actions = windows.rows[i : i + batch].to(device), windows.actions[i : i + batch].to(device)
        pred = rollout_tokens(model, rows[:, :context], actions[:, : context - 1], actions[:, context - 1 : -1])
        pred_frames.append(decoded_frames(tokenizer, pred[:, steps]))
        true_frames.append(decoded_frames(tokenizer, rows[:, context:][:, steps]))
    model.train(was_training)
    on_screen, error = ball_errors(np.concatenate(pred_frames), np.concatenate(true_frames))
    logs = {}
    for j, step in enumerate(s + 1 for s in steps):
        cases = int(on_screen[:, j].sum())
        seen = error[on_screen[:, j], j]
        logs[f"val/ball@{step}"] = float((seen <= BALL_TOL_PX).sum() / cases) if cases else float("nan")
        logs[f"val/ball_missing@{step}"] = float(np.isinf(seen).sum() / cases) if cases else float("nan")
    return logs | {"val/ball_cases": float(on_screen[:, -1].sum())}
