"""Play the real game with the app's bindings and write what you play as a dataset.

    python -m live.record --world coinrun --out data/human_coinrun
    python -m live.record --world doom --out data/human_doom --episodes 5
    python -m live.record --world coinrun --out data/scripted --headless --frames 500 --policy script moves.json

The dataset has the format of `preprocess.generate` (manifest + shards; frame t,
action t taken on it), so `python -m preprocess.inspect DIR`, the tokenizer and the
dynamics trainer read it as they read generated data. Recording into an existing
dataset of the same world adds episodes to it. R ends the episode (kept) and
starts a new one, X throws the current episode away, Esc quits and saves.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pygame

from live.bindings import Bindings, describe_action, window_bindings
from live.headless import Policy, make_policy
from live.timing import FrameTiming
from ochre.cli import ArgumentParser, input_file, nonneg_int, positive_float, positive_int, writable_dir
from ochre.config import parse_overrides
from ochre.data.store import MANIFEST, DatasetWriter, read_manifest
from ochre.envs.base import Env
from ochre.envs.worlds import WORLDS_HELP, make_env, world_kind, world_settings
from ochre.errors import OchreError, cli_entry

RECORD_KEYS: dict[int, str] = {pygame.K_r: "restart", pygame.K_x: "discard"}
RECORD_HELP = ["R: end this episode (kept) and start a new one", "X: throw this episode away and start a new one"]
MIN_EPISODE = 2  # frames; shorter episodes teach nothing and are dropped


class RecordController:
    """The real game in the window; every step goes into the dataset."""

    def __init__(
        self, env: Env, writer: DatasetWriter, bindings: Bindings | None, world: str, seed: int = 0, max_episodes: int = 0
    ):
        self.env = env
        self.writer = writer
        self.bindings = bindings
        self.seed = seed
        self.max_episodes = max_episodes  # 0: until the player quits
        self.saved = 0  # episodes this session added to the dataset
        self.spec = env.action_spec
        self.fps = env.fps
        self.frame_shape = tuple(env.frame_shape)
        self.title = f"Ochre — recording {world} into {writer.root}"
        self.panel_names = ("real game",)
        self.commands = RECORD_KEYS
        self.timings: list[FrameTiming] = []
        self.messages: list[str] = []
        self.frame: np.ndarray | None = None
        self.action: np.ndarray | None = None
        self._frames: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []
        self.score = 0.0

    @property
    def finished(self) -> bool:
        return bool(self.max_episodes) and self.saved >= self.max_episodes

    def start(self) -> None:
        self.frame = self.env.reset(seed=self.seed)

    def tick(
        self, frame: int, next_action: Callable[[], np.ndarray], rewind: bool = False, deadline: float | None = None
    ) -> None:
        self.action = next_action()
        self._frames.append(self.frame)
        self._actions.append(self.action)
        self.frame, reward, done = self.env.step(self.action)
        self.score += reward
        if done:
            self._end_episode(keep=True)
            self.frame = self.env.reset()

    def command(self, name: str) -> None:
        self._end_episode(keep=name == "restart")
        self.seed += 1
        self.frame = self.env.reset(seed=self.seed)

    def record_frame(self, frame: int, total_ms: float) -> None:
        self.timings.append(FrameTiming(frame, 0.0, 0.0, total_ms))

    def panels(self) -> list[tuple[str, np.ndarray]]:
        return [("real game", self.frame)]

    def hud_lines(self, fps: float) -> list[str]:
        action = "-" if self.action is None else describe_action(self.spec, self.action)
        return [
            f"{fps:4.1f} fps   REC episode {self.saved + 1}: {len(self._frames)} frames, score {self.score:g}",
            f"action {action}",
            f"dataset: {self.writer.num_frames + len(self._frames)} frames",
        ]

    def help_lines(self) -> list[str]:
        return (self.bindings.help_lines() if self.bindings else []) + RECORD_HELP

    def pop_message(self) -> str | None:
        return self.messages.pop(0) if self.messages else None

    def close(self) -> dict[str, Any]:
        """Keep the episode in progress, write the manifest, close the game."""
        try:
            self._end_episode(keep=True)
            return self.writer.close()
        finally:
            self.env.close()

    def _end_episode(self, keep: bool) -> None:
        n = len(self._frames)
        if keep and n >= MIN_EPISODE:
            self.writer.add_episode(np.stack(self._frames), np.stack(self._actions))
            self.saved += 1
            self.messages.append(f"episode saved ({n} frames, score {self.score:g})")
        elif n:
            self.messages.append(f"episode dropped ({n} frames)")
        self._frames, self._actions, self.score = [], [], 0.0


def open_writer(out: Path, world: str, env: Env, settings: Any) -> DatasetWriter:
    """A writer for a new dataset, or one that appends to an existing dataset of the same world."""
    meta = {
        "world": world,
        "action_schema": env.action_spec.to_dict(),
        "frame_shape": list(env.frame_shape),
        "fps": env.fps,
        "source": {"env": world_kind(world), "settings": dataclasses.asdict(settings), "recorder": "live.record (human play)"},
    }
    writer = DatasetWriter(out, "frames", meta)
    if (out / MANIFEST).is_file():
        old = read_manifest(out)
        if old.get("world") != world or old["action_schema"] != meta["action_schema"] or old["kind"] != "frames":
            raise OchreError(f"{out}: holds a dataset of '{old.get('world')}'; record {world} into another --out")
        writer.resume()
        print(f"adding to {out}: {old['num_episodes']} episodes, {old['num_frames']} frames so far")
    return writer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--world", required=True, help=f"the game to play: {WORLDS_HELP}")
    p.add_argument("--out", type=writable_dir, required=True, help="dataset folder (new, or one of the same world to add to)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="world setting (repeatable)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the first episode (each new one adds 1)")
    p.add_argument("--episodes", type=nonneg_int, default=0, help="stop after this many episodes (0: when you quit)")
    p.add_argument("--scale", type=positive_int, default=8, help="window pixels per frame pixel")
    p.add_argument("--smooth", action="store_true", help="smooth upscaling instead of whole pixels")
    p.add_argument("--fps", type=positive_float, default=None, help="game speed (default: the world's)")
    p.add_argument("--sensitivity", type=positive_float, default=0.15, help="mouse look: degrees per pixel of mouse motion")
    p.add_argument("--invert-mouse", action="store_true", help="moving the mouse up looks down")
    p.add_argument(
        "--keys", type=input_file, default=None, metavar="FILE", help="YAML of key name -> action, over the default keys"
    )
    p.add_argument("--headless", action="store_true", help="no window: a policy plays (for tests and scripted data)")
    p.add_argument("--frames", type=positive_int, default=300, help="frames to play headless")
    p.add_argument("--policy", nargs="+", default=["random"], metavar="random|script FILE", help="who plays headless")
    return p.parse_args(argv)


def headless_command(args: argparse.Namespace) -> str:
    return f"python -m live.record --world {args.world} --out {args.out} --headless --frames 300 --policy script FILE"


def run_headless(controller: RecordController, frames: int, policy: Policy) -> None:
    controller.start()
    try:
        for i in range(min(frames, policy.length or frames)):
            if controller.finished:
                break
            start = time.perf_counter()
            controller.tick(i, policy.act)
            controller.record_frame(i, (time.perf_counter() - start) * 1e3)
    finally:
        controller.close()


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from live.window import require_display

    if not args.headless:
        require_display(headless_command(args))
    settings = world_settings(args.world, parse_overrides(args.env))
    env = make_env(args.world, settings, args.seed)
    try:
        bindings = None if args.headless else window_bindings(env.action_spec, args.keys)
        writer = open_writer(Path(args.out), args.world, env, settings)
    except BaseException:
        env.close()
        raise
    controller = RecordController(env, writer, bindings, args.world, args.seed, args.episodes)
    if args.headless:
        run_headless(controller, args.frames, make_policy(args.policy, env.action_spec, args.seed))
    else:
        play_window(controller, args)
    manifest = read_manifest(args.out)
    print(
        f"{args.out}: {manifest['num_episodes']} episodes, {manifest['num_frames']} frames; see them: python -m preprocess.inspect {args.out}"
    )


def play_window(controller: RecordController, args: argparse.Namespace) -> None:
    from live.tracker import MouseSettings
    from live.window import Window, WindowSettings

    settings = WindowSettings(
        scale=args.scale, smooth=args.smooth, fps=args.fps, mouse=MouseSettings(args.sensitivity, args.invert_mouse)
    )
    try:
        window = Window(controller, settings, headless_command(args))
    except BaseException:
        controller.close()
        raise
    window.run()


if __name__ == "__main__":
    main()
