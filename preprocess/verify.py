"""Check datasets in full: every shard file against the sha256 in its manifest.

python -m preprocess.verify data/coinrun_play data/coinrun_play_tokens

Prints "DIR: ok: N shards, M frames, X GB in S s" per sound dataset, or one
line per damaged file naming it and the fix. Exits 0 when every dataset is
sound, 2 otherwise. Files that pass are recorded in DIR/verified.json, so a
trainer's `verify_once()` does not hash them again.
"""

from __future__ import annotations

import argparse
import sys

from ochre.cli import ArgumentParser, input_path
from ochre.data.integrity import Verification, verify_dataset
from ochre.data.store import read_manifest
from ochre.errors import OchreError, cli_entry


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("dirs", nargs="+", metavar="DIR", type=input_path, help="dataset folder (holds manifest.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def check(path: str, progress: bool) -> bool:
    """Verify one dataset and print what was found; True when it is sound."""
    try:
        report = verify_dataset(path, read_manifest(path), progress)
    except OchreError as err:
        print(f"error: {err}", file=sys.stderr)
        return False
    for damage in report.damage:
        print(f"error: {damage}", file=sys.stderr)
    print(f"{path}: {summary(report)}")
    return report.ok


def summary(report: Verification) -> str:
    if not report.ok:
        return f"damaged: {len(report.damage)} files (named above)"
    return f"ok: {report.shards} shards, {report.frames:,} frames, {report.total_bytes / 1e9:.2f} GB in {report.seconds:.1f} s"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = [check(path, not args.quiet) for path in args.dirs]
    if not all(results):
        sys.exit(2)


if __name__ == "__main__":
    main()
