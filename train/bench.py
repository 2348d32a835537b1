"""Dynamics training and inference speed, against this machine's measured peak.

python -m train.bench                                   # CoinRun preset, CPU, torch's thread count
python -m train.bench --memory 8 --idm-span 1          # with the temporal memory and the IDM head
python -m train.bench --pixel-weight 1                  # plus the pixel loss through a default tokenizer
python -m train.bench --device cuda --out runs/bench_train_cuda.json

Peak: GEMMs of `--matmul-size` squared and a convolution shaped like the
model's ConvGRU (hidden_dim channels, 3x3, half the token grid, the training
batch), in the training compute dtype (float32 on CPU; `--amp` on CUDA).
Training: the median wall time of one full optimizer step as the trainer takes
it outside log steps (`train_step`: `sequence_loss` forward at p_ar = ar_max,
backward, gradient clipping, AdamW) on random tokens and actions, after warm-up;
frames/s = batch * (seq_len - 1) / step time. Host reads: the tensor values that
one such step reads into Python (`ochre.benchmark.HostReads`), each a wait for
the device on a GPU.
`--compile` times the step with `train.compile=true` (compiled during warm-up).
`--idm-span N` adds the inverse-dynamics head and trains it (idm_weight and
idm_pred_weight 1). Inference: what the live app does per frame at batch 1:
one `Dynamics.step`, greedy tokens, `Tokenizer.decode_tokens`.

FLOPs come from torch's FlopCounterMode (matmuls, convolutions, attention;
forward and backward). Elementwise work such as the GRU gates, the softmax and
the optimizer is not counted, so utilisation (achieved FLOP/s over a peak) is a
lower bound.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ochre.benchmark import HostReads, step_times
from ochre.cli import ArgumentParser, int_range, known_device, nonneg_float, nonneg_int, positive_int, writable_file
from ochre.data.windows import Batch
from ochre.device import resolve_device
from ochre.errors import cli_entry
from ochre.io import write_json
from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.models.tokenizer import Tokenizer, TokenizerConfig
from ochre.sampling import sample_tokens
from ochre.training.common import StepTimer, grad_scaler
from ochre.training.dynamics import Trainer, adamw, compile_step, train_step
from ochre.training.dynamics_config import DynamicsLoopConfig
from ochre.training.dynamics_loss import LossContext, WindowLoss
from ochre.training.prefetch import Prefetcher

AMP_DTYPES = {"off": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of `fn` (matmuls, convolutions, attention, forward and backward) by FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def measured_rate(fn: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> float:
    """Median GFLOP/s of `fn`."""
    return count_flops(fn) / statistics.median(step_times(fn, repeats, warmup, device)) / 1e9


def compute_dtype(device: torch.device, amp: str) -> torch.dtype:
    """The dtype training computes in: the autocast dtype on CUDA, float32 on CPU (where autocast is off)."""
    return AMP_DTYPES[amp] if device.type == "cuda" else torch.float32


@torch.inference_mode()
def matmul_peak(size: int, dtype: torch.dtype, device: torch.device, repeats: int, warmup: int) -> float:
    """GFLOP/s of a (size x size) @ (size x size) GEMM."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    return measured_rate(lambda: a @ b, repeats, warmup, device)


@torch.inference_mode()
def conv_peak(shape: tuple[int, int, int, int], dtype: torch.dtype, device: torch.device, repeats: int, warmup: int) -> float:
    """GFLOP/s of a 3x3 same-padded convolution on (B, C, H, W) inputs with C output channels."""
    conv = torch.nn.Conv2d(shape[1], shape[1], 3, padding=1).to(device, dtype)
    x = torch.randn(shape, device=device, dtype=dtype)
    return measured_rate(lambda: conv(x), repeats, warmup, device)


def coinrun_preset(memory: int, idm_span: int) -> DynamicsConfig:
    """configs/coinrun/dynamics.yaml with the sizes it takes from the CoinRun tokenizer and action set."""
    return DynamicsConfig(
        codebook_size=1000,
        token_grid=[16, 16],
        num_actions=15,
        embed_dim=64,
        hidden_dim=96,
        layers=2,
        memory=memory,
        idm_span=idm_span,
    )


