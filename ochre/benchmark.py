"""Helpers shared by the benchmark entry points (`train.bench`, `vqvae.bench`, `live.bench`, `train.compare`): step timing,
host-read counting and where a timing was measured (`machine`).

times = step_times(step, repeats=12, warmup=2, device=device)
with HostReads() as reads:
    step()
print(reads.count)  # tensor values read into Python during one step
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import torch

READS = ("item", "tolist", "cpu", "numpy", "__float__", "__bool__")  # the Tensor methods that hand a value to Python


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


class HostReads:
    """Counts the tensor values read into Python (`item`, `float()`, `bool()`, `tolist`, `cpu`, `numpy`) inside the block.

    On a GPU each such read waits for the device to finish the work queued before it. A read of a GPU tensor
    always counts; a read of a CPU tensor counts unless torch makes it itself (AdamW reads its CPU step
    counters every step, which never waits on a device), so on a CPU run the count is the reads the same code
    makes on a GPU. Not seen: `int()` of a tensor and syncs inside operators (`nonzero`, boolean indexing).
    The Tensor methods are put back when the block ends, errors included.
    """

    def __init__(self) -> None:
        self.count = 0
        self._own: dict[str, Any] = {}  # what torch.Tensor itself defined under each name (None: the C base's shows)

    def __enter__(self) -> HostReads:
        for name in READS:
            self._own[name] = torch.Tensor.__dict__.get(name)
            setattr(torch.Tensor, name, self._counted(getattr(torch.Tensor, name)))
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        for name, own in self._own.items():
            if own is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, own)

    def _counted(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def read(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if tensor.device.type != "cpu" or not _read_by_torch():
                self.count += 1
            return method(tensor, *args, **kwargs)

        return read


def _read_by_torch() -> bool:
    """Whether the read's caller is torch's own code, looking past Tensor's Python methods (`f"{t:.3f}"` calls item)."""
    frame = sys._getframe(2)  # 0: here, 1: the counting wrapper, 2: its caller
    while frame is not None and frame.f_globals.get("__name__") == "torch._tensor":
        frame = frame.f_back
    return frame is not None and frame.f_globals.get("__name__", "").startswith("torch.")


def machine(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Where a timing was measured: device, processor, cores, torch threads and version, the load while measuring."""
    info = {
        "device": str(device),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_1min": os.getloadavg()[0],  # other work on the machine while measuring
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
