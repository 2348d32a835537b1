"""Ghost mode: the real game runs beside the learned world, driven by the same actions.

    ghost = Ghost.open("coinrun", {}, wm, seed=0)
    frames, actions = ghost.reset()      # K real frames + the K-1 actions between them: seed the model with these
    real = ghost.step(action)            # the real game's next frame (a new episode starts when one ends)

The last K real frames and the actions between them are kept, so the model can be
re-synced to what the game shows now. How far the two drift apart under the same
input is the world's control fidelity, shown live as PSNR.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from ochre import WorldModel
from ochre.envs.base import Env
from ochre.envs.worlds import WORLDS_HELP, make_env, source_settings, world_kind, world_settings
from ochre.errors import OchreError


class Ghost:
    def __init__(self, env: Env, context: int, seed: int = 0):
        self.env = env
        self.context = context  # K, the number of seed frames the model is reset with
        self.seed = seed
        self.frames: deque[np.ndarray] = deque(maxlen=context)
        self.actions: deque[np.ndarray] = deque(maxlen=max(context - 1, 0))
        self.episode_ended = False  # the last step ended an episode and started the next one

    @classmethod
    def open(cls, world: str, overrides: dict[str, Any], wm: WorldModel, context: int, seed: int = 0) -> Ghost:
        """The real game of `world`, checked against the learned world's schema and frame size. When it is the world's
        own game, it starts with the settings the world's data was drawn with, `overrides` on top."""
        try:
            world_kind(world)
        except OchreError:
            raise OchreError(f"--ghost needs a real game, and '{world}' is not one ({WORLDS_HELP}); pass --world") from None
        if world == wm.info.get("world"):
            overrides = source_settings(world, wm.info.get("source")) | overrides
        env = make_env(world, world_settings(world, overrides), seed)
        mine, theirs = wm.action_spec.to_dict(), env.action_spec.to_dict()
        if mine != theirs:
            env.close()
            raise OchreError(f"--ghost: the real game '{world}' has action schema {theirs['name']!r}, the world {mine['name']!r}")
        if tuple(env.frame_shape) != tuple(wm.frame_shape):
            env.close()
            h, w = wm.frame_shape[:2]
            raise OchreError(
                f"--ghost: '{world}' gives {env.frame_shape} frames, the world {wm.frame_shape}; try --env frame_size=[{h},{w}]"
            )
        return cls(env, context, seed)

    def reset(self) -> tuple[np.ndarray, np.ndarray]:
        """Start a real episode and play K-1 do-nothing steps, so there is a clip to seed the model with."""
        self.frames.clear()
        self.actions.clear()
        self.frames.append(self.env.reset(seed=self.seed))
        neutral = self.env.action_spec.neutral()
        for _ in range(self.context - 1):
            self.step(neutral)
        return self.clip()

    def next_episode(self) -> tuple[np.ndarray, np.ndarray]:
        self.seed += 1
        return self.reset()

    def step(self, action: np.ndarray) -> np.ndarray:
        frame, _, done = self.env.step(action)
        self.episode_ended = bool(done)
        if done:  # the next episode starts; its first frame seeds the model again
            self.frames.clear()
            self.actions.clear()
            frame = self.env.reset()
        else:
            self.actions.append(np.asarray(action))
        self.frames.append(frame)
        return frame

    def clip(self) -> tuple[np.ndarray, np.ndarray]:
        """The last real frames (k, H, W, 3), k <= K, and the k-1 actions between them."""
        actions = list(self.actions)[-(len(self.frames) - 1) :] if len(self.frames) > 1 else []
        spec = self.env.action_spec
        actions = np.stack(actions) if actions else spec.neutral((0,))
        return np.stack(self.frames), actions.astype(np.int64)

    @property
    def frame(self) -> np.ndarray:
        return self.frames[-1]

    def close(self) -> None:
        self.env.close()
