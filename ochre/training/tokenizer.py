"""Tokenizer training: reconstruction, quantizer, perceptual and (optional) adversarial losses.

    cfg = load_config(TokenizerTrainConfig, "configs/coinrun/vqvae.yaml", overrides)
    train_tokenizer(cfg)

Loss = l1 * L1 + mse * MSE (optionally detail-weighted, `ochre.losses.detail_weights`) + quant * commitment (VQ) + lpips * LPIPS
       + adv * PatchGAN hinge (from `adv_start` on, after a plain-reconstruction warm-up).

LPIPS needs its ImageNet backbone weights on disk; without them the run says once
what was disabled and how to enable it, and trains on the other terms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ochre.checkpoint import save_tokenizer
from ochre.config import to_dict
from ochre.data.store import EpisodeDataset
from ochre.data.windows import WindowSampler
from ochre.errors import OchreError
from ochre.frames import to_model
from ochre.losses import (
    LPIPSLoss,
    PatchDiscriminator,
    adversarial_weight,
    detail_weights,
    generator_adv_loss,
    hinge_d_loss,
    load_lpips,
)
from ochre.metrics import codebook_usage, psnr
from ochre.models.tokenizer import Tokenizer, TokenizerConfig, TokenizerOutput
from ochre.tokenizer_eval import evaluate_reconstruction
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
from ochre.training.logger import RunLogger, image_grid, make_run_dir
from ochre.training.state import load_train_state, save_train_state


@dataclass
class TokenizerLoopConfig(LoopConfig):
    l1_weight: float = 1.0  # L1 reconstruction
    mse_weight: float = 1.0  # MSE reconstruction
    detail_weight: float = 0.0  # pixels far from their frame's median colour weigh 1 + this in L1/MSE (0 = plain means)
    detail_tau: float = 0.2  # "far": more than this in some channel, frames in [-1, 1]
    quant_weight: float = 1.0  # VQ commitment loss (its beta is model.vq_commitment); FSQ has none
    lpips_weight: float = 0.1  # perceptual term (0 = off)
    lpips_net: Literal["alex", "vgg"] = "alex"  # LPIPS backbone
    lpips_weights: str = ""  # backbone weights file; empty = torch hub cache
    adv_weight: float = 0.0  # PatchGAN term (0 = off)
    adv_start: int = 1000  # steps of plain reconstruction before the adversarial term starts
    disc_lr: float = 2e-4  # discriminator learning rate
    amp: Literal["off", "bf16", "fp16"] = "bf16"  # mixed precision on CUDA (CPU always runs float32)
    resume: str = ""  # train_state.pt of an earlier run: continue it exactly (same config)


@dataclass
class TokenizerTrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TokenizerLoopConfig = field(default_factory=TokenizerLoopConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class Critics:
    """The optional loss networks: LPIPS (frozen) and the PatchGAN discriminator (trained)."""

    lpips: LPIPSLoss | None = None
    disc: PatchDiscriminator | None = None
    disc_opt: torch.optim.Optimizer | None = None


def build_critics(cfg: TokenizerLoopConfig, device: torch.device) -> Critics:
    critics = Critics()
    if cfg.lpips_weight > 0:
        critics.lpips = load_lpips(cfg.lpips_net, cfg.lpips_weights, warn=lambda msg: tqdm.write(f"warning: {msg}"))
        if critics.lpips is not None:
            critics.lpips = critics.lpips.to(device)
    if cfg.adv_weight > 0:
        critics.disc = PatchDiscriminator().to(device)
        critics.disc_opt = torch.optim.AdamW(critics.disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.9), weight_decay=0.0)
    return critics


def generator_loss(
    out: TokenizerOutput, x: torch.Tensor, cfg: TokenizerLoopConfig, critics: Critics, step: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """The tokenizer's loss on one batch x (B, 3, H, W) in [-1, 1]."""
    recon = out.recon.float()
    if cfg.detail_weight > 0:
        w = detail_weights(x, cfg.detail_weight, cfg.detail_tau)
        l1, l2 = (w * (recon - x).abs()).mean(), (w * (recon - x).pow(2)).mean()
    else:
        l1, l2 = F.l1_loss(recon, x), F.mse_loss(recon, x)
    loss = cfg.l1_weight * l1 + cfg.mse_weight * l2 + cfg.quant_weight * out.quant_loss
    logs = {"l1": l1.item(), "mse": l2.item(), "quant": out.quant_loss.item()}
    if critics.lpips is not None:
        perceptual = critics.lpips(recon, x)
        loss = loss + cfg.lpips_weight * perceptual
        logs["lpips"] = perceptual.item()
    if critics.disc is not None and (w := adversarial_weight(step, cfg.adv_start)) > 0:
        adv = generator_adv_loss(critics.disc(recon))
        loss = loss + cfg.adv_weight * w * adv
        logs["adv_g"] = adv.item()
    logs["loss"] = loss.item()
    return loss, logs


