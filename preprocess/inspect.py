"""Describe a dataset: sizes, episode lengths, how often each control is used and with what.

Shows at a glance whether the data teaches every control (for first-person data:
does the camera ever turn while a movement key is held?). Prints the summary and
writes actions.png, cooccurrence.png, episode_lengths.png, samples.png (frame
datasets only) and stats.json to --out.

python -m preprocess.inspect data/coinrun_train
python -m preprocess.inspect data/coinrun_train_tokens --out plots/tokens
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ochre.cli import ArgumentParser, folder_problem, input_path, nonneg_int, positive_int, writable_dir
from ochre.data.inspect import dataset_stats, format_report, plot_actions, plot_cooccurrence, plot_episode_lengths, sample_grid
from ochre.data.play_stats import format_play_stats, hold_lengths, view_travel
from ochre.data.store import EpisodeDataset
from ochre.errors import OchreError, cli_entry
from ochre.io import write_json, write_png


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("data", type=input_path, help="dataset folder (holds manifest.json)")
    p.add_argument("--out", type=writable_dir, default=None, help="folder for the plots and stats.json (default: DATA/inspect)")
    p.add_argument("--samples", type=positive_int, default=16, help="random episodes shown in samples.png")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed for choosing the sample episodes")
    p.add_argument("--travel-episodes", type=nonneg_int, default=32, help="episodes whose view travel is measured (0 = skip)")
    return p.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    data = EpisodeDataset(args.data)
    out = Path(args.out) if args.out else data.path / "inspect"
    problem = folder_problem(out)
    if problem:
        raise OchreError(f"--out: {problem}; give a folder that can be written with --out")
    stats = dataset_stats(data)
    print(format_report(stats))
    holds = hold_lengths(data)
    travel = view_travel(data, args.travel_episodes, args.seed) if data.kind == "frames" and args.travel_episodes else None
    print(format_play_stats(holds, travel))
    plot_actions(stats, out / "actions.png")
    plot_cooccurrence(stats, out / "cooccurrence.png")
    plot_episode_lengths(stats, out / "episode_lengths.png")
    written = ["actions.png", "cooccurrence.png", "episode_lengths.png"]
    summary = stats.to_dict()
    summary["holds"] = holds.to_dict()
    if travel is not None:
        summary["view_travel"] = travel.to_dict()
    if data.kind == "frames":
        grid, summary["samples"] = sample_grid(data, args.samples, seed=args.seed)
        write_png(out / "samples.png", grid)
        written.append("samples.png")
    else:
        print(f"no samples.png: this is a '{data.kind}' dataset (no frames to show)")
    write_json(out / "stats.json", summary)
    print(f"wrote {', '.join(written)}, stats.json to {out}")


if __name__ == "__main__":
    main()
