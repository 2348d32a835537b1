"""Play without a window, for tests and benchmarks: a policy instead of a player.

    policy = make_policy(["random"], spec, seed=0)          # or ["script", "assets/coinrun/actions.json"]
    stats = run_headless(controller, frames=300, policy=policy, out=Path("runs/play"))

Writes DIR/play.mp4 (real | learned side by side in ghost mode), DIR/timings.csv
(frame, model_ms, decode_ms, total_ms), DIR/seed.npz + DIR/actions.npy (replay with
inference.py) and, in ghost mode, DIR/ghost.csv (frame, psnr).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from live.controller import PlayController
from live.recording import write_replay
from live.timing import percentiles, timings_csv
from ochre.actions import ActionSpec
from ochre.errors import OchreError
from ochre.inputs import load_actions
from ochre.io import write_text, write_video


@dataclass
class Policy:
    """Where headless actions come from: `act()` gives the next encoded action."""

    act: Callable[[], np.ndarray]
    length: int | None = None  # a script's number of actions; None: endless


def make_policy(words: list[str], spec: ActionSpec, seed: int = 0) -> Policy:
    """`random` (uniform over the schema) or `script FILE` (.npy / .json / .csv, as inference.py reads)."""
    if words == ["random"]:
        rng = np.random.default_rng(seed)
        return Policy(lambda: np.asarray(spec.sample(rng)))
    if len(words) == 2 and words[0] == "script":
        path = words[1]
        actions = spec.validate(load_actions(path), path)
        if actions.shape[1:] != spec.shape or len(actions) == 0:
            want = "(N,)" if not spec.shape else f"(N, {spec.shape[0]})"
            raise OchreError(f"{path}: a script is one sequence of actions of shape {want}, got {actions.shape}")
        script = iter(actions)
        return Policy(lambda: next(script), len(actions))
    raise OchreError(f"--policy must be 'random' or 'script FILE', got {' '.join(words) or 'nothing'}")


def tile(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    return np.concatenate([frame for _, frame in panels], axis=1)


def run_headless(controller: PlayController, frames: int, policy: Policy, out: Path) -> dict[str, float]:
    """Play `frames` frames as fast as the model goes; returns p50/p99 of the frame time in ms."""
    if policy.length is not None and policy.length < frames:
        print(f"the script has {policy.length} actions: playing {policy.length} frames")
        frames = policy.length
    controller.start()
    video = [tile(controller.panels())]
    try:
        for i in range(frames):
            start = time.perf_counter()
            controller.tick(i, policy.act)
            video.append(tile(controller.panels()))
            controller.record_frame(i, (time.perf_counter() - start) * 1e3)
    finally:
        controller.close()
    write_outputs(controller, np.stack(video), out)
    return percentiles([t.total_ms for t in controller.timings])


def write_outputs(controller: PlayController, video: np.ndarray, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_video(out / "play.mp4", video, fps=controller.fps, scale=4)
    write_text(out / "timings.csv", timings_csv(controller.timings))
    seed_frames, seed_actions, actions, _ = controller.session.log()
    write_replay(out, seed_frames, seed_actions, actions)
    if controller.ghost is not None:
        rows = "".join(f"{i},{p:.3f}\n" for i, p in enumerate(controller.psnrs))
        write_text(out / "ghost.csv", "frame,psnr\n" + rows)
