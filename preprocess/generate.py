"""Roll out a world with an exploration policy into a dataset folder.

python -m preprocess.generate --world coinrun --frames 200000 --out data/coinrun_train --max-episode-frames 200
python -m preprocess.generate --world coinrun --frames 30000 --env start_level=1000000 --disjoint-from data/coinrun_train --out data/coinrun_heldout
python -m preprocess.generate --world doom --frames 100000 --workers 2 --env frame_skip=4 --out data/doom_train
python -m preprocess.generate --world pong --frames 100000 --policy sticky --out data/pong_train

Worlds: any Procgen game (coinrun, ninja, ...), doom, pong, atari:<ALE id>, and any
Gymnasium env as gym:<id> or gym:<module>:<id> (the module imported first registers it).
World settings go in --env key=value (procgen: distribution_mode, start_level,
num_levels; doom: wad, map, frame_size, frame_skip, episode_timeout; atari:
frame_size, frame_skip, repeat_action_probability; gym: the env's own kwargs and
frame_size, box_bins, max_episode_frames, fps). Policy settings go in
--policy-set key=value (weights, hold_min, hold_max, repeat_prob, noop_prob).

Interrupted or damaged? Run the same command again: finished shards whose files
match their sha256 are kept untouched, and the rest (damaged, missing, never
finished) are played. The content depends only on the arguments (not on
--workers), so a re-played shard comes out byte-identical.
"""

from __future__ import annotations

import argparse
import time

from ochre.cli import ArgumentParser, input_path, nonneg_int, positive_int, writable_dir
from ochre.config import from_dict, parse_overrides
from ochre.data.generate import GenerateJob, check_disjoint_levels, generate
from ochre.data.policies import PLAY_PRESET, POLICIES, PolicyConfig
from ochre.envs.worlds import WORLDS_HELP, default_num_envs
from ochre.errors import cli_entry


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--world", default="coinrun", help=f"the game: {WORLDS_HELP}")
    p.add_argument("--frames", "--steps", type=positive_int, required=True, help="number of frames to record")
    p.add_argument("--out", type=writable_dir, required=True, help="output dataset folder")
    p.add_argument(
        "--policy",
        default="mixture",
        choices=[*POLICIES, "mixture", "play"],
        help="uniform, sticky, isolated, run, mixture or play (held keys and runs, like a person)",
    )
    p.add_argument("--policy-set", action="append", default=[], metavar="KEY=VALUE", help="policy setting (repeatable)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="world setting (repeatable)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (the data does not depend on this)")
    p.add_argument(
        "--num-envs", type=positive_int, default=None, help="envs per shard, stepped together (default: 16 procgen, 1 others)"
    )
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed for the envs and the policy")
    p.add_argument("--max-episode-frames", type=nonneg_int, default=0, help="restart all envs every this many steps (0 = off)")
    p.add_argument(
        "--shard-frames", type=positive_int, default=20_000, help="frames per shard (the unit of work and of resuming)"
    )
    p.add_argument(
        "--disjoint-from",
        type=input_path,
        metavar="DIR",
        help="procgen: refuse levels that the dataset in DIR used (held-out data)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def job_from_args(args: argparse.Namespace) -> GenerateJob:
    preset = PLAY_PRESET if args.policy == "play" else {"kind": args.policy}
    policy = from_dict(PolicyConfig, {**preset, **parse_overrides(args.policy_set)}, "policy.")
    return GenerateJob(
        world=args.world,
        frames=args.frames,
        env=parse_overrides(args.env),
        policy=policy,
        num_envs=args.num_envs if args.num_envs is not None else default_num_envs(args.world),
        seed=args.seed,
        shard_frames=args.shard_frames,
        max_episode_frames=args.max_episode_frames,
    )


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    job = job_from_args(args)
    if args.disjoint_from:
        check_disjoint_levels(job, args.disjoint_from)
    t0 = time.time()
    manifest = generate(args.out, job, workers=args.workers, progress=not args.quiet)
    dt = time.time() - t0
    print(
        f"{args.out}: {manifest['num_frames']} frames in {manifest['num_episodes']} episodes, "
        f"{len(manifest['shards'])} shards ({dt:.1f}s)"
    )


if __name__ == "__main__":
    main()