def random_batch(cfg: DynamicsConfig, batch: int, seq_len: int, device: torch.device) -> Batch:
    """Uniformly random tokens (B, T, h, w) and discrete actions (B, T)."""
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.codebook_size, (batch, seq_len, *cfg.token_grid), generator=gen)
    actions = torch.randint(0, cfg.num_actions, (batch, seq_len), generator=gen)
    return Batch(tokens, actions).to(device)


def training_step(
    model: Dynamics, batch: Batch, loop: DynamicsLoopConfig, ctx: LossContext, device: torch.device
) -> Callable[[], object]:
    """One optimizer step on `batch` as the trainer takes it outside log steps (`train_step`) at step ar_end, where
    the linear ramp has brought p_ar to ar_max: loss under autocast, backward, clip, AdamW."""
    opt, scaler = adamw(model, loop), grad_scaler(device, loop.amp)
    batches = Prefetcher(lambda: batch, np.random.default_rng(0), depth=0)
    trainer = Trainer(model, WindowLoss(model, loop, ctx), opt, scaler, batches, loop, device, StepTimer(device))
    return lambda: train_step(trainer, loop.ar_end)


def host_reads(step: Callable[[], object]) -> int:
    """Tensor values read into Python during one call of `step`."""
    with HostReads() as reads:
        step()
    return reads.count


def live_frame(model: Dynamics, tokenizer: Tokenizer, device: torch.device) -> Callable[[], None]:
    """One frame of the live app at batch 1: dynamics step, greedy tokens, decode; the state carries over."""
    state = model.initial_state(1, device)
    tokens = torch.randint(0, model.cfg.codebook_size, (1, *model.cfg.token_grid), device=device)
    action = torch.zeros(1, dtype=torch.long, device=device)

    def frame() -> None:
        nonlocal state, tokens
        state, logits = model.step(state, tokens, action)
        tokens = sample_tokens(logits)
        tokenizer.decode_tokens(tokens)

    return frame


def bench_training(args: argparse.Namespace, cfg: DynamicsConfig, tokenizer: Tokenizer, device: torch.device) -> dict[str, Any]:
    """Step time, frames/s and FLOPs of one training step of a fresh model on random data."""
    idm = 1.0 if cfg.idm_span else 0.0
    loop = DynamicsLoopConfig(
        batch_size=args.batch,
        seq_len=args.seq_len,
        pixel_weight=args.pixel_weight,
        idm_weight=idm,
        idm_pred_weight=idm,
        amp=args.amp,
    )
    model = Dynamics(cfg).to(device)
    if args.compile:
        compile_step(model)
    step = training_step(model, random_batch(cfg, args.batch, args.seq_len, device), loop, LossContext(tokenizer), device)
    times = step_times(step, args.steps, args.warmup, device)
    seconds = statistics.median(times)
    flops = count_flops(step)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "host_reads_per_step": host_reads(step),
        "step_s": seconds,
        "step_s_min": min(times),
        "step_s_max": max(times),
        "frames_per_s": args.batch * (args.seq_len - 1) / seconds,
        "flops_per_step": flops,
        "gflops": flops / seconds / 1e9,
    }


@torch.inference_mode()
def bench_inference(args: argparse.Namespace, cfg: DynamicsConfig, tokenizer: Tokenizer, device: torch.device) -> dict[str, Any]:
    """Per-frame latency and FLOPs of the live loop (eval mode, float32, as `WorldModel` runs)."""
    frame = live_frame(Dynamics(cfg).to(device).eval(), tokenizer, device)
    seconds = statistics.median(step_times(frame, args.repeats, args.warmup, device))
    flops = count_flops(frame)
    return {"frame_ms": 1000 * seconds, "frames_per_s": 1 / seconds, "flops_per_frame": flops, "gflops": flops / seconds / 1e9}


