"""The Pygame window: events in, frames out, paced at the world's fps.

    Window(controller, WindowSettings(scale=8)).run()

One loop iteration is `handle_events` -> `step` -> `draw` -> wait for the frame
clock. The window knows nothing about models: it turns events into a
`PlayerInput` (via `InputTracker`), encodes it with the schema's bindings, and
hands the action to a controller (the learned world in `live.controller`, the
real game in `live.record`), which draws back a list of frames.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pygame

from live.bindings import Bindings
from live.hud import Text
from live.recording import write_screenshot
from live.timing import FrameClock
from live.tracker import InputTracker, MouseSettings
from ochre.errors import OchreError

WINDOW_KEYS: dict[int, str] = {pygame.K_F1: "help", pygame.K_h: "hud", pygame.K_p: "pause", pygame.K_F12: "screenshot"}
WINDOW_HELP = ["F1: this help    H: HUD on / off    P: pause    F12: screenshot"]
ESCAPE_HELP = {True: "Esc: release the mouse, Esc again to quit", False: "Esc: quit"}
TOAST_SECONDS = 2.5


class Controller(Protocol):
    """What the window drives: `live.controller.PlayController`, `live.record.RecordController`."""

    bindings: Bindings
    title: str
    fps: float
    frame_shape: tuple[int, int, int]
    panel_names: tuple[str, ...]
    commands: Mapping[int, str]
    finished: bool  # stop playing (e.g. enough episodes recorded)

    def start(self) -> None: ...
    def tick(
        self, frame: int, next_action: Callable[[], np.ndarray], rewind: bool = False, deadline: float | None = None
    ) -> None: ...
    def command(self, name: str) -> None: ...
    def record_frame(self, frame: int, total_ms: float) -> None: ...
    def panels(self) -> list[tuple[str, np.ndarray]]: ...
    def hud_lines(self, fps: float) -> list[str]: ...
    def help_lines(self) -> list[str]: ...
    def pop_message(self) -> str | None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class WindowSettings:
    scale: int = 8  # window pixels per frame pixel (shrunk to fit the screen)
    smooth: bool = False  # smooth (bilinear) upscaling instead of whole pixels
    hud: bool = True  # start with the HUD shown
    fps: float | None = None  # display rate; None: the world's own
    mouse: MouseSettings = field(default_factory=MouseSettings)
    screenshots: Path = Path("runs/live/screenshots")


PLAY_HEADLESS = "python -m live.play --checkpoint C --headless --frames 300 --out runs/play"


def no_window_error(reason: str, headless: str = PLAY_HEADLESS) -> OchreError:
    """The one message for every way a window can fail to open: why, and the headless command instead."""
    return OchreError(f"{reason}; play without a window: {headless}")


def display_available() -> bool:
    if os.environ.get("SDL_VIDEODRIVER") in ("dummy", "offscreen"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def require_display(headless: str = PLAY_HEADLESS) -> None:
    """Raise the no-window message (naming `headless`, the command to use instead) if there is no display."""
    if not display_available():
        raise no_window_error("no display found (DISPLAY is not set)", headless)


class Window:
    def __init__(self, controller: Controller, settings: WindowSettings = WindowSettings(), headless: str = PLAY_HEADLESS):
        require_display(headless)
        self.controller = controller
        self.settings = settings
        self.tracker = InputTracker(controller.bindings, settings.mouse)
        try:
            pygame.display.init()
            panels = len(controller.panel_names)
            h, w = controller.frame_shape[:2]
            self.scale = self._fit(settings.scale, h, w * panels)
            self.screen = pygame.display.set_mode((w * panels * self.scale, h * self.scale))
        except pygame.error as err:
            raise no_window_error(f"cannot open a window ({err})", headless) from None
        pygame.display.set_caption(f"{controller.title}  (F1 help)")
        self.text = Text()
        self.clock = FrameClock(settings.fps or controller.fps)
        self.frame = 0
        self.running = True
        self.paused = False
        self.focus_lost = False
        self.hud = settings.hud
        self.help = False
        self.toast: tuple[str, float] | None = None
        if controller.bindings.mouse_look:
            self.capture(True)

    # -- the loop ------------------------------------------------------------
    def run(self, max_frames: int | None = None) -> None:
        """Play until the window closes (or `max_frames` display frames); always closes cleanly."""
        try:
            self.controller.start()
            while self.running and not self.controller.finished and (max_frames is None or self.frame < max_frames):
                start = time.perf_counter()
                self.handle_events()
                playing = self.running and not (self.paused or self.focus_lost)
                if playing:
                    self.step()
                self.draw()
                if playing:
                    self.controller.record_frame(self.frame, (time.perf_counter() - start) * 1e3)
                self.clock.wait()
                self.frame += 1
        finally:
            try:
                self.controller.close()
            finally:
                pygame.display.quit()

    def handle_events(self) -> None:
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                self.running = False
            elif event.type == pygame.WINDOWFOCUSLOST:
                self.lose_focus()
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
                self.escape()
            elif event.type == pygame.MOUSEBUTTONDOWN and self._wants_click():
                self.resume()  # this click captures the mouse; it is not an attack
            elif event.type == pygame.KEYDOWN and event.key in WINDOW_KEYS:
                self.window_command(WINDOW_KEYS[event.key])
            elif event.type == pygame.KEYDOWN and event.key in self.controller.commands:
                self.controller.command(self.controller.commands[event.key])
            elif not self.focus_lost:
                self.tracker.handle(event)

    def step(self) -> None:
        rewind = pygame.K_BACKSPACE in self.tracker.keys
        encode = self.controller.bindings.encode
        self.controller.tick(self.frame, lambda: encode(self.tracker.read()), rewind, self.clock.deadline())

    def draw(self) -> None:
        h, w = self.screen.get_height(), self.screen.get_width() // len(self.controller.panel_names)
        panels = self.controller.panels()
        for i, (caption, frame) in enumerate(panels):
            surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.swapaxes(0, 1)))
            resize = pygame.transform.smoothscale if self.settings.smooth else pygame.transform.scale
            self.screen.blit(resize(surface, (w, h)), (i * w, 0))
            if len(panels) > 1:
                self.text.caption(self.screen, caption, (i * w + 4, h))
        self._draw_text()
        pygame.display.flip()

    # -- window controls -----------------------------------------------------
    def window_command(self, name: str) -> None:
        if name == "help":
            self.help = not self.help
        elif name == "hud":
            self.hud = not self.hud
        elif name == "pause":
            self.paused = not self.paused
        elif name == "screenshot":
            image = pygame.surfarray.array3d(self.screen).swapaxes(0, 1)
            self.show(f"saved {write_screenshot(self.settings.screenshots, image)}")

    def capture(self, on: bool) -> None:
        """Grab the mouse in relative mode (it turns the camera) or let it go."""
        try:
            pygame.mouse.set_relative_mode(on)
        except pygame.error as err:
            if on:
                self.show(f"cannot capture the mouse ({err}); the arrow keys look around")
            on = False
        self.tracker.captured = on

    def escape(self) -> None:
        if self.tracker.captured:
            self.capture(False)
            self.show("mouse released: click to capture it again, Esc to quit")
        else:
            self.running = False

    def lose_focus(self) -> None:
        """Another window took the keyboard: pause, let the mouse go, forget held keys."""
        self.focus_lost = True
        self.capture(False)
        self.tracker.release()

    def resume(self) -> None:
        self.focus_lost = False
        if self.controller.bindings.mouse_look:
            self.capture(True)

    def show(self, message: str) -> None:
        self.toast = (message, time.perf_counter() + TOAST_SECONDS)

    def _wants_click(self) -> bool:
        return self.focus_lost or (self.controller.bindings.mouse_look and not self.tracker.captured)

    def _draw_text(self) -> None:
        width, height = self.screen.get_size()
        if self.hud:
            self.text.block(self.screen, self.controller.hud_lines(self.clock.fps), (4, 4))
        if self.help:
            lines = [*self.controller.help_lines(), *WINDOW_HELP, ESCAPE_HELP[self.controller.bindings.mouse_look]]
            self.text.block(self.screen, lines, (width // 2, height // 2), centre=True)
        elif self.focus_lost:
            self.text.block(self.screen, ["paused: the window lost focus", "click to resume"], (width // 2, height // 2), True)
        elif self.paused:
            self.text.block(self.screen, ["paused (P)"], (width // 2, height // 2), centre=True)
        if message := self.controller.pop_message():
            self.show(message)
        if self.toast and time.perf_counter() < self.toast[1]:
            self.text.block(self.screen, [self.toast[0]], (4, height - 64))  # above the panel captions

    @staticmethod
    def _fit(scale: int, height: int, width: int) -> int:
        """The largest scale <= `scale` at which a `height` x `width` picture fits on the screen (at least 1)."""
        try:
            sizes = pygame.display.get_desktop_sizes()
        except pygame.error:
            sizes = []
        if not sizes:
            return max(scale, 1)
        screen_w, screen_h = sizes[0]
        return max(1, min(scale, (screen_h - 80) // height, screen_w // width))
