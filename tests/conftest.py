"""Shared fixtures: a tiny real CoinRun dataset and a tiny trained world, built once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


def run_module(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python -m <args>` (or a script) from the repository root, as a user would."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    cmd = [sys.executable, *(["-m"] if not args[0].endswith(".py") else []), *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def keep_train_states(module, monkeypatch, tmp_path: Path) -> dict[int, Path]:
    """Every training state `module.save_train_state` writes, copied by step (the trainer keeps only the latest)."""
    snapshots: dict[int, Path] = {}
    real_save = module.save_train_state

    def save_and_keep(path, model, opt, step, *args, **kwargs):
        real_save(path, model, opt, step, *args, **kwargs)
        snapshots.setdefault(step, tmp_path / f"state_{step}.pt").write_bytes(path.read_bytes())

    monkeypatch.setattr(module, "save_train_state", save_and_keep)
    return snapshots


def tiny_doom_world(tmp_path: Path, frames: int, *dynamics_overrides: str) -> tuple[Path, Path]:
    """Real ViZDoom frames -> tiny VQ tokenizer -> tiny dynamics, through the entry points; returns (data, world.pt)."""
    data, runs, tokens = tmp_path / "doom", tmp_path / "runs", tmp_path / "tokens"
    run_module("preprocess.generate", "--world", "doom", "--frames", str(frames), "--shard-frames", str(frames // 2),
               "--env", "episode_timeout=200", "--out", str(data), "--quiet")  # fmt: skip
    run_module("vqvae.train", "--config", "configs/tiny/vqvae.yaml", f"data.path={data}", f"run.dir={runs}", "run.name=vq",
               "data.val_every=4", "model.quantizer=vq", "model.vq_codes=64", "model.vq_dim=8")  # fmt: skip
    run_module("vqvae.tokenize", "--tokenizer", str(runs / "vq/checkpoints/tokenizer.pt"), "--data", str(data),
               "--out", str(tokens), "--device", "cpu")  # fmt: skip
    run_module("train.dynamics", "--config", "configs/tiny/dynamics.yaml", f"data.path={tokens}", f"run.dir={runs}",
               "run.name=dyn", "data.val_every=4", "run.world=doom", *dynamics_overrides)  # fmt: skip
    return data, runs / "dyn" / "checkpoints" / "world.pt"


@pytest.fixture(scope="session")
def frames_dataset(tmp_path_factory) -> Path:
    """A few hundred real CoinRun frames, made with the real entry point."""
    out = tmp_path_factory.mktemp("data") / "coinrun"
    run_module("preprocess.generate", "--world", "coinrun", "--frames", "320", "--num-envs", "8", "--env", "num_levels=50",
               "--policy", "uniform", "--max-episode-frames", "20", "--shard-frames", "160", "--out", str(out))  # fmt: skip
    return out


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory, frames_dataset) -> dict[str, Path]:
    """Runs the real entry points with tiny configs: tokenizer -> tokens -> dynamics."""
    runs = tmp_path_factory.mktemp("runs")
    run_module(
        "vqvae.train",
        "--config",
        "configs/tiny/vqvae.yaml",
        f"data.path={frames_dataset}",
        f"run.dir={runs}",
        "run.name=vq",
        "data.val_every=4",
    )
    tokenizer = runs / "vq" / "checkpoints" / "tokenizer.pt"
    tokens = frames_dataset.parent / "coinrun_tokens"
    run_module(
        "vqvae.tokenize", "--tokenizer", str(tokenizer), "--data", str(frames_dataset), "--out", str(tokens), "--device", "cpu"
    )
    run_module(
        "train.dynamics",
        "--config",
        "configs/tiny/dynamics.yaml",
        f"data.path={tokens}",
        f"run.dir={runs}",
        "run.name=dyn",
        "data.val_every=4",
    )
    return {
        "runs": runs,
        "tokenizer": tokenizer,
        "tokens": tokens,
        "world": runs / "dyn" / "checkpoints" / "world.pt",
        "frames": frames_dataset,
    }
