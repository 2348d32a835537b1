"""Which play checks each world gets, looked up by world name or action schema.

    checks = play_checks("coinrun", spec)     # PlayChecks(avatar=..., motion=("dx",), ...)

Generic code (the play-test runner, the evaluator, the trainer) asks this registry and
never tests a world's name itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ochre.actions import ActionSpec
from ochre.playtest.avatar import Finder, PatchAvatar, PongObjects

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@dataclass(frozen=True)
class PlayChecks:
    programs: Path  # folder of the world's input programs
    motion: tuple[str, ...] = ()  # view-motion components scored: "dx", "dy" (scene shift), "zoom" (walking)
    motion_rows: float = 1.0  # top share of the frame that moves with the view (first person: not the weapon)
    avatar: Callable[[], Finder] | None = None  # builds the world's object finder
    avatar_anchor: tuple[int, int] | None = None  # where the real game draws a learned avatar (its detector's window)
    avatar_tol_px: float = 4.0  # a generated object this close to the real one counts as in place
    scored_objects: tuple[str, ...] = field(default_factory=tuple)  # finder names whose presence is a target
    warmup: int = 0  # real-game steps of random keys before the seed frames: Pong serves its first ball after ~60
    evaluator: tuple[str, ...] = ()  # the evaluator's world checks that apply: "camera" (first person), "ball"


WORLD_CHECKS: dict[str, PlayChecks] = {
    "coinrun": PlayChecks(
        programs=ASSETS / "coinrun" / "programs",
        motion=("dx", "dy"),
        avatar=lambda: PatchAvatar.load(os.environ.get("OCHRE_COINRUN_AVATAR", ASSETS / "coinrun" / "avatar.pt")),
        avatar_anchor=(26, 26),  # the camera follows the agent: it is drawn around (31.5, 31.5) in every frame
        scored_objects=("avatar",),
    ),
    "pong": PlayChecks(
        programs=ASSETS / "pong" / "programs",
        avatar=PongObjects,
        avatar_tol_px=2.0,
        warmup=100,
        scored_objects=("own_paddle", "other_paddle", "ball"),
        evaluator=("ball",),
    ),
    "first_person": PlayChecks(
        programs=ASSETS / "doom" / "programs", motion=("dx", "dy", "zoom"), motion_rows=0.65, evaluator=("camera",)
    ),
}
WORLD_ALIASES = {"atari:ALE/Pong-v5": "pong", "doom": "first_person"}


def find_play_checks(world: str, spec: ActionSpec) -> PlayChecks | None:
    """The checks registered for `world`, else for its action schema's kind; None where there are none."""
    for key in (world, WORLD_ALIASES.get(world, ""), spec.kind, spec.name):
        if key in WORLD_CHECKS:
            return WORLD_CHECKS[key]
    return None


def play_checks(world: str, spec: ActionSpec) -> PlayChecks:
    """`find_play_checks`, with an error that names what is registered where nothing is."""
    checks = find_play_checks(world, spec)
    if checks is not None:
        return checks
    from ochre.errors import OchreError

    raise OchreError(f"no play tests are registered for world '{world}' (registered: {', '.join(WORLD_CHECKS)})")
