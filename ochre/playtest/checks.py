"""Which play checks each world gets, looked up by world name or action schema.

    checks = play_checks("coinrun", spec)     # PlayChecks(avatar=..., motion=("dx",), ...)
    plan = playtest_plan("gym:CartPole-v1", spec)  # what the play tests play: registered, else the generic set

Generic code (the play-test runner, the evaluator, the trainer) asks this registry and
never tests a world's name itself. A world with nothing registered still gets play tests:
`GENERIC_CHECKS` with the programs `ochre.playtest.generic` derives from its action schema.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ochre.actions import ActionSpec
from ochre.errors import OchreError
from ochre.playtest.avatar import Finder, PatchAvatar, PongObjects
from ochre.playtest.generic import generic_programs
from ochre.playtest.programs import Program, load_programs

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@dataclass(frozen=True)
class PlayChecks:
    programs: Path | None = None  # folder of the world's input programs (None: derived from the action schema)
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

# A world with nothing registered: whole-frame view motion and the world-independent scores, no objects (an
# avatar finder needs to know the game), the programs of `ochre.playtest.generic`.
GENERIC_CHECKS = PlayChecks(motion=("dy", "dx"))


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
    raise OchreError(f"no play tests are registered for world '{world}' (registered: {', '.join(WORLD_CHECKS)})")


@dataclass(frozen=True)
class PlaytestPlan:
    """What a world's play tests play, and where that came from (for the report)."""

    checks: PlayChecks
    programs: dict[str, Program]
    source: Literal["registered", "folder", "generic"]  # the registry's folder, --program-dir, or from the schema
    origin: str  # the programs' folder, or the schema they were derived from

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "from": self.origin, "names": list(self.programs)}


def playtest_plan(world: str, spec: ActionSpec, program_dir: str | Path | None = None) -> PlaytestPlan:
    """The registered checks and programs of `world`; without a registration, GENERIC_CHECKS and the generic set.

    `program_dir` replaces the programs (not the checks) with the `*.json` files in that folder.
    """
    checks = find_play_checks(world, spec)
    if program_dir is not None:
        return PlaytestPlan(checks or GENERIC_CHECKS, load_programs(program_dir), "folder", str(program_dir))
    if checks is not None and checks.programs is not None:
        return PlaytestPlan(checks, load_programs(checks.programs), "registered", _shown(checks.programs))
    origin = f"derived from the action schema '{spec.name}' ({spec.kind}) by ochre/playtest/generic.py"
    return PlaytestPlan(checks or GENERIC_CHECKS, generic_programs(spec), "generic", origin)


def _shown(folder: Path) -> str:
    """A registered folder as the reader finds it: relative to the repository where it lies inside it."""
    return str(folder.relative_to(ASSETS.parent)) if folder.is_relative_to(ASSETS.parent) else str(folder)
