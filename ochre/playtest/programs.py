"""Input programs: what a person does with the keys, written as data.

    programs = load_programs("assets/coinrun/programs")      # {name: Program}
    player = programs["run_and_jump"].player(spec, rng)
    action = player.act(real_frame)                           # one encoded action per step

A program file (JSON) names a sequence of segments, each held for `steps` steps:

    {"name": "run_and_jump", "description": "runs right, jumping now and then",
     "segments": [{"hold": ["right"], "steps": 6}, {"hold": ["right", "up"], "steps": 4}],
     "repeat": 30}

A segment holds controls (`hold`, the schema's control names: procgen's "right", "up",
first person's "forward", "attack"; a factored schema's control at its largest value, or
at a value as "torque=-2"), turns the camera (`look`: [yaw, pitch] degrees per
step, yaw > 0 turns right, pitch > 0 looks up), presses held random actions
(`"random": [4, 30]`: a random action held 4-30 steps, a new one after each), or hands
the keys to a scripted player that reads the real game's frame (`"controller":
"follow_ball"`, looked up in `CONTROLLERS`). `repeat` plays the segment list that many
times. The same actions are then fed to the learned world.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ochre.actions import ActionSpec, DiscreteActionSpec, FactoredActionSpec, FirstPersonActionSpec
from ochre.errors import OchreError
from ochre.playtest.avatar import find_paddle
from ochre.world_checks import find_ball

MIN_STEPS, MAX_STEPS = 32, 300  # a program's length, as the play-test protocol asks


def encode_input(spec: ActionSpec, held: frozenset[str], look: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Controls held + camera degrees -> one encoded action of `spec`; raises OchreError naming what is unknown."""
    if isinstance(spec, DiscreteActionSpec):
        if look != (0.0, 0.0):
            raise OchreError(f"schema '{spec.name}' has no camera to turn (look {list(look)})")
        wanted = {c.lower() for c in held}
        for i, label in enumerate(spec.labels):
            if set(label.lower().split("+")) == wanted:
                return np.array(i, dtype=np.int64)
        if not wanted:
            return np.array(spec.noop, dtype=np.int64)
        raise OchreError(f"schema '{spec.name}' has no action holding {sorted(wanted)} (labels: {', '.join(spec.labels)})")
    if isinstance(spec, FirstPersonActionSpec):
        continuous = np.zeros(spec.shape, dtype=np.float64)
        continuous[:2] = spec.normalise_degrees(np.asarray(look, dtype=np.float64))
        for control in held:
            continuous[spec.index(control)] = 1.0
        return spec.encode(continuous)
    if isinstance(spec, FactoredActionSpec):
        if look != (0.0, 0.0):
            raise OchreError(f"schema '{spec.name}' has no camera to turn (look {list(look)})")
        action = np.array(spec.rest, dtype=np.int64)
        for item in held:
            control, _, value = item.partition("=")
            column = spec.index(control)
            action[column] = spec.nearest(control, float(value)) if value else len(spec.values[column]) - 1
        return action
    raise OchreError(f"no input encoding for schema {type(spec).__name__}")