def discriminator_step(x: torch.Tensor, recon: torch.Tensor, critics: Critics, step: int, start: int) -> dict[str, float]:
    """One hinge-loss update of the discriminator on real x vs (detached) reconstructions."""
    if critics.disc is None or critics.disc_opt is None or adversarial_weight(step, start) == 0:
        return {}
    loss = hinge_d_loss(critics.disc(x), critics.disc(recon.detach().float()))
    critics.disc_opt.zero_grad(set_to_none=True)
    loss.backward()
    critics.disc_opt.step()
    return {"adv_d": loss.item()}


def train_tokenizer(cfg: TokenizerTrainConfig) -> Path:
    """Train and return the path of the final tokenizer checkpoint."""
    device = setup_torch(cfg.train)
    data = EpisodeDataset(cfg.data.path, expect_kind="frames")
    data.verify_once()  # sha256 of every shard the first time, then of what changed since
    if list(data.manifest["frame_shape"][:2]) != list(cfg.model.frame_size):
        raise OchreError(
            f"{cfg.data.path}: frames are {data.manifest['frame_shape'][:2]} but model.frame_size is {cfg.model.frame_size}; "
            f"set model.frame_size={list(data.manifest['frame_shape'][:2])}"
        )
    train = WindowSampler(data, 1, "train", cfg.data.val_every, seed=cfg.train.seed)
    val = WindowSampler(data, 1, "val", cfg.data.val_every, seed=cfg.train.seed + 1)
    val_batch = val.fixed(256)
    run_dir = make_run_dir(cfg.run.dir, cfg.run.world, "vqvae", cfg.run.name, cfg.train.resume)
    logger = RunLogger(run_dir, cfg, cfg.logging.wandb, cfg.logging.project)
    model = Tokenizer(cfg.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=0.0, betas=(0.9, 0.99))
    critics = build_critics(cfg.train, device)
    scaler = grad_scaler(device, cfg.train.amp)
    extra = {"disc": critics.disc, "disc_opt": critics.disc_opt, "scaler": scaler}
    ckpt = run_dir / "checkpoints" / "tokenizer.pt"
    state_path = run_dir / "checkpoints" / "train_state.pt"
    start = 0
    if cfg.train.resume:
        start = load_train_state(cfg.train.resume, model, opt, train.rng, extra)
        logger.resume(start)
    print(f"run folder: {run_dir}  ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, {device})")
    if start >= cfg.train.max_steps:
        print(f"the run is finished (step {start} of train.max_steps={cfg.train.max_steps}); raise train.max_steps to go on")
        if not ckpt.is_file():  # resumed into a new folder: its tokenizer is the state's weights
            save_tokenizer(ckpt, model, start, to_dict(cfg))
    bar = tqdm(range(start, cfg.train.max_steps), initial=start, total=cfg.train.max_steps, desc="tokenizer", unit="step")
    t0, restarted = time.time(), 0
    for step in bar:
        lr = set_lr(opt, step, cfg.train)
        x = to_model(train.sample(cfg.train.batch_size).rows[:, 0], device)
        with autocast(device, cfg.train.amp):
            out = model(x)
            loss, logs = generator_loss(out, x, cfg.train, critics, step)
        logs["grad_norm"] = optimizer_step(opt, model, loss, cfg.train.grad_clip, scaler)
        with autocast(device, cfg.train.amp):
            logs |= discriminator_step(x, out.recon, critics, step, cfg.train.adv_start)
        restarted += out.restarted
        logs["psnr"] = psnr((out.recon.detach().float().clamp(-1, 1) + 1) / 2, (x + 1) / 2)
        logs["codes_used"], logs["perplexity"] = codebook_usage(out.tokens, model.codebook_size)
        logs["codes_restarted"] = restarted
        bar.set_postfix(loss=f"{logs['loss']:.4f}", psnr=f"{logs['psnr']:.2f}")
        last = step + 1 == cfg.train.max_steps
        row = {}
        if step % cfg.logging.log_every == 0 or last:
            row = {f"train/{k}": v for k, v in logs.items()} | {"lr": lr, "time_s": time.time() - t0}
        if step % cfg.logging.sample_every == 0 or last:
            row |= validate(model, val_batch.rows[:, 0], logger, step, device, critics.lpips)
        if row:
            logger.log(step, row)
        if (step + 1) % cfg.train.checkpoint_every == 0 or last:
            save_tokenizer(ckpt, model, step + 1, to_dict(cfg))
            save_train_state(state_path, model, opt, step + 1, train.rng, extra)
    logger.close()
    print(f"tokenizer checkpoint: {ckpt}")
    return ckpt


@torch.no_grad()
def validate(
    model: Tokenizer, frames: torch.Tensor, logger: RunLogger, step: int, device: torch.device, lpips: LPIPSLoss | None = None
) -> dict[str, float]:
    """frames: (N, H, W, 3) uint8 held-out episodes -> val metrics; writes an input|recon grid."""
    report, recon = evaluate_reconstruction(model, frames.numpy(), device, lpips)
    model.train()
    logger.image("val_recon", step, image_grid([frames[:12].numpy(), recon[:12]]))
    metrics = {
        "val/psnr": report.psnr_rgb,
        "val/psnr_gray84": report.psnr_gray84,
        "val/ssim": report.ssim,
        "val/codes_used": report.codes_used,
        "val/perplexity": report.perplexity,
    }
    if report.lpips is not None:
        metrics["val/lpips"] = report.lpips
    return metrics
