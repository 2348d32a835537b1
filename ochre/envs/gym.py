"""Any Gymnasium environment that renders `rgb_array` frames, as a world: `gym:<id>` or `gym:<module>:<id>`.

    settings = world_settings("gym:CartPole-v1", {"frame_size": [64, 64]})
    env = GymEnv(settings)                       # reset()/step() like every world

`gym:<module>:<id>` imports `<module>` first, so a user's own package can register
its env. Frames are `env.render()`, resized to `frame_size`. The action schema is
derived from the action space:

- `Discrete`: a `DiscreteActionSpec`, labelled from `get_action_meanings()` where the
  env has it ("UPRIGHT" -> "up+right", as ALE's meanings split), else `action_0..n-1`.
- `MultiDiscrete`, `MultiBinary`, `Box`: a `FactoredActionSpec`, one control per
  element; each Box axis is cut into `box_bins` values (odd) with 0 as a value where the
  range holds it, so "no input" is a bin, as the first-person camera has a still bin.
"""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ochre.actions import ActionSpec, DiscreteActionSpec, FactoredActionSpec
from ochre.config import from_dict
from ochre.envs.atari import ALE_CONTROLS
from ochre.errors import OchreError
from ochre.frames import resize

PREFIX = "gym:"
SUPPORTED_SPACES = "Discrete, MultiDiscrete, MultiBinary or Box"
DEFAULT_FPS = 30.0  # for envs whose metadata has no render_fps


@dataclass
class GymSettings:
    """Which Gymnasium env to play and how frames and actions are made from it."""

    env_id: str = "CartPole-v1"  # a registered Gymnasium id
    module: str = ""  # imported before the env is made, so a user's package can register its id
    frame_size: tuple[int, int] = (64, 64)  # (h, w) after resizing the rendered frame
    box_bins: int = 5  # values per Box action axis (odd, so 0 or the centre is one of them)
    max_episode_frames: int = 0  # end an episode after this many steps; 0 = only the env's own end
    fps: float = 0.0  # playback rate; 0 = the env's render_fps
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make (every other --env key)

    def check(self) -> None:
        """Raise `OchreError` naming the first bad setting; the id must be registered."""
        if len(self.frame_size) != 2 or any(int(s) != s or s < 1 for s in self.frame_size):
            raise OchreError(f"frame_size must be two positive integers (height, width), got {self.frame_size}")
        if self.box_bins < 3 or self.box_bins % 2 == 0:
            raise OchreError(f"box_bins must be an odd number of at least 3 (a rest value and both sides), got {self.box_bins}")
        if self.max_episode_frames < 0:
            raise OchreError(f"max_episode_frames must be 0 (no limit) or a number of steps, got {self.max_episode_frames}")
        if self.fps < 0:
            raise OchreError(f"fps must be positive, or 0 for the env's own, got {self.fps}")
        gymnasium = _gymnasium(self)
        try:
            gymnasium.spec(self.env_id)
        except gymnasium.error.Error as err:
            hint = "" if self.module else f"; if a package registers it, import it first: gym:<package>:{self.env_id}"
            raise OchreError(f"{self.world}: {_one_line(err)}{hint}") from None

    @property
    def world(self) -> str:
        return PREFIX + (f"{self.module}:" if self.module else "") + self.env_id


def gym_settings(world: str, overrides: dict[str, Any]) -> GymSettings:
    """Settings of `gym:[<module>:]<id>`: --env keys that GymSettings names are its own, the rest go to gymnasium.make."""
    module, _, env_id = world.removeprefix(PREFIX).rpartition(":")
    if not env_id:
        raise OchreError(f"world '{world}' names no env id; use gym:<id> (gym:CartPole-v1) or gym:<module>:<id>")
    named = {"env_id": env_id, "module": module}
    for key, value in named.items():
        if overrides.get(key, value) != value:
            raise OchreError(f"env.{key}={overrides[key]!r} disagrees with the world '{world}'; name the env in --world")
    fixed = {*named, "kwargs"}
    ours = {f.name for f in fields(GymSettings)} - fixed
    mine = {k: v for k, v in overrides.items() if k in ours}
    kwargs = {**overrides.get("kwargs", {}), **{k: v for k, v in overrides.items() if k not in ours | fixed}}
    return from_dict(GymSettings, {**named, **mine, "kwargs": kwargs}, "env.")


def _gymnasium(settings: GymSettings) -> Any:
    """`gymnasium`, after importing the settings' module (which may register the env)."""
    import gymnasium

    if settings.module:
        try:
            importlib.import_module(settings.module)
        except Exception as err:
            raise OchreError(
                f"{settings.world}: cannot import module '{settings.module}' ({type(err).__name__}: {err})"
            ) from None
    return gymnasium


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


# --- action schemas from spaces -------------------------------------------------------


def meaning_label(meaning: str) -> str:
    """An action meaning -> a schema label: "UPRIGHTFIRE" -> "up+right+fire", "Move Forward" -> "move_forward"."""
    text = meaning.lower()
    controls = ALE_CONTROLS.findall(text)
    if controls and "".join(controls) == text:
        return "+".join(controls)
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "action"


def discrete_schema(name: str, n: int, meanings: list[str] | None) -> DiscreteActionSpec:
    """Labels from the meanings (made distinct), else `action_i`; the noop is the "noop" label, else id 0."""
    labels: list[str] = []
    for i in range(n):
        label = meaning_label(meanings[i]) if meanings else f"action_{i}"
        labels.append(label if label not in labels else f"{label}_{i}")
    return DiscreteActionSpec(name, tuple(labels), labels.index("noop") if "noop" in labels else 0)


