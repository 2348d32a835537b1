"""Procgen games through the package's vectorised gym3 interface.

Frames and action ids are exactly what `procgen` gives: 64x64x3 uint8, ids 0-14.
When an episode ends, procgen resets that env on its own and the next observation
is the new episode's first frame (marked by `first`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ochre.actions import PROCGEN_ACTIONS
from ochre.errors import OchreError

PROCGEN_GAMES = (
    "bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
    "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot",
)  # fmt: skip
PROCGEN_FPS = 15


@dataclass
class ProcgenSettings:
    game: str = "coinrun"
    distribution_mode: str = "hard"
    start_level: int = 0
    num_levels: int = 10_000

    def check(self) -> None:
        if self.game not in PROCGEN_GAMES:
            raise OchreError(f"unknown procgen game '{self.game}' (known: {', '.join(PROCGEN_GAMES)})")


class ProcgenVecEnv:
    """`num` Procgen envs stepped together. `observe()` -> (frames (num,64,64,3), first (num,))."""

    action_spec = PROCGEN_ACTIONS
    fps = PROCGEN_FPS

    def __init__(self, settings: ProcgenSettings, num: int, seed: int):
        settings.check()
        from procgen import ProcgenGym3Env

        self.settings = settings
        self.num = num
        self._env = ProcgenGym3Env(
            num=num,
            env_name=settings.game,
            start_level=settings.start_level,
            num_levels=settings.num_levels,
            distribution_mode=settings.distribution_mode,
            rand_seed=seed,
        )

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        frames, _, first = self.observe_with_reward()
        return frames, first

    def observe_with_reward(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (frames (num,64,64,3) uint8, rewards (num,), first (num,) bool)."""
        reward, obs, first = self._env.observe()
        return obs["rgb"].copy(), reward.copy(), first.copy()

    def act(self, actions: np.ndarray) -> None:
        self._env.act(np.asarray(actions, dtype=np.int32))


class ProcgenEnv:
    """A single Procgen env with the project's `reset()` / `step(action)` interface."""

    action_spec = PROCGEN_ACTIONS
    fps = PROCGEN_FPS

    def __init__(self, settings: ProcgenSettings, seed: int = 0):
        self.settings = settings
        self._rng = np.random.default_rng(seed)
        self._vec = ProcgenVecEnv(settings, num=1, seed=seed)

    def reset(self) -> np.ndarray:
        # gym3 envs start an episode on creation; a fresh env object is the reset.
        self._vec = ProcgenVecEnv(self.settings, num=1, seed=int(self._rng.integers(2**31)))
        return self._vec.observe()[0][0]

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        """-> (next frame, reward, done); after done the frame is the next episode's first."""
        self._vec.act(np.array([action]))
        frames, reward, first = self._vec.observe_with_reward()
        return frames[0], float(reward[0]), bool(first[0])
