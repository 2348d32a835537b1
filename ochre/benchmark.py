"""Timing helper shared by the benchmark entry points (`train.bench`, `vqvae.bench`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def step_times(fn: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> list[float]:
    """Wall seconds of `repeats` calls of `fn` after `warmup` untimed ones, each synchronised with the device."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times
