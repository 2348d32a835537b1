"""Tokenizer training: reconstruction, quantizer, perceptual and (optional) adversarial losses.

    cfg = load_config(TokenizerTrainConfig, "configs/coinrun/vqvae.yaml", overrides)
    train_tokenizer(cfg)

Loss = l1 * L1 + mse * MSE (optionally detail-weighted, `ochre.losses.detail_weights`) + quant * commitment (VQ) + lpips * LPIPS
       + adv * PatchGAN hinge (from `adv_start` on, after a plain-reconstruction warm-up).

LPIPS needs its ImageNet backbone weights on disk; without them the run says once
what was disabled and how to enable it, and trains on the other terms.

Launched by torchrun, it trains data-parallel over all processes (DDP): each rank
samples its own frames (seed + rank), gradients are averaged, so one step sees
batch_size x world size frames; the VQ codebook's EMA statistics are gathered over the
ranks (`synced_vq.py`), the discriminator's gradients averaged; rank 0 alone validates
and writes the run folder. Resume works on any number of processes (`distributed.RankRNG`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ochre.checkpoint import tokenizer_payload
from ochre.config import to_dict
from ochre.data.store import EpisodeDataset
from ochre.data.windows import WindowSampler
from ochre.errors import OchreError
from ochre.frames import to_model
from ochre.images import image_grid
from ochre.io import save_torch
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
from ochre.models.vq import EMAVectorQuantizer
from ochre.tokenizer_eval import evaluate_reconstruction
from ochre.training import distributed
from ochre.training.common import (
    DataConfig,
    LoggingConfig,
    LoopConfig,
    RunConfig,
    autocast,
    grad_scaler,
    lr_at,
    optimizer_step,
    set_lr,
    setup_torch,
)
from ochre.training.logger import RunLogger, make_run_dir
from ochre.training.prefetch import Prefetcher
from ochre.training.run_info import RunInfo, Throughput, run_info
from ochre.training.state import ResumePoint, load_train_state, save_train_state
from ochre.training.synced_vq import synced_quantizer


@dataclass
class TokenizerLoopConfig(LoopConfig):
    l1_weight: float = 1.0  # L1 reconstruction
    mse_weight: float = 1.0  # MSE reconstruction
    detail_weight: float = 0.0  # pixels far from their frame's median colour weigh 1 + this in L1/MSE (0 = plain means)
    detail_tau: float = 0.2  # "far": more than this in some channel, frames in [-1, 1]
    quant_weight: float = 1.0  # VQ commitment loss (its beta is model.vq_commitment); FSQ has none
    kl_weight: float = 1e-4  # model.quantizer=continuous: KL of the latent to N(0, I), keeps its scale calibrated
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
    if out.kl is not None:  # a continuous latent: its KL term, and its scale (codes holds the posterior mean)
        loss = loss + cfg.kl_weight * out.kl
        logs |= {"kl": out.kl.item(), "latent_mean": out.codes.mean().item(), "latent_std": out.codes.std().item()}
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
    """One hinge-loss update of the discriminator on real x vs (detached) reconstructions (gradients averaged over
    the ranks under torchrun)."""
    if critics.disc is None or critics.disc_opt is None or adversarial_weight(step, start) == 0:
        return {}
    loss = hinge_d_loss(critics.disc(x), critics.disc(recon.detach().float()))
    critics.disc_opt.zero_grad(set_to_none=True)
    loss.backward()
    distributed.average_gradients(critics.disc)
    critics.disc_opt.step()
    return {"adv_d": loss.item()}


def train_tokenizer(cfg: TokenizerTrainConfig) -> Path:
    """Train and return the path of the final tokenizer checkpoint (on every rank when launched by torchrun)."""
    launch = distributed.detect_launch()
    choice = setup_torch(replace(cfg.train, seed=cfg.train.seed + launch.rank))
    if launch.rank == 0:
        print(choice)
    device = distributed.rank_device(choice.device, launch)
    with distributed.process_group(launch, device):
        return fit(cfg, device, launch)


@dataclass
class Run:
    """One process's tokenizer run, as `build_run` made it."""

    cfg: TokenizerTrainConfig
    model: Tokenizer
    wrapped: nn.Module  # `model` in DDP under torchrun
    opt: torch.optim.Optimizer
    critics: Critics
    scaler: torch.amp.GradScaler | None  # fp16 on CUDA only
    sampler: Prefetcher  # training frames (a WindowSampler seeded seed + rank), drawn ahead on a background thread
    val_frames: torch.Tensor | None  # (N, H, W, 3) uint8 held-out frames; rank 0 only
    logger: RunLogger | None  # rank 0 only
    rng: distributed.RankRNG
    extra: dict[str, Any]  # the discriminator, its optimizer, the fp16 scaler
    info: Callable[[int], RunInfo]  # step -> device, torch version and throughput
    device: torch.device
    run_dir: Path
    start: int  # the first step: 0, or where the resumed run stopped
    t0: float = field(default_factory=time.time)
    restarted: int = 0  # dead VQ codes restarted by this process's steps

    @property
    def ckpt(self) -> Path:
        return self.run_dir / "checkpoints" / "tokenizer.pt"


