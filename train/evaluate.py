"""Score a world checkpoint on held-out episodes: one complete report.

    python -m train.evaluate --checkpoint checkpoints/coinrun.pt --data data/coinrun_heldout
    python -m train.evaluate --checkpoint checkpoints/coinrun.pt --data data/coinrun_heldout \
        --train-baseline data/coinrun_train --idm runs/idm_coinrun.pt

Open-loop rollouts (DESIGN.md protocol) of the model, copy-last-frame and the model fed
random actions: per-horizon MSE, PSNR, SSIM on RGB and grayscale 84x84 (plus RGB LPIPS
when the backbone weights are on disk), controllability (delta PSNR), and the
long-horizon stability verdicts (`ochre.stability`) from the first window's seed.
Baselines scored on the same windows: copy-last always; the pixel-space FiLM
predictor from a checkpoint (--baseline FILE) or trained in this run on the training
data (--train-baseline DIR, configs/<world>/pixel_film.yaml, --baseline-steps).
With --idm, an inverse-dynamics classifier scores how well the generated frames
follow the actions (real-frame ceiling and chance beside them).
World-specific checks (`ochre.world_checks`, skip with --no-world-checks): camera
response for first-person worlds (pure yaw/pitch held for 8 steps must shift the
picture the right way; the real game scored beside it with --real-game-episodes) and
ball tracking for pong (ball within 2 px of the truth after 6 open-loop steps).
Play tests (`ochre.playtest`, --playtest-seeds, 0 skips them) play the world's registered
input programs, or for a world with none registered (your own `gym:<id>` game) the generic
set derived from its action schema (stand, each action held, sticky_random).
Writes into the output folder: report.md, results.json (every number), metrics.csv and
summary.json (the older flat outputs), plots/{horizon,ssim,delta_psnr,stability}.png,
videos/samples.mp4 (ground truth | model | model with random actions) and
videos/stability_<policy>.mp4; prints the PSNR tables.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from ochre import WorldModel
from ochre.cli import ArgumentParser, input_file, input_path, known_device, nonneg_int, positive_int, writable_dir
from ochre.config import load_config
from ochre.data.store import EpisodeDataset
from ochre.envs.worlds import make_env, world_settings
from ochre.errors import OchreError, cli_entry
from ochre.evaluation import VIEWS, EvalSettings, Evaluation, Predictor, evaluate_world, format_table, summary_rows
from ochre.idm import FrameIDM, action_following, load_idm
from ochre.io import atomic_path, write_json, write_text, write_video
from ochre.losses import load_lpips
from ochre.pixel_world import PixelWorld
from ochre.playtest.checks import PlaytestPlan, find_play_checks, playtest_plan
from ochre.playtest.report import playtest_markdown
from ochre.playtest.suite import PlaytestSettings, run_playtests
from ochre.report import build_results, render_markdown
from ochre.report import label as predictor_label
from ochre.stability import (
    POLICIES,
    Thresholds,
    calibrate_change,
    judge,
    real_episodes,
    real_window_change,
    stability_rollout,
)
from ochre.training.logger import make_run_dir
from ochre.world_checks import PITCH_LIMITS, ball_ceiling, ball_tracking, camera_response, held_out_seeds, real_camera_response
from train.stability import VIDEO_SIZE
from train.stability import write_plot as write_stability_plot

SAMPLE_WINDOWS = 4  # windows shown in videos/samples.mp4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=input_file, required=True, help="world checkpoint")
    p.add_argument("--data", type=input_path, required=True, help="held-out frame dataset folder")
    p.add_argument("--context", type=positive_int, default=4, help="seed frames K")
    p.add_argument("--horizon", type=positive_int, default=32, help="predicted frames N")
    p.add_argument("--windows", type=positive_int, default=256, help="number of evaluation windows")
    p.add_argument("--batch", type=positive_int, default=32, help="windows per batch")
    p.add_argument("--seed", type=nonneg_int, default=0, help="window selection seed (also the random policies' seed)")
    p.add_argument("--stability-steps", type=nonneg_int, default=1000, help="open-loop steps per stability policy (0 = skip)")
    p.add_argument(
        "--lpips-weights", type=input_file, default="", help="LPIPS backbone weights file (default: torchvision's hub cache)"
    )
    p.add_argument(
        "--baseline",
        type=input_file,
        default="",
        help="pixel FiLM baseline checkpoint (pixel_world.pt) to score beside the model",
    )
    p.add_argument(
        "--train-baseline",
        type=input_path,
        default="",
        metavar="DIR",
        help="train the pixel FiLM baseline on this frame dataset first",
    )
    p.add_argument(
        "--baseline-config",
        type=input_file,
        default="",
        help="preset for --train-baseline (default: configs/<world>/pixel_film.yaml)",
    )
    p.add_argument("--baseline-steps", type=nonneg_int, default=0, help="training steps for --train-baseline (0 = the preset's)")
    p.add_argument(
        "--idm",
        type=input_file,
        default="",
        help="inverse-dynamics classifier (python -m train.idm) for action-following accuracy",
    )
    p.add_argument("--idm-horizon", type=positive_int, default=8, help="generated frames per window scored by the IDM")
    p.add_argument("--no-world-checks", action="store_true", help="skip the camera-response / pong ball-tracking checks")
    p.add_argument("--real-game-episodes", type=nonneg_int, default=16, help="real-game starts for the camera check (0 = skip)")
    p.add_argument(
        "--playtest-seeds", type=nonneg_int, default=16, help="real-game seeds per play-test program (0 = skip the play tests)"
    )
    p.add_argument(
        "--playtest-programs",
        default="",
        help="comma-separated play-test programs (default: all of the world's, else the generic set from its actions)",
    )
    p.add_argument("--device", type=known_device, default="auto", help="auto | cpu | cuda")
    p.add_argument("--out", type=writable_dir, default=None, help="output folder (default: runs/<time>_<world>_eval)")
    return p.parse_args(argv)


def write_flat_outputs(out: Path, rows: list[dict[str, float]], summary: dict) -> None:
    """metrics.csv (one row per horizon) and summary.json, kept for tools that read the older layout."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "metrics.csv", buf.getvalue())
    write_json(out / "summary.json", summary)


