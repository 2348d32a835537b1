"""Crash safety: generation, tokenizing and training killed with SIGKILL at random moments, then run again,
end byte- or bit-identical to runs that were never interrupted.

Each test starts its own process and kills it by its pid (never by name). The number of
kills comes from KILLS_GENERATE, KILLS_TOKENIZE and KILLS_TRAIN (small by default;
`make test-faults` asks for 20, 5 and 10). Every second output is killed twice, the second
time while it resumes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ROOT

pytestmark = pytest.mark.slow_faults

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
GENERATE = ["-m", "preprocess.generate", "--world", "coinrun", "--frames", "6000", "--num-envs", "8", "--env", "num_levels=50",
            "--policy", "uniform", "--max-episode-frames", "40", "--shard-frames", "250", "--quiet"]  # fmt: skip


def kills(name: str, default: int) -> int:
    return int(os.environ.get(f"KILLS_{name}", default))


def run(args: list[str]) -> float:
    """Run `python <args>` to the end (it must succeed) -> seconds it took."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return time.perf_counter() - start


def kill_at_random(args: list[str], seconds: float, rng: np.random.Generator) -> bool:
    """Start `python <args>` and SIGKILL it, by its pid, at a random moment of about `seconds`;
    -> whether it was still running when killed (False: it finished first)."""
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=rng.uniform(0.05, 0.95) * seconds)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True
    return False


def killed_then_finished(
    n: int, make_args: Callable[[Path], list[str]], resume_args: Callable[[Path], list[str]], seconds: float, tmp: Path
) -> list[Path]:
    """Outputs, each killed once or twice (the second time while resuming) and then run to the end; n kills in all."""
    rng = np.random.default_rng(n)
    outputs, done = [], 0
    while done < n:
        out = tmp / f"killed_{len(outputs)}"
        for attempt in range(1 + len(outputs) % 2):
            args = make_args(out) if attempt == 0 else resume_args(out)
            budget = seconds
            while not kill_at_random(args, budget, rng):  # it finished before the kill: start again, kill sooner
                _clear(out)
                args, budget = make_args(out), budget * 0.7
            done += 1
        run(resume_args(out))
        outputs.append(out)
    return outputs


def _clear(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)


def files(root: Path) -> dict[str, bytes]:
    """Every file of a dataset but its verification stamp, by name."""
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file() and p.name != "verified.json"}


def test_killed_generation_finishes_byte_identical(tmp_path):
    reference = tmp_path / "reference"
    seconds = run([*GENERATE, "--out", str(reference)])
    expected = files(reference)
    make = lambda out: [*GENERATE, "--out", str(out)]  # noqa: E731  (a rerun is the same command)
    for out in killed_then_finished(kills("GENERATE", 2), make, make, seconds, tmp_path):
        got = files(out)
        assert sorted(got) == sorted(expected), out  # no temporary files left behind
        for name, data in expected.items():
            assert got[name] == data, f"{out / name} differs from the uninterrupted run's"


@pytest.fixture(scope="module")
def frames_many_shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kills") / "frames"
    run([*GENERATE, "--frames", "3000", "--out", str(out)])
    return out


def test_killed_tokenizing_finishes_byte_identical(tiny_world, frames_many_shards, tmp_path):
    args = lambda out: ["-m", "vqvae.tokenize", "--tokenizer", str(tiny_world["tokenizer"]),  # noqa: E731
                        "--data", str(frames_many_shards), "--out", str(out), "--device", "cpu"]  # fmt: skip
    reference = tmp_path / "reference"
    seconds = run(args(reference))
    expected = files(reference)
    for out in killed_then_finished(kills("TOKENIZE", 1), args, args, seconds, tmp_path):
        got = files(out)
        assert sorted(got) == sorted(expected), out
        for name, data in expected.items():
            if name != "manifest.json":  # it records the tokenizing time
                assert got[name] == data, f"{out / name} differs from the uninterrupted run's"


def test_killed_training_resumes_bit_identical(tiny_world, tmp_path):
    base = ["-m", "train.dynamics", "--config", "configs/tiny/dynamics.yaml", f"data.path={tiny_world['tokens']}",
            "data.val_every=4", "train.max_steps=40", "train.checkpoint_every=4", "logging.sample_every=1000"]  # fmt: skip

    def fresh(out: Path) -> list[str]:
        return [*base, f"run.dir={out.parent}", f"run.name={out.name}"]

    def resume(out: Path) -> list[str]:
        state = out / "checkpoints" / "train_state.pt"
        if state.is_file():
            return [*fresh(out), f"train.resume={state}"]
        _clear(out)  # killed before its first checkpoint: nothing to resume, start again
        return fresh(out)

    seconds = run(fresh(tmp_path / "reference"))
    expected = torch.load(tmp_path / "reference" / "checkpoints" / "world.pt", weights_only=True)
    for out in killed_then_finished(kills("TRAIN", 1), fresh, resume, seconds, tmp_path):
        got = torch.load(out / "checkpoints" / "world.pt", weights_only=True)
        assert got["step"] == expected["step"] == 40
        for section in ("dynamics", "tokenizer"):
            for key, value in expected[section]["state_dict"].items():
                assert torch.equal(got[section]["state_dict"][key], value), f"{out}: {section}.{key} differs"
