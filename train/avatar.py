"""Train the avatar detector the play tests use, and score it on real held-out frames.

    python -m train.avatar --world coinrun --data data/coinrun_play --eval-data data/coinrun_heldout \
        --out assets/coinrun/avatar.pt

The detector learns, from real frames of a game whose camera follows the player, what
the avatar looks like at the spot the game draws it (`avatar_anchor` in
ochre/playtest/checks.py). It is then scored on held-out frames: the share where it
finds the avatar within 2 pixels of that spot (it must be >= 0.97 for the play tests to
trust it), and the share of the same frames with the avatar painted over where it still
reports one (false alarms).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ochre.cli import ArgumentParser, input_path, nonneg_int, positive_int, writable_file
from ochre.data.store import EpisodeDataset
from ochre.errors import OchreError, cli_entry
from ochre.playtest.avatar import erase, train_patch_avatar
from ochre.playtest.checks import play_checks

MIN_FOUND = 0.97


def frame_sampler(data: EpisodeDataset):
    """`sample(rng, n)` -> n frames (n, H, W, 3) uint8 drawn uniformly from the dataset."""
    sizes = np.array([len(s["frames"]) for s in data.shards])

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        picks = rng.choice(len(sizes), size=n, p=sizes / sizes.sum())
        return np.stack([data.shards[s]["frames"][int(rng.integers(sizes[s]))] for s in picks])

    return sample


def detector_scores(finder, frames: np.ndarray, home: tuple[float, float]) -> dict[str, float]:
    """Share of real frames whose avatar is found within 2 px of `home`, and false alarms on erased frames."""
    where = finder.find(frames)[:, 0]
    err = np.hypot(where[:, 0] - home[0], where[:, 1] - home[1])
    false = ~np.isnan(finder.find(erase(frames, finder.anchor))[:, 0, 0])
    return {"found": float(np.mean(err <= 2.0)), "present": float(np.mean(~np.isnan(err))), "false_alarms": float(false.mean())}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--world", default="coinrun", help="world whose play checks name the avatar's spot")
    p.add_argument("--data", type=input_path, required=True, help="real frame dataset to train on")
    p.add_argument("--eval-data", type=input_path, required=True, help="real held-out frame dataset to score on")
    p.add_argument("--out", type=writable_file, required=True, help="detector file to write (.pt)")
    p.add_argument("--steps", type=positive_int, default=1500, help="training steps")
    p.add_argument("--frames", type=positive_int, default=4096, help="held-out frames to score")
    p.add_argument("--seed", type=nonneg_int, default=0, help="training seed")
    return p.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    train, held = EpisodeDataset(args.data, expect_kind="frames"), EpisodeDataset(args.eval_data, expect_kind="frames")
    checks = play_checks(args.world, train.action_spec)
    if checks.avatar_anchor is None:
        raise OchreError(f"world '{args.world}' has no learned avatar (no avatar_anchor in ochre/playtest/checks.py)")
    t0 = time.time()
    finder = train_patch_avatar(frame_sampler(train), checks.avatar_anchor, steps=args.steps, seed=args.seed)
    frames = frame_sampler(held)(np.random.default_rng(args.seed + 1), args.frames)
    scores = detector_scores(finder, frames, finder.home)
    finder.save(args.out, {"data": args.data, "eval_data": args.eval_data, "steps": args.steps, **scores})
    print(
        f"{args.out}: trained in {time.time() - t0:.0f}s; on {len(frames)} held-out frames the avatar is found within 2 px "
        f"in {scores['found']:.3f} (present {scores['present']:.3f}), false alarms on erased frames {scores['false_alarms']:.3f}"
    )
    if scores["found"] < MIN_FOUND:
        raise OchreError(
            f"{args.out}: the detector finds only {scores['found']:.3f} of real avatars (< {MIN_FOUND}); train longer"
        )


if __name__ == "__main__":
    main()
