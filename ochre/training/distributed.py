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


def mean_floats(values: dict[str, float]) -> dict[str, float]:
    """The mean of every Python float over all ranks (a collective; every rank passes the same keys)."""
    if not _active():
        return values
    means = all_reduce_mean({k: torch.tensor(float(v), dtype=torch.float64) for k, v in values.items()})
    return dict(zip(means, torch.stack(list(means.values())).tolist(), strict=True))


def broadcast_parameters(module: nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank, for a module that DDP does not wrap."""
    if _active():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(module: nn.Module) -> None:
    """Each gradient of `module` averaged over ranks in place, as DDP would, for a module it does not wrap."""
    if not _active():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(part.view_as(g))


def refuse_launch(what: str, command: str) -> None:
    """Stop a torchrun launch of a trainer that runs in one process only: rank 0 says so in one line
    (an OchreError), every other rank exits quietly with the same status (2)."""
    launch = detect_launch()
    if not launch.distributed:
        return
    if launch.rank != 0:
        raise SystemExit(2)
    raise OchreError(
        f"{what} trains in one process only, and torchrun started {launch.world_size}; run it as one process: {command}"
    )


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
    training state, so `gather` (a collective under torchrun: every rank calls it before
    rank 0 saves) collects them; `restore` gives each rank of the resumed run its saved
    streams by rank. A run resumed on fewer processes drops the streams of the missing
    ranks; on more, a rank without saved streams starts fresh ones derived from the seed,
    its rank and the step (`fresh`), and rank 0 says so in one line.
    """

    def __init__(self, sampler_rng: np.random.Generator, device: torch.device, seed: int, launch: Launch):
        self.sampler_rng = sampler_rng
        self.device = device
        self.seed = seed
        self.launch = launch
        self.ranks: list[dict[str, Any]] = []  # every rank's streams, as the last `gather` found them

    def local(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state(), "numpy": self.sampler_rng.bit_generator.state}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def gather(self) -> list[dict[str, Any]]:
        """Every rank's streams, in rank order (a collective under a launch; this process's own otherwise)."""
        if not _active():
            self.ranks = [self.local()]
            return self.ranks
        self.ranks = [{} for _ in range(dist.get_world_size())]
        dist.all_gather_object(self.ranks, self.local())
        return self.ranks

    def restore(self, saved: list[dict[str, Any]], step: int) -> None:
        """Take this rank's streams from `saved` (one entry per rank of the saving run), or fresh ones if it has none."""
        rank, size = self.launch.rank, self.launch.world_size
        if rank == 0 and len(saved) != size:
            print(mapping_note(len(saved), size))
        if rank >= len(saved):
            self.fresh(step)
            return
        own = saved[rank]
        torch.set_rng_state(own["torch"])
        self.sampler_rng.bit_generator.state = own["numpy"]
        if "cuda" in own and self.device.type == "cuda":
            torch.cuda.set_rng_state(own["cuda"], self.device)

    def fresh(self, step: int) -> None:
        """Streams of their own for a rank the saving run did not have: seeded by (seed, rank, step), so a rerun
        draws the same, and not the windows the rank drew from step 0."""
        seq = np.random.SeedSequence([self.seed, self.launch.rank, step])
        torch.manual_seed(int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1)))  # also seeds every GPU
        self.sampler_rng.bit_generator.state = type(self.sampler_rng.bit_generator)(seq).state


def mapping_note(saved: int, size: int) -> str:
    """One line on how the saved random streams of `saved` processes map onto a run of `size` processes."""
    head = f"resume: the training state holds the random streams of {_processes(saved)}, this run has {size}"
    if saved > size:
        return f"{head}; kept for {_ranks(0, size)}, dropped for {_ranks(size, saved)}"
    return f"{head}; kept for {_ranks(0, saved)}, fresh ones from train.seed, the rank and the step for {_ranks(saved, size)}"


def _processes(n: int) -> str:
    return "1 process" if n == 1 else f"{n} processes"


def _ranks(first: int, end: int) -> str:
    return f"rank {first}" if end == first + 1 else f"ranks {first}-{end - 1}"
