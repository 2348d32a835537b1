"""Key and mouse bindings per action schema, and one encoding function per schema.

    bindings = bindings_for(wm.action_spec)                  # or bindings_for(spec, load_key_file("keys.yaml"))
    action = bindings.encode(PlayerInput(held=frozenset({"forward"}), look=(3.0, 0.0)))

Bindings are plain data: a pygame key or mouse button -> a press of the schema (a
control name, a label, or `control=value` of a factored schema; see `live.keymap`).
A `PlayerInput` holds those names and the camera motion of one frame, so encoding it
needs no pygame and no model. Procgen, Atari-style and first-person schemas have the
maps below; any other discrete or factored schema gets one derived from its controls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pygame

from live.keymap import KeyMap, derived_keymap, load_key_file, override_keys, parse_press
from ochre.actions import ActionSpec, DiscreteActionSpec, FactoredActionSpec, FirstPersonActionSpec
from ochre.errors import OchreError

LEFT_CLICK = 1
KEY_LOOK_DEG = 4.0  # degrees an arrow key turns the camera per frame (play without a mouse)

# Arrows or WASD move in every flat (non-first-person) world.
MOVE_KEYS: dict[int, str] = {
    pygame.K_LEFT: "left",
    pygame.K_a: "left",
    pygame.K_RIGHT: "right",
    pygame.K_d: "right",
    pygame.K_UP: "up",
    pygame.K_w: "up",
    pygame.K_DOWN: "down",
    pygame.K_s: "down",
}

# Procgen: space also jumps; 1-6 press the game's extra buttons (procgen ids 9-14).
PROCGEN_KEYS: dict[int, str] = {
    **MOVE_KEYS,
    pygame.K_SPACE: "up",
    pygame.K_1: "d",
    pygame.K_2: "a",
    pygame.K_3: "w",
    pygame.K_4: "s",
    pygame.K_5: "q",
    pygame.K_6: "e",
}

# Atari (ALE minimal action sets): space / Ctrl / left click fire.
ATARI_KEYS: dict[int, str] = {**MOVE_KEYS, pygame.K_SPACE: "fire", pygame.K_LCTRL: "fire", pygame.K_RCTRL: "fire"}
ATARI_CONTROLS = frozenset({"up", "down", "left", "right", "fire"})
# Games whose paddle moves across what ALE calls left/right: the screen's direction keys too.
# In Pong "right" moves the player's paddle up and "left" moves it down.
ATARI_GAME_KEYS: dict[str, dict[int, str]] = {
    "atari:ALE/Pong-v5": {pygame.K_UP: "right", pygame.K_w: "right", pygame.K_DOWN: "left", pygame.K_s: "left"},
}

# First person: WASD move, space jumps, left click attacks, Ctrl sprints, Shift sneaks
# (as ochre.actions.FIRST_PERSON_KEYS documents for the importers); the mouse looks.
FIRST_PERSON_KEYS: dict[int, str] = {
    pygame.K_w: "forward",
    pygame.K_a: "left",
    pygame.K_s: "back",
    pygame.K_d: "right",
    pygame.K_SPACE: "jump",
    pygame.K_LCTRL: "sprint",
    pygame.K_RCTRL: "sprint",
    pygame.K_LSHIFT: "sneak",
    pygame.K_RSHIFT: "sneak",
}
# Arrow keys turn and look as well, for a player without a mouse: (yaw, pitch) direction.
LOOK_KEYS: dict[int, tuple[int, int]] = {
    pygame.K_LEFT: (-1, 0),
    pygame.K_RIGHT: (1, 0),
    pygame.K_UP: (0, 1),
    pygame.K_DOWN: (0, -1),
}
OPPOSITES = (("left", "right"), ("up", "down"))


@dataclass(frozen=True)
class PlayerInput:
    """What the player does in one frame, independent of any model.

    held: control names held down; look: camera motion (yaw, pitch) in degrees since
    the previous frame, yaw > 0 turns right, pitch > 0 looks up.
    """

    held: frozenset[str] = frozenset()
    look: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Bindings:
    """Which key or mouse button presses which control of one schema, and how input is encoded."""

    schema: str
    keys: Mapping[int, str]
    encode: Callable[[PlayerInput], np.ndarray]  # -> one action in the schema's encoded form
    buttons: Mapping[int, str] = field(default_factory=dict)  # mouse button number -> control
    look_keys: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    mouse_look: bool = False  # the mouse turns the camera (captured in relative mode)
    unbound: tuple[str, ...] = ()  # presses no key reaches (more controls than spare keys)

    def help_lines(self) -> list[str]:
        """'control: key, key' for every bound control, three to a line, in binding order; then what is unbound."""
        names: dict[str, list[str]] = {}
        for key, control in self.keys.items():
            names.setdefault(control, []).append(pygame.key.name(key))
        for button, control in self.buttons.items():
            names.setdefault(control, []).append("left click" if button == LEFT_CLICK else f"mouse {button}")
        entries = [f"{control}: {', '.join(keys)}" for control, keys in names.items()]
        lines = ["    ".join(entries[i : i + 3]) for i in range(0, len(entries), 3)]
        if self.mouse_look:
            lines.append("look: mouse (click to capture), or the arrow keys")
        if self.unbound:
            lines.append(f"no key for: {', '.join(self.unbound)} (bind them with --keys FILE)")
        return lines


def discrete_encoder(spec: DiscreteActionSpec) -> Callable[[PlayerInput], np.ndarray]:
    """Held controls (or labels) -> the id whose label presses the most of them (opposite directions cancel)."""
    table = {frozenset(label.split("+")): i for i, label in enumerate(spec.labels) if i != spec.noop}

    def encode(inp: PlayerInput) -> np.ndarray:
        held = {control for name in inp.held for control in name.split("+")}
        for a, b in OPPOSITES:
            if a in held and b in held:
                held -= {a, b}
        best = max((controls for controls in table if controls <= held), key=len, default=None)
        return np.asarray(spec.noop if best is None else table[best], dtype=np.int64)

    return encode


def first_person_encoder(spec: FirstPersonActionSpec) -> Callable[[PlayerInput], np.ndarray]:
    """Camera degrees and held buttons -> the (2 + B,) encoded action (camera binned by the schema)."""
    yaw, pitch = spec.index("yaw"), spec.index("pitch")
    columns = [spec.index(b) for b in spec.buttons]

    def encode(inp: PlayerInput) -> np.ndarray:
        continuous = np.zeros(spec.shape)
        continuous[[yaw, pitch]] = spec.normalise_degrees(inp.look)
        continuous[columns] = [b in inp.held for b in spec.buttons]
        return spec.encode(continuous)

    return encode


def factored_encoder(spec: FactoredActionSpec) -> Callable[[PlayerInput], np.ndarray]:
    """Held `control=value` presses -> the (C,) encoded action; two values of one control cancel (it rests)."""
    parsed: dict[str, tuple[int, int]] = {}

    def encode(inp: PlayerInput) -> np.ndarray:
        chosen: dict[int, set[int]] = {}
        for press in inp.held:
            if press not in parsed:
                parsed[press] = parse_press(spec, press)
            col, index = parsed[press]
            chosen.setdefault(col, set()).add(index)
        action = spec.neutral()
        for col, indices in chosen.items():
            if len(indices) == 1:
                action[col] = indices.pop()
        return action

    return encode


def bindings_for(spec: ActionSpec, overrides: Mapping[str, Any] | None = None, source: str = "--keys") -> Bindings:
    """The bindings of a world's action schema, with the keys of `overrides` (read from `source`) rebound."""
    bindings = _default_bindings(spec)
    if overrides:
        keymap = override_keys(KeyMap(dict(bindings.keys), bindings.unbound), spec, overrides, source)
        bindings = replace(bindings, keys=keymap.keys, unbound=keymap.unbound)
    if isinstance(spec, FirstPersonActionSpec):
        unbound = sorted(set(spec.buttons) - set(bindings.keys.values()) - set(bindings.buttons.values()))
        if unbound:
            raise OchreError(
                f"action schema '{spec.name}': no key bound to button(s) {', '.join(unbound)}; bind them with --keys FILE"
            )
    return bindings