def box_values(low: float, high: float, bins: int) -> tuple[tuple[float, ...], int]:
    """`bins` (odd) values from low to high, with the rest value 0 (or the centre if 0 is outside) among them -> (values, rest)."""
    rest = 0.0 if low <= 0.0 <= high else (low + high) / 2
    if rest in (low, high):  # one-sided, e.g. a throttle in [0, 1]: evenly spaced, rest at an end
        values = np.linspace(low, high, bins)
    else:
        side = bins // 2
        values = np.r_[np.linspace(low, rest, side + 1)[:-1], rest, np.linspace(rest, high, side + 1)[1:]]
    values = tuple(round(float(v), 6) for v in values)
    return values, int(np.argmin(np.abs(np.asarray(values) - rest)))


def factored_schema(name: str, space: Any, box_bins: int) -> FactoredActionSpec:
    """One control per element of a MultiDiscrete, MultiBinary or Box space (flattened in C order)."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        low, high = space.low.reshape(-1).astype(np.float64), space.high.reshape(-1).astype(np.float64)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise OchreError(f"{name}: action space {space} has unbounded axes; Box actions need finite low and high")
        axes = [box_values(lo, hi, box_bins) for lo, hi in zip(low, high, strict=True)]
        values, rest = [v for v, _ in axes], [r for _, r in axes]
        prefix = "axis"
    elif isinstance(space, spaces.MultiDiscrete):
        start = np.broadcast_to(getattr(space, "start", 0), space.nvec.shape).reshape(-1)
        values = [tuple(float(s + i) for i in range(n)) for s, n in zip(start, space.nvec.reshape(-1), strict=True)]
        rest = [v.index(0.0) if 0.0 in v else 0 for v in values]
        prefix = "dim"
    else:  # MultiBinary
        values = [(0.0, 1.0)] * int(np.prod(space.shape))
        rest = [0] * len(values)
        prefix = "button"
    controls = tuple(f"{prefix}_{i}" for i in range(len(values)))
    return FactoredActionSpec(name, controls, tuple(values), tuple(rest))


def action_schema(name: str, env: Any, box_bins: int) -> ActionSpec:
    """The schema of `env`'s action space, or one line naming the env, the space and what is supported."""
    from gymnasium import spaces

    space = env.action_space
    if isinstance(space, spaces.Discrete):
        meanings = getattr(env.unwrapped, "get_action_meanings", None)
        return discrete_schema(name, int(space.n), list(meanings()) if meanings else None)
    if isinstance(space, spaces.MultiDiscrete | spaces.MultiBinary | spaces.Box):
        return factored_schema(name, space, box_bins)
    raise OchreError(
        f"{name}: action space {type(space).__name__} is not supported ({space}); Ochre plays {SUPPORTED_SPACES} spaces"
    )


# --- the env ---------------------------------------------------------------------------


class GymEnv:
    """One Gymnasium env behind `reset(seed)` / `step(encoded action)`, its frames from `render()`."""

    def __init__(self, settings: GymSettings):
        settings.check()
        self.settings = settings
        self.name = settings.world
        self._env = self._make(settings)
        try:
            self.action_spec = action_schema(PREFIX + settings.env_id, self._env, settings.box_bins)
        except BaseException:
            self._env.close()
            raise
        self._space = self._env.action_space
        self.fps = settings.fps or float(self._env.metadata.get("render_fps") or DEFAULT_FPS)
        self.frame_shape = (*settings.frame_size, 3)
        self._steps = 0

    def _make(self, settings: GymSettings) -> Any:
        gymnasium = _gymnasium(settings)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*render_mode.*")  # checked below, in one line
            try:
                env = gymnasium.make(settings.env_id, render_mode="rgb_array", disable_env_checker=True, **settings.kwargs)
            except gymnasium.error.Error as err:
                raise OchreError(f"{self.name}: {_one_line(err)}") from None
            except TypeError as err:
                keys = ", ".join(settings.kwargs) or "none"
                raise OchreError(
                    f"{self.name}: gymnasium.make rejected the env settings ({_one_line(err)}; passed: {keys})"
                ) from None
        modes = list(env.metadata.get("render_modes", []))
        if "rgb_array" not in modes:
            env.close()
            raise OchreError(
                f"{self.name}: the env does not render 'rgb_array' frames (its render_modes: {modes or 'none'}); "
                "Ochre learns from pictures and needs an env that does"
            )
        return env

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode; the same seed and the same actions replay the same frames."""
        self._env.reset(seed=seed)
        self._steps = 0
        return self._frame()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool]:
        """Play one encoded action -> (frame, reward, done)."""
        _, reward, terminated, truncated, _ = self._env.step(self.env_action(action))
        self._steps += 1
        limit = self.settings.max_episode_frames
        done = terminated or truncated or (limit > 0 and self._steps >= limit)
        return self._frame(), float(reward), bool(done)

    def env_action(self, action: Any) -> Any:
        """An encoded action of the schema -> the action the Gymnasium env takes."""
        spec = self.action_spec
        a = spec.validate(action, f"{self.name} action")
        if a.shape != spec.shape:
            raise OchreError(f"{self.name} action: step takes one action of shape {spec.shape}, got shape {a.shape}")
        if isinstance(spec, DiscreteActionSpec):
            return int(a) + int(getattr(self._space, "start", 0))
        return spec.decode(a).reshape(self._space.shape).astype(self._space.dtype)

    def _frame(self) -> np.ndarray:
        frame = self._env.render()
        if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[-1] == 3):
            got = f"shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise OchreError(f"{self.name}: render() must give an (H, W, 3) RGB frame, got {got}")
        return resize(frame.astype(np.uint8, copy=False), self.settings.frame_size)

    def close(self) -> None:
        self._env.close()
