"""Key bindings per action schema: plain data plus one encoding function each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pygame

from ochre.actions import DiscreteActionSpec
from ochre.errors import OchreError

# Direction keys for Procgen worlds: arrows and WASD both work; space also jumps.
PROCGEN_KEYS: dict[int, str] = {
    pygame.K_LEFT: "left",
    pygame.K_a: "left",
    pygame.K_RIGHT: "right",
    pygame.K_d: "right",
    pygame.K_UP: "up",
    pygame.K_w: "up",
    pygame.K_SPACE: "up",
    pygame.K_DOWN: "down",
    pygame.K_s: "down",
}


@dataclass(frozen=True)
class PlayerInput:
    """What the player holds this frame, independent of any model."""

    held: frozenset[str] = frozenset()


def procgen_action(inp: PlayerInput) -> int:
    """Procgen ids 0-8 are the (left|none|right) x (down|none|up) combos: id = 3*(h+1) + (v+1)."""
    h = ("right" in inp.held) - ("left" in inp.held)
    v = ("up" in inp.held) - ("down" in inp.held)
    return 3 * (h + 1) + (v + 1)


def read_input(pressed: pygame.key.ScancodeWrapper | dict[int, bool], keys: dict[int, str]) -> PlayerInput:
    return PlayerInput(frozenset(name for key, name in keys.items() if pressed[key]))


def bindings_for(spec: DiscreteActionSpec) -> tuple[dict[int, str], Callable[[PlayerInput], int]]:
    """(key map, encoder) for a world's action schema."""
    if spec.name == "procgen":
        return PROCGEN_KEYS, procgen_action
    raise OchreError(f"no key bindings for action schema '{spec.name}' (known: procgen)")
