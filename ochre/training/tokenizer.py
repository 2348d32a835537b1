"""Tokenizer training: reconstruction (L1 + MSE) through the FSQ bottleneck.

cfg = load_config(TokenizerTrainConfig, "configs/coinrun/vqvae.yaml", overrides)
train_tokenizer(cfg)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ochre.checkpoint import save_tokenizer
from ochre.config import to_dict
from ochre.data import EpisodeDataset, WindowSampler
from ochre.frames import to_model, to_uint8
from ochre.metrics import codebook_usage, psnr
from ochre.models.tokenizer import Tokenizer, TokenizerConfig
from ochre.training.common import DataConfig, LoggingConfig, RunConfig, resolve_device
from ochre.training.logger import RunLogger, image_grid, make_run_dir


@dataclass
class TokenizerLoopConfig:
    max_steps: int = 2000  # optimizer steps
    batch_size: int = 32  # frames per step
    lr: float = 1e-3  # peak learning rate (cosine decay after warmup)
    warmup_steps: int = 100  # linear warmup steps
    grad_clip: float = 1.0  # max gradient norm
    mse_weight: float = 1.0  # weight of the MSE term next to L1
    seed: int = 0  # torch/numpy seed
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads (0 = torch default)
    checkpoint_every: int = 500  # steps between checkpoint writes


@dataclass
class TokenizerTrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TokenizerLoopConfig = field(default_factory=TokenizerLoopConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    run: RunConfig = field(default_factory=RunConfig)


def lr_at(step: int, peak: float, warmup: int, total: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return float(peak * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(1.0, progress)))))


def reconstruction_loss(model: Tokenizer, x: torch.Tensor, mse_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """x: (B, 3, H, W) in [-1, 1] -> (loss, logs)."""
    out = model(x)
    l1 = F.l1_loss(out.recon, x)
    l2 = F.mse_loss(out.recon, x)
    loss = l1 + mse_weight * l2
    used, perplexity = codebook_usage(out.tokens, model.codebook_size)
    logs = {
        "loss": loss.item(),
        "l1": l1.item(),
        "psnr": psnr((out.recon.detach() + 1) / 2, (x + 1) / 2),
        "codes_used": used,
        "perplexity": perplexity,
    }
    return loss, logs


def train_tokenizer(cfg: TokenizerTrainConfig) -> Path:
    """Train and return the path of the final tokenizer checkpoint."""
    torch.manual_seed(cfg.train.seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    data = EpisodeDataset(cfg.data.path, expect_kind="frames")
    train = WindowSampler(data, 1, "train", cfg.data.val_every, seed=cfg.train.seed)
    val = WindowSampler(data, 1, "val", cfg.data.val_every, seed=cfg.train.seed + 1)
    val_batch = val.fixed(256)
    run_dir = make_run_dir(cfg.run.dir, cfg.run.world, "vqvae", cfg.run.name)
    logger = RunLogger(run_dir, cfg, cfg.logging.wandb, cfg.logging.project)
    model = Tokenizer(cfg.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=0.0, betas=(0.9, 0.99))
    ckpt = run_dir / "checkpoints" / "tokenizer.pt"
    print(f"run folder: {run_dir}  ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, {device})")
    bar = tqdm(range(cfg.train.max_steps), desc="tokenizer", unit="step")
    t0 = time.time()
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg.train.lr, cfg.train.warmup_steps, cfg.train.max_steps)
        x = to_model(train.sample(cfg.train.batch_size).rows[:, 0], device)
        loss, logs = reconstruction_loss(model, x, cfg.train.mse_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip))
        opt.step()
        bar.set_postfix(loss=f"{logs['loss']:.4f}", psnr=f"{logs['psnr']:.2f}")
        last = step + 1 == cfg.train.max_steps
        row = {}
        if step % cfg.logging.log_every == 0 or last:
            row = {f"train/{k}": v for k, v in logs.items()} | {"lr": opt.param_groups[0]["lr"], "time_s": time.time() - t0}
        if step % cfg.logging.sample_every == 0 or last:
            row |= validate(model, val_batch.rows[:, 0], logger, step, device)
        if row:
            logger.log(step, row)
        if (step + 1) % cfg.train.checkpoint_every == 0 or last:
            save_tokenizer(ckpt, model, step + 1, to_dict(cfg))
    logger.close()
    print(f"tokenizer checkpoint: {ckpt}")
    return ckpt


@torch.no_grad()
def validate(model: Tokenizer, frames: torch.Tensor, logger: RunLogger, step: int, device: torch.device) -> dict[str, float]:
    """frames: (N, H, W, 3) uint8 held-out episodes -> val metrics; writes an input|recon grid."""
    model.eval()
    recon, tokens = [], []
    for chunk in frames.split(64):
        out = model(to_model(chunk, device))
        recon.append(out.recon.cpu())
        tokens.append(out.tokens.cpu())
    model.train()
    recon_t, tokens_t = torch.cat(recon), torch.cat(tokens)
    target = to_model(frames)
    used, perplexity = codebook_usage(tokens_t, model.codebook_size)
    logger.image("val_recon", step, image_grid([frames[:12].numpy(), to_uint8(recon_t[:12])]))
    return {
        "val/psnr": psnr((recon_t.clamp(-1, 1) + 1) / 2, (target + 1) / 2),
        "val/codes_used": used,
        "val/perplexity": perplexity,
    }
