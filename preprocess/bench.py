"""Data generation speed: raw env step rate vs frames written per second, per world and worker count.

python -m preprocess.bench                       # coinrun, doom, pong with 1 and 2 workers
python -m preprocess.bench --worlds doom --seconds 20 --out runs/bench_data.json

For each world the raw rate is `num_envs` envs stepped by the same exploration
policy as the generation run (the action mix changes how fast some games
render) with nothing recorded, in this process. The end-to-end rate is a real
`generate()` run (workers started, policy, frames stacked, shards written and
checksummed) sized to last about `--seconds` per worker, timed from the call to
the finished manifest. The ratio compares the end-to-end rate per worker with
the raw rate; the target is at least 0.8.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ochre.cli import ArgumentParser, positive_float, positive_int, writable_file
from ochre.data.generate import GenerateJob, generate
from ochre.data.policies import ExplorationPolicy, PolicyConfig
from ochre.envs.worlds import default_num_envs, make_vec_env, world_settings
from ochre.errors import cli_entry
from ochre.io import write_json


def raw_rate(world: str, num_envs: int, seconds: float) -> float:
    """Frames per second of bare env stepping (the default policy's actions, nothing kept)."""
    vec = make_vec_env(world, world_settings(world), num_envs, seed=0)
    policy = ExplorationPolicy(PolicyConfig(), vec.action_spec, num_envs, np.random.default_rng(0))
    frames, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        vec.observe()
        vec.act(policy.act())
        frames += num_envs
    rate = frames / (time.perf_counter() - t0)
    vec.close()
    return rate


def end_to_end_rate(world: str, num_envs: int, workers: int, frames: int, scratch: Path) -> float:
    """Frames written per second by `generate` with `workers` processes."""
    out = scratch / f"{world.replace('/', '_')}_{workers}"
    shard = -(-frames // (2 * workers))  # two shards per worker, so every worker stays busy
    job = GenerateJob(world=world, frames=frames, policy=PolicyConfig(), num_envs=num_envs, shard_frames=shard)
    t0 = time.perf_counter()
    generate(out, job, workers=workers, progress=False)
    rate = frames / (time.perf_counter() - t0)
    shutil.rmtree(out)
    return rate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--worlds", nargs="+", default=["coinrun", "doom", "pong"])
    p.add_argument("--workers", nargs="+", type=positive_int, default=[1, 2])
    p.add_argument("--num-envs", type=positive_int, default=None, help="envs per worker (default: 16 for procgen, 1 otherwise)")
    p.add_argument("--seconds", type=positive_float, default=10.0, help="length of each end-to-end run per worker")
    p.add_argument("--out", type=writable_file, default="runs/bench_data.json", help="where to write the results (JSON)")
    return p.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ochre_bench_") as tmp:
        for world in args.worlds:
            num_envs = args.num_envs if args.num_envs is not None else default_num_envs(world)
            raw = raw_rate(world, num_envs, seconds=3.0)
            for workers in args.workers:
                frames = int(raw * args.seconds * workers)
                e2e = end_to_end_rate(world, num_envs, workers, frames, Path(tmp))
                rows.append(
                    {
                        "world": world,
                        "num_envs": num_envs,
                        "workers": workers,
                        "frames": frames,
                        "raw_fps": round(raw),
                        "e2e_fps": round(e2e),
                        "ratio_per_worker": round(e2e / workers / raw, 3),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    print("\n| world | envs/worker | workers | raw env fps (1 process) | end-to-end fps | per worker / raw |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['world']} | {r['num_envs']} | {r['workers']} | {r['raw_fps']:,} | {r['e2e_fps']:,} | {r['ratio_per_worker']:.2f} |"
        )
    write_json(Path(args.out), {"results": rows, "seconds": args.seconds})
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
