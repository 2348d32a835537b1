"""Offline video from seed frames and an action script.

    python inference.py --checkpoint checkpoints/coinrun.pt --seed-frames assets/coinrun/seed.npz \
        --actions assets/coinrun/actions.json --out out/
    python inference.py --checkpoint checkpoints/coinrun.pt --out out/     # the checkpoint's seeds, 32 random actions

Without --seed-frames every seed context the checkpoint carries is a seed (a batch);
without --actions each seed gets --steps (default 32) uniformly random actions (--seed).

Writes DIR/frames.npz (`frames` (N,H,W,3) or (B,N,H,W,3) uint8), DIR/video.mp4 and
DIR/video.gif; with --gt, also DIR/comparison.mp4 (truth | prediction), DIR/metrics.csv
(per-horizon MSE/PSNR/SSIM) and DIR/horizon.png.

A flow world (model.type latent_flow) samples each frame with --flow-steps Euler steps and
--guidance; --sampling sample starts from noise of std --temperature (greedy: from zero
noise), and --samples N draws N futures per seed (frames.npz `samples`, side by side).
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ochre import WorldModel
from ochre.cli import (
    ArgumentParser,
    add_flow_arguments,
    input_file,
    input_path,
    known_device,
    nonneg_int,
    positive_float,
    positive_int,
    writable_dir,
)
from ochre.errors import OchreError, cli_entry
from ochre.frames import to_unit
from ochre.inputs import load_actions, load_seed
from ochre.io import atomic_path, write_text, write_video
from ochre.metrics import mse, psnr_from_mse, ssim

RANDOM_STEPS = 32  # random actions per seed without --actions (the evaluation protocol's horizon)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=input_file, required=True, help="world checkpoint (.pt)")
    p.add_argument(
        "--seed-frames",
        type=input_path,
        default=None,
        help=".npz with frames (K,H,W,3)|(B,K,H,W,3) [+ actions], .mp4, or PNG folder (default: the checkpoint's seeds)",
    )
    p.add_argument(
        "--actions",
        type=input_path,
        default=None,
        help=".npy, .json or .csv of future actions (N,) or (B,N); first person (N,10) or (B,N,10), csv one step per row "
        f"(default: --steps uniformly random actions, {RANDOM_STEPS} if --steps is not given)",
    )
    p.add_argument("--out", type=writable_dir, required=True, help="output folder")
    p.add_argument(
        "--steps", type=positive_int, default=None, help="frames to generate (default: all actions; without --actions, 32)"
    )
    p.add_argument("--sampling", choices=["greedy", "sample"], default="greedy", help="token sampling")
    p.add_argument("--temperature", type=positive_float, default=1.0, help="sampling temperature (> 0)")
    p.add_argument("--top-k", type=positive_int, default=None, help="sample only from the k most likely codes (default: all)")
    p.add_argument("--samples", type=positive_int, default=1, help="futures per seed (side by side in the video)")
    add_flow_arguments(p)
    p.add_argument(
        "--gt", type=input_path, default=None, help="ground-truth future frames (.npz/.mp4/PNG folder) to compare against"
    )
    p.add_argument("--fps", type=positive_float, default=None, help="video fps (default: the world's)")
    p.add_argument("--device", type=known_device, default="auto", help="auto | cpu | cuda")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed for sampling")
    return p.parse_args(argv)


def prepare_inputs(
    wm: WorldModel, seed_path: str | Path | None, actions_path: str | Path | None, steps: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Seed file + action script (+ the first `steps` actions) -> (seed (B,K,H,W,3), seed actions (B,K-1,...),
    future actions (B,N,...), batched?).

    "..." is the shape of one action in the world's schema: nothing for discrete ids,
    (10,) for first-person actions. No seed file: the checkpoint's seed contexts, as a
    batch. No action script: `steps` (default RANDOM_STEPS) random actions per seed.
    """
    frames, seed_actions, batched = checkpoint_seeds(wm) if seed_path is None else load_seed_file(wm, seed_path)
    return frames, seed_actions, future_actions(wm, actions_path, len(frames), steps, seed), batched


def future_actions(wm: WorldModel, path: str | Path | None, batch: int, steps: int | None, seed: int) -> np.ndarray:
    """(B, N, ...) future actions: the first `steps` of the script at `path` (one sequence is given to every seed),
    or without a script `steps` (default RANDOM_STEPS) uniformly random ones, drawn with `seed`."""
    one = wm.action_spec.shape
    if path is None:
        return wm.action_spec.sample(np.random.default_rng(seed), (batch, steps or RANDOM_STEPS)).astype(np.int64)
    actions = wm.action_spec.validate(load_actions(path, one[0] if one else 0), path)
    if actions.ndim == 1 + len(one):
        actions = np.broadcast_to(actions, (batch, *actions.shape))
    if actions.ndim != 2 + len(one) or actions.shape[0] != batch:
        raise OchreError(f"{path}: actions have shape {actions.shape} but the seed has batch size {batch}")
    if steps is not None:
        if steps > actions.shape[1]:
            raise OchreError(f"{path}: --steps {steps} but only {actions.shape[1]} actions given")
        actions = actions[:, :steps]
    if actions.shape[1] == 0:
        raise OchreError(f"{path}: no actions")
    return np.ascontiguousarray(actions)


def checkpoint_seeds(wm: WorldModel) -> tuple[np.ndarray, np.ndarray, bool]:
    """The seed contexts the world's checkpoint carries: (B, K, H, W, 3), (B, K-1, ...), batched."""
    if wm.seeds is None:
        path = wm.info.get("path", "checkpoint")
        raise OchreError(
            f"{path}: carries no seed contexts; pass --seed-frames FILE, or add them with "
            f"python -m train.seeds --checkpoint {path} --data DATASET"
        )
    return wm.seeds.frames, wm.seeds.actions, True


