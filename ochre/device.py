"""Which torch device to run on, and why: `auto` says what it chose, `cuda` without a GPU is one clear error.

choice = choose_device("auto")
print(choice)              # device: cpu (CUDA not available: Found no NVIDIA driver on your system...)
device = choice.device     # or resolve_device("auto"), the device alone
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ochre.errors import OchreError


@dataclass(frozen=True)
class DeviceChoice:
    """A resolved device and the reason it was chosen (the GPU's name and memory, or why there is no GPU)."""

    device: torch.device
    why: str

    def __str__(self) -> str:
        return f"device: {self.device} ({self.why})"


def choose_device(name: str | torch.device, key: str = "device") -> DeviceChoice:
    """`auto` -> the first GPU when CUDA works, else the CPU; `cpu`, `cuda`, `cuda:N` as asked.

    key: the setting `name` came from (`train.device`, `--device`), named by the error for a GPU that is not there.
    """
    if str(name) == "auto":
        missing = cuda_missing()
        if missing:
            return DeviceChoice(torch.device("cpu"), missing)
        return DeviceChoice(torch.device("cuda", 0), gpu_name(0))
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise OchreError(f"{key}={name} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type != "cuda":
        return DeviceChoice(device, "asked for")
    missing = cuda_missing()
    if missing:
        raise OchreError(f"{key}={name} but {missing}; use {key}=cpu or {key}=auto")
    index = 0 if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise OchreError(f"{key}={name} but only {torch.cuda.device_count()} GPU(s) are visible; use {key}=cuda:0 or {key}=auto")
    return DeviceChoice(torch.device("cuda", index), gpu_name(index))


def resolve_device(name: str | torch.device, key: str = "device") -> torch.device:
    """The device of `choose_device(name, key)`."""
    return choose_device(name, key).device


def cuda_missing() -> str:
    """Why CUDA cannot be used here ("" when it can): a torch build without CUDA, or the driver's own reason."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} built without CUDA"
    if torch.cuda.is_available():
        return ""
    try:
        torch.cuda.init()  # raises with the reason is_available() keeps to itself (no driver, driver too old, ...)
    except Exception as err:  # torch raises RuntimeError, AssertionError or its own types here
        return f"CUDA not available: {first_sentence(str(err)) or type(err).__name__}"
    return "CUDA not available: no GPU visible (check CUDA_VISIBLE_DEVICES)"


def first_sentence(text: str) -> str:
    """'Found no NVIDIA driver on your system.' of torch's longer message."""
    line = text.strip().split("\n")[0]
    return line[: line.index(". ") + 1] if ". " in line else line


def gpu_name(index: int) -> str:
    """'NVIDIA H100 80GB HBM3, 80 GiB' for GPU `index`."""
    props = torch.cuda.get_device_properties(index)
    return f"{props.name}, {props.total_memory / 2**30:.0f} GiB"


def describe(device: torch.device) -> str:
    """A device in words for run records: 'cpu' or 'cuda:0 (NVIDIA H100 80GB HBM3, 80 GiB)'."""
    if device.type != "cuda":
        return str(device)
    return f"{device} ({gpu_name(0 if device.index is None else device.index)})"
