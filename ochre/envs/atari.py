"""Atari 2600 games through ALE's Gymnasium environments.

Actions are the game's minimal action set (`full_action_space=False`), labelled with
ALE's meanings split into controls ("UPRIGHTFIRE" -> "up+right+fire"), so the data
tools know which controls each id presses. Sticky actions are off by default, so the
recorded action is the one the emulator executed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ochre.actions import DiscreteActionSpec
from ochre.errors import OchreError
from ochre.frames import resize

ATARI_FPS = 60
ALE_CONTROLS = re.compile(r"noop|fire|up|down|left|right")
LIST_HINT = 'list them with: python -c "from ochre.envs.atari import list_games; print(*list_games())"'


def ale_label(meaning: str) -> str:
    """ALE action meaning -> `+`-joined controls: "UPRIGHTFIRE" -> "up+right+fire", "NOOP" -> "noop"."""
    text = meaning.lower()
    controls = ALE_CONTROLS.findall(text)
    if "".join(controls) != text:
        raise OchreError(f"cannot split ALE action meaning '{meaning}' into noop/fire/up/down/left/right")
    return "+".join(controls)


def _gymnasium() -> Any:
    """`gymnasium` with ALE's environments registered, or a one-line install hint."""
    try:
        import ale_py
        import gymnasium
    except ImportError:
        raise OchreError("Atari worlds need ALE: pip install ale-py gymnasium") from None
    gymnasium.register_envs(ale_py)
    return gymnasium


def list_games() -> tuple[str, ...]:
    """Every Gymnasium id served by ALE ("ALE/Pong-v5", "PongNoFrameskip-v4", ...), sorted."""
    registry = _gymnasium().registry
    return tuple(sorted(env_id for env_id, spec in registry.items() if str(spec.entry_point).startswith("ale_py")))


@dataclass
class AtariSettings:
    """Which game to play and how frames and steps are made from it."""

    game: str = "ALE/Pong-v5"  # any ALE Gymnasium id
    frame_size: tuple[int, int] = (64, 64)  # (h, w) after resizing
    frame_skip: int = 4  # emulator frames per env step
    repeat_action_probability: float = 0.0  # sticky actions; 0 keeps recorded == executed
    max_episode_frames: int = 0  # end an episode after this many env steps; 0 = only the game's own end

    def check(self) -> None:
        """Raise `OchreError` naming the first bad setting and its valid choices."""
        games = list_games()
        if self.game not in games:
            close = difflib.get_close_matches(self.game, games, n=3)
            suggest = f"; did you mean {', '.join(close)}?" if close else ""
            raise OchreError(f"unknown Atari game id '{self.game}' ({LIST_HINT}){suggest}")
        if len(self.frame_size) != 2 or any(int(s) != s or s < 1 for s in self.frame_size):
            raise OchreError(f"frame_size must be two positive integers (height, width), got {self.frame_size}")
        if self.frame_skip < 1:
            raise OchreError(f"Atari frame_skip must be at least 1 emulator frame, got {self.frame_skip}")
        if not 0.0 <= self.repeat_action_probability <= 1.0:
            raise OchreError(f"Atari repeat_action_probability must be in [0, 1], got {self.repeat_action_probability}")
        if self.max_episode_frames < 0:
            raise OchreError(f"Atari max_episode_frames must be 0 (no limit) or a number of steps, got {self.max_episode_frames}")


class AtariEnv:
    """One ALE game behind `reset(seed)` / `step(action id)`."""

    def __init__(self, settings: AtariSettings):
        settings.check()
        self.settings = settings
        self._env = _gymnasium().make(
            settings.game,
            frameskip=settings.frame_skip,
            repeat_action_probability=settings.repeat_action_probability,
            full_action_space=False,
            disable_env_checker=True,
        )
        meanings = self._env.unwrapped.get_action_meanings()
        self.action_spec = DiscreteActionSpec(
            name="atari:" + settings.game, labels=tuple(ale_label(m) for m in meanings), noop=meanings.index("NOOP")
        )
        self.fps = ATARI_FPS / settings.frame_skip
        self.frame_shape = (*settings.frame_size, 3)
        self._steps = 0

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode; the same seed and the same actions replay the same frames."""
        obs, _ = self._env.reset(seed=seed)
        self._steps = 0
        return resize(obs, self.settings.frame_size)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool]:
        """Play one action id for `frame_skip` emulator frames -> (frame, reward, done)."""
        if not (isinstance(action, int | np.integer) and 0 <= action < self.action_spec.n):
            action = self._checked(action)  # the slow path: convert a float or 0-d id, or raise naming the range
        obs, reward, terminated, truncated, _ = self._env.step(int(action))
        self._steps += 1
        limit = self.settings.max_episode_frames
        done = terminated or truncated or (limit > 0 and self._steps >= limit)
        return resize(obs, self.settings.frame_size), float(reward), bool(done)

    def _checked(self, action: Any) -> np.ndarray:
        a = self.action_spec.validate(action, "Atari action")
        if a.shape != ():
            raise OchreError(f"Atari action: step takes one action id, got shape {a.shape}")
        return a

    def close(self) -> None:
        self._env.close()
