"""Procgen games through the package's vectorised gym3 interface.

Frames and action ids are exactly what `procgen` gives: 64x64x3 uint8, ids 0-14.
When an episode ends, procgen resets that env on its own and the next observation
is the new episode's first frame (marked by `first`).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import gymnasium
import numpy as np

from ochre.actions import PROCGEN_ACTIONS
from ochre.errors import OchreError

PROCGEN_GAMES = (
    "bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
    "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot",
)  # fmt: skip
DISTRIBUTION_MODES = ("easy", "hard", "extreme", "memory", "exploration")
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
        if self.distribution_mode not in DISTRIBUTION_MODES:
            raise OchreError(
                f"env.distribution_mode '{self.distribution_mode}' is unknown (choose one of {', '.join(DISTRIBUTION_MODES)})"
            )
        if self.start_level < 0 or self.num_levels < 0:
            raise OchreError(
                f"env.start_level and env.num_levels must be >= 0 (got {self.start_level}, {self.num_levels}; 0 levels = unlimited)"
            )


class ProcgenVecEnv:
    """`num` Procgen envs stepped together. `observe()` -> (frames (num,64,64,3), first (num,))."""

    action_spec = PROCGEN_ACTIONS
    fps = PROCGEN_FPS

    def __init__(self, settings: ProcgenSettings, num: int, seed: int):
        settings.check()
        self.settings = settings
        self.num = num
        self.restart(seed)

    def restart(self, seed: int) -> None:
        """Start every env afresh on the level sequence `seed` picks."""
        with contextlib.redirect_stderr(io.StringIO()):  # procgen imports the old `gym`, which prints a notice
            from procgen import ProcgenGym3Env

        self._env = ProcgenGym3Env(
            num=self.num,
            env_name=self.settings.game,
            start_level=self.settings.start_level,
            num_levels=self.settings.num_levels,
            distribution_mode=self.settings.distribution_mode,
            rand_seed=seed,
            num_threads=1,  # parallelism comes from generation workers, one core each
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

    def close(self) -> None:
        self._env = None


class ProcgenEnv:
    """A single Procgen env with the project's `reset()` / `step(action)` interface.

    Procgen starts the next episode by itself when one ends, so `reset()` right
    after `done` just returns that episode's first frame; `reset(seed)` starts a
    fresh env on the level sequence that seed picks.
    """

    action_spec = PROCGEN_ACTIONS
    fps = PROCGEN_FPS
    frame_shape = (64, 64, 3)

    def __init__(self, settings: ProcgenSettings, seed: int = 0):
        settings.check()
        self.settings = settings
        self._rng = np.random.default_rng(seed)
        self._vec: ProcgenVecEnv | None = None
        self._pending: np.ndarray | None = None  # first frame of an episode procgen already started

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is None and self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        seed = int(self._rng.integers(2**31 - 1)) if seed is None else seed
        self._vec = ProcgenVecEnv(self.settings, num=1, seed=seed)
        self._pending = None
        return self._vec.observe()[0][0]

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        """-> (next frame, reward, done). After done the frame is the next episode's first."""
        if self._vec is None:
            raise RuntimeError("call reset() before step()")
        self._vec.act(np.array([action]))
        frames, reward, first = self._vec.observe_with_reward()
        if first[0]:
            self._pending = frames[0]
        return frames[0], float(reward[0]), bool(first[0])

    def close(self) -> None:
        self._vec = None


class ProcgenGymnasiumEnv(gymnasium.Env):
    """Procgen as a Gymnasium env: `gymnasium.make("procgen-coinrun-v0", start_level=..., num_levels=...)`.

    Importing `ochre.envs` registers all 16 games. When an episode ends Procgen has
    already started the next one, so the observation returned with `terminated` is
    that next episode's first frame and `reset()` without a seed continues from it.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": PROCGEN_FPS}

    def __init__(
        self,
        game: str = "coinrun",
        distribution_mode: str = "hard",
        start_level: int = 0,
        num_levels: int = 10_000,
        render_mode: str | None = "rgb_array",
    ):
        self.render_mode = render_mode
        self.observation_space = gymnasium.spaces.Box(0, 255, (64, 64, 3), dtype=np.uint8)
        self.action_space = gymnasium.spaces.Discrete(PROCGEN_ACTIONS.n)
        self._env = ProcgenEnv(ProcgenSettings(game, distribution_mode, start_level, num_levels))
        self._frame: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._frame = self._env.reset(seed=seed)
        return self._frame, {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self._frame, reward, done = self._env.step(int(action))
        return self._frame, reward, done, False, {}

    def render(self) -> np.ndarray | None:
        return self._frame

    def close(self) -> None:
        self._env.close()


def register_gymnasium_envs() -> None:
    """Register `procgen-<game>-v0` for every Procgen game (idempotent)."""
    for game in PROCGEN_GAMES:
        env_id = f"procgen-{game}-v0"
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=ProcgenGymnasiumEnv, kwargs={"game": game})
