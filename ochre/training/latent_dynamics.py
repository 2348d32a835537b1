"""Training a latent world on a latent dataset: the bridge (model.type=latent_gru) or the flow world (latent_flow).

    python -m train.dynamics --config configs/coinrun/latent_flow.yaml data.path=data/coinrun_play_latents

The latent dataset comes from `python -m vqvae.tokenize` with a continuous tokenizer; its
manifest names the tokenizer and records the latents' per-channel statistics, which the
model config takes (the model works on normalised latents). Same plumbing as the token
dynamics: typed config, run folder with metrics.csv, images and rollout videos (and
W&B), exact resume from train_state.pt, and a world checkpoint (`ochre-world`, the model
type in its dynamics config) that `ochre.WorldModel.load` plays. `fit` is the loop:
`build_run`, then per step `train_step`, `log_and_validate` (latent_validation.py) and
`save`. It trains in one process: under torchrun it stops with one line saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ochre.actions import ActionSpec
from ochre.checkpoint import build_tokenizer, load_tokenizer_payload
from ochre.config import to_dict
from ochre.data.store import EpisodeDataset
from ochre.data.windows import Batch, WindowSampler
from ochre.errors import ConfigError, OchreError
from ochre.io import sha256_file
from ochre.models.latent_flow import LatentFlow, LatentFlowConfig
from ochre.models.latent_gru import LatentGRU, LatentGRUConfig
from ochre.models.latent_space import LatentSpaceConfig
from ochre.models.tokenizer import Tokenizer
from ochre.seed_contexts import SeedContexts, seed_contexts, tokenizer_decoder
from ochre.training import distributed
from ochre.training.common import autocast, grad_scaler, lr_at, optimizer_step, set_lr, setup_torch, to_floats
from ochre.training.latent_config import LatentTrainConfig
from ochre.training.latent_loss import ar_probability, flow_window_loss, gru_window_loss
from ochre.training.latent_validation import validate
from ochre.training.logger import RunLogger, make_run_dir
from ochre.training.prefetch import Prefetcher
from ochre.training.run_info import Throughput, run_info
from ochre.training.state import ResumePoint, load_train_state, save_train_state
from ochre.world import data_source, save_world

LatentModel = LatentGRU | LatentFlow
WindowLoss = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]
MODELS: dict[str, tuple[type[LatentModel], WindowLoss]] = {
    "latent_gru": (LatentGRU, gru_window_loss),
    "latent_flow": (LatentFlow, flow_window_loss),
}


class LatentWindows(WindowSampler):
    """Windows of a latent dataset: rows (B, T, C, h, w) float32 (the frame and token sampler's `gather` makes
    non-uint8 rows long)."""

    def gather(self, picks: np.ndarray) -> Batch:
        rows, actions = zip(*(self.data.rows(int(sh), int(st), self.length) for sh, st in picks), strict=True)
        return Batch(torch.from_numpy(np.stack(rows)).float(), torch.from_numpy(np.stack(actions)).long())


@dataclass
class Run:
    """One latent training run, as `build_run` made it."""

    cfg: LatentTrainConfig
    model: LatentModel
    window_loss: WindowLoss
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None  # fp16 on CUDA only
    sampler: Prefetcher  # training windows (LatentWindows), drawn ahead on a background thread
    val: Batch  # fixed validation windows, normalised, on the device
    tokenizer: Tokenizer  # frozen, decodes for validation
    tok_payload: dict[str, Any]  # goes into the world checkpoint
    spec: ActionSpec
    logger: RunLogger
    rng: distributed.RankRNG
    speed: Throughput
    device: torch.device
    run_dir: Path
    start: int  # the first step: 0, or where the resumed run stopped
    world: str
    fps: float
    seeds: SeedContexts  # clips of validation episodes, so the world plays alone
    source: dict[str, Any] | None  # the game and env settings the data was drawn with (data_source)
    t0: float = field(default_factory=time.time)
    bad_steps: int = 0

    @property
    def world_path(self) -> Path:
        return self.run_dir / "checkpoints" / "world.pt"

    @property
    def state_path(self) -> Path:
        return self.run_dir / "checkpoints" / "train_state.pt"


def train_latent_dynamics(cfg: LatentTrainConfig) -> Path:
    """Train, write the world checkpoint, and return its path."""
    distributed.refuse_launch(f"model.type={cfg.model.type}", "python -m train.dynamics --config <preset> (without torchrun)")
    choice = setup_torch(cfg.train)
    print(choice)
    run = build_run(cfg, choice.device)
    if run.start >= cfg.train.max_steps:
        print(f"the run is finished (step {run.start} of train.max_steps={cfg.train.max_steps}); raise train.max_steps to go on")
        if not run.world_path.is_file():  # resumed into a new folder: its world is the state's weights
            save(run, run.start)
    bar = tqdm(range(run.start, cfg.train.max_steps), initial=run.start, total=cfg.train.max_steps, desc=cfg.model.type)
    for step in bar:
        logs = train_step(run, step)
        if logs is not None:
            log_and_validate(run, step, logs, bar)
        if (step + 1) % cfg.train.checkpoint_every == 0 or step + 1 == cfg.train.max_steps:
            save(run, step + 1)
    run.logger.close()
    print(f"world checkpoint: {run.world_path}")
    return run.world_path


def build_run(cfg: LatentTrainConfig, device: torch.device) -> Run:
    """Data, frozen tokenizer, model (its config resolved from them), optimizer, validation windows, run folder, logger;
    then resume when asked."""
    data = EpisodeDataset(cfg.data.path, expect_kind="latents")
    data.verify_once()  # sha256 of every shard the first time, then of what changed since
    tok_path, tok_payload = tokenizer_payload(cfg.tokenizer.path, data)
    tokenizer = build_tokenizer(tok_payload, tok_path).to(device).requires_grad_(False)
    model_cls, window_loss = MODELS[cfg.model.type]
    model = model_cls(resolve_model_config(cfg.model, data, tokenizer, tok_path)).to(device)
    t = cfg.train
    if t.seq_len < 2 or not 1 <= t.context < t.seq_len or t.val_context < 1 or t.val_horizon < 1:
        raise ConfigError("train: need seq_len >= 2, 1 <= context < seq_len, val_context >= 1 and val_horizon >= 1")
    windows = LatentWindows(data, t.seq_len, "train", cfg.data.val_every, seed=t.seed)
    sampler = Prefetcher(lambda: windows.sample(t.batch_size), windows.rng, t.prefetch, pin=device.type == "cuda")
    val = LatentWindows(data, t.val_context + t.val_horizon, "val", cfg.data.val_every, seed=t.seed + 1).fixed(t.val_windows)
    val = Batch(model.norm.normalize(val.rows.to(device)), val.actions.to(device))
    run_dir = make_run_dir(cfg.run.dir, cfg.run.world, cfg.model.type, cfg.run.name, t.resume)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=0.01, betas=(0.9, 0.99))
    scaler = grad_scaler(device, t.amp)
    rng = distributed.RankRNG(windows.rng, device, t.seed, distributed.Launch())
    resumed = load_train_state(t.resume, model, opt, rng, {"scaler": scaler}) if t.resume else ResumePoint()
    logger = RunLogger(run_dir, cfg, cfg.logging, resumed)
    speed = Throughput(t.batch_size * (t.seq_len - 1), resumed.step)
    world, fps = data.manifest.get("world", cfg.run.world), data.manifest.get("fps", 15)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    decode = tokenizer_decoder(tokenizer, device)  # the dataset's raw latents -> frames
    print(f"run folder: {run_dir}  ({params:.2f}M params, {device}, {len(windows)} train windows)")
    return Run(
        cfg, model, window_loss, opt, scaler, sampler, val, tokenizer, tok_payload, data.action_spec, logger, rng, speed,
        device, run_dir, resumed.step, world, fps, seed_contexts(data, t.val_context, cfg.data.val_every, decode),
        data_source(data.manifest),
    )  # fmt: skip


def tokenizer_payload(path: str, data: EpisodeDataset) -> tuple[str, dict[str, Any]]:
    """The continuous tokenizer (tokenizer.path, or the one that made the latents): its path and payload."""
    tok_path = path or data.manifest["tokenizer"]["path"]
    made_by = data.manifest.get("tokenizer", {}).get("sha256")
    if made_by and made_by != sha256_file(tok_path):
        raise OchreError(
            f"{data.path}: these latents were made by another tokenizer ({data.manifest['tokenizer']['path']}) than "
            f"{tok_path}; re-run `python -m vqvae.tokenize` with this tokenizer or drop tokenizer.path"
        )
    return tok_path, load_tokenizer_payload(tok_path)


def resolve_model_config(
    m: LatentGRUConfig | LatentFlowConfig, data: EpisodeDataset, tokenizer: Tokenizer, tok_path: str
) -> LatentGRUConfig | LatentFlowConfig:
    """Latent channels, grid and statistics come from the tokenizer and the dataset, actions from the dataset;
    a setting that disagrees is an error."""
    if not tokenizer.cfg.continuous:
        raise OchreError(f"{tok_path}: a {tokenizer.cfg.quantizer} tokenizer; latent worlds need model.quantizer=continuous")
    shape = [tokenizer.cfg.latent_channels, *tokenizer.cfg.token_grid]
    if data.manifest.get("latent_shape") != shape:
        raise OchreError(f"{data.path}: latents are {data.manifest.get('latent_shape')} but tokenizer {tok_path} makes {shape}")
    if "latent_mean" not in data.manifest or "latent_std" not in data.manifest:
        raise OchreError(
            f"{data.path}: manifest.json records no latent_mean / latent_std (tokenizing did not finish); "
            "rerun the same `python -m vqvae.tokenize` command"
        )
    spec, factored = data.action_spec, data.action_spec.kind != "discrete"
    truths = {
        "latent_channels": (shape[0], f"tokenizer {tok_path}"),
        "latent_grid": (shape[1:], f"tokenizer {tok_path}"),
        "latent_mean": (data.manifest["latent_mean"], f"dataset {data.path}"),
        "latent_std": (data.manifest["latent_std"], f"dataset {data.path}"),
        "num_actions": (0 if factored else spec.n, f"dataset {data.path}"),
        "action_factors": (list(spec.factors) if factored else [], f"dataset {data.path}"),
    }
    defaults = LatentSpaceConfig()
    values = {}
    for key, (truth, source) in truths.items():
        given = getattr(m, key)
        if given not in (0, [], getattr(defaults, key)) and given != truth:
            raise ConfigError(f"model.{key}={given} but the {source} has {truth}; remove the override")
        values[key] = truth
    try:
        return type(m)(**(to_dict(m) | values))
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None


def train_step(run: Run, step: int) -> dict[str, torch.Tensor] | None:
    """One optimizer step on a fresh batch; its logs (detached tensors), or None when the loss was not finite."""
    cfg = run.cfg.train
    set_lr(run.opt, step, cfg)
    batch = run.sampler.next().to(run.device)
    z = run.model.norm.normalize(batch.rows)
    with autocast(run.device, cfg.amp):
        loss, logs = run.window_loss(run.model, z, batch.actions, cfg, ar_probability(step, cfg))
    if not torch.isfinite(loss):
        run.bad_steps += 1
        tqdm.write(f"warning: step {step}: loss is {float(loss)}; step skipped ({run.bad_steps} so far)")
        if run.bad_steps > cfg.max_bad_steps:
            raise OchreError(
                f"{run.bad_steps} steps with a non-finite loss (train.max_bad_steps={cfg.max_bad_steps}); "
                f"lower train.lr or check the data. Last good checkpoint: {run.state_path}"
            )
        run.opt.zero_grad(set_to_none=True)
        return None
    grad_norm = optimizer_step(run.opt, run.model, loss, cfg.grad_clip, run.scaler)
    return logs | {"grad_norm": torch.tensor(grad_norm)}


def log_and_validate(run: Run, step: int, logs: dict[str, torch.Tensor], bar: tqdm) -> None:
    """On log steps a metrics row (the logs read in one go) and the progress bar; on sample steps validation."""
    cfg = run.cfg
    last = step + 1 == cfg.train.max_steps
    row = {}
    if step % cfg.logging.log_every == 0 or last:
        row = {f"train/{k}": v for k, v in to_floats(logs).items()}
        row |= {"lr": lr_at(step, cfg.train), "time_s": time.time() - run.t0, "bad_steps": run.bad_steps}
        bar.set_postfix(loss=f"{row['train/loss']:.4f}")
    if step % cfg.logging.sample_every == 0 or last:
        row |= validate(run.model, run.tokenizer, run.val, cfg.train, run.logger, step)
    if row:
        run.logger.log(step, row)


def save(run: Run, step: int) -> None:
    """The world checkpoint (tokenizer + latent model + action schema + configs) and the training state."""
    run.sampler.rewind()  # the sampler's stream as the steps so far left it, not as the prefetch thread did
    info = run_info(run.device, 1, run.speed, step)
    configs = {"dynamics_train": to_dict(run.cfg), "tokenizer_train": run.tok_payload.get("train_config", {})}
    configs |= {"run_info": info.to_json()}
    save_world(run.world_path, run.tok_payload, run.model, run.spec, configs, step, run.world, run.fps, run.seeds, run.source)
    save_train_state(run.state_path, run.model, run.opt, step, run.rng, {"scaler": run.scaler}, run.logger.wandb_id)
    info.write(run.run_dir)
