"""Data-parallel training across processes and machines, launched by torchrun (PyTorch DDP).

torchrun starts one process per GPU (or per CPU worker) and tells each one where it
sits through RANK, WORLD_SIZE and LOCAL_RANK. `detect_launch` reads them,
`process_group` joins the group (nccl on CUDA, gloo on CPU) and leaves it on exit,
errors included, and the helpers below let the trainer keep one code path: without
a torchrun launch (or with WORLD_SIZE=1) no process group is created and every
helper returns at once, with no communication.

    launch = detect_launch()
    device = rank_device(resolve_device("auto"), launch)
    with process_group(launch, device):
        wrapped = data_parallel(loss_module, device)
        ...
        if is_main():
            save(...)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ochre.errors import OchreError

T = TypeVar("T")


@dataclass(frozen=True)
class Launch:
    """This process's place in a torchrun launch; the defaults are a plain single-process run."""

    rank: int = 0  # global rank, 0..world_size-1
    world_size: int = 1  # processes over all machines
    local_rank: int = 0  # rank on this machine: the GPU index it uses

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def detect_launch() -> Launch:
    """Read the variables torchrun sets; a launch with one process is treated as no launch at all."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Launch()
    return Launch(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))


def rank_device(device: torch.device, launch: Launch) -> torch.device:
    """Under a launch, a CUDA device means this process's own GPU, cuda:LOCAL_RANK (made the current one)."""
    if device.type != "cuda" or not launch.distributed:
        return device
    torch.cuda.set_device(launch.local_rank)
    return torch.device("cuda", launch.local_rank)


@contextlib.contextmanager
def process_group(launch: Launch, device: torch.device, backend: str = "") -> Iterator[None]:
    """Join the launch's process group for the duration of the block, and always leave it.

    backend: empty = nccl for CUDA devices, gloo for the CPU. Rendezvous comes from the
    environment torchrun sets (MASTER_ADDR, MASTER_PORT). Single process: does nothing.
    """
    if not launch.distributed:
        yield
        return
    dist.init_process_group(
        backend or ("nccl" if device.type == "cuda" else "gloo"), device_id=device if device.type == "cuda" else None
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_main() -> bool:
    """True on rank 0, the only rank that writes files and logs (and in a single-process run)."""
    return not _active() or dist.get_rank() == 0


def barrier() -> None:
    """Wait until every rank gets here."""
    if _active():
        dist.barrier()


def _comm_device() -> torch.device:
    """Where tensors for a collective must live: the current GPU for nccl, the CPU otherwise."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mean of every scalar tensor over all ranks, in the same key order; every rank must pass the same keys.

    The means are float64 tensors on the collective's device (this GPU for nccl, the CPU for gloo): nothing
    is read into Python, so with nccl the host does not wait for the device. A non-finite value on any rank
    makes that mean non-finite, so every rank sees it.
    """
    if not _active():
        return values
    keys = sorted(values)
    total = torch.stack([values[k].detach().to(_comm_device(), torch.float64) for k in keys])
    dist.all_reduce(total)
    means = dict(zip(keys, total / dist.get_world_size(), strict=True))
    return {k: means[k] for k in values}


def broadcast_from_main(value: T) -> T:
    """Rank 0's `value` on every rank (any picklable object); the value itself in a single process."""
    if not _active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=_comm_device())
    return box[0]


def data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` wrapped in DistributedDataParallel under a launch; `module` itself otherwise.

    DDP gives every rank rank 0's parameters when it wraps, then averages gradients
    over ranks during backward, for the work done inside the wrapper's forward only.
    It is told to look for unused parameters, for two reasons: a step may leave some
    weights without a gradient (an optional head whose loss is off), which DDP would
    otherwise wait for and then fail on; and it keeps DDP's gradient buckets in their
    initial layout (without the flag DDP re-buckets after the first step, in gradient
    arrival order), so a resumed run sums gradients over ranks in the same order as the
    uninterrupted one: bit-exact resume for any number of processes. The price is one
    walk over the autograd graph per step (and, when nothing was unused, one note from
    DDP saying so).
    """
    if not _active():
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)


class RankRNG:
    """Every rank's random streams as one training-state entry, so each rank of a resumed run goes on exactly.

    A rank draws from the torch CPU generator, its GPU's generator and its window
    sampler's numpy generator, all seeded apart (seed + rank). Only rank 0 writes the
    training state, so `gather` (a collective: every rank calls it before rank 0
    saves) collects them; `load_state_dict` restores this rank's own streams.
    """

    def __init__(self, sampler_rng: np.random.Generator, device: torch.device):
        self.sampler_rng = sampler_rng
        self.device = device
        self.ranks: list[dict[str, Any]] = []

    def local(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state(), "numpy": self.sampler_rng.bit_generator.state}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def gather(self) -> None:
        self.ranks = [{} for _ in range(dist.get_world_size())]
        dist.all_gather_object(self.ranks, self.local())

    def state_dict(self) -> dict[str, Any]:
        return {"ranks": self.ranks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved, world_size = len(state["ranks"]), dist.get_world_size()
        if saved != world_size:
            raise OchreError(
                f"train.resume: the training state was saved by {saved} processes but this launch has {world_size}; "
                f"relaunch with {saved} processes, or start from its weights with train.init_from=<the run's world.pt>"
            )
        own = state["ranks"][dist.get_rank()]
        torch.set_rng_state(own["torch"])
        self.sampler_rng.bit_generator.state = own["numpy"]
        if "cuda" in own and self.device.type == "cuda":
            torch.cuda.set_rng_state(own["cuda"], self.device)