def load_seed_file(wm: WorldModel, seed_path: str | Path) -> tuple[np.ndarray, np.ndarray, bool]:
    """A seed file -> (B, K, H, W, 3), (B, K-1, ...) checked against the world, and whether the file held a batch."""
    frames, seed_actions = load_seed(seed_path)
    if 0 in frames.shape[:-3]:
        raise OchreError(f"{seed_path}: holds no seed frames (shape {frames.shape}); a seed needs at least one frame")
    batched = frames.ndim == 5
    frames = frames if batched else frames[None]
    b, k = frames.shape[:2]
    if tuple(frames.shape[2:]) != wm.frame_shape:
        raise OchreError(f"{seed_path}: frames are {tuple(frames.shape[2:])} but this world needs {wm.frame_shape}")
    if seed_actions is None:
        seed_actions = wm.action_spec.neutral((b, k - 1))
    seed_actions = wm.action_spec.validate(seed_actions, seed_path)
    one = wm.action_spec.shape
    seed_actions = seed_actions if seed_actions.ndim == 2 + len(one) else seed_actions[None]
    if seed_actions.shape != (b, k - 1, *one):
        want = (b, k - 1, *one) if batched else (k - 1, *one)
        raise OchreError(f"{seed_path}: 'actions' must have shape {want}, got {seed_actions.shape}")
    return frames, seed_actions, batched


def load_ground_truth(path: str, shape: tuple[int, ...]) -> np.ndarray:
    if not Path(path).exists():
        raise OchreError(f"{path}: ground truth frames not found (--gt)")
    frames, _ = load_seed(path)
    frames = frames if frames.ndim == 5 else frames[None]
    b, n = shape[:2]
    if frames.shape[0] != b or frames.shape[1] < n or frames.shape[2:] != shape[2:]:
        raise OchreError(f"{path}: ground truth has shape {frames.shape}, need at least {shape}")
    return frames[:, :n]


def horizon_metrics(pred: np.ndarray, gt: np.ndarray) -> list[dict[str, float]]:
    """pred, gt: (B, N, H, W, 3) uint8 -> one row per horizon h=1..N."""
    p, g = to_unit(pred), to_unit(gt)
    rows = []
    for h in range(p.shape[1]):
        m = mse(p[:, h], g[:, h])
        rows.append({"horizon": h + 1, "mse": float(m), "psnr": psnr_from_mse(m), "ssim": ssim(p[:, h], g[:, h])})
    return rows


def tile(videos: list[np.ndarray]) -> np.ndarray:
    """list of (B, N, H, W, 3) -> (N, B*H, len*W, 3): batch down, variants across."""
    row = np.concatenate(videos, axis=3)
    return np.concatenate(list(row), axis=1)


def write_outputs(out: Path, pred: np.ndarray, samples: np.ndarray | None, batched: bool, fps: float) -> None:
    arrays = {"frames": pred if batched else pred[0]}
    if samples is not None:
        arrays["samples"] = samples if batched else samples[0]
    with atomic_path(out / "frames.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    video = tile([samples[:, m] for m in range(samples.shape[1])]) if samples is not None else tile([pred])
    write_video(out / "video.mp4", video, fps, scale=4)
    write_video(out / "video.gif", video, fps, scale=2)


def write_comparison(out: Path, pred: np.ndarray, gt: np.ndarray, fps: float) -> list[dict[str, float]]:
    rows = horizon_metrics(pred, gt)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "metrics.csv", buf.getvalue())
    write_video(out / "comparison.mp4", tile([gt, pred]), fps, scale=4)
    plot_horizon(out / "horizon.png", rows)
    return rows


def plot_horizon(path: Path, rows: list[dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([r["horizon"] for r in rows], [r["psnr"] for r in rows], marker="o", ms=3)
    ax.set(xlabel="horizon (frames)", ylabel="PSNR (dB)", title="open-loop prediction vs ground truth")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    wm = WorldModel.load(args.checkpoint, device=args.device)
    if note := wm.set_flow_sampling(args.flow_steps, args.guidance):
        print(note)
    seed, seed_actions, actions, batched = prepare_inputs(wm, args.seed_frames, args.actions, args.steps, args.seed)
    gt = load_ground_truth(args.gt, (*actions.shape[:2], *wm.frame_shape)) if args.gt else None
    torch.manual_seed(args.seed)
    runs = []
    for m in tqdm(range(args.samples), desc="rollout", unit="sample", disable=args.samples == 1):
        runs.append(wm.rollout(seed, seed_actions, actions, args.sampling, args.temperature, args.top_k, seed=args.seed + m))
    pred = runs[0]
    samples = np.stack(runs, 1) if args.samples > 1 else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fps = args.fps or wm.fps
    write_outputs(out, pred, samples, batched, fps)
    print(f"wrote {pred.shape[0] * pred.shape[1]} frames to {out}/frames.npz, video.mp4, video.gif")
    if gt is not None:
        rows = write_comparison(out, pred, gt, fps)
        mean_psnr = np.mean([r["psnr"] for r in rows])
        print(
            f"PSNR@1 {rows[0]['psnr']:.2f} dB, PSNR@{len(rows)} {rows[-1]['psnr']:.2f} dB, mean {mean_psnr:.2f} dB -> {out}/metrics.csv"
        )


if __name__ == "__main__":
    main()
