"""Play a learned world with keyboard and mouse, in a window or headless.

    python -m live.play --checkpoint checkpoints/coinrun.pt
    python -m live.play --checkpoint checkpoints/coinrun.pt --ghost              # the real game beside it
    python -m live.play --checkpoint checkpoints/coinrun.pt --headless --frames 300 --policy random --out runs/play
    python -m live.play --checkpoint checkpoints/coinrun.pt --headless --policy script assets/coinrun/actions.json

Procgen and Atari worlds: arrows or WASD move (space jumps / fires). First-person
worlds: WASD move, the mouse looks (click to capture it, Esc releases it), space
jumps, left click attacks, Ctrl sprints, Shift sneaks. Other worlds (gym:<id>) get
keys derived from their actions: arrows/WASD for directions, space for fire, number
keys for the rest, printed at start; --keys FILE rebinds them (see live/keymap.py).
F1 shows every key.
Without --seed-frames the world starts from the seed contexts its checkpoint carries
(N takes the next one, R restarts it); a checkpoint without them falls back to
assets/<world>/seed.npz.
Headless mode writes DIR/play.mp4, DIR/timings.csv and DIR/seed.npz + actions.npy
(replay them with inference.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ochre.cli import (
    ArgumentParser,
    add_flow_arguments,
    input_file,
    input_path,
    known_device,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    writable_dir,
)
from ochre.config import parse_overrides
from ochre.errors import cli_entry

if TYPE_CHECKING:
    from live.controller import PlayController


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=input_file, default="checkpoints/coinrun.pt", help="world checkpoint")
    p.add_argument(
        "--seed-frames",
        type=input_path,
        default=None,
        help="seed .npz / .mp4 / PNG folder (default: the checkpoint's own seed contexts; --ghost seeds from the game)",
    )
    p.add_argument("--device", type=known_device, default="auto", help="auto | cpu | cuda")
    p.add_argument("--sampling", choices=["greedy", "sample"], default="greedy", help="token sampling (G toggles)")
    p.add_argument("--temperature", type=positive_float, default=1.0, help="sampling temperature (+/- change it)")
    p.add_argument("--top-k", type=positive_int, default=None, help="sample only from the k most likely codes (default: all)")
    add_flow_arguments(p)
    p.add_argument("--threads", type=nonneg_int, default=0, help="torch CPU threads for the model (0: all cores but one)")
    p.add_argument("--rewind-seconds", type=nonneg_float, default=10.0, help="how far back Backspace can rewind")
    w = p.add_argument_group("window")
    w.add_argument("--scale", type=positive_int, default=8, help="window pixels per frame pixel")
    w.add_argument("--smooth", action="store_true", help="smooth upscaling instead of whole pixels")
    w.add_argument("--no-hud", action="store_true", help="start with the HUD hidden (H toggles it)")
    w.add_argument("--fps", type=positive_float, default=None, help="display rate (default: the world's)")
    w.add_argument("--sensitivity", type=positive_float, default=0.15, help="mouse look: degrees per pixel of mouse motion")
    w.add_argument("--invert-mouse", action="store_true", help="moving the mouse up looks down")
    w.add_argument("--record", action="store_true", help="start recording at once (F9 toggles)")
    w.add_argument("--record-dir", type=writable_dir, default="runs/live", help="where recordings and screenshots go")
    w.add_argument(
        "--keys", type=input_file, default=None, metavar="FILE", help="YAML of key name -> action, over the default keys"
    )
    g = p.add_argument_group("ghost mode")
    g.add_argument("--ghost", action="store_true", help="run the real game beside the learned world, same input")
    g.add_argument("--world", default=None, help="the real game for --ghost (default: the checkpoint's world)")
    g.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="real game setting (repeatable), over those the world's data was drawn with",
    )
    g.add_argument(
        "--context", type=positive_int, default=4, help="real frames the world is seeded with (--seed-frames is not used)"
    )
    h = p.add_argument_group("headless")
    h.add_argument("--headless", action="store_true", help="no window: a policy plays; writes play.mp4 + timings.csv")
    h.add_argument("--frames", type=positive_int, default=300, help="frames to play headless")
    h.add_argument("--policy", nargs="+", default=["random"], metavar="random|script FILE", help="who plays headless")
    h.add_argument("--out", type=writable_dir, default="runs/play", help="output folder for headless mode")
    h.add_argument("--seed", type=nonneg_int, default=0, help="seed for the random policy and the real game")
    return p.parse_args(argv)


def headless_command(args: argparse.Namespace) -> str:
    return f"python -m live.play --checkpoint {args.checkpoint} --headless --frames 300 --out runs/play"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from live.window import require_display

    if not args.headless:
        require_display(headless_command(args))
    from live.app import ghost_session, load_world, open_session, set_threads
    from live.bindings import window_bindings
    from live.controller import PlayController
    from live.ghost import Ghost
    from live.headless import make_policy, run_headless

    set_threads(args.threads)
    wm = load_world(args.checkpoint, args.device, args.sampling, args.temperature, args.top_k)
    if note := wm.set_flow_sampling(args.flow_steps, args.guidance):
        print(note)
    policy = make_policy(args.policy, wm.action_spec, args.seed) if args.headless else None
    keys = window_bindings(wm.action_spec, args.keys) if args.keys or not args.headless else None  # checked headless too
    bindings = None if args.headless else keys
    ghost = None
    if args.ghost:  # the real game seeds the world: no seed file needed
        world = args.world or wm.info.get("world", "")
        ghost = Ghost.open(world, parse_overrides(args.env), wm, context=args.context, seed=args.seed)
        session = ghost_session(wm, ghost, args.rewind_seconds)
    else:
        session = open_session(wm, args.seed_frames, args.rewind_seconds)
    controller = PlayController(session, bindings, ghost, args.checkpoint, Path(args.record_dir))
    if args.headless:
        stats = run_headless(controller, args.frames, policy, Path(args.out))
        print(f"wrote {args.out}/play.mp4 and timings.csv: frame time p50 {stats['p50']:.1f} ms, p99 {stats['p99']:.1f} ms")
        return
    play_window(controller, args)


def play_window(controller: PlayController, args: argparse.Namespace) -> None:
    from live.tracker import MouseSettings
    from live.window import Window, WindowSettings

    settings = WindowSettings(
        scale=args.scale,
        smooth=args.smooth,
        hud=not args.no_hud,
        fps=args.fps,
        mouse=MouseSettings(args.sensitivity, args.invert_mouse),
        screenshots=Path(args.record_dir) / "screenshots",
    )
    try:
        window = Window(controller, settings, headless_command(args))
    except BaseException:
        controller.close()
        raise
    if args.record:
        controller.command("record")
    window.run()


if __name__ == "__main__":
    main()
