"""The learned world being played: its state on the model's device, rewind history and the action log.

    session = Session(wm, seeds, seed_actions)   # seeds (S, K, H, W, 3) uint8, seed actions (S, K-1, ...)
    session.reset()
    timing = session.step(action)                # session.frame is the new (H, W, 3) frame
    session.rewind()                             # one frame back, state and all

No pygame and no threads here: the worker thread calls these methods, tests call
them directly. Since the last reset the session logs every action and frame, so
the play since then can be written out and replayed with `inference.py`.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from ochre import WorldModel, WorldState


@dataclass(frozen=True)
class StepTiming:
    model_ms: float  # dynamics step + sampling
    decode_ms: float  # tokens -> frame


@dataclass(frozen=True)
class Snapshot:
    """What one rewind step restores."""

    state: WorldState
    frame: np.ndarray
    generator: torch.Tensor  # the sampling generator, so a sampled replay after rewinding is identical too


class Session:
    """Seeds, the current state and frame, a ring buffer of past states, the log since the last reset."""

    def __init__(
        self, wm: WorldModel, seeds: np.ndarray, seed_actions: np.ndarray, rewind_frames: int = 150, log_frames: int = 9000
    ):
        self.wm = wm
        self.seeds = seeds  # (S, K, H, W, 3) uint8
        self.seed_actions = seed_actions  # (S, K-1, ...)
        self.seed_index = 0
        self.seed_clip = (seeds[0], seed_actions[0])  # what the last reset started from
        self.history: deque[Snapshot] = deque(maxlen=max(rewind_frames, 0))
        self.actions: list[np.ndarray] = []  # every action since the last reset
        self.log_frames = log_frames
        self.frames: deque[np.ndarray] = deque(maxlen=log_frames)  # the seed's last frame, then the predicted ones
        self.state: WorldState | None = None
        self.frame = seeds[0][-1]

    @property
    def steps(self) -> int:
        """Steps since the last reset."""
        return len(self.actions)

    def reset(self) -> None:
        """Back to the current seed clip."""
        self.restart_from(self.seeds[self.seed_index], self.seed_actions[self.seed_index])

    def next_seed(self) -> None:
        self.seed_index = (self.seed_index + 1) % len(self.seeds)
        self.reset()

    def restart_from(self, frames: np.ndarray, actions: np.ndarray) -> None:
        """Seed the model with K real frames (K, H, W, 3) and the K-1 actions between them."""
        self.state = self.wm.reset(frames, actions)
        self.seed_clip = (frames, actions)
        self.frame = frames[-1]
        self.history.clear()
        self.actions = []
        self.frames = deque([self.frame], maxlen=self.log_frames)

    def step(self, action: np.ndarray) -> StepTiming:
        """Apply one encoded action to the latest frame; `self.frame` becomes the prediction."""
        if self.history.maxlen:
            self.history.append(Snapshot(self.state, self.frame, self.wm.generator.get_state()))
        t0 = time.perf_counter()
        self.state = self.wm.advance(self.state, action)
        if self.wm.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        self.frame = self.wm.decode(self.state.tokens)[0]
        t2 = time.perf_counter()
        self.actions.append(np.asarray(action))
        self.frames.append(self.frame)
        return StepTiming((t1 - t0) * 1e3, (t2 - t1) * 1e3)

    def rewind(self, steps: int = 1) -> int:
        """Go back up to `steps` frames; returns how many were undone (0 at the start of the buffer)."""
        done = 0
        while done < steps and self.history:
            snap = self.history.pop()
            self.state, self.frame = snap.state, snap.frame
            self.wm.generator.set_state(snap.generator)
            self.actions.pop()
            self.frames.pop()
            done += 1
        return done

    def set_sampling(self, greedy: bool, temperature: float) -> None:
        self.wm.sampling = "greedy" if greedy else "sample"
        self.wm.temperature = temperature

    def log(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(seed frames (K,H,W,3), seed actions (K-1,...), actions (N,...), frames) since the last reset.

        frames are the seed's last frame and the N predictions, (N+1, H, W, 3), or the
        newest `log_frames` of them after a long session.
        """
        shape = self.wm.action_spec.shape
        actions = np.stack(self.actions) if self.actions else np.zeros((0, *shape), dtype=np.int64)
        return self.seed_clip[0], self.seed_clip[1], actions.astype(np.int64), np.stack(self.frames)
