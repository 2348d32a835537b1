"""Long-horizon stability of a world: 1,000 open-loop steps per policy, then a verdict.

    python -m train.stability --checkpoint checkpoints/coinrun.pt --seed-frames assets/coinrun/seed.npz

Runs each policy (noop, scripted, random) from one seed and judges the last 10% of
the rollout: alive, static (still, but nothing pressed), frozen or blur (see
`ochre.stability`). Writes into the output folder: stability.json (per-policy verdict,
window statistics and thresholds), plots/stability.png (codes in use, frame change and
pixel std per step, one line per policy) and videos/<policy>.mp4, and prints a table.

One seed's verdict is noisy (the same world can blur from one seed and stay alive from
the next), so `--all-seeds` runs from every seed of a batched seed file: each seed's
outputs go to seed<i>/, and stability.json at the top holds the tally per policy (seeds
per verdict, collapses, mean and lowest detail ratio) and every seed's verdicts.

    python -m train.stability --checkpoint checkpoints/coinrun_flow.pt --seed-frames assets/coinrun/seed.npz --all-seeds

The world plays greedily, as the app does by default; `--sampling sample --temperature T` (and, in a flow world,
`--flow-steps` and `--guidance`) judge the sampler a player would switch to.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

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
from ochre.inputs import load_seed
from ochre.io import atomic_path, write_json, write_video
from ochre.stability import POLICIES, Judgement, StabilityTrace, Thresholds, judge, stability_rollout
from ochre.training.logger import make_run_dir

VIDEO_SIZE = 256  # small frames are scaled up by a whole factor to about this many pixels


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=input_file, required=True, help="world checkpoint")
    p.add_argument(
        "--seed-frames",
        type=input_path,
        required=True,
        help=".npz with frames (K,H,W,3)|(B,K,H,W,3) [+ actions], .mp4, or PNG folder",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--seed-index", type=nonneg_int, default=0, help="which seed of a batched .npz to start from")
    which.add_argument(
        "--all-seeds",
        action="store_true",
        help="run from every seed of the file (one verdict is noisy): seed<i>/ per seed, and a tally per policy",
    )
    p.add_argument("--steps", type=positive_int, default=1000, help="open-loop steps per policy")
    p.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES, help="policies to run")
    p.add_argument("--every", type=positive_int, default=1, help="keep every n-th frame for the videos (a time-lapse)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the random policy and of the sampler")
    p.add_argument("--sampling", choices=["greedy", "sample"], default="greedy", help="how the world draws each frame")
    p.add_argument(
        "--temperature", type=positive_float, default=1.0, help="with --sampling sample: token temperature, or a flow's noise std"
    )
    add_flow_arguments(p)
    p.add_argument("--device", type=known_device, default="auto", help="auto | cpu | cuda")
    p.add_argument("--out", type=writable_dir, default=None, help="output folder (default: runs/<time>_<world>_stability)")
    return p.parse_args(argv)


def pick_seed(path: str, seeds: tuple[np.ndarray, np.ndarray | None], index: int) -> tuple[np.ndarray, np.ndarray | None]:
    """One seed (K, H, W, 3) and its K-1 actions (or None) from a seed file's `load_seed`, batched or not."""
    frames, actions = seeds
    if frames.ndim == 4:
        return frames, actions
    if not 0 <= index < len(frames):
        raise OchreError(f"{path}: --seed-index {index} is outside the {len(frames)} seeds in the file")
    return frames[index], None if actions is None else actions[index]