def window_bindings(spec: ActionSpec, keys_file: str | None) -> Bindings:
    """The bindings a window plays with (`keys_file` rebinds keys), printed so the player sees them before F1."""
    bindings = bindings_for(spec, load_key_file(keys_file) if keys_file else None, keys_file or "--keys")
    print("keys:", *bindings.help_lines(), sep="\n  ")
    return bindings


def _default_bindings(spec: ActionSpec) -> Bindings:
    if isinstance(spec, FirstPersonActionSpec):
        keys = {k: c for k, c in FIRST_PERSON_KEYS.items() if c in spec.buttons}
        buttons = {LEFT_CLICK: "attack"} if "attack" in spec.buttons else {}
        return Bindings(spec.name, keys, first_person_encoder(spec), buttons, LOOK_KEYS, mouse_look=True)
    if isinstance(spec, FactoredActionSpec):
        keymap = derived_keymap(spec)
        return Bindings(spec.name, keymap.keys, factored_encoder(spec), unbound=keymap.unbound)
    if spec.name == "procgen":
        return Bindings(spec.name, PROCGEN_KEYS, discrete_encoder(spec))
    if set(spec.control_names) <= ATARI_CONTROLS:
        keys = {k: c for k, c in ATARI_KEYS.items() if c in spec.control_names} | ATARI_GAME_KEYS.get(spec.name, {})
        buttons = {LEFT_CLICK: "fire"} if "fire" in spec.control_names else {}
        return Bindings(spec.name, keys, discrete_encoder(spec), buttons)
    keymap = derived_keymap(spec)
    return Bindings(spec.name, keymap.keys, discrete_encoder(spec), unbound=keymap.unbound)


def describe_action(spec: ActionSpec, action: np.ndarray) -> str:
    """A short label for the HUD: 'right+up', 'axis_0=-2 axis_1=0.5', or 'yaw +4° pitch 0° forward+jump'."""
    if isinstance(spec, DiscreteActionSpec):
        return spec.labels[int(action)]
    if isinstance(spec, FactoredActionSpec):
        a = np.asarray(action)
        moved = [f"{c}={v[i]:g}" for c, v, i, r in zip(spec.controls, spec.values, a, spec.rest, strict=True) if i != r]
        return " ".join(moved) or "at rest"
    yaw, pitch = spec.degrees(np.asarray(action))
    pressed = [b for b, on in zip(spec.buttons, np.asarray(action)[2:], strict=True) if on]
    return f"yaw {yaw:+.0f}° pitch {pitch:+.0f}° {'+'.join(pressed) or 'no buttons'}"
