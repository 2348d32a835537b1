"""Roll out a game with a random policy into a dataset folder.

python -m preprocess.generate --world coinrun --steps 100000 --out data/coinrun_train
python -m preprocess.generate --world coinrun --steps 20000 --start-level 1000000 --num-levels 1000 --out data/coinrun_heldout
"""

from __future__ import annotations

import argparse
import time

from ochre.data.generate import generate_procgen
from ochre.envs.procgen import ProcgenSettings
from ochre.errors import cli_entry


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", default="coinrun", help="procgen game name (coinrun, ninja, ...)")
    p.add_argument("--steps", type=int, required=True, help="number of frames to record")
    p.add_argument("--out", required=True, help="output dataset folder (must not hold a dataset yet)")
    p.add_argument("--num-envs", type=int, default=16, help="parallel environments")
    p.add_argument("--seed", type=int, default=0, help="seed for the envs and the policy")
    p.add_argument("--start-level", type=int, default=0, help="first procgen level seed")
    p.add_argument("--num-levels", type=int, default=10_000, help="number of level seeds from --start-level")
    p.add_argument("--distribution-mode", default="hard", help="procgen distribution mode")
    p.add_argument("--max-episode-frames", type=int, default=0, help="truncate episodes after this many frames (0 = off)")
    p.add_argument("--shard-frames", type=int, default=20_000, help="frames per shard file")
    return p.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = ProcgenSettings(args.world, args.distribution_mode, args.start_level, args.num_levels)
    t0 = time.time()
    manifest = generate_procgen(
        args.out, settings, args.steps, args.num_envs, args.seed, args.shard_frames, args.max_episode_frames
    )
    dt = time.time() - t0
    print(
        f"wrote {manifest['num_frames']} frames in {manifest['num_episodes']} episodes to {args.out} "
        f"({manifest['num_frames'] / dt:.0f} frames/s)"
    )


if __name__ == "__main__":
    main()