def write_plot(path: Path, traces: list[StabilityTrace], judgements: list[Judgement], thresholds: Thresholds) -> None:
    """Codes in use, frame change and pixel std per step, one line per policy; floors dashed, judged window shaded.

    The codes floor is relative to each policy's first window, so it is drawn per policy in its colour.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"codes_in_use": "codes in use per frame", "change": "frame change (mean |diff|)", "pixel_std": "pixel std"}
    fixed_floors = {"change": thresholds.min_change, "pixel_std": thresholds.min_pixel_std}
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 8), sharex=True)
    for ax, (field, label) in zip(axes, panels.items(), strict=True):
        for trace, judgement in zip(traces, judgements, strict=True):
            steps = np.arange(1, trace.steps + 1)
            (line,) = ax.plot(steps, getattr(trace, field), lw=0.8, label=f"{trace.policy} ({judgement.verdict})")
            if field == "codes_in_use":
                ax.axhline(thresholds.min_code_ratio * judgement.codes_in_use_first, color=line.get_color(), ls="--", lw=0.8)
        if field in fixed_floors:
            ax.axhline(fixed_floors[field], color="k", ls="--", lw=0.8)
        ax.axvspan(judgements[0].window[0] + 1, judgements[0].window[1], color="0.85", zorder=0)
        ax.set(ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower left", fontsize=8)
    axes[0].set_title("open-loop stability (shaded: judged window; dashed: collapse floors)")
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def format_table(judgements: dict[str, Judgement]) -> str:
    """One row per policy: verdict and the statistics of the judged window."""
    head = f"{'policy':<10}{'verdict':>9}{'pixel std':>11}{'codes seed/first/last':>23}{'ratio':>7}{'max change':>12}{'mean change':>13}{'detail':>8}"
    lines = [head, "-" * len(head)]
    for policy, j in judgements.items():
        codes = f"{j.codes_in_use_seed}/{j.codes_in_use_first:.1f}/{j.codes_in_use:.1f}"
        lines.append(
            f"{policy:<10}{j.verdict:>9}{j.pixel_std:11.3f}{codes:>23}{j.code_ratio:7.2f}{j.max_change:12.4f}{j.mean_change:13.4f}"
            + (f"{j.detail_ratio:8.2f}" if j.detail_ratio is not None else f"{'—':>8}")
        )
    return "\n".join(lines)


def run_seed(wm: WorldModel, args: argparse.Namespace, seeds: tuple, index: int, out: Path) -> dict[str, Judgement]:
    """Every policy from one seed of the file: videos, plot and stability.json into `out`; the table printed."""
    seed_frames, seed_actions = pick_seed(args.seed_frames, seeds, index)
    if seed_frames.shape[1:] != wm.frame_shape or len(seed_frames) < 1:
        raise OchreError(
            f"{args.seed_frames}: seed frames are {seed_frames.shape} but this world needs (K, {', '.join(map(str, wm.frame_shape))})"
        )
    policies = list(dict.fromkeys(args.policies))
    thresholds = Thresholds()
    wm.generator.manual_seed(args.seed)  # each seed's rollouts are drawn the same whether it runs alone or in --all-seeds
    traces = [stability_rollout(wm, seed_frames, seed_actions, p, args.steps, args.every, args.seed) for p in policies]
    judgements = {t.policy: judge(t, thresholds) for t in traces}
    scale = max(1, VIDEO_SIZE // max(wm.frame_shape[:2]))
    for trace in traces:
        write_video(out / "videos" / f"{trace.policy}.mp4", trace.frames, fps=wm.fps, scale=scale)
    write_plot(out / "plots" / "stability.png", traces, list(judgements.values()), thresholds)
    write_json(out / "stability.json", report(args, wm, seed_index=index, **verdicts(judgements)))
    start, end = judgements[policies[0]].window
    print(f"{args.steps} open-loop steps from {args.seed_frames} (seed {index}), judged on steps {start + 1}-{end}")
    print(format_table(judgements))
    print(f"wrote {out}/stability.json, plots/stability.png, videos/{{{','.join(policies)}}}.mp4")
    return judgements


def report(args: argparse.Namespace, wm: WorldModel, **fields: Any) -> dict[str, Any]:
    """stability.json: the run's settings, sampler and thresholds, then `fields` (one seed's verdicts, or the tally)."""
    settings = {"checkpoint": args.checkpoint, "seed_frames": args.seed_frames, "steps": args.steps, "random_seed": args.seed}
    return settings | {"sampler": sampler(wm), "sampling": wm.sampling, "thresholds": asdict(Thresholds())} | fields


def sampler(wm: WorldModel) -> dict[str, Any]:
    """The sampling settings the rollouts used (temperature only when sampling; flow steps and guidance in flow worlds)."""
    out: dict[str, Any] = {"sampling": wm.sampling}
    if wm.sampling == "sample":
        out["temperature"] = wm.temperature
    if wm.flow_steps is not None:
        out |= {"flow_steps": wm.flow_steps, "guidance": wm.guidance}
    return out


def verdicts(judgements: dict[str, Judgement]) -> dict[str, Any]:
    return {
        "collapsed": [p for p, j in judgements.items() if j.collapsed],
        "policies": {p: j.to_dict() for p, j in judgements.items()},
    }


def tally(per_seed: dict[int, dict[str, Judgement]]) -> dict[str, dict]:
    """Per policy: how many seeds ended in each verdict, the collapses, and the mean and lowest detail ratio."""
    out = {}
    for policy in next(iter(per_seed.values())):
        judged = [seed[policy] for seed in per_seed.values()]
        details = [j.detail_ratio for j in judged if j.detail_ratio is not None]
        out[policy] = {
            "verdicts": {v: sum(j.verdict == v for j in judged) for v in ("alive", "static", "frozen", "blur")},
            "collapsed": sum(j.collapsed for j in judged),
            "seeds": len(judged),
            "detail_mean": float(np.mean(details)) if details else None,
            "detail_min": float(np.min(details)) if details else None,
        }
    return out


def format_tally(counts: dict[str, dict]) -> str:
    head = f"{'policy':<10}{'alive':>7}{'static':>8}{'frozen':>8}{'blur':>6}{'collapsed':>11}{'detail mean/min':>17}"
    lines = [head, "-" * len(head)]
    for policy, c in counts.items():
        v = c["verdicts"]
        detail = f"{c['detail_mean']:.2f}/{c['detail_min']:.2f}" if c["detail_mean"] is not None else "—"
        lines.append(
            f"{policy:<10}{v['alive']:>7}{v['static']:>8}{v['frozen']:>8}{v['blur']:>6}"
            f"{c['collapsed']:>7} of {c['seeds']}{detail:>17}"
        )
    return "\n".join(lines)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    wm = WorldModel.load(args.checkpoint, device=args.device)
    if note := wm.set_flow_sampling(args.flow_steps, args.guidance):
        print(note)
    wm.sampling, wm.temperature = args.sampling, args.temperature
    print(f"sampler: {', '.join(f'{k} {v}' for k, v in sampler(wm).items())}")
    out = Path(args.out) if args.out else make_run_dir("runs", wm.info.get("world", "world"), "stability")
    seeds = load_seed(args.seed_frames)
    if not args.all_seeds:
        run_seed(wm, args, seeds, args.seed_index, out)
        return
    count = len(seeds[0]) if seeds[0].ndim == 5 else 1
    per_seed = {i: run_seed(wm, args, seeds, i, out / f"seed{i}") for i in range(count)}
    counts = tally(per_seed)
    collapsed = sum(c["collapsed"] for c in counts.values())
    per = {str(i): verdicts(j) for i, j in per_seed.items()}
    fields = {"seeds": count, "tally": counts, "collapsed_rollouts": collapsed, "per_seed": per}
    write_json(out / "stability.json", report(args, wm, **fields))
    print(f"\n{args.steps} open-loop steps from each of the {count} seeds of {args.seed_frames}")
    print(format_tally(counts))
    print(f"wrote {out}/stability.json (tally and every seed's verdicts), seed<i>/ per seed")


if __name__ == "__main__":
    main()
