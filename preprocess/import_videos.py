"""Import recorded first-person gameplay (MineRL or GameFactory) into a frame dataset.

python -m preprocess.import_videos --format minerl data/raw/minerl --out data/minerl_train
python -m preprocess.import_videos --format gamefactory data/raw/gamefactory --out data/gf --fps 8 --size 64x64
python -m preprocess.import_videos --format minerl data/raw/minerl --out data/minerl --drop-seconds 2 --strict

Every recording becomes one episode, resampled to --fps and resized to --size, with
actions in the first-person schema (camera bins + buttons). Recordings with bad input
are skipped with one warning line `path: field: problem` and listed at the end;
--strict fails instead and writes nothing. The input formats are defined in
ochre/data/importers.py:

  minerl       SRC/**/<recording>/recording.mp4 + metadata.json (duration_ms,
               duration_steps) + rendered.npz (action$camera [pitch, yaw] degrees,
               pitch > 0 looks down; action$forward ... action$sneak 0/1 per step)
  gamefactory  SRC/video/<name>.mp4 + SRC/metadata/<name>.json with
               {"actions": {"0": {"ws", "ad", "scs", "yaw_delta", "pitch_delta"}, ...}},
               one entry per video frame
"""

from __future__ import annotations

import argparse

from ochre.cli import ArgumentParser, input_path, nonneg_float, positive_float, positive_int, writable_dir
from ochre.data.importers import FORMATS, ImportSettings, import_recordings
from ochre.errors import cli_entry


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like HxW (e.g. 64x64), got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"size must be at least 1x1 pixels, got {text!r}")
    return h, w


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("src", metavar="SRC", type=input_path, help="folder holding the recordings")
    p.add_argument("--format", required=True, choices=sorted(FORMATS), help="layout of SRC (see above)")
    p.add_argument("--out", type=writable_dir, required=True, help="output dataset folder (must not hold a dataset yet)")
    p.add_argument("--fps", type=positive_float, default=16.0, help="frame rate of the imported episodes (default 16)")
    p.add_argument("--size", type=parse_size, default=(64, 64), help="frame size HxW (default 64x64)")
    p.add_argument("--drop-seconds", type=nonneg_float, default=0.0, help="drop the first seconds of every recording")
    p.add_argument(
        "--tolerance",
        type=nonneg_float,
        default=0.1,
        help="relative disagreement allowed between metadata and video (default 0.1)",
    )
    p.add_argument("--strict", action="store_true", help="fail, writing nothing, if any recording would be skipped")
    p.add_argument("--world", default="minecraft", help="world name stored in the manifest")
    p.add_argument("--shard-frames", type=positive_int, default=20_000, help="frames per shard file")
    return p.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = ImportSettings(args.fps, args.size, args.drop_seconds, args.tolerance)
    manifest = import_recordings(
        args.format, args.src, args.out, settings, strict=args.strict, world=args.world, shard_frames=args.shard_frames
    )
    skipped = manifest["source"]["skipped"]
    if skipped:
        print(f"skipped {len(skipped)} recording{'s' * (len(skipped) != 1)}:")
        for s in skipped:
            print(f"  {s['path']}: {s['field']}: {s['problem']}")
    n = manifest["num_episodes"]
    print(
        f"imported {n} recording{'s' * (n != 1)} ({manifest['num_frames']} frames) to {args.out}; "
        f"skipped {len(skipped)}" + (" (see above)" if skipped else "")
    )


if __name__ == "__main__":
    main()
