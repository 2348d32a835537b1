"""Worlds by name: `coinrun` (any Procgen game), `doom`, `pong` (any ALE game as `atari:<id>`),
and any Gymnasium env that renders frames as `gym:<id>` or `gym:<module>:<id>`.

    settings = world_settings("doom", {"frame_skip": 2})
    env = make_env("doom", settings, seed=0)              # reset()/step()
    vec = make_vec_env("coinrun", settings, num=16, seed=0)  # observe()/act(), for generation

Settings are small dataclasses validated like every other config, so a typo in
`--env key=value` is an error naming the key.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ochre.config import from_dict
from ochre.envs.base import Env, SerialVecEnv, VecEnv
from ochre.envs.procgen import PROCGEN_GAMES, ProcgenEnv, ProcgenSettings, ProcgenVecEnv
from ochre.errors import OchreError

WORLDS_HELP = (
    f"procgen games ({', '.join(PROCGEN_GAMES)}), doom, pong, atari:<ALE id> such as atari:ALE/Breakout-v5, "
    "or any Gymnasium env as gym:<id> or gym:<module>:<id> such as gym:CartPole-v1"
)


def world_kind(world: str) -> str:
    """'procgen', 'doom', 'atari' or 'gym'."""
    if world in PROCGEN_GAMES:
        return "procgen"
    if world == "doom":
        return "doom"
    if world == "pong" or world.startswith("atari:"):
        return "atari"
    if world.startswith("gym:"):
        return "gym"
    raise OchreError(f"unknown world '{world}' (known: {WORLDS_HELP})")


def ale_id(world: str) -> str:
    """'pong' -> 'ALE/Pong-v5'; 'atari:Breakout' -> 'ALE/Breakout-v5'; 'atari:<full id>' -> that id."""
    if world == "pong":
        return "ALE/Pong-v5"
    name = world.removeprefix("atari:")
    return name if "/" in name or "-v" in name else f"ALE/{name}-v5"


def default_num_envs(world: str) -> int:
    """Envs per generation worker: Procgen steps many cheaply in one call, the others one at a time."""
    return 16 if world_kind(world) == "procgen" else 1


def world_settings(world: str, overrides: dict[str, Any] | None = None) -> Any:
    """The settings dataclass for `world`, with `overrides` applied and checked."""
    overrides = dict(overrides or {})
    kind = world_kind(world)
    if kind == "procgen":
        settings = from_dict(ProcgenSettings, {"game": world, **overrides}, "env.")
    elif kind == "doom":
        from ochre.envs.doom import DoomSettings

        settings = from_dict(DoomSettings, overrides, "env.")
    elif kind == "gym":
        from ochre.envs.gym import gym_settings

        settings = gym_settings(world, overrides)
    else:
        from ochre.envs.atari import AtariSettings

        settings = from_dict(AtariSettings, {"game": ale_id(world), **overrides}, "env.")
    settings.check()
    return settings


def source_settings(world: str, source: Any) -> dict[str, Any]:
    """The env settings `world`'s data was drawn with (a checkpoint's `source`), as `world_settings` overrides, so
    the real game beside the world (ghost mode, play tests) is the game it learned: the same Box bins, frame size
    and difficulty. Empty when the source is another kind of game or missing; keys the settings lost are dropped."""
    if not isinstance(source, dict) or source.get("env") != world_kind(world):
        return {}
    recorded = source.get("settings")
    if not isinstance(recorded, dict):
        return {}
    known = {f.name for f in dataclasses.fields(world_settings(world))}
    return {k: v for k, v in recorded.items() if k in known}


def make_env(world: str, settings: Any, seed: int = 0) -> Env:
    kind = world_kind(world)
    if kind == "procgen":
        return ProcgenEnv(settings, seed=seed)
    if kind == "doom":
        from ochre.envs.doom import DoomEnv

        return DoomEnv(settings)
    if kind == "gym":
        from ochre.envs.gym import GymEnv

        return GymEnv(settings)
    from ochre.envs.atari import AtariEnv

    return AtariEnv(settings)


def make_vec_env(world: str, settings: Any, num: int, seed: int) -> VecEnv:
    """`num` envs behind observe()/act(): Procgen's own vector env, or single envs stepped in turn."""
    if world_kind(world) == "procgen":
        return ProcgenVecEnv(settings, num=num, seed=seed)
    return SerialVecEnv([make_env(world, settings) for _ in range(num)], seed=seed)


def frame_shape(world: str, settings: Any) -> tuple[int, int, int]:
    if world_kind(world) == "procgen":
        return (64, 64, 3)
    h, w = settings.frame_size
    return (h, w, 3)
