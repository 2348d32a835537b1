"""Real-time benchmark of the live app: model step + decode time and input-to-display latency.

    python -m live.bench --checkpoint checkpoints/coinrun.pt --out runs/bench_live.json
    python -m live.bench --checkpoint checkpoints/coinrun.pt --device cuda --fps 60 --frames 1200

Plays the real window loop (SDL's dummy video driver unless --visible) paced at
--fps, fed with scripted random key and mouse events, so events, the inference
thread, upscaling and drawing all run as they do for a player. Reports p50/p99 of
model step + decode per frame, latency in display frames (input read on frame i,
first shown on frame j: j - i) and the display rate reached; prints a markdown row
for the README table and writes the figures to --out as JSON.

Targets: step + decode p50 <= 16 ms (60 fps) and p99 <= 33 ms; latency <= 2 frames.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pygame

from live.bindings import Bindings
from live.controller import PlayController
from live.timing import percentiles
from live.window import Window, WindowSettings
from ochre.benchmark import machine
from ochre.cli import (
    ArgumentParser,
    add_flow_arguments,
    input_file,
    input_path,
    known_device,
    nonneg_int,
    positive_float,
    positive_int,
    writable_file,
)
from ochre.errors import cli_entry
from ochre.io import write_json

TARGETS = {"step_p50_ms": 16.0, "step_p99_ms": 33.0, "latency_frames": 2}


class ScriptedPlayer:
    """Random key presses and mouse motion, posted as real pygame events once per frame."""

    def __init__(self, bindings: Bindings, seed: int = 0, change_every: int = 4):
        self.keys = sorted(set(bindings.keys))
        self.mouse_look = bindings.mouse_look
        self.rng = np.random.default_rng(seed)
        self.change_every = change_every  # frames a key combination is held, like a player would
        self.held: set[int] = set()

    def post(self, frame: int) -> None:
        if frame % self.change_every == 0:
            wanted = {k for k in self.keys if self.rng.random() < 0.25}
            for key in self.held - wanted:
                pygame.event.post(pygame.event.Event(pygame.KEYUP, key=key))
            for key in wanted - self.held:
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key))
            self.held = wanted
        if self.mouse_look:
            rel = tuple(int(v) for v in self.rng.integers(-40, 41, size=2))
            pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, rel=rel, pos=(0, 0), buttons=(0, 0, 0)))


class ScriptedWindow(Window):
    """The app's window with a scripted player at the keyboard."""

    def __init__(self, controller: PlayController, settings: WindowSettings, player: ScriptedPlayer):
        super().__init__(controller, settings)
        self.player = player

    def handle_events(self) -> None:
        self.player.post(self.frame)
        super().handle_events()


def summarise(controller: PlayController, fps: float, wall_s: float, frames: int) -> dict[str, Any]:
    steps = [t.model_ms + t.decode_ms for t in controller.timings if t.model_ms > 0]
    step = percentiles(steps)
    latency_frames = [lat.frames for lat in controller.latencies]
    latency = percentiles(latency_frames)
    return {
        "step_decode_ms": step,
        "model_ms_p50": percentiles([t.model_ms for t in controller.timings if t.model_ms > 0])["p50"],
        "decode_ms_p50": percentiles([t.decode_ms for t in controller.timings if t.model_ms > 0])["p50"],
        "latency_frames": latency,
        "latency_ms": percentiles([lat.ms for lat in controller.latencies]),
        "frames_within_2": float(np.mean(np.asarray(latency_frames) <= 2)) if latency_frames else 0.0,
        "display_fps": frames / wall_s,
        "target_fps": fps,
        "steps": len(steps),
        "frames": frames,
        "meets_targets": bool(
            step["p50"] <= TARGETS["step_p50_ms"]
            and step["p99"] <= TARGETS["step_p99_ms"]
            and latency["max"] <= TARGETS["latency_frames"]
        ),
    }


def markdown_row(result: dict[str, Any]) -> str:
    m, s, lat = result["machine"], result["step_decode_ms"], result["latency_frames"]
    where = m.get("gpu") or f"CPU, {m['cpu_count']} cores"
    return (
        f"| {where} | {result['world']} {result['frame_shape'][1]}x{result['frame_shape'][0]} | {s['p50']:.1f} ms | "
        f"{s['p99']:.1f} ms | {lat['p50']:.0f} / {lat['max']:.0f} | {result['display_fps']:.1f} of {result['target_fps']:g} |"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=input_file, default="checkpoints/coinrun.pt", help="world checkpoint")
    p.add_argument("--seed-frames", type=input_path, default=None, help="seed frames (default: the checkpoint's seed contexts)")
    p.add_argument("--device", type=known_device, default="auto", help="auto | cpu | cuda")
    p.add_argument("--frames", type=positive_int, default=600, help="display frames to play")
    p.add_argument("--fps", type=positive_float, default=60.0, help="display rate to hold (the 60 fps target by default)")
    p.add_argument("--warmup", type=nonneg_int, default=20, help="untimed model steps first")
    p.add_argument("--threads", type=nonneg_int, default=0, help="torch CPU threads for the model (0: all cores but one)")
    add_flow_arguments(p)
    p.add_argument("--visible", action="store_true", help="open a real window instead of SDL's dummy driver")
    p.add_argument("--out", type=writable_file, default="runs/bench_live.json", help="JSON file for the figures")
    return p.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.visible:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    from live.app import load_world, open_session, set_threads
    from live.bindings import bindings_for

    set_threads(args.threads)

    wm = load_world(args.checkpoint, args.device)
    if note := wm.set_flow_sampling(args.flow_steps, args.guidance):
        print(note)
    session = open_session(wm, args.seed_frames)
    bindings = bindings_for(wm.action_spec)
    session.reset()
    for _ in range(args.warmup):
        session.step(wm.action_spec.neutral())
    controller = PlayController(session, bindings, checkpoint=args.checkpoint)
    window = ScriptedWindow(controller, WindowSettings(fps=args.fps, scale=8), ScriptedPlayer(bindings))
    start = time.perf_counter()
    window.run(max_frames=args.frames)
    result = summarise(controller, args.fps, time.perf_counter() - start, args.frames)
    result |= {
        "checkpoint": args.checkpoint,
        "world": wm.info.get("world", "?"),
        "world_fps": wm.fps,
        "frame_shape": list(wm.frame_shape),
        "machine": machine(wm.device),
    }
    write_json(Path(args.out), result)
    s, lat = result["step_decode_ms"], result["latency_frames"]
    print(
        f"step+decode p50 {s['p50']:.1f} ms, p99 {s['p99']:.1f} ms; latency p50 {lat['p50']:.0f}, max {lat['max']:.0f} "
        f"frames at {args.fps:g} fps; {'meets' if result['meets_targets'] else 'MISSES'} the targets -> {args.out}"
    )
    print("| where | world | step+decode p50 | p99 | latency frames p50 / max | display fps |")
    print("|---|---|---|---|---|---|")
    print(markdown_row(result))


if __name__ == "__main__":
    main()