def table_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The results as (metric, value) rows for the printed table."""
    peak, train, infer, s = r["peak"], r["train"], r["inference"], r["settings"]
    b, c, h, w = peak["conv_shape"]
    return [
        ("device / torch threads", f"{r['machine']['device']} / {r['machine']['threads']}"),
        (f"matmul peak ({peak['dtype']}, {s['matmul_size']}^3)", f"{peak['matmul_gflops']:.1f} GFLOP/s"),
        (f"conv peak ({c}ch 3x3, {h}x{w}, batch {b})", f"{peak['conv_gflops']:.1f} GFLOP/s"),
        (
            f"train step (batch {s['batch']}, seq {s['seq_len']}{', compiled' if s['compile'] else ''}, median of {s['steps']})",
            f"{train['step_s'] * 1000:.0f} ms",
        ),
        ("train step min / max", f"{train['step_s_min'] * 1000:.0f} / {train['step_s_max'] * 1000:.0f} ms"),
        ("train frames/s", f"{train['frames_per_s']:.1f}"),
        ("train FLOPs per step (fwd + bwd)", f"{train['flops_per_step'] / 1e9:.2f} GFLOP"),
        ("train achieved", f"{train['gflops']:.1f} GFLOP/s"),
        ("train host reads per step (outside log steps)", f"{train['host_reads_per_step']}"),
        ("train MFU vs matmul peak", f"{train['mfu_matmul']:.1%}"),
        ("train MFU vs conv peak", f"{train['mfu_conv']:.1%}"),
        ("inference per frame (step + decode, batch 1)", f"{infer['frame_ms']:.2f} ms ({infer['frames_per_s']:.0f} frames/s)"),
        ("inference FLOPs per frame", f"{infer['flops_per_frame'] / 1e6:.1f} MFLOP"),
        ("inference achieved", f"{infer['gflops']:.1f} GFLOP/s"),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--device", type=known_device, default="cpu", help="cpu | cuda | auto")
    p.add_argument("--threads", type=nonneg_int, default=0, help="torch CPU threads (0 = torch's current count)")
    p.add_argument("--batch", type=positive_int, default=24, help="windows per training step (train.batch_size)")
    p.add_argument("--seq-len", type=int_range(2), default=12, help="frames per window (train.seq_len)")
    p.add_argument("--memory", type=nonneg_int, default=0, help="model.memory: temporal buffer length (0 = off)")
    p.add_argument("--idm-span", type=nonneg_int, default=0, help="model.idm_span: add the IDM head and train it (0 = off)")
    p.add_argument(
        "--pixel-weight", type=nonneg_float, default=0.0, help="train.pixel_weight: decode pixel_samples windows per step"
    )
    p.add_argument("--amp", choices=sorted(AMP_DTYPES), default="bf16", help="train.amp (CUDA only; CPU runs float32)")
    p.add_argument(
        "--compile", action="store_true", help="train.compile: torch.compile the training step's forward (warm-up compiles)"
    )
    p.add_argument("--steps", type=positive_int, default=12, help="timed training steps")
    p.add_argument("--repeats", type=positive_int, default=20, help="timed calls for the peaks and the inference frame")
    p.add_argument("--warmup", type=nonneg_int, default=2, help="untimed calls before each measurement")
    p.add_argument("--matmul-size", type=positive_int, default=2048, help="side of the square GEMMs for the matmul peak")
    p.add_argument("--out", type=writable_file, default="runs/bench_train.json", help="where to write the results (JSON)")
    return p.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    load = os.getloadavg()[0]
    cfg = coinrun_preset(args.memory, args.idm_span)
    tokenizer = Tokenizer(TokenizerConfig()).to(device).requires_grad_(False).eval()
    dtype = compute_dtype(device, args.amp)
    shape = (args.batch, cfg.hidden_dim, cfg.token_grid[0] // 2, cfg.token_grid[1] // 2)
    peak = {
        "dtype": str(dtype).removeprefix("torch."),
        "matmul_gflops": matmul_peak(args.matmul_size, dtype, device, args.repeats, args.warmup),
        "conv_gflops": conv_peak(shape, dtype, device, args.repeats, args.warmup),
        "conv_shape": list(shape),
    }
    train = bench_training(args, cfg, tokenizer, device)
    train |= {"mfu_matmul": train["gflops"] / peak["matmul_gflops"], "mfu_conv": train["gflops"] / peak["conv_gflops"]}
    results = {
        "machine": {
            "device": str(device),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "loadavg_1m_before": load,
        },
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "peak": peak,
        "train": train,
        "inference": bench_inference(args, cfg, tokenizer, device),
    }
    print("| metric | value |\n|---|---|")
    for metric, value in table_rows(results):
        print(f"| {metric} | {value} |")
    write_json(Path(args.out), results)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