def flat_summary(rows: list[dict[str, float]], meta: dict[str, Any], horizon: int) -> dict[str, Any]:
    """The older summary.json: mean PSNR per predictor and view, delta PSNR at 1, 8 and N, gray84 SSIM@1."""
    summary = dict(meta)
    names = dict.fromkeys(k.split("/")[0] for k in rows[0] if k != "horizon")
    for name in names:
        for view in VIEWS:
            summary[f"{name}/{view}/mean_psnr"] = float(np.mean([r[f"{name}/{view}/psnr"] for r in rows]))
    for view in VIEWS:
        for h in sorted({1, 8, horizon}):
            if h <= horizon:
                summary[f"delta_psnr@{h}/{view}"] = (
                    rows[h - 1][f"model/{view}/psnr"] - rows[h - 1][f"model_random_actions/{view}/psnr"]
                )
    summary["model/gray84/ssim@1"] = rows[0]["model/gray84/ssim"]
    return summary


def plot_per_view(path: Path, series: dict[str, dict[str, list[float]]], title: str, ylabel: str) -> None:
    """One panel per view, one line per series over horizons 1..N: series[view][label] = values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(10, 3.5))
    for ax, (view, lines) in zip(axes, series.items(), strict=True):
        for label, values in lines.items():
            ax.plot(np.arange(1, len(values) + 1), values, label=label, marker="." if len(values) < 12 else None)
        ax.set(title=f"{title} ({view})", xlabel="horizon", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_horizon_plots(out: Path, results: dict[str, Any]) -> dict[str, str]:
    """PSNR, SSIM and delta PSNR per horizon; returns {label: path relative to out}."""
    m = results["metrics"]
    plots = {
        "PSNR per horizon": ("horizon.png", {v: {n: m[n][v]["psnr"] for n in m} for v in VIEWS}, "PSNR", "dB"),
        "SSIM per horizon": ("ssim.png", {v: {n: m[n][v]["ssim"] for n in m} for v in VIEWS}, "SSIM", "SSIM"),
        "delta PSNR per horizon": (
            "delta_psnr.png",
            {v: {"true - random actions": results["delta_psnr"][v]} for v in VIEWS},
            "delta PSNR",
            "dB",
        ),
    }
    for file, series, title, ylabel in plots.values():
        plot_per_view(out / "plots" / file, series, title, ylabel)
    return {label: f"plots/{spec[0]}" for label, spec in plots.items()}


def write_sample_video(path: Path, samples: dict[str, np.ndarray], fps: float, scale: int) -> None:
    """Ground truth | model | model with random actions (| each baseline) side by side, one window after another
    (seed frames first)."""
    gap = np.full((*samples["ground_truth"].shape[:3], 2, 3), 255, dtype=np.uint8)
    panels = [p for frames in samples.values() for p in (frames, gap)][:-1]
    side = np.concatenate(panels, axis=3)  # (S, T, H, W', 3)
    write_video(path, side.reshape(-1, *side.shape[2:]), fps=fps, scale=scale)


def run_stability(
    wm: WorldModel, ev: Evaluation, data: EpisodeDataset, steps: int, seed: int, out: Path, scale: int
) -> tuple[dict, dict[str, str]]:
    """Every stability policy from the first window's seed: judgements, plot and videos; returns (results part, video links).

    The frozen floor is scaled to how much the held-out data's own pictures move (`calibrate_change`)."""
    real_change = real_window_change(real_episodes(data))
    thresholds = calibrate_change(Thresholds(), real_change)
    traces = [stability_rollout(wm, ev.seed_frames, ev.seed_actions, policy, steps, seed=seed) for policy in POLICIES]
    judgements = [judge(t, thresholds) for t in traces]
    write_stability_plot(out / "plots" / "stability.png", traces, judgements, thresholds)
    videos = {}
    for trace in traces:
        write_video(out / "videos" / f"stability_{trace.policy}.mp4", trace.frames, fps=wm.fps, scale=scale)
        videos[f"stability rollout, {trace.policy} policy"] = f"videos/stability_{trace.policy}.mp4"
    part = {
        "steps": steps,
        "thresholds": vars(thresholds),
        "real_window_change": real_change,
        "policies": {t.policy: j.to_dict() for t, j in zip(traces, judgements, strict=True)},
    }
    return part, videos


