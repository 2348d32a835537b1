"""The interface every world implements, and a vector wrapper for single envs.

    env.reset(seed=None) -> frame                  uint8 (H, W, 3)
    env.step(action)     -> (frame, reward, done)  after done, call reset() before stepping again
    env.action_spec, env.fps, env.frame_shape, env.close()

Dataset generation drives a *vector* of envs through `observe()` / `act()`, the
interface Procgen provides natively; `SerialVecEnv` gives it to any single env,
resetting an env as soon as its episode ends.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ochre.actions import ActionSpec


class Env(Protocol):
    action_spec: ActionSpec
    fps: float
    frame_shape: tuple[int, int, int]

    def reset(self, seed: int | None = None) -> np.ndarray: ...

    def step(self, action: Any) -> tuple[np.ndarray, float, bool]: ...

    def close(self) -> None: ...


class VecEnv(Protocol):
    num: int
    action_spec: ActionSpec
    fps: float

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """-> (frames (num, H, W, 3) uint8, first (num,) bool: frame starts a new episode)."""
        ...

    def act(self, actions: np.ndarray) -> None: ...

    def restart(self, seed: int) -> None:
        """Start a new episode in every env (open episodes are abandoned)."""
        ...

    def close(self) -> None: ...


class SerialVecEnv:
    """`num` single envs stepped one after another, each reset when its episode ends.

    Env i is reset with seeds drawn from its own generator, seeded by (seed, i), so a
    run is reproducible.
    """

    def __init__(self, envs: list[Env], seed: int):
        self.envs = envs
        self.num = len(envs)
        self.action_spec = envs[0].action_spec
        self.fps = envs[0].fps
        self.restart(seed)

    def restart(self, seed: int) -> None:
        self._rngs = [np.random.default_rng([seed, i]) for i in range(self.num)]
        self._frames = np.stack([env.reset(seed=self._next_seed(i)) for i, env in enumerate(self.envs)])
        self._first = np.ones(self.num, dtype=bool)

    def _next_seed(self, i: int) -> int:
        return int(self._rngs[i].integers(2**31 - 1))

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        return self._frames.copy(), self._first.copy()

    def act(self, actions: np.ndarray) -> None:
        for i, env in enumerate(self.envs):
            frame, _, done = env.step(actions[i])
            if done:
                frame = env.reset(seed=self._next_seed(i))
            self._frames[i] = frame
            self._first[i] = done

    def close(self) -> None:
        for env in self.envs:
            env.close()