def fit(cfg: TokenizerTrainConfig, device: torch.device, launch: distributed.Launch) -> Path:
    """The training loop of one process (one DDP rank under torchrun): `train_step`, `log_and_validate`, `save`."""
    run = build_run(cfg, device, launch)
    main = distributed.is_main()
    if run.start >= cfg.train.max_steps:
        if main:
            print(
                f"the run is finished (step {run.start} of train.max_steps={cfg.train.max_steps}); raise train.max_steps to go on"
            )
        if not run.ckpt.is_file():  # resumed into a new folder: its tokenizer is the state's weights
            save(run, run.start)
    steps = range(run.start, cfg.train.max_steps)
    bar = tqdm(steps, initial=run.start, total=cfg.train.max_steps, desc="tokenizer", unit="step", disable=not main)
    for step in bar:
        logs = train_step(run, step)
        bar.set_postfix(loss=f"{logs['loss']:.4f}", psnr=f"{logs['psnr']:.2f}")
        log_and_validate(run, step, logs)
        if (step + 1) % cfg.train.checkpoint_every == 0 or step + 1 == cfg.train.max_steps:
            save(run, step + 1)
    if main:
        run.logger.close()
        print(f"tokenizer checkpoint: {run.ckpt}")
    distributed.barrier()  # the checkpoint is written before any rank returns its path
    return run.ckpt


