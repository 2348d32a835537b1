"""Cut seed-frame files for `live.play` and `inference.py` out of a frame dataset.

    python -m preprocess.seeds --data data/coinrun_heldout --out assets/coinrun/seed.npz --count 8 --context 4

Writes `frames` (count, K, H, W, 3) uint8 and `actions` (count, K-1), taken from K
frames of `count` different episodes (evenly spread over the dataset), starting
`--offset` frames into each episode: 0 is the game's start; Pong's ball is in play
from about 60 frames on (`--offset 100`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ochre.cli import ArgumentParser, input_path, int_range, nonneg_int, positive_int, writable_file
from ochre.data.store import EpisodeDataset
from ochre.errors import OchreError, cli_entry
from ochre.io import atomic_path


@cli_entry
def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--data", type=input_path, required=True, help="frame dataset folder")
    p.add_argument("--out", type=writable_file, required=True, help="output .npz")
    p.add_argument("--count", type=positive_int, default=8, help="number of seeds (episodes)")
    p.add_argument("--context", type=int_range(2), default=4, help="frames per seed K (at least 2)")
    p.add_argument("--offset", type=nonneg_int, default=0, help="frames into each episode where a seed starts")
    args = p.parse_args(argv)
    data = EpisodeDataset(args.data, expect_kind="frames")
    need = args.offset + args.context
    episodes = [e for e in data.episodes() if e[2] > need]
    if len(episodes) < args.count:
        raise OchreError(
            f"{args.data}: only {len(episodes)} episodes longer than {need} frames (--offset + --context), need {args.count}"
        )
    picks = np.linspace(0, len(episodes) - 1, args.count).round().astype(int)
    rows = [data.rows(episodes[i][0], episodes[i][1] + args.offset, args.context) for i in picks]
    frames = np.stack([r for r, _ in rows])
    actions = np.stack([a[:-1] for _, a in rows])
    with atomic_path(Path(args.out)) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, frames=frames, actions=actions)
    print(f"wrote {args.out}: frames {frames.shape}, actions {actions.shape}")


if __name__ == "__main__":
    main()