def train_baseline(args: argparse.Namespace, wm: WorldModel, out: Path) -> str:
    """Train the pixel FiLM baseline on --train-baseline into OUT/baseline/; -> its checkpoint."""
    from ochre.training.pixel_film import PixelFiLMTrainConfig, train_pixel_film

    preset = args.baseline_config or f"configs/{wm.info.get('world', 'coinrun')}/pixel_film.yaml"
    overrides = [f"data.path={args.train_baseline}", f"run.dir={out}", "run.name=baseline", f"train.device={args.device}"]
    overrides += [f"train.max_steps={args.baseline_steps}"] if args.baseline_steps else []
    return str(train_pixel_film(load_config(PixelFiLMTrainConfig, preset, overrides)))


def load_baseline(path: str, args: argparse.Namespace, wm: WorldModel) -> dict[str, PixelWorld]:
    """The pixel FiLM baseline in `path`, once it is known to fit the world and --context."""
    baseline = PixelWorld.load(path, device=args.device)
    if baseline.frame_shape != wm.frame_shape or baseline.action_spec.to_dict() != wm.action_spec.to_dict():
        raise OchreError(f"{path}: the baseline was trained on other frames or actions than the world {args.checkpoint}")
    if baseline.model.cfg.past_frames > args.context:
        raise OchreError(
            f"{path}: the baseline reads {baseline.model.cfg.past_frames} past frames; pass --context of at least that"
        )
    return {"pixel_film": baseline}


def playtest_programs(args: argparse.Namespace, wm: WorldModel) -> PlaytestPlan:
    """The world's play-test plan (registered, else generic); unknown --playtest-programs stop here, before the
    evaluation runs (the play tests come last)."""
    names = [p.strip() for p in args.playtest_programs.split(",") if p.strip()]
    plan = playtest_plan(str(wm.info.get("world", "")), wm.action_spec)
    missing = [p for p in names if p not in plan.programs]
    if missing:
        raise OchreError(f"--playtest-programs: {', '.join(missing)} not found (the world has: {', '.join(plan.programs)})")
    return plan


