"""Values that enter from the command line, checked where they enter.

    p = ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=positive_int, default=None)
    p.add_argument("--out", type=writable_dir, required=True)
    p.add_argument("--device", type=known_device, default="auto")

A bad flag stops in argparse, before any work or any folder, with exit status 2 and
one line: `error: argument --steps: must be an integer >= 1 (got '-1'); see --help`. The same
checks serve the config loader (`ochre.config`): `device_problem` for `train.device`
and `folder_problem` for `run.dir`.
"""

from __future__ import annotations

import argparse
import math
import re
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Description and epilog as written; a flag's help ends with its default, unless it names its own."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or "default" in text or action.nargs == 0:
            return text
        if action.default in (None, "", [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one `error: ...` line (exit status 2), as every other user error in Ochre, and
    whose --help shows every flag's default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}; see --help", file=sys.stderr)
        sys.exit(2)


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'} (got {text!r})") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text!r})")
    return value


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high] (high None: no upper bound)."""

    def parse(text: str) -> int:
        value = int(_number(text, int))
        if value < low or (high is not None and value > high):
            allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be an integer {allowed} (got {text!r})")
        return value

    return parse


def float_range(low: float, high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number above `low` (or at it, unless low_open) and at most `high`."""

    def parse(text: str) -> float:
        value = float(_number(text, float))
        if value < low or (low_open and value == low) or (high is not None and value > high):
            allowed = f"{'>' if low_open else '>='} {low:g}" if high is None else f"in [{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"must be a number {allowed} (got {text!r})")
        return value

    return parse


positive_int = int_range(1)  # counts of things that must happen at least once: steps, frames, batch sizes
nonneg_int = int_range(0)  # counts where 0 means "none" or "off", seeds
positive_float = float_range(0.0, low_open=True)  # rates, temperatures, fps
nonneg_float = float_range(0.0)  # durations, tolerances
unit_float = float_range(0.0, 1.0)  # probabilities and shares


def device_problem(name: object) -> str | None:
    """Why torch device `name` cannot be used here, as "must ..." / "needs ..." (None when it can)."""
    if not isinstance(name, str) or not DEVICE.match(name):
        return "must be auto, cpu, cuda, cuda:N or mps"
    if name.startswith("cuda"):
        import torch

        from ochre.device import cuda_missing

        missing = cuda_missing()
        if missing:
            return f"needs CUDA, but {missing} (use cpu or auto)"
        count, index = torch.cuda.device_count(), int(name.split(":")[1]) if ":" in name else 0
        if index >= count:
            return f"needs {name} but this machine has {count} CUDA device{'s' * (count != 1)} (cuda:0 to cuda:{count - 1})"
    if name == "mps":
        import torch

        if not torch.backends.mps.is_available():
            return "needs MPS, which this machine does not have (use cpu or auto)"
    return None


def known_device(text: str) -> str:
    """An argparse type: a torch device that exists on this machine."""
    problem = device_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem} (got {text!r})")
    return text


def folder_problem(path: str | Path) -> str | None:
    """Why folder `path` cannot be made and written (None when it can); nothing is left behind.

    The nearest existing folder on the way is asked to take a temporary file, which also
    finds read-only file systems, which permission bits alone do not show to root.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{path} exists and is not a folder"
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{path} cannot be made: {existing} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        return f"{path} cannot be written ({existing}: {err.strerror or err})"
    return None


def writable_dir(text: str) -> str:
    """An argparse type: an output folder that exists or can be made, and can be written (checked without writing it)."""
    problem = folder_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def writable_file(text: str) -> str:
    """An argparse type: an output file whose folder exists or can be made and can be written; not a folder itself."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; give a file name")
    problem = folder_problem(path.parent)
    if problem:
        raise argparse.ArgumentTypeError(f"{path} cannot be written: {problem}")
    return text


def special_file(path: str | Path) -> str | None:
    """What kind of special file `path` is (a FIFO, socket or device), or None for a regular file, folder or nothing."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None
    kinds = {
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    return next((name for test, name in kinds.items() if test(mode)), None)


def input_path(text: str) -> str:
    """An argparse type: a path to read. A FIFO, socket or device is refused (reading one can block forever);
    a missing path passes, so the reader's own message names what it expected there."""
    kind = special_file(text) if text else None
    if kind:
        raise argparse.ArgumentTypeError(f"{text} is {kind}, not a regular file or folder")
    return text


def input_file(text: str) -> str:
    """An argparse type: a file to read (a checkpoint, a preset). A folder, FIFO, socket or device is refused;
    a missing path passes, so the reader's own message names what it expected there."""
    if text and Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    return input_path(text)


def add_flow_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--flow-steps and --guidance, a flow world's sampler (`WorldModel.set_flow_sampling`)."""
    parser.add_argument(
        "--flow-steps", type=positive_int, default=None, help="flow worlds: Euler steps per frame (default: the world's)"
    )
    parser.add_argument(
        "--guidance",
        type=nonneg_float,
        default=None,
        help="flow worlds: classifier-free guidance scale on the action (default: the world's; 1 = conditional only)",
    )
