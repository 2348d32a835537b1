"""Frame pacing and the per-frame numbers the app records (timings.csv, the HUD, live.bench).

Latency is counted in display frames: input read on display frame i and first
shown on display frame j has latency j - i (0: shown in the same frame).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameTiming:
    """One displayed frame. total_ms: everything between two displayed frames except waiting for the frame clock."""

    frame: int
    model_ms: float
    decode_ms: float
    total_ms: float


@dataclass(frozen=True)
class Latency:
    frames: int  # display frames from reading the input to showing its result
    ms: float  # milliseconds from reading the input to the result being ready to show


def timings_csv(timings: list[FrameTiming]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["frame", "model_ms", "decode_ms", "total_ms"])
    for t in timings:
        writer.writerow([t.frame, f"{t.model_ms:.3f}", f"{t.decode_ms:.3f}", f"{t.total_ms:.3f}"])
    return buf.getvalue()


def percentiles(values: list[float] | np.ndarray) -> dict[str, float]:
    """p50 / p99 / max of `values` (zeros when empty)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    return {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)), "max": float(v.max())}


class FrameClock:
    """Paces a loop at `fps`. `due` is when the next frame should be shown; `wait()` sleeps until then.

    A frame that runs late is not made up for: the next one is due a whole period
    after the late one, so a slow frame never causes a burst of hurried ones.
    """

    def __init__(self, fps: float):
        self.period = 1.0 / fps
        self.due = time.perf_counter() + self.period
        self._shown: list[float] = []

    def deadline(self, reserve: float = 0.004) -> float:
        """When model work for this frame must stop so drawing still makes `due`."""
        return self.due - min(reserve, self.period / 4)

    def wait(self) -> float:
        """Sleep until the frame is due; returns the milliseconds slept."""
        now = time.perf_counter()
        slept = max(self.due - now, 0.0)
        if slept:
            time.sleep(slept)
        self.due = max(self.due, now) + self.period
        self._shown = [*self._shown[-59:], time.perf_counter()]
        return slept * 1e3

    @property
    def fps(self) -> float:
        """Displayed frames per second over the last second or so."""
        if len(self._shown) < 2:
            return 0.0
        return (len(self._shown) - 1) / (self._shown[-1] - self._shown[0])
