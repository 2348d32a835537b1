"""Score several worlds side by side on the same held-out windows and write one table.

    python -m train.compare --data data/coinrun_heldout --world token=checkpoints/coinrun.pt \
        --world latent_gru=runs/coinrun_latent_gru/checkpoints/world.pt \
        --world flow=runs/coinrun_latent_flow/checkpoints/world.pt --flow-steps 1,2,4,8 --samples 4 \
        --baseline pixel_film=checkpoints/baselines/coinrun_pixel_film.pt --idm checkpoints/baselines/coinrun_idm.pt \
        --playtest-seeds 16 --stability-steps 1000 --out runs/compare_coinrun

Rows: copy-last, each --baseline (the pixel FiLM world), each --world, and a flow world once per
--flow-steps count ("flow@1", "flow@2", ...). Columns (`ochre.compare`): PSNR per horizon on gray 84x84
and RGB (greedy, and best of --samples sampled rollouts for token and flow worlds), delta PSNR (true vs
random actions), IDM action-following accuracy (--idm), play-test scores (--playtest-seeds 0 skips),
the stability verdicts (--stability-steps 0 skips) and live ms per frame (--bench-steps 0 skips).
Writes OUT/report.md, OUT/results.json (every number, the play tests' full reports included) and
OUT/plots/psnr_per_horizon.png; prints the table.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from ochre import WorldModel
from ochre.benchmark import machine
from ochre.cli import (
    ArgumentParser,
    input_file,
    input_path,
    known_device,
    nonneg_int,
    positive_float,
    positive_int,
    writable_dir,
)
from ochre.compare import CompareSettings, Row, check_fits, compare, copy_last_row, world_rows
from ochre.compare_report import main_table, plot_horizons, render_markdown
from ochre.data.store import EpisodeDataset
from ochre.errors import OchreError, cli_entry
from ochre.evaluation import EvalSettings
from ochre.idm import FrameIDM, check_compatible, load_idm
from ochre.io import write_json, write_text
from ochre.pixel_world import PixelWorld
from ochre.playtest.checks import find_play_checks
from ochre.playtest.programs import load_programs
from ochre.stability import Thresholds, calibrate_change, real_episodes, real_window_change
from ochre.training.logger import make_run_dir

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
PLOT = "plots/psnr_per_horizon.png"


def named_checkpoint(default: str = "") -> Callable[[str], tuple[str, str]]:
    """An argparse type: NAME=PATH (a bare PATH takes the name `default` where there is one)."""

    def parse(text: str) -> tuple[str, str]:
        name, sep, path = text.partition("=")
        if not sep and default:
            name, path = default, text
        if not sep and not default or not path:
            raise argparse.ArgumentTypeError(f"must be NAME=PATH, e.g. token=checkpoints/coinrun.pt (got {text!r})")
        if not NAME.match(name):
            raise argparse.ArgumentTypeError(f"the row name {name!r} must be letters, digits, _ . or - (got {text!r})")
        return name, input_file(path)

    return parse


def step_counts(text: str) -> tuple[int, ...]:
    """An argparse type: comma-separated sampler step counts, e.g. 1,2,4,8."""
    try:
        counts = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"must be step counts >= 1 separated by commas, e.g. 1,2,4,8 (got {text!r})")
    return tuple(dict.fromkeys(counts))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--data", type=input_path, required=True, help="held-out frame dataset folder")
    p.add_argument("--world", type=named_checkpoint(), action="append", required=True, metavar="NAME=PATH",
                   help="a world checkpoint and its row name; repeat for each world")  # fmt: skip
    p.add_argument("--baseline", type=named_checkpoint("pixel_film"), action="append", default=[], metavar="NAME=PATH",
                   help="a pixel FiLM baseline checkpoint (pixel_world.pt); a bare PATH is named pixel_film")  # fmt: skip
    p.add_argument(
        "--idm", type=input_file, default="", help="inverse-dynamics classifier (python -m train.idm) for action following"
    )
    p.add_argument("--flow-steps", type=step_counts, default=(), help="sampler steps of a flow world's rows (default: its own)")
    p.add_argument("--samples", type=positive_int, default=4, help="N sampled rollouts per window for best of N")
    p.add_argument("--temperature", type=positive_float, default=1.0, help="sampling temperature (flow: noise std)")
    p.add_argument("--context", type=positive_int, default=4, help="seed frames K")
    p.add_argument("--horizon", type=positive_int, default=32, help="predicted frames N")
    p.add_argument("--windows", type=positive_int, default=256, help="evaluation windows, the same for every row")
    p.add_argument("--batch", type=positive_int, default=32, help="windows per batch")
    p.add_argument("--seed", type=nonneg_int, default=0, help="window selection, random actions and sampling seed")
    p.add_argument("--idm-horizon", type=positive_int, default=8, help="generated frames per window scored by the IDM")
    p.add_argument("--stability-steps", type=nonneg_int, default=1000, help="open-loop steps per stability policy (0 = skip)")
    p.add_argument("--playtest-seeds", type=nonneg_int, default=16, help="real-game seeds per play-test program (0 = skip)")
    p.add_argument("--playtest-programs", default="", help="comma-separated play-test programs (default: all of the world's)")
    p.add_argument("--bench-steps", type=nonneg_int, default=200, help="timed steps per row for live ms per frame (0 = skip)")
    p.add_argument("--threads", type=nonneg_int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--device", type=known_device, default="auto", help="auto | cpu | cuda")
    p.add_argument("--out", type=writable_dir, default=None, help="output folder (default: runs/<time>_<world>_compare)")
    return p.parse_args(argv)


def load_rows(args: argparse.Namespace, data: EpisodeDataset) -> list[Row]:
    """Copy-last, the baselines, then the worlds (a flow world once per --flow-steps); each checked against --data."""
    names = [name for name, _ in [*args.baseline, *args.world]]
    for name in names:
        if names.count(name) > 1 or name == "copy_last":
            raise OchreError(f"the row name '{name}' is taken; give each --world and --baseline its own NAME")
    rows = [copy_last_row(data)]
    for name, path in args.baseline:
        rows.append(Row(name, "baseline", _load(PixelWorld.load, "--baseline", name, path, args.device), source=path))
    for name, path in args.world:
        rows += world_rows(name, _load(WorldModel.load, "--world", name, path, args.device), path, args.flow_steps)
    for row in rows[1:]:
        flag = "--baseline" if row.kind == "baseline" else "--world"
        check_fits(row, data, args.context, f"{flag} {row.name}")
    return rows


def _load(loader: Callable, flag: str, name: str, path: str, device: str):
    what = "a pixel FiLM checkpoint (pixel_world.pt)" if flag == "--baseline" else "a world checkpoint (checkpoints/world.pt)"
    try:
        return loader(path, device=device)
    except OchreError as err:
        raise OchreError(f"{flag} {name}={path}: {err}; give NAME=PATH of {what}") from None


def load_checked_idm(path: str, rows: list[Row], device: str) -> FrameIDM:
    """--idm, once known to read every row's frames and actions (checked before any scoring)."""
    idm = _load(lambda p, device: load_idm(p, device)[0], "--idm", "idm", path, "cpu" if device == "auto" else device)
    try:
        for row in rows:
            check_compatible(idm, row.predictor)  # type: ignore[arg-type]  # any row has frame_shape and action_spec
    except OchreError as err:
        raise OchreError(f"--idm {path}: {err}; give the IDM trained on this data (python -m train.idm)") from None
    return idm


