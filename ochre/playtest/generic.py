"""The generic play tests: input programs derived from an action schema, for a world with none registered.

    programs = generic_programs(spec)   # {"stand": Program, "hold_right": ..., "hold_torque=-2": ..., "sticky_random": ...}

A world whose programs are registered (ochre/playtest/checks.py) plays those. Any other
world (your own `gym:<id>` game) plays this set, built only from what its schema says a
player can press, so it never names a game:

- `stand`: the do-nothing action held for STAND_STEPS, where the schema has one: a
  discrete schema whose noop label is "noop", a first-person schema (still camera, no
  buttons), a factored schema (every control at its rest value);
- `hold_<x>`: one action held alone for HOLD_STEPS, for every action the schema has:
  each discrete label but the noop (`hold_left+up`); each value of a factored control
  other than its rest (`hold_torque=-2`; a 0/1 control is `hold_<control>`); each button
  and each camera bin of a first-person schema (`hold_forward`, `hold_yaw=-12`, degrees);
- `sticky_random`: random actions each held 4-30 steps, as every registered world has.

Every program is an ordinary `Program`, so `write_programs` can save the set as JSON
files to copy, edit and play with `--program-dir`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ochre.actions import ActionSpec, DiscreteActionSpec, FactoredActionSpec, FirstPersonActionSpec
from ochre.errors import OchreError
from ochre.io import write_text
from ochre.playtest.programs import Program, Segment, encode_input

HOLD_STEPS = 32  # a held key shows its effect within the protocol's shortest program
STAND_STEPS = 64
STICKY_STEPS = 300  # as long as the registered worlds' sticky_random, so the numbers compare
STICKY_HOLD = (4, 30)
SOURCE = "the generic programs (ochre/playtest/generic.py)"  # where a program error points
NOOP_LABEL = "noop"  # a discrete schema's noop is a real do-nothing only under this label (CartPole's id 0 pushes left)


def has_rest(spec: ActionSpec) -> bool:
    """Whether `spec.neutral()` is a real do-nothing a person could hold (not just the first action id)."""
    if isinstance(spec, DiscreteActionSpec):
        return spec.labels[spec.noop].lower() == NOOP_LABEL
    return True


def _held(
    name: str,
    description: str,
    hold: frozenset[str] = frozenset(),
    look: tuple[float, float] = (0.0, 0.0),
    steps: int = HOLD_STEPS,
) -> Program:
    return Program(name, (Segment(steps, hold, look),), description, SOURCE)


def _discrete(spec: DiscreteActionSpec, rest: bool) -> list[Program]:
    return [
        _held(f"hold_{label}", f"hold action {i} ('{label}')", frozenset(label.split("+")))
        for i, label in enumerate(spec.labels)
        if not (rest and i == spec.noop)
    ]


def _factored(spec: FactoredActionSpec) -> list[Program]:
    out = []
    for control, values, rest in zip(spec.controls, spec.values, spec.rest, strict=True):
        binary = tuple(values) == (0.0, 1.0) and rest == 0
        for value in (v for i, v in enumerate(values) if i != rest):
            if binary:
                out.append(_held(f"hold_{control}", f"hold {control}", frozenset({control})))
            else:
                out.append(
                    _held(f"hold_{control}={value:g}", f"hold {control} at {value:g}", frozenset({f"{control}={float(value)!r}"}))
                )
    return out


def _first_person(spec: FirstPersonActionSpec) -> list[Program]:
    out = [_held(f"hold_{b}", f"hold {b}", frozenset({b})) for b in spec.buttons]
    degrees = spec.bin_centers * spec.max_deg
    for axis, control in enumerate(("yaw", "pitch")):
        for b, deg in enumerate(degrees):
            if b != spec.still_bin:
                look = (float(deg), 0.0) if axis == 0 else (0.0, float(deg))
                out.append(_held(f"hold_{control}={deg:g}", f"{control} {deg:g} degrees a step", look=look))
    return out


def generic_programs(spec: ActionSpec) -> dict[str, Program]:
    """stand (where the schema has a do-nothing), one held action per action or control value, sticky_random."""
    rest = has_rest(spec)
    if isinstance(spec, DiscreteActionSpec):
        holds = _discrete(spec, rest)
    elif isinstance(spec, FactoredActionSpec):
        holds = _factored(spec)
    elif isinstance(spec, FirstPersonActionSpec):
        holds = _first_person(spec)
    else:
        raise OchreError(f"no generic play tests for schema {type(spec).__name__}")
    sticky = Program(
        "sticky_random", (Segment(STICKY_STEPS, random=STICKY_HOLD),), "random actions, each held 4-30 steps", SOURCE
    )
    programs = ([_held("stand", "touch nothing", steps=STAND_STEPS)] if rest else []) + holds + [sticky]
    return _distinct(programs, spec)


def _distinct(programs: list[Program], spec: ActionSpec) -> dict[str, Program]:
    """By name, dropping a held program whose action an earlier one already holds (two labels pressing the same keys)."""
    out: dict[str, Program] = {}
    seen: set[bytes] = set()
    for program in programs:
        seg = program.segments[0]
        if seg.random is None:
            key = np.asarray(encode_input(spec, seg.hold, seg.look)).tobytes()
            if key in seen:
                continue
            seen.add(key)
        out.setdefault(program.name, program)
    return out


def write_programs(folder: str | Path, programs: dict[str, Program]) -> None:
    """One `<name>.json` per program in `folder`, in the format `load_programs` reads."""
    for program in programs.values():
        segments = [_segment_dict(s) for s in program.segments]
        data = {"name": program.name, "description": program.description, "segments": segments}
        write_text(Path(folder) / f"{program.name}.json", json.dumps(data) + "\n")


def _segment_dict(seg: Segment) -> dict:
    out: dict = {"steps": seg.steps}
    if seg.hold:
        out["hold"] = sorted(seg.hold)
    if seg.look != (0.0, 0.0):
        out["look"] = list(seg.look)
    if seg.random is not None:
        out["random"] = list(seg.random)
    if seg.controller is not None:
        out["controller"] = seg.controller
    return out
