"""Key maps derived from an action schema, and a player's own keys from a YAML file.

    keymap = derived_keymap(spec)                                   # KeyMap(keys={pygame key: press}, unbound=...)
    keymap = override_keys(keymap, spec, load_key_file("keys.yaml"), "keys.yaml")

A press is the name of what a key holds down: a control of a discrete schema ("up",
"fire", "action_2") or one of its labels ("up+right"); `control=value` of a factored
schema ("axis_0=-2", snapped to the nearest of the control's values); a button of a
first-person schema ("jump").

Derived maps: arrows and WASD for the directions a discrete schema's labels name (also
inside combos such as "up+right"), space for fire, then number keys and spare letters
for the rest. In a factored schema the first two controls with two extremes take
left/right (A/D) and down/up (S/W) for their lowest/highest values; every other extreme
takes the next spare key.

keys.yaml maps pygame key names to presses; `null` unbinds a key:

    space: FIRE          # an action label, as the env names it or as the schema does
    "1": action_1
    left: axis_0=-2.0    # a factored control at a value
    q: null
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygame
import yaml

from ochre.actions import ActionSpec, FactoredActionSpec, FirstPersonActionSpec
from ochre.envs.gym import meaning_label
from ochre.errors import OchreError

DIRECTION_KEYS: dict[str, tuple[int, ...]] = {
    "left": (pygame.K_LEFT, pygame.K_a),
    "right": (pygame.K_RIGHT, pygame.K_d),
    "up": (pygame.K_UP, pygame.K_w),
    "down": (pygame.K_DOWN, pygame.K_s),
}
FIRE_KEYS = (pygame.K_SPACE,)
# (lowest, highest) value keys of a factored schema's first two two-sided controls.
AXIS_KEYS = (
    ((pygame.K_LEFT, pygame.K_a), (pygame.K_RIGHT, pygame.K_d)),
    ((pygame.K_DOWN, pygame.K_s), (pygame.K_UP, pygame.K_w)),
)
# Number keys, then letters the app does not use (R, N, G, H, P, X are app keys; WASD move).
SPARE_KEYS = (
    *(pygame.K_1, pygame.K_2, pygame.K_3, pygame.K_4, pygame.K_5, pygame.K_6, pygame.K_7, pygame.K_8, pygame.K_9, pygame.K_0),
    *(pygame.K_q, pygame.K_e, pygame.K_t, pygame.K_y, pygame.K_u, pygame.K_i, pygame.K_o, pygame.K_f),
    *(pygame.K_j, pygame.K_k, pygame.K_l, pygame.K_z, pygame.K_c, pygame.K_v, pygame.K_b, pygame.K_m),
)
KEY_NAMES: dict[str, int] = {pygame.key.name(v): v for k, v in vars(pygame).items() if k.startswith("K_")}


@dataclass(frozen=True)
class KeyMap:
    """Which key holds which press, and the presses no key reaches."""

    keys: dict[int, str]
    unbound: tuple[str, ...] = ()


# --- derived maps ------------------------------------------------------------------------


def derived_keymap(spec: ActionSpec) -> KeyMap:
    """The default map of a discrete or factored schema."""
    if isinstance(spec, FactoredActionSpec):
        return _factored_keymap(spec)
    if isinstance(spec, FirstPersonActionSpec):
        raise OchreError(f"action schema '{spec.name}': first-person schemas have their own bindings (live/bindings.py)")
    return _discrete_keymap(spec.labels)


def _discrete_keymap(labels: tuple[str, ...]) -> KeyMap:
    """Directions and fire by name, the other controls (every label's, but "noop") on spare keys in order."""
    controls = list(dict.fromkeys(c for label in labels if label != "noop" for c in label.split("+")))
    keys: dict[int, str] = {}
    rest = []
    for control in controls:
        named = DIRECTION_KEYS.get(control) or (FIRE_KEYS if control == "fire" else ())
        keys.update(dict.fromkeys(named, control))
        if not named:
            rest.append(control)
    return _spare(keys, rest)


def _factored_keymap(spec: FactoredActionSpec) -> KeyMap:
    keys: dict[int, str] = {}
    rest = []
    axes = iter(AXIS_KEYS)
    for col, f in enumerate(spec.factors):
        ends = [i for i in dict.fromkeys((0, f - 1)) if i != spec.rest[col]]
        slots = next(axes, None) if len(ends) == 2 else None
        for i, end in enumerate(ends):
            if slots is None:
                rest.append(press_name(spec, col, end))
            else:
                keys.update(dict.fromkeys(slots[i], press_name(spec, col, end)))
    return _spare(keys, rest)


def _spare(keys: dict[int, str], presses: list[str]) -> KeyMap:
    """`presses` on the spare keys in order; those beyond the last spare key stay unbound."""
    spare = [k for k in SPARE_KEYS if k not in keys]
    keys = keys | dict(zip(spare, presses, strict=False))
    return KeyMap(keys, tuple(presses[len(spare) :]))


# --- presses -------------------------------------------------------------------------------


def press_name(spec: FactoredActionSpec, col: int, index: int) -> str:
    """'axis_0=-2': control `col` at its value `index`."""
    return f"{spec.controls[col]}={spec.values[col][index]:g}"


def parse_press(spec: FactoredActionSpec, press: str, source: str = "keys") -> tuple[int, int]:
    """'axis_0=-1.7' -> (column, index of the nearest value), or one line naming `source` and the controls."""
    control, sep, value = press.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or number is None or control.strip() not in spec.controls:
        raise OchreError(
            f"{source}: '{press}' must be control=value for the '{spec.name}' schema (controls: {', '.join(spec.controls)})"
        )
    return spec.index(control.strip()), spec.nearest(control.strip(), number)


def resolve_press(spec: ActionSpec, target: Any, source: str) -> str:
    """What a keys file names -> the press the schema's encoder reads, or one line saying what it accepts."""
    text = str(target).strip()
    if isinstance(spec, FactoredActionSpec):
        return press_name(spec, *parse_press(spec, text, source))
    if isinstance(spec, FirstPersonActionSpec):
        if text in spec.buttons:
            return text
        raise OchreError(f"{source}: '{text}' is no button of the '{spec.name}' schema (buttons: {', '.join(spec.buttons)})")
    names = set(spec.labels) | set(spec.control_names)
    for candidate in (text, text.lower(), meaning_label(text)):
        if candidate in names:
            return candidate
    raise OchreError(f"{source}: '{text}' is no action of the '{spec.name}' schema (labels: {', '.join(spec.labels)})")


# --- a player's keys -------------------------------------------------------------------------


def load_key_file(path: str | Path) -> dict[str, Any]:
    """A keys YAML file -> {key name: press or None}, or one line naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise OchreError(f"{path}: keys file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise OchreError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str | int | float | type(None)) for v in data.values()):
        raise OchreError(f"{path}: must map key names to actions, one per line, such as 'space: FIRE'")
    return {str(k): v for k, v in data.items()}


def override_keys(keymap: KeyMap, spec: ActionSpec, overrides: Mapping[str, Any], source: str) -> KeyMap:
    """`keymap` with each named key rebound (None unbinds it); presses now bound leave `unbound`."""
    keys = dict(keymap.keys)
    for name, target in overrides.items():
        key = KEY_NAMES.get(name.strip().lower())
        if key is None:
            raise OchreError(f"{source}: unknown key '{name}' (use pygame key names such as left, space, a, 1, left ctrl)")
        if target is None:
            keys.pop(key, None)
        else:
            keys[key] = resolve_press(spec, target, source)
    return KeyMap(keys, tuple(p for p in keymap.unbound if p not in keys.values()))