@dataclass(frozen=True)
class Segment:
    steps: int
    hold: frozenset[str] = frozenset()
    look: tuple[float, float] = (0.0, 0.0)
    random: tuple[int, int] | None = None  # held random actions, each for this many steps (min, max)
    controller: str | None = None  # a scripted player from CONTROLLERS

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Segment:
        unknown = set(data) - {"steps", "hold", "look", "random", "controller"}
        if unknown:
            raise OchreError(f"{where}: unknown keys {sorted(unknown)} (known: steps, hold, look, random, controller)")
        steps = data.get("steps")
        if not isinstance(steps, int) or steps < 1:
            raise OchreError(f"{where}: 'steps' must be a positive integer, got {steps!r}")
        random = data.get("random")
        if random is not None and not (isinstance(random, list) and len(random) == 2 and 1 <= random[0] <= random[1]):
            raise OchreError(f"{where}: 'random' must be [min, max] steps a random action is held, 1 <= min <= max")
        controller = data.get("controller")
        if controller is not None and controller not in CONTROLLERS:
            raise OchreError(f"{where}: unknown controller {controller!r} (known: {', '.join(CONTROLLERS)})")
        look = tuple(float(v) for v in data.get("look", (0.0, 0.0)))
        if len(look) != 2:
            raise OchreError(f"{where}: 'look' must be [yaw, pitch] degrees per step")
        return cls(steps, frozenset(data.get("hold", ())), look, tuple(random) if random else None, controller)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Program:
    name: str
    segments: tuple[Segment, ...]
    description: str = ""
    source: str = ""

    @property
    def steps(self) -> int:
        return sum(s.steps for s in self.segments)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Program:
        name, segments = data.get("name"), data.get("segments")
        if not isinstance(name, str) or not name:
            raise OchreError(f"{where}: a program needs a 'name'")
        if not isinstance(segments, list) or not segments:
            raise OchreError(f"{where}: 'segments' must be a non-empty list")
        repeat = data.get("repeat", 1)
        if not isinstance(repeat, int) or repeat < 1:
            raise OchreError(f"{where}: 'repeat' must be a positive integer, got {repeat!r}")
        parsed = tuple(Segment.from_dict(s, f"{where} segment {i}") for i, s in enumerate(segments)) * repeat
        program = cls(name, parsed, str(data.get("description", "")), where)
        if not MIN_STEPS <= program.steps <= MAX_STEPS:
            raise OchreError(f"{where}: '{name}' lasts {program.steps} steps; a program lasts {MIN_STEPS}-{MAX_STEPS}")
        return program

    def check(self, spec: ActionSpec) -> None:
        """Every held control exists in `spec` (raises OchreError naming the program file)."""
        for seg in self.segments:
            if seg.random is None and seg.controller is None:
                try:
                    encode_input(spec, seg.hold, seg.look)
                except OchreError as err:
                    raise OchreError(f"{self.source}: {err}") from None

    def player(self, spec: ActionSpec, rng: np.random.Generator) -> ProgramPlayer:
        return ProgramPlayer(self, spec, rng)


class ProgramPlayer:
    """Plays a program one step at a time: `act(frame)` -> the encoded action for that step."""

    def __init__(self, program: Program, spec: ActionSpec, rng: np.random.Generator):
        program.check(spec)
        self.spec, self.rng = spec, rng
        self.frame: np.ndarray | None = None  # the real game's picture the next action answers
        self._actions = self._steps(program)

    def act(self, frame: np.ndarray) -> np.ndarray:
        """The action to apply to `frame` (the real game's current picture)."""
        self.frame = frame
        return next(self._actions)

    def _steps(self, program: Program) -> Iterator[np.ndarray]:
        for seg in program.segments:
            if seg.controller is not None:
                control = CONTROLLERS[seg.controller]
                for _ in range(seg.steps):
                    yield encode_input(self.spec, control(self.frame))
            elif seg.random is not None:
                left, held = 0, self.spec.neutral()
                for _ in range(seg.steps):
                    if left <= 0:
                        held, left = self.spec.sample(self.rng), int(self.rng.integers(seg.random[0], seg.random[1] + 1))
                    left -= 1
                    yield held
            else:
                action = encode_input(self.spec, seg.hold, seg.look)
                for _ in range(seg.steps):
                    yield action


def load_programs(folder: str | Path) -> dict[str, Program]:
    """Every `*.json` program in `folder`, by name."""
    folder = Path(folder)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise OchreError(f"{folder}: no input programs (*.json) found; see ochre/playtest/programs.py for the format")
    programs: dict[str, Program] = {}
    for path in files:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise OchreError(f"{path}: not a readable JSON program ({err})") from None
        program = Program.from_dict(data, str(path))
        if program.name in programs:
            raise OchreError(f"{path}: program name '{program.name}' is used twice in {folder}")
        programs[program.name] = program
    return programs


def _follow_ball(frame: np.ndarray) -> frozenset[str]:
    """Pong: move the own (right, green) paddle towards the ball; stay when there is no ball."""
    ball, paddle = find_ball(frame), find_paddle(frame, "right")
    if ball is None or paddle is None or abs(ball[0] - paddle[0]) < 1.5:
        return frozenset()
    return frozenset({"right"}) if ball[0] < paddle[0] else frozenset({"left"})  # ALE's "right" moves the paddle up


# Scripted players a program can hand the keys to, by name: real frame -> controls held.
CONTROLLERS: dict[str, Callable[[np.ndarray], frozenset[str]]] = {"follow_ball": _follow_ball}