def check_playtest_programs(args: argparse.Namespace, rows: list[Row]) -> tuple[str, ...]:
    """--playtest-programs, each known to every world that registers its programs (checked before any scoring)."""
    names = tuple(p.strip() for p in args.playtest_programs.split(",") if p.strip())
    for row in rows:
        checks = find_play_checks(str(row.world.info.get("world", "")), row.world.action_spec) if row.world else None
        folder = getattr(checks, "programs", None)
        missing = [n for n in names if folder is not None and n not in load_programs(folder)]
        if missing:
            raise OchreError(f"--playtest-programs: {', '.join(missing)} not found for --world {row.name}")
    return names


def stability_thresholds(data: EpisodeDataset) -> Thresholds:
    """The collapse floors, the frozen one scaled to how much the held-out data's pictures move (as train.evaluate)."""
    return calibrate_change(Thresholds(), real_window_change(real_episodes(data)))


def command_line(argv: list[str] | None) -> str:
    return "python -m train.compare " + shlex.join(sys.argv[1:] if argv is None else argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = EpisodeDataset(args.data, expect_kind="frames")
    rows = load_rows(args, data)
    idm = load_checked_idm(args.idm, rows, args.device) if args.idm else None
    programs = check_playtest_programs(args, rows) if args.playtest_seeds else ()
    worlds = [r.world for r in rows if r.world is not None]
    world = str(worlds[0].info.get("world", "world")) if worlds else "world"
    out = Path(args.out) if args.out else make_run_dir("runs", world, "compare")
    settings = CompareSettings(
        eval=EvalSettings(args.context, args.horizon, args.windows, args.batch, args.seed),
        samples=args.samples,
        temperature=args.temperature,
        idm_horizon=args.idm_horizon,
        stability_steps=args.stability_steps,
        playtest_seeds=args.playtest_seeds,
        playtest_programs=programs,
        bench_steps=args.bench_steps,
    )
    thresholds = stability_thresholds(data) if args.stability_steps else Thresholds()
    sources = dict([*args.baseline, *args.world]) | ({"idm": args.idm} if args.idm else {})
    meta = {"world": world, "data": args.data, "command": command_line(argv), "sources": sources}
    meta["machine"] = machine(worlds[0].device if worlds else "cpu")
    comparison = compare(rows, data, settings, idm, thresholds, meta)
    plot_horizons(out / PLOT, comparison)
    write_json(out / "results.json", comparison.to_json() | {"files": {"plot": PLOT}})
    write_text(out / "report.md", render_markdown(comparison) + f"\n![PSNR per horizon]({PLOT})\n")
    print("\n".join(main_table(comparison)))
    print(f"wrote {out}/report.md, results.json, {PLOT}")


if __name__ == "__main__":
    main()
