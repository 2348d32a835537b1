"""The play loop: read input, step the learned world, draw. Window or headless.

The loop is split into `handle_events` / `tick` / `draw`; the world state lives
on the model's device between frames.
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from live.bindings import PlayerInput, bindings_for, read_input
from ochre import WorldModel, WorldState
from ochre.errors import OchreError
from ochre.io import write_text, write_video


@dataclass
class FrameTiming:
    frame: int
    model_ms: float
    decode_ms: float
    total_ms: float


@dataclass
class Session:
    """Everything that changes while playing."""

    wm: WorldModel
    seeds: np.ndarray  # (S, K, H, W, 3) uint8
    seed_actions: np.ndarray  # (S, K-1)
    seed_index: int = 0
    state: WorldState | None = None
    frame: np.ndarray | None = None
    timings: list[FrameTiming] = field(default_factory=list)
    last_action: int = 0

    def reset(self) -> None:
        seed = self.seeds[self.seed_index]
        self.state = self.wm.reset(seed, self.seed_actions[self.seed_index])
        self.frame = seed[-1]

    def next_seed(self) -> None:
        self.seed_index = (self.seed_index + 1) % len(self.seeds)
        self.reset()

    def tick(self, action: int, loop_start: float) -> np.ndarray:
        """Advance one frame; records model/decode/total time in ms."""
        t0 = time.perf_counter()
        self.state = self.wm.advance(self.state, action)
        if self.wm.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        self.frame = self.wm.decode(self.state.tokens)[0]
        t2 = time.perf_counter()
        self.last_action = action
        self.timings.append(FrameTiming(len(self.timings), (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t2 - loop_start) * 1e3))
        return self.frame


def timings_csv(timings: list[FrameTiming]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["frame", "model_ms", "decode_ms", "total_ms"])
    for t in timings:
        writer.writerow([t.frame, f"{t.model_ms:.3f}", f"{t.decode_ms:.3f}", f"{t.total_ms:.3f}"])
    return buf.getvalue()


def run_headless(session: Session, frames: int, out: Path, seed: int = 0) -> dict[str, float]:
    """Drive the world with uniform random actions; write play.mp4 and timings.csv."""
    rng = np.random.default_rng(seed)
    session.reset()
    video = [session.frame]
    for _ in range(frames):
        start = time.perf_counter()
        video.append(session.tick(int(session.wm.action_spec.sample(rng)), start))
    out.mkdir(parents=True, exist_ok=True)
    write_video(out / "play.mp4", np.stack(video), fps=session.wm.fps, scale=4)
    write_text(out / "timings.csv", timings_csv(session.timings))
    totals = np.array([t.total_ms for t in session.timings])
    return {"p50_ms": float(np.percentile(totals, 50)), "p99_ms": float(np.percentile(totals, 99))}


def no_window_error(reason: str, checkpoint: str = "C") -> OchreError:
    """The one message for every way a window can fail to open: why, and the headless command instead."""
    return OchreError(
        f"{reason}; play without a window: python -m live.play --checkpoint {checkpoint} --headless --frames 300 --out runs/play"
    )


def require_display(checkpoint: str = "C") -> None:
    if not display_available():
        raise no_window_error("no display found (DISPLAY is not set)", checkpoint)


def display_available() -> bool:
    if os.environ.get("SDL_VIDEODRIVER") in ("dummy", "offscreen"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Window:
    """A Pygame window that shows the learned world and turns keys into actions."""

    def __init__(self, session: Session, scale: int = 8, hud: bool = True):
        import pygame

        require_display()
        self.pg = pygame
        self.session = session
        self.keys, self.encode = bindings_for(session.wm.action_spec)
        pygame.init()
        h, w = session.wm.frame_shape[:2]
        try:
            self.screen = pygame.display.set_mode((w * scale, h * scale))
        except pygame.error as err:
            raise no_window_error(f"cannot open a window ({err})") from None
        pygame.display.set_caption(
            f"Ochre — {session.wm.info.get('world', 'world')} (arrows/WASD, R reset, N next seed, H hud, Esc quit)"
        )
        self.font = pygame.font.Font(None, 22)
        self.clock = pygame.time.Clock()
        self.hud = hud
        self.running = True
        self.paused = False

    def handle_events(self) -> None:
        pg = self.pg
        for event in pg.event.get():
            if event.type == pg.QUIT or (event.type == pg.KEYDOWN and event.key == pg.K_ESCAPE):
                self.running = False
            elif event.type == pg.KEYDOWN and event.key == pg.K_r:
                self.session.reset()
            elif event.type == pg.KEYDOWN and event.key == pg.K_n:
                self.session.next_seed()
            elif event.type == pg.KEYDOWN and event.key == pg.K_h:
                self.hud = not self.hud
            elif event.type == pg.KEYDOWN and event.key == pg.K_p:
                self.paused = not self.paused

    def current_input(self) -> PlayerInput:
        return read_input(self.pg.key.get_pressed(), self.keys)

    def draw(self) -> None:
        pg = self.pg
        surface = pg.surfarray.make_surface(np.ascontiguousarray(self.session.frame.swapaxes(0, 1)))
        self.screen.blit(pg.transform.scale(surface, self.screen.get_size()), (0, 0))
        if self.hud and self.session.timings:
            t = self.session.timings[-1]
            label = self.session.wm.action_spec.labels[self.session.last_action]
            text = f"{self.clock.get_fps():4.1f} fps  model {t.model_ms:4.1f} ms  decode {t.decode_ms:4.1f} ms  action {label}  step {len(self.session.timings)}"
            self.screen.blit(self.font.render(text, True, (255, 255, 255), (0, 0, 0)), (4, 4))
        pg.display.flip()

    def run(self, max_frames: int | None = None) -> None:
        self.session.reset()
        frames = 0
        while self.running and (max_frames is None or frames < max_frames):
            start = time.perf_counter()
            self.handle_events()
            if not self.paused:
                self.session.tick(self.encode(self.current_input()), start)
            self.draw()
            self.clock.tick(self.session.wm.fps)
            frames += 1
        self.pg.quit()