def run_action_following(args: argparse.Namespace, idm: FrameIDM, predictors: dict[str, Predictor], data: EpisodeDataset) -> dict:
    """IDM accuracy on each predictor's generated transitions (and on the real ones) over the same windows."""
    results = {
        name: action_following(idm, world, data, args.windows, args.context, args.idm_horizon, args.seed)
        for name, world in predictors.items()
    }
    return {"idm": args.idm, "results": results}


def run_world_checks(args: argparse.Namespace, wm: WorldModel, predictors: dict[str, Predictor], data: EpisodeDataset) -> dict:
    """The checks that apply to this world (None where one does not), each on every predictor."""
    checks: dict[str, Any] = {"camera": None, "ball": None}
    registered = find_play_checks(wm.info.get("world", ""), wm.action_spec)
    applies = registered.evaluator if registered is not None else ()
    if "camera" in applies:
        limits = PITCH_LIMITS.get(wm.info.get("world", ""))
        seeds = held_out_seeds(data, args.windows, args.context, args.seed, limits)
        results = {
            name: camera_response(world, seeds.frames, seeds.actions, pitch=seeds.pitch, pitch_limits=limits, batch=args.batch)
            for name, world in predictors.items()
        }
        real, note = real_game_camera(data, args.real_game_episodes, args.seed, limits)
        checks["camera"] = {"results": results, "real_game": real, "real_game_note": note}
    if "ball" in applies:
        checks["ball"] = {
            "results": {
                name: ball_tracking(world, data, args.windows, args.context, seed=args.seed, batch=args.batch)
                for name, world in predictors.items()
            },
            "ceiling": ball_ceiling(wm, data, args.windows, args.context, seed=args.seed, batch=args.batch),
        }
    return checks


def run_playtest_section(args: argparse.Namespace, wm: WorldModel, plan: PlaytestPlan, out: Path) -> dict:
    """The play tests (ochre/playtest) with --playtest-seeds seeds, greedy and sampled; videos under OUT/videos/playtest/."""
    programs = tuple(p.strip() for p in args.playtest_programs.split(",") if p.strip())
    settings = PlaytestSettings(seeds=args.playtest_seeds, context=args.context, programs=programs)
    report = run_playtests(wm, settings, plan, videos=out / "videos" / "playtest")
    report["meta"]["checkpoint"] = args.checkpoint
    return report


def real_game_camera(
    data: EpisodeDataset, episodes: int, seed: int, limits: tuple[float, float] | None
) -> tuple[dict | None, str]:
    """The camera check on the game the held-out data came from -> (result or None, why it is missing)."""
    source = data.manifest.get("source")
    if not episodes:
        return None, "skipped (--real-game-episodes 0)"
    if not isinstance(source, dict) or "env" not in source:
        return None, f"{data.path} was not generated from a game (no source env in its manifest)"
    try:
        env = make_env(source["env"], world_settings(source["env"], source.get("settings")), seed=seed)
    except OchreError as err:
        return None, f"the real game could not be started ({err})"
    try:
        return real_camera_response(env, episodes, seed=seed, pitch_limits=limits), ""
    finally:
        env.close()


