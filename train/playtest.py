"""Play tests: play a world the way a person does, beside the real game, and score what a player notices.

    python -m train.playtest --checkpoint checkpoints/coinrun.pt
    python -m train.playtest --checkpoint checkpoints/doom.pt --seeds 16 --programs walk_forward,turn_left

Every input program of the world (assets/<world>/programs/*.json: hold right, run and
jump, walk forward, turn, follow the ball, held random keys, ...) is played in the real
game from fresh held-out seeds and, with the same actions, in the learned world, greedy
and sampled. The scores (ochre/playtest/suite.py): avatar presence and position, view
motion sign and size, liveliness, detail, and PSNR beside copy-last and the tokenizer's
ceiling. Writes OUT/playtest.json, OUT/playtest.md and one side-by-side video per program
and sampling (real | world, the four seeds whose real episodes last longest) to OUT/videos/.

A world with no programs registered (your own `gym:<id>` game) plays the generic set
derived from its action schema (ochre/playtest/generic.py: stand, each action held,
sticky_random); the report says so, and OUT/programs/ holds those programs as JSON files
to edit and play again with --program-dir.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ochre.cli import (
    ArgumentParser,
    folder_problem,
    input_file,
    input_path,
    known_device,
    nonneg_int,
    positive_float,
    positive_int,
    writable_dir,
    writable_file,
)
from ochre.errors import OchreError, cli_entry
from ochre.io import write_gif, write_json, write_text
from ochre.playtest.checks import PlaytestPlan, playtest_plan
from ochre.playtest.generic import write_programs
from ochre.playtest.report import playtest_markdown
from ochre.playtest.suite import PlaytestSettings, run_playtests
from ochre.runtime import WorldModel

GIF_STEPS = 120


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=input_file, required=True, help="world checkpoint")
    p.add_argument("--seeds", type=positive_int, default=64, help="held-out real-game seeds per program")
    p.add_argument(
        "--programs", default="", help="comma-separated program names (default: all of the world's, else the generic set)"
    )
    p.add_argument(
        "--program-dir", type=input_path, help="folder of program files (default: the world's, from ochre/playtest/checks.py)"
    )
    p.add_argument("--sampling", default="greedy,sample", help="comma-separated: greedy, sample")
    p.add_argument("--temperature", type=positive_float, default=1.0, help="sampling temperature")
    p.add_argument("--top-k", type=nonneg_int, default=0, help="sample among the k likeliest codes (0 = all)")
    p.add_argument("--context", type=positive_int, default=4, help="seed frames K from the real game")
    p.add_argument("--out", type=writable_dir, help="output folder (default: runs/playtest_<checkpoint name>)")
    p.add_argument("--no-videos", action="store_true", help="skip the side-by-side videos")
    p.add_argument("--gif", type=writable_file, help="also write this GIF: real | world for two seeds of --gif-program")
    p.add_argument("--gif-program", default="", help="program_mode shown in --gif, e.g. run_and_jump_greedy")
    p.add_argument("--device", type=known_device, default="auto", help="auto | cpu | cuda")
    return p.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> PlaytestSettings:
    modes = tuple(m.strip() for m in args.sampling.split(",") if m.strip())
    if not modes or set(modes) - {"greedy", "sample"}:
        raise OchreError(f"--sampling must list greedy and/or sample, got {args.sampling!r}")
    programs = tuple(p.strip() for p in args.programs.split(",") if p.strip())
    return PlaytestSettings(args.seeds, modes, args.temperature, args.top_k, args.context, programs)


def check_gif(args: argparse.Namespace, settings: PlaytestSettings, plan: PlaytestPlan) -> None:
    """--gif needs a --gif-program that this run plays (checked before the play tests run)."""
    if not args.gif:
        return
    programs = settings.programs or tuple(plan.programs)
    played = [f"{p}_{m}" for p in programs for m in settings.modes]
    if args.gif_program not in played:
        raise OchreError(f"--gif-program {args.gif_program!r} is not played by this run (choose one of: {', '.join(played)})")


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = settings_from_args(args)
    out = Path(args.out or f"runs/playtest_{Path(args.checkpoint).stem}")
    problem = folder_problem(out)
    if problem:
        raise OchreError(f"--out: {problem}; give a folder that can be written with --out")
    wm = WorldModel.load(args.checkpoint, device=args.device)
    plan = playtest_plan(str(wm.info.get("world", "")), wm.action_spec, args.program_dir)
    check_gif(args, settings, plan)
    if plan.source == "generic":
        print(f"no play tests are registered for world '{wm.info.get('world', '')}': the generic set, {plan.origin}")
    t0 = time.time()
    clips: dict[str, np.ndarray] = {}
    report = run_playtests(wm, settings, plan, None if args.no_videos else out / "videos", clips)
    report["meta"] |= {"checkpoint": str(args.checkpoint), "wall_s": round(time.time() - t0, 1)}
    write_json(out / "playtest.json", report)
    text = playtest_markdown(report)
    write_text(out / "playtest.md", text)
    if plan.source == "generic":  # a starting point for the world's own programs
        write_programs(out / "programs", {name: plan.programs[name] for name in report["meta"]["programs"]["played"]})
    print(text)
    if args.gif:
        if args.gif_program not in clips:
            raise OchreError(f"--gif-program {args.gif_program!r} was not played (played: {', '.join(clips)})")
        clip = clips[args.gif_program]
        clip = clip[:GIF_STEPS, : 2 * wm.frame_shape[0]]  # two seeds, at most GIF_STEPS frames (the README's size)
        write_gif(args.gif, clip, fps=wm.fps)
        print(f"wrote {args.gif}")
    extra = ("" if args.no_videos else ", videos/") + (", programs/" if plan.source == "generic" else "")
    print(f"wrote {out}/playtest.json, playtest.md{extra}")


if __name__ == "__main__":
    main()
