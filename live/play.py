"""Play a learned world.

    python -m live.play --checkpoint checkpoints/coinrun.pt
    python -m live.play --checkpoint checkpoints/coinrun.pt --headless --frames 300 --out runs/play

Keys (Procgen worlds): arrows or WASD to move, up/W/space to jump; R reset, N next
seed, H toggle the HUD, P pause, Esc quit. Headless mode drives the world with
random actions and writes DIR/play.mp4 and DIR/timings.csv.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ochre import WorldModel
from ochre.errors import OchreError, cli_entry
from ochre.inputs import load_seed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="checkpoints/coinrun.pt", help="world checkpoint")
    p.add_argument("--seed-frames", default=None, help="seed .npz (default: assets/<world>/seed.npz)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--scale", type=int, default=8, help="window pixels per frame pixel")
    p.add_argument("--headless", action="store_true", help="no window: random actions, write play.mp4 + timings.csv")
    p.add_argument("--frames", type=int, default=300, help="frames to play in headless mode")
    p.add_argument("--out", default="runs/play", help="output folder for headless mode")
    p.add_argument("--seed", type=int, default=0, help="random seed for headless actions")
    p.add_argument("--sampling", choices=["greedy", "sample"], default="greedy", help="token sampling")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    return p.parse_args(argv)


def load_seeds(path: str, wm: WorldModel) -> tuple[np.ndarray, np.ndarray]:
    """-> seeds (S, K, H, W, 3) and seed actions (S, K-1)."""
    frames, actions = load_seed(path)
    frames = frames if frames.ndim == 5 else frames[None]
    if tuple(frames.shape[2:]) != wm.frame_shape:
        raise OchreError(f"{path}: seed frames are {tuple(frames.shape[2:])} but this world needs {wm.frame_shape}")
    if actions is None:
        actions = wm.action_spec.neutral((frames.shape[0], frames.shape[1] - 1))
    actions = wm.action_spec.validate(actions, path).reshape(frames.shape[0], frames.shape[1] - 1)
    return frames, actions


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.headless:
        from live.app import require_display

        require_display(args.checkpoint)
    from live.app import Session, Window, run_headless

    wm = WorldModel.load(args.checkpoint, device=args.device)
    wm.sampling, wm.temperature = args.sampling, args.temperature
    seed_path = args.seed_frames or f"assets/{wm.info.get('world', 'coinrun')}/seed.npz"
    seeds, seed_actions = load_seeds(seed_path, wm)
    session = Session(wm, seeds, seed_actions)
    if args.headless:
        stats = run_headless(session, args.frames, Path(args.out), args.seed)
        print(f"wrote {args.out}/play.mp4 and timings.csv: frame time p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms")
        return
    Window(session, scale=args.scale).run()


if __name__ == "__main__":
    main()
