"""Dynamics training on token windows.

Causal teacher forcing: the input at step t is frame t (the real one, or the
model's own prediction of it), the target is frame t+1 — never the target itself.
After `context` teacher-forced warm-up steps, each later input is replaced by
the model's own greedy prediction with probability p_ar, which ramps from 0 to
`ar_max`, so the model learns to continue from its own outputs.

    cfg = load_config(DynamicsTrainConfig, "configs/coinrun/dynamics.yaml", overrides)
    train_dynamics(cfg)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ochre.checkpoint import build_tokenizer, load_checkpoint
from ochre.config import to_dict
from ochre.data.store import EpisodeDataset
from ochre.data.windows import Batch, WindowSampler
from ochre.errors import ConfigError, OchreError
from ochre.frames import to_uint8
from ochre.io import sha256_file
from ochre.metrics import psnr
from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.models.tokenizer import Tokenizer
from ochre.sampling import rollout_tokens
from ochre.training.common import DataConfig, LoggingConfig, LoopConfig, RunConfig, optimizer_step, set_lr, setup_torch
from ochre.training.logger import RunLogger, image_grid, make_run_dir
from ochre.training.state import load_train_state, save_train_state
from ochre.world import save_world


@dataclass
class DynamicsLoopConfig(LoopConfig):
    max_steps: int = 3000  # optimizer steps
    batch_size: int = 24  # windows per step
    seq_len: int = 12  # frames per window (seq_len - 1 predicted transitions)
    context: int = 3  # leading steps always teacher-forced
    ar_max: float = 0.5  # final probability of feeding the model's own prediction
    ar_start: int = 300  # step where p_ar starts ramping up from 0
    ar_end: int = 1500  # step where p_ar reaches ar_max
    token_noise: float = 0.02  # fraction of input tokens replaced by random codes
    resume: str = ""  # train_state.pt of an earlier run: continue it exactly (same config)
    init_from: str = ""  # world checkpoint whose dynamics weights start this run (fresh optimizer)
    val_context: int = 4  # seed frames for validation rollouts
    val_horizon: int = 16  # predicted frames in validation rollouts
    val_windows: int = 32  # windows in the fixed validation set


@dataclass
class TokenizerRef:
    path: str = ""  # tokenizer checkpoint; empty = the one recorded in the token dataset's manifest


@dataclass
class DynamicsTrainConfig:
    data: DataConfig = field(default_factory=lambda: DataConfig(path="data/coinrun_train_tokens"))
    tokenizer: TokenizerRef = field(default_factory=TokenizerRef)
    model: DynamicsConfig = field(default_factory=lambda: DynamicsConfig(codebook_size=0))
    train: DynamicsLoopConfig = field(default_factory=DynamicsLoopConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    run: RunConfig = field(default_factory=RunConfig)


def ar_probability(step: int, cfg: DynamicsLoopConfig) -> float:
    ramp = (step - cfg.ar_start) / max(1, cfg.ar_end - cfg.ar_start)
    return cfg.ar_max * float(np.clip(ramp, 0.0, 1.0))


def corrupt(tokens: torch.Tensor, fraction: float, codebook_size: int) -> torch.Tensor:
    if fraction <= 0:
        return tokens
    mask = torch.rand(tokens.shape, device=tokens.device) < fraction
    return torch.where(mask, torch.randint_like(tokens, codebook_size), tokens)


def sequence_loss(model: Dynamics, batch: Batch, cfg: DynamicsLoopConfig, p_ar: float) -> tuple[torch.Tensor, dict[str, float]]:
    """batch.rows (B, T, h, w) tokens, batch.actions (B, T). Returns (mean CE over T-1 steps, logs)."""
    tokens, actions = batch.rows, batch.actions
    b, t_len = tokens.shape[:2]
    state = model.initial_state(b, tokens.device)
    inputs = tokens[:, 0]
    losses, correct, copied, fed_back = [], 0.0, 0.0, 0.0
    for t in range(t_len - 1):
        target = tokens[:, t + 1]  # frame t+1: what action t does to frame t
        state, logits = model.step(state, corrupt(inputs, cfg.token_noise, model.cfg.codebook_size), actions[:, t])
        losses.append(F.cross_entropy(logits, target))
        pred = logits.detach().argmax(1)
        correct += (pred == target).float().mean().item()
        copied += (tokens[:, t] == target).float().mean().item()
        inputs = target
        if t + 1 >= cfg.context and p_ar > 0:
            own = torch.rand(b, 1, 1, device=tokens.device) < p_ar
            inputs = torch.where(own, pred, target)
            fed_back += own.float().mean().item()
    loss = torch.stack(losses).mean()
    n = t_len - 1
    logs = {"loss": loss.item(), "acc": correct / n, "copy_acc": copied / n, "p_ar": p_ar, "fed_back": fed_back / n}
    return loss, logs


def resolve_model_config(cfg: DynamicsTrainConfig, data: EpisodeDataset, tokenizer: Tokenizer, tok_path: str) -> DynamicsConfig:
    """Codebook size, token grid and action count come from the tokenizer and data; a mismatch is an error."""
    m = cfg.model
    if data.action_spec.kind != "discrete":
        raise ConfigError(
            f"{data.path}: its '{data.action_spec.kind}' actions need factored action conditioning, which the "
            "dynamics model does not have yet; train on a discrete-action world (procgen, atari)"
        )
    checks = {
        "codebook_size": (tokenizer.codebook_size, f"tokenizer {tok_path}"),
        "token_grid": (list(tokenizer.cfg.token_grid), f"tokenizer {tok_path}"),
        "num_actions": (data.action_spec.n, f"dataset {data.path}"),
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
    return DynamicsConfig(**(to_dict(m) | values))


def train_dynamics(cfg: DynamicsTrainConfig) -> Path:
    """Train, write the world checkpoint, and return its path."""
    device = setup_torch(cfg.train)
    data = EpisodeDataset(cfg.data.path, expect_kind="tokens")
    tok_path = cfg.tokenizer.path or data.manifest["tokenizer"]["path"]
    tok_payload = load_checkpoint(tok_path, "ochre-tokenizer")
    made_by = data.manifest.get("tokenizer", {}).get("sha256")
    if made_by and made_by != sha256_file(tok_path):
        raise OchreError(
            f"{data.path}: these tokens were made by another tokenizer ({data.manifest['tokenizer']['path']}) than {tok_path}; "
            "re-run `python -m vqvae.tokenize` with this tokenizer or drop tokenizer.path"
        )
    tokenizer = build_tokenizer(tok_payload).to(device)
    model_cfg = resolve_model_config(cfg, data, tokenizer, tok_path)
    model = Dynamics(model_cfg).to(device)
    train = WindowSampler(data, cfg.train.seq_len, "train", cfg.data.val_every, seed=cfg.train.seed)
    val_len = cfg.train.val_context + cfg.train.val_horizon
    val = WindowSampler(data, val_len, "val", cfg.data.val_every, seed=cfg.train.seed + 1).fixed(cfg.train.val_windows)
    run_dir = make_run_dir(cfg.run.dir, cfg.run.world, "dynamics", cfg.run.name)
    logger = RunLogger(run_dir, cfg, cfg.logging.wandb, cfg.logging.project)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=0.01, betas=(0.9, 0.99))
    world_path = run_dir / "checkpoints" / "world.pt"
    state_path = run_dir / "checkpoints" / "train_state.pt"
    start = 0
    if cfg.train.resume:
        start = load_train_state(cfg.train.resume, model, opt, train.rng)
    elif cfg.train.init_from:
        model.load_state_dict(load_checkpoint(cfg.train.init_from, "ochre-world")["dynamics"]["state_dict"])
    configs = {"dynamics_train": to_dict(cfg), "tokenizer_train": tok_payload.get("train_config", {})}
    world, fps = data.manifest.get("world", cfg.run.world), data.manifest.get("fps", 15)
    print(
        f"run folder: {run_dir}  ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, {device}, {len(train)} train windows)"
    )
    t0 = time.time()
    for step in (
        bar := tqdm(range(start, cfg.train.max_steps), initial=start, total=cfg.train.max_steps, desc="dynamics", unit="step")
    ):
        lr = set_lr(opt, step, cfg.train)
        loss, logs = sequence_loss(
            model, train.sample(cfg.train.batch_size).to(device), cfg.train, ar_probability(step, cfg.train)
        )
        logs["grad_norm"] = optimizer_step(opt, model, loss, cfg.train.grad_clip)
        bar.set_postfix(loss=f"{logs['loss']:.3f}", acc=f"{logs['acc']:.3f}", copy=f"{logs['copy_acc']:.3f}")
        last = step + 1 == cfg.train.max_steps
        row = {}
        if step % cfg.logging.log_every == 0 or last:
            row = {f"train/{k}": v for k, v in logs.items()} | {"lr": lr, "time_s": time.time() - t0}
        if step % cfg.logging.sample_every == 0 or last:
            row |= validate(model, tokenizer, val.to(device), cfg.train, logger, step)
        if row:
            logger.log(step, row)
        if (step + 1) % cfg.train.checkpoint_every == 0 or last:
            save_world(world_path, tok_payload, model, data.action_spec, configs, step + 1, world, fps)
            save_train_state(state_path, model, opt, step + 1, train.rng)
    logger.close()
    print(f"world checkpoint: {world_path}")
    return world_path


@torch.no_grad()
def validate(
    model: Dynamics, tokenizer: Tokenizer, batch: Batch, cfg: DynamicsLoopConfig, logger: RunLogger, step: int
) -> dict[str, float]:
    """Teacher-forced loss plus an open-loop rollout on held-out episodes, scored in decoded-frame space."""
    model.eval()
    _, logs = sequence_loss(model, batch, DynamicsLoopConfig(token_noise=0.0, context=10**6), 0.0)
    k = cfg.val_context
    pred = rollout_tokens(model, batch.rows[:, :k], batch.actions[:, : k - 1], batch.actions[:, k - 1 : -1])
    model.train()

    def decode(tokens: torch.Tensor) -> torch.Tensor:  # (B, N, h, w) -> (B, N, 3, H, W) in [0, 1]
        frames = tokenizer.decode_tokens(tokens.flatten(0, 1)).clamp(-1, 1)
        return ((frames + 1) / 2).unflatten(0, tokens.shape[:2])

    target, frames = decode(batch.rows[:, k:]), decode(pred)
    copy = decode(batch.rows[:, k - 1 : k].expand_as(batch.rows[:, k:]))
    per_h = [psnr(frames[:, h], target[:, h]) for h in range(frames.shape[1])]
    gt_u8, pred_u8 = to_uint8(target[0] * 2 - 1), to_uint8(frames[0] * 2 - 1)
    logger.image("val_rollout", step, image_grid([gt_u8, pred_u8]))
    logger.video("val_rollout", step, np.concatenate([gt_u8, pred_u8], axis=2), fps=8)
    return {
        "val/loss": logs["loss"],
        "val/acc": logs["acc"],
        "val/copy_acc": logs["copy_acc"],
        "val/rollout_psnr": psnr(frames, target),
        "val/copy_psnr": psnr(copy, target),
        "val/rollout_psnr@1": per_h[0],
        f"val/rollout_psnr@{len(per_h)}": per_h[-1],
    }
