"""Tokenizer training: reconstruction (L1 + MSE) through the FSQ bottleneck.

cfg = load_config(TokenizerTrainConfig, "configs/coinrun/vqvae.yaml", overrides)
train_tokenizer(cfg)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ochre.checkpoint import save_tokenizer
from ochre.config import to_dict
from ochre.data.store import EpisodeDataset
from ochre.data.windows import WindowSampler
from ochre.frames import to_model, to_uint8
from ochre.metrics import codebook_usage, psnr
from ochre.models.tokenizer import Tokenizer, TokenizerConfig
from ochre.training.common import DataConfig, LoggingConfig, LoopConfig, RunConfig, optimizer_step, set_lr, setup_torch
from ochre.training.logger import RunLogger, image_grid, make_run_dir
from ochre.training.state import load_train_state, save_train_state


@dataclass
class TokenizerLoopConfig(LoopConfig):
    mse_weight: float = 1.0  # weight of the MSE term next to L1
    resume: str = ""  # train_state.pt of an earlier run: continue it exactly (same config)


@dataclass
class TokenizerTrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TokenizerLoopConfig = field(default_factory=TokenizerLoopConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    run: RunConfig = field(default_factory=RunConfig)


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
    device = setup_torch(cfg.train)
    data = EpisodeDataset(cfg.data.path, expect_kind="frames")
    train = WindowSampler(data, 1, "train", cfg.data.val_every, seed=cfg.train.seed)
    val = WindowSampler(data, 1, "val", cfg.data.val_every, seed=cfg.train.seed + 1)
    val_batch = val.fixed(256)
    run_dir = make_run_dir(cfg.run.dir, cfg.run.world, "vqvae", cfg.run.name)
    logger = RunLogger(run_dir, cfg, cfg.logging.wandb, cfg.logging.project)
    model = Tokenizer(cfg.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=0.0, betas=(0.9, 0.99))
    ckpt = run_dir / "checkpoints" / "tokenizer.pt"
    state_path = run_dir / "checkpoints" / "train_state.pt"
    start = load_train_state(cfg.train.resume, model, opt, train.rng) if cfg.train.resume else 0
    print(f"run folder: {run_dir}  ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, {device})")
    bar = tqdm(range(start, cfg.train.max_steps), initial=start, total=cfg.train.max_steps, desc="tokenizer", unit="step")
    t0 = time.time()
    for step in bar:
        lr = set_lr(opt, step, cfg.train)
        x = to_model(train.sample(cfg.train.batch_size).rows[:, 0], device)
        loss, logs = reconstruction_loss(model, x, cfg.train.mse_weight)
        logs["grad_norm"] = optimizer_step(opt, model, loss, cfg.train.grad_clip)
        bar.set_postfix(loss=f"{logs['loss']:.4f}", psnr=f"{logs['psnr']:.2f}")
        last = step + 1 == cfg.train.max_steps
        row = {}
        if step % cfg.logging.log_every == 0 or last:
            row = {f"train/{k}": v for k, v in logs.items()} | {"lr": lr, "time_s": time.time() - t0}
        if step % cfg.logging.sample_every == 0 or last:
            row |= validate(model, val_batch.rows[:, 0], logger, step, device)
        if row:
            logger.log(step, row)
        if (step + 1) % cfg.train.checkpoint_every == 0 or last:
            save_tokenizer(ckpt, model, step + 1, to_dict(cfg))
            save_train_state(state_path, model, opt, step + 1, train.rng)
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