def build_run(cfg: TokenizerTrainConfig, device: torch.device, launch: distributed.Launch) -> Run:
    """Data, model, optimizer, critics, run folder and logger; resume when asked; last the DDP wrapper."""
    main = distributed.is_main()
    data = EpisodeDataset(cfg.data.path, expect_kind="frames")
    data.verify_once()  # sha256 of every shard the first time, then of what changed since
    if list(data.manifest["frame_shape"][:2]) != list(cfg.model.frame_size):
        raise OchreError(
            f"{cfg.data.path}: frames are {data.manifest['frame_shape'][:2]} but model.frame_size is {cfg.model.frame_size}; "
            f"set model.frame_size={list(data.manifest['frame_shape'][:2])}"
        )
    frames = WindowSampler(data, 1, "train", cfg.data.val_every, seed=cfg.train.seed + launch.rank)
    sampler = Prefetcher(lambda: frames.sample(cfg.train.batch_size), frames.rng, cfg.train.prefetch, device.type == "cuda")
    val_frames = (
        WindowSampler(data, 1, "val", cfg.data.val_every, seed=cfg.train.seed + 1).fixed(256).rows[:, 0] if main else None
    )
    run_dir = distributed.broadcast_from_main(
        make_run_dir(cfg.run.dir, cfg.run.world, "vqvae", cfg.run.name, cfg.train.resume) if main else None
    )
    model = Tokenizer(cfg.model).to(device)
    if launch.distributed and isinstance(model.quantizer, EMAVectorQuantizer):
        model.quantizer = synced_quantizer(model.quantizer)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=0.0, betas=(0.9, 0.99))
    critics = build_critics(cfg.train, device)
    if critics.disc is not None:
        distributed.broadcast_parameters(critics.disc)  # DDP gives the tokenizer rank 0's weights; this the critic
    scaler = grad_scaler(device, cfg.train.amp)
    rng = distributed.RankRNG(frames.rng, device, cfg.train.seed, launch)
    extra = {"disc": critics.disc, "disc_opt": critics.disc_opt, "scaler": scaler}
    resumed = load_train_state(cfg.train.resume, model, opt, rng, extra) if cfg.train.resume else ResumePoint()
    logger = RunLogger(run_dir, cfg, cfg.logging, resumed) if main else None
    wrapped = distributed.data_parallel(model, device)
    speed = Throughput(cfg.train.batch_size * launch.world_size, resumed.step)
    info = functools.partial(run_info, device, launch.world_size, speed)
    if main:
        procs = f", {launch.world_size} processes" if launch.distributed else ""
        print(f"run folder: {run_dir}  ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, {device}{procs})")
    return Run(
        cfg, model, wrapped, opt, critics, scaler, sampler, val_frames, logger, rng, extra, info, device, run_dir, resumed.step
    )


def train_step(run: Run, step: int) -> dict[str, float]:
    """One generator and (when on) discriminator update on a fresh batch; this rank's losses and batch scores."""
    cfg, model, device = run.cfg.train, run.model, run.device
    set_lr(run.opt, step, cfg)
    x = to_model(run.sampler.next().rows[:, 0], device)
    with autocast(device, cfg.amp):
        out = run.wrapped(x)
        loss, logs = generator_loss(out, x, cfg, run.critics, step)
    logs["grad_norm"] = optimizer_step(run.opt, model, loss, cfg.grad_clip, run.scaler)
    with autocast(device, cfg.amp):
        logs |= discriminator_step(x, out.recon, run.critics, step, cfg.adv_start)
    run.restarted += out.restarted
    logs["psnr"] = psnr((out.recon.detach().float().clamp(-1, 1) + 1) / 2, (x + 1) / 2)
    logs["codes_used"], logs["perplexity"] = codebook_usage(out.tokens, model.codebook_size)
    logs["codes_restarted"] = run.restarted
    return logs


def log_and_validate(run: Run, step: int, logs: dict[str, float]) -> None:
    """On log steps a metrics row (averaged over ranks: a collective), on sample steps rank 0's validation."""
    cfg = run.cfg
    last = step + 1 == cfg.train.max_steps
    row = {}
    if step % cfg.logging.log_every == 0 or last:
        row = {f"train/{k}": v for k, v in distributed.mean_floats(logs).items()}
        row |= {"lr": lr_at(step, cfg.train), "time_s": time.time() - run.t0}
    if not distributed.is_main():
        return
    if step % cfg.logging.sample_every == 0 or last:
        row |= validate(run.model, run.val_frames, run.logger, step, run.device, run.critics.lpips)
    if row:
        run.logger.log(step, row)


def save(run: Run, step: int) -> None:
    """Rank 0 writes the tokenizer checkpoint (with the run's device and throughput) and the training state; under
    torchrun every rank first hands over its random streams (a collective)."""
    run.sampler.rewind()  # the sampler's stream as the steps so far left it, not as the prefetch thread did
    run.rng.gather()
    if distributed.is_main():
        info = run.info(step)
        save_torch(run.ckpt, tokenizer_payload(run.model, step, to_dict(run.cfg)) | {"run_info": info.to_json()})
        state_path = run.run_dir / "checkpoints" / "train_state.pt"
        save_train_state(state_path, run.model, run.opt, step, run.rng, run.extra, run.logger.wandb_id)
        info.write(run.run_dir)


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
