"""Measure how far the picture moves per degree of camera turn in a first-person dataset.

    python -m preprocess.camera_gain --data data/doom_train

Prints the yaw and pitch gains (pixels of the dataset's frames per degree; median over the
steps that turn one axis with no movement button held, by phase correlation on the top of
the frame, `ochre.world_checks.camera_gain`) and the `model.camera_warp=[yaw,pitch]`
override that starts the dynamics model's camera warp from them.
"""

from __future__ import annotations

import numpy as np

from ochre.actions import FirstPersonActionSpec
from ochre.cli import ArgumentParser, input_path, int_range, positive_int
from ochre.data.store import EpisodeDataset
from ochre.errors import OchreError, cli_entry
from ochre.world_checks import camera_gain


@cli_entry
def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--data", type=input_path, required=True, help="first-person frame dataset folder")
    p.add_argument("--episodes", type=positive_int, default=25, help="episodes read, evenly spread over the dataset")
    p.add_argument("--steps", type=int_range(2), default=400, help="steps read per episode, from its start (at least 2)")
    args = p.parse_args(argv)
    data = EpisodeDataset(args.data, expect_kind="frames")
    if not isinstance(data.action_spec, FirstPersonActionSpec):
        raise OchreError(
            f"{args.data}: the camera gain needs a first-person dataset, this one has a '{data.action_spec.kind}' schema"
        )
    episodes = data.episodes()
    picks = np.unique(np.linspace(0, len(episodes) - 1, min(args.episodes, len(episodes))).round().astype(int))
    rows = (data.rows(shard, start, min(length, args.steps)) for shard, start, length in (episodes[i] for i in picks))
    gains = camera_gain(rows, data.action_spec)
    for name, g in gains.items():
        if g["gain"] is None:
            raise OchreError(
                f"{args.data}: no steps that turn the {name} alone in {len(picks)} episodes; read more with --episodes"
            )
        print(f"{name:5s} {g['gain']:.3f} px/degree  ({g['steps']} steps; {g['still']} moved < 0.5 px and were left out)")
    print(f"model.camera_warp=[{gains['yaw']['gain']:.2f},{gains['pitch']['gain']:.2f}]")


if __name__ == "__main__":
    main()
