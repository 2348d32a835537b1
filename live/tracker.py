"""Turn pygame events into one `PlayerInput` per frame.

Held keys and buttons are tracked from KEYDOWN/KEYUP and MOUSEBUTTONDOWN/UP events
rather than polled, so scripted events (tests, the benchmark) and real ones take
the same path, and `release()` on focus loss leaves no key stuck down. Mouse
motion accumulates until the next `read()`, so no turn is lost when the model
is slower than the display.
"""

from __future__ import annotations

from dataclasses import dataclass

import pygame

from live.bindings import KEY_LOOK_DEG, Bindings, PlayerInput


@dataclass(frozen=True)
class MouseSettings:
    sensitivity: float = 0.15  # degrees of camera turn per pixel of mouse motion
    invert: bool = False  # True: moving the mouse up looks down


class InputTracker:
    """Keys, mouse buttons and mouse motion of the current frame."""

    def __init__(self, bindings: Bindings, mouse: MouseSettings = MouseSettings()):
        self.bindings = bindings
        self.mouse = mouse
        self.keys: set[int] = set()  # every key held, bound or not (Backspace rewinds)
        self.buttons: set[int] = set()
        self.captured = False  # mouse motion turns the camera only while the mouse is captured
        self._motion = [0.0, 0.0]  # pixels since the last read

    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.KEYDOWN:
            self.keys.add(event.key)
        elif event.type == pygame.KEYUP:
            self.keys.discard(event.key)
        elif event.type == pygame.MOUSEBUTTONDOWN:
            self.buttons.add(event.button)
        elif event.type == pygame.MOUSEBUTTONUP:
            self.buttons.discard(event.button)
        elif event.type == pygame.MOUSEMOTION and self.captured:
            self._motion[0] += event.rel[0]
            self._motion[1] += event.rel[1]

    def release(self) -> None:
        """Forget everything held (the window lost focus: its key-up events will never come)."""
        self.keys.clear()
        self.buttons.clear()
        self._motion = [0.0, 0.0]

    def read(self) -> PlayerInput:
        """The input of one frame; consumes the mouse motion gathered since the last read."""
        b = self.bindings
        held = {b.keys[k] for k in self.keys if k in b.keys} | {b.buttons[m] for m in self.buttons if m in b.buttons}
        return PlayerInput(frozenset(held), self._look())

    def _look(self) -> tuple[float, float]:
        dx, dy = self._motion
        self._motion = [0.0, 0.0]
        sign = -1.0 if self.mouse.invert else 1.0
        yaw = dx * self.mouse.sensitivity
        pitch = -dy * self.mouse.sensitivity * sign  # screen y grows downwards; moving the mouse up looks up
        for key in self.keys:
            if key in self.bindings.look_keys:
                kx, ky = self.bindings.look_keys[key]
                yaw, pitch = yaw + kx * KEY_LOOK_DEG, pitch + ky * KEY_LOOK_DEG
        return (yaw, pitch)