def world_checks_line(checks: dict | None) -> str:
    """One line for the console: each check's score per predictor (and the real game)."""
    if checks is None:
        return "world checks: skipped (--no-world-checks)"
    parts = []
    if checks["camera"]:
        rows = dict(checks["camera"]["results"])
        if checks["camera"]["real_game"]:
            rows["real game"] = checks["camera"]["real_game"]
        scores = ", ".join(f"{n} {_f(r['yaw_fraction'])}/{_f(r['pitch_fraction'])}" for n, r in rows.items())
        parts.append(f"camera yaw/pitch correct: {scores}")
    if checks["ball"]:
        rows = checks["ball"]["results"]
        first = next(iter(rows.values()))
        scores = ", ".join(f"{n} {_f(r['fraction'])}" for n, r in rows.items())
        parts.append(f"ball within {first['tol_px']:g} px at step {first['horizon']} ({first['cases']} cases): {scores}, "
                     f"copy-last {_f(first['copy_last_fraction'])}")  # fmt: skip
    return "world checks: " + ("; ".join(parts) if parts else "none applies to this world")


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.baseline and args.train_baseline:
        raise OchreError("pass --baseline FILE (a trained baseline) or --train-baseline DIR (train one now), not both")
    wm = WorldModel.load(args.checkpoint, device=args.device)
    data = EpisodeDataset(args.data, expect_kind="frames")
    baselines = load_baseline(args.baseline, args, wm) if args.baseline else {}
    idm = load_idm(args.idm, args.device if args.device != "auto" else "cpu")[0] if args.idm else None
    plan = playtest_programs(args, wm) if args.playtest_seeds else None
    out = Path(args.out) if args.out else make_run_dir("runs", wm.info.get("world", "world"), "eval")
    if args.train_baseline:
        baselines = load_baseline(train_baseline(args, wm, out), args, wm)
    notes: list[str] = []
    lpips = load_lpips(weights=args.lpips_weights, warn=notes.append)
    lpips_note = f"{notes[0]} (for this evaluator: --lpips-weights FILE)" if notes else ""
    if lpips_note:
        print(lpips_note)
    settings = EvalSettings(args.context, args.horizon, args.windows, args.batch, args.seed)
    ev = evaluate_world(wm, data, settings, lpips=lpips, keep=SAMPLE_WINDOWS, baselines=baselines)
    rows = summary_rows(ev.stats)
    meta = {"world": wm.info.get("world", "world"), "checkpoint": args.checkpoint, "data": args.data, "settings": vars(settings)}
    meta["baselines"] = {name: baseline.info["path"] for name, baseline in baselines.items()}
    write_flat_outputs(out, rows, flat_summary(rows, meta, args.horizon))
    results = build_results(rows, meta | {"lpips": {"available": lpips is not None, "note": lpips_note}})
    scale = max(1, VIDEO_SIZE // max(wm.frame_shape[:2]))
    write_sample_video(out / "videos" / "samples.mp4", ev.samples, wm.fps, scale)
    files = {
        "plots": write_horizon_plots(out, results),
        "videos": {
            "samples: ground truth | "
            + " | ".join(predictor_label(n) for n in ev.samples if n != "ground_truth"): "videos/samples.mp4"
        },
    }
    results["stability"] = None
    if args.stability_steps:
        results["stability"], videos = run_stability(wm, ev, data, args.stability_steps, args.seed, out, scale)
        files["plots"]["stability over time"] = "plots/stability.png"
        files["videos"] |= videos
    results["action_following"] = run_action_following(args, idm, {"model": wm, **baselines}, data) if idm else None
    results["world_checks"] = None if args.no_world_checks else run_world_checks(args, wm, {"model": wm, **baselines}, data)
    results["playtest"] = run_playtest_section(args, wm, plan, out) if plan else None
    results["files"] = files
    write_json(out / "results.json", results)
    playtest_text = "\n" + playtest_markdown(results["playtest"]) if results["playtest"] else ""
    write_text(out / "report.md", render_markdown(results) + playtest_text)
    print(f"{settings.windows} windows, K={args.context}, N={args.horizon}, data {args.data}")
    for view in VIEWS:
        print()
        print(format_table(rows, view, list(results["metrics"])))
    print(f"\nSSIM@1 (gray84): model {rows[0]['model/gray84/ssim']:.3f}, copy_last {rows[0]['copy_last/gray84/ssim']:.3f}")
    if results["action_following"]:
        af = results["action_following"]["results"]
        print("action following (IDM accuracy): " + ", ".join(f"{n} {r['generated_accuracy']:.3f}" for n, r in af.items())
              + f", real {af['model']['real_accuracy']:.3f}, chance {af['model']['chance']:.3f}")  # fmt: skip
    print(world_checks_line(results["world_checks"]))
    if results["stability"]:
        print("stability: " + ", ".join(f"{p} {j['verdict']}" for p, j in results["stability"]["policies"].items()))
    if results["playtest"]:
        print(playtest_text)
    print(f"wrote {out}/report.md, results.json, metrics.csv, summary.json, plots/, videos/")


if __name__ == "__main__":
    main()
