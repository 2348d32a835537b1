"""What a run ran on and how fast: device, torch version, processes and training throughput.

speed = Throughput(frames_per_step, start_step)
...
info = run_info(device, processes, speed, step)
info.write(run_dir)            # <run folder>/run_info.json
payload["run_info"] = info.to_json()   # and in the checkpoint
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ochre.device import describe
from ochre.io import write_json


class Throughput:
    """Training frames per second of wall time since this process's first step (validation and saving included)."""

    def __init__(self, frames_per_step: int, start_step: int):
        self.frames_per_step = frames_per_step  # over all processes
        self.start_step = start_step
        self.t0 = time.perf_counter()

    def frames_per_s(self, step: int) -> float:
        """`step`: the run's step count now (steps before a resume are not this process's)."""
        elapsed = time.perf_counter() - self.t0
        return (step - self.start_step) * self.frames_per_step / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class RunInfo:
    device: str  # "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3, 80 GB)", rank 0's under torchrun
    torch: str  # torch version, with its CUDA version when built with one
    processes: int  # torchrun processes (1 without torchrun)
    frames_per_s: float  # training throughput over all processes, see `Throughput`
    steps: int  # steps the throughput covers (those of this process: a resumed run counts from its resume)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, run_dir: Path) -> None:
        write_json(Path(run_dir) / "run_info.json", self.to_json())


def run_info(device: torch.device, processes: int, speed: Throughput, step: int) -> RunInfo:
    cuda = f" (CUDA {torch.version.cuda})" if torch.version.cuda else ""
    return RunInfo(
        describe(device), f"{torch.__version__}{cuda}", processes, round(speed.frames_per_s(step), 2), step - speed.start_step
    )
