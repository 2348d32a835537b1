"""The held-out report: markdown from a hand-made results dict, and the evaluator end to end on the tiny world."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ochre.evaluation import PREDICTORS, VIEWS
from ochre.report import PUBLISHED, build_results, render_markdown, report_horizons
from tests.conftest import run_module

LPIPS_NOTE = "LPIPS disabled: backbone weights not found at /nowhere/alexnet.pth"


def fake_rows(horizon: int, lpips: bool = False) -> list[dict[str, float]]:
    """Summary rows where the model beats random actions by 1 dB, which beat copy-last by 1 dB."""
    offset = {"model": 2.0, "model_random_actions": 1.0, "copy_last": 0.0}
    rows = []
    for h in range(1, horizon + 1):
        row: dict[str, float] = {"horizon": h}
        for name in PREDICTORS:
            for view in VIEWS:
                row[f"{name}/{view}/psnr"] = 20.0 + offset[name] - 0.1 * h
                row[f"{name}/{view}/ssim"] = 0.8 - 0.01 * h
                row[f"{name}/{view}/mse"] = 0.01
            if lpips:
                row[f"{name}/rgb/lpips"] = 0.1 + 0.01 * h
        rows.append(row)
    return rows


def fake_results(horizon: int = 32, lpips: bool = False, stability: bool = True) -> dict:
    meta = {
        "world": "coinrun",
        "checkpoint": "c.pt",
        "data": "held",
        "settings": {"context": 4, "horizon": horizon, "windows": 8, "batch": 4, "seed": 0},
        "lpips": {"available": lpips, "note": "" if lpips else LPIPS_NOTE},
        "files": {"plots": {"PSNR per horizon": "plots/horizon.png"}, "videos": {"samples": "videos/samples.mp4"}},
    }
    results = build_results(fake_rows(horizon, lpips), meta)
    judgement = {"verdict": "alive", "window": [90, 100], "pixel_std": 0.1, "codes_in_use": 50.0, "codes_in_use_first": 55.0,
                 "codes_in_use_seed": 80, "code_ratio": 0.91, "max_change": 0.02, "mean_change": 0.01, "pressed": True,
                 "collapsed": False}  # fmt: skip
    results["stability"] = {"steps": 100, "thresholds": {}, "policies": {"noop": judgement}} if stability else None
    return results


def test_report_horizons_are_powers_of_two_clipped_to_the_horizon():
    assert report_horizons(32) == [1, 2, 4, 8, 16, 32]
    assert report_horizons(4) == [1, 2, 4]
    assert report_horizons(20) == [1, 2, 4, 8, 16, 20]


def test_build_results_nests_metrics_and_computes_delta_psnr():
    results = fake_results(8)
    assert results["metrics"]["model"]["gray84"]["psnr"][0] == pytest.approx(21.9)
    assert results["delta_psnr"]["rgb"] == pytest.approx([1.0] * 8)
    assert "lpips" not in results["metrics"]["model"]["rgb"]
    json.dumps(results)  # everything is plain JSON


def test_markdown_has_tables_published_numbers_and_explains_missing_lpips():
    md = render_markdown(fake_results(32))
    for heading in (
        "## Headline",
        "## Per-horizon metrics",
        "### rgb",
        "### gray84",
        "## Controllability",
        "## Long-horizon stability",
    ):
        assert heading in md
    assert "| @1 | @2 | @4 | @8 | @16 | @32 | mean |" in md
    assert PUBLISHED["quote"] in md and "DESIGN.md" in md
    assert "| pixel world model (published) | — | 26.34 | 23.95 |" in md
    assert "| model | 21.90 | 18.80 |" in md  # PSNR@1, PSNR@32 (gray84)
    assert "| rgb | 1.00 | 1.00 |" in md  # delta PSNR
    assert md.count(LPIPS_NOTE) == 1 and "LPIPS |" not in md
    assert "| noop | **alive** |" in md and "Collapsed: none." in md
    assert "![PSNR per horizon](plots/horizon.png)" in md and "[samples](videos/samples.mp4)" in md


def test_markdown_with_lpips_and_other_horizon_and_no_stability():
    md = render_markdown(fake_results(8, lpips=True, stability=False))
    assert "| LPIPS | model | 0.110 |" in md and "LPIPS is not reported" not in md
    assert "| pixel world model (published) | — | — | — |" in md and "this run's horizon is 8" in md
    assert "Skipped (`--stability-steps 0`)" in md


def test_evaluate_writes_the_full_report(tiny_world, tmp_path):
    out = tmp_path / "report"
    proc = run_module("train.evaluate", "--checkpoint", str(tiny_world["world"]), "--data", str(tiny_world["frames"]),
                      "--windows", "4", "--batch", "2", "--horizon", "4", "--stability-steps", "20", "--playtest-seeds", "0", "--out", str(out),
                      "--device", "cpu")  # fmt: skip
    assert "stability:" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["report_horizons"] == [1, 2, 4] and len(results["delta_psnr"]["gray84"]) == 4
    assert set(results["stability"]["policies"]) == {"noop", "scripted", "random"}
    md = (out / "report.md").read_text()
    assert "## Controllability" in md and "## Long-horizon stability" in md
    assert results["lpips"]["available"] or results["lpips"]["note"] in md
    for name in ("horizon", "ssim", "delta_psnr", "stability"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 0
    for name in ("samples", "stability_noop", "stability_scripted", "stability_random"):
        assert (out / "videos" / f"{name}.mp4").stat().st_size > 0
    assert (out / "metrics.csv").is_file() and "model/gray84/mean_psnr" in json.loads((out / "summary.json").read_text())


def test_horizon_stats_adds_rgb_lpips_with_a_model():
    import torch

    from ochre.evaluation import HorizonStats
    from ochre.losses import LPIPSLoss

    stats = HorizonStats(2, LPIPSLoss.random_backbone())
    frames = torch.rand(3, 2, 3, 32, 32)
    stats.add(frames, frames)
    assert stats.table("rgb")["lpips"] == pytest.approx([0.0, 0.0], abs=1e-5) and "lpips" not in stats.table("gray84")


def test_benchmarks_collects_worlds_and_names_what_is_missing(tmp_path):
    from train.benchmarks import render

    ev = fake_results(32)
    ev["action_following"] = None
    ev["world_checks"] = None
    (tmp_path / "coinrun" / "eval").mkdir(parents=True)
    (tmp_path / "coinrun" / "eval" / "results.json").write_text(json.dumps(ev))
    live = {"step_decode_ms": {"p50": 8.0, "p99": 15.0}, "latency_frames": {"p50": 0, "max": 1}, "display_fps": 59.9,
            "target_fps": 60, "machine": {"load_average_1min": 1.0}}  # fmt: skip
    (tmp_path / "coinrun" / "live.json").write_text(json.dumps(live))
    md = render(["coinrun", "doom"], tmp_path)
    assert "| coinrun | 21.90 | 18.80 |" in md and "| 8.0 / 15.0 |" in md  # headline row: PSNR@1, @32 ... live
    assert "| doom | — |" in md and "Not evaluated: needs `checkpoints/doom.pt`" in md
    assert "### Headline (grayscale 84x84 protocol)" in md and "Not measured: `python -m train.bench" in md


def test_play_gif_shows_the_seed_then_the_scripted_rollout(tmp_path, tiny_world):
    from PIL import Image

    from ochre.data.store import EpisodeDataset
    from train.benchmarks import write_play_gif

    frames, _ = EpisodeDataset(tiny_world["frames"]).rows(0, 0, 4)
    np.savez(tmp_path / "seed.npz", frames=np.stack([frames, frames]), actions=np.zeros((2, 3), dtype=np.int64))
    (tmp_path / "actions.json").write_text(json.dumps({"actions": [7, 7, 4, 1, 1]}))
    write_play_gif(tiny_world["world"], tmp_path, tmp_path / "docs" / "coinrun.gif", seeds=2, scale=1)
    gif = Image.open(tmp_path / "docs" / "coinrun.gif")
    assert gif.n_frames == 4 + 5 and gif.size == (2 * 64, 64)  # K seed + N predicted frames, two panels
    first = np.asarray(gif.convert("RGB"), dtype=np.float64)[:, :64]
    assert np.abs(first - frames[0]).mean() < 8  # the first frame is the real seed (up to the GIF palette)


def test_benchmarks_leave_the_table_alone_without_measurements(tmp_path, capsys):
    from train.benchmarks import main

    out = tmp_path / "BENCHMARKS.md"
    out.write_text("the numbers of the last measurement\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--runs", str(tmp_path / "empty"), "--out", str(out)])
    assert exit_.value.code == 2 and "no measurements" in capsys.readouterr().err
    assert out.read_text() == "the numbers of the last measurement\n"


def test_benchmarks_keep_the_part_of_a_world_not_measured_again(tmp_path):
    from train.benchmarks import KEPT, render

    def measured(root, world, horizon):
        (root / world / "eval").mkdir(parents=True)
        (root / world / "eval" / "results.json").write_text(json.dumps(fake_results(horizon) | {"world_checks": None}))

    worlds = ["coinrun", "doom", "pong"]
    for world in worlds:
        measured(tmp_path / "before", world, 16)
    (tmp_path / "before" / "train.json").write_text("{}")  # unreadable as a measurement: listed as not measured
    old = render(worlds, tmp_path / "before")
    old = old.replace("\n## Training throughput", "\n## Side by side\n\nA table by hand.\n\n## Training throughput")
    measured(tmp_path / "now", "pong", 32)
    md = render(worlds, tmp_path / "now", old)
    row = lambda text, world: next(line for line in text.splitlines() if line.startswith(f"| {world} |"))  # noqa: E731
    section = lambda text, world: text.split(f"\n## {world}\n")[1].split("\n## ")[0]  # noqa: E731
    assert row(md, "coinrun") == row(old, "coinrun") and row(md, "pong") != row(old, "pong")
    assert section(md, "coinrun").strip() == f"{KEPT}\n\n" + section(old, "coinrun").strip()
    assert KEPT not in section(md, "pong") and md.count(KEPT) == 3  # coinrun, doom and the throughput part
    assert render(worlds, tmp_path / "now", md) == md  # marked once, however often it is kept
    assert "\n## Side by side\n\nA table by hand.\n\n## Training throughput" in md  # kept as it was, before throughput


def test_benchmarks_add_a_world_s_play_tests_and_replace_them_when_measured_again(tmp_path):
    from train.benchmarks import KEPT, render

    (tmp_path / "coinrun" / "eval").mkdir(parents=True)
    (tmp_path / "coinrun" / "eval" / "results.json").write_text(json.dumps(fake_results(16) | {"world_checks": None}))
    old = render(["coinrun"], tmp_path)
    assert "### Play tests" not in old
    pt = tmp_path / "only" / "coinrun" / "playtest"
    pt.mkdir(parents=True)
    program = {"program": "hold_right", "sampling": "greedy", "seeds": 8, "steps": 64, "real_steps_median": 64.0,
               "liveliness": 0.1, "change_world": 0.2, "change_real": 2.0, "detail": {"1": 0.4, "32": 0.4, "300": 0.4},
               "psnr_rgb": {}, "psnr_gray84": {"1": 30.0}, "copy_last_gray84": {}, "ceiling_gray84": {}, "ssim_gray84": {},
               "motion": {"dx": {"16": {"scored": 4, "sign_agreement": 0.5, "magnitude_ratio": 0.0}}},
               "objects": {"avatar": {"present": 0.75, "in_place_at_16": 0.75}}}  # fmt: skip
    meta = {"world": "coinrun", "checkpoint": "checkpoints/coinrun.pt", "seeds": 8, "seed_base": 0, "settings": {},
            "temperature": 1.0, "top_k": 0}  # fmt: skip
    (pt / "playtest.json").write_text(json.dumps({"meta": meta, "programs": [program]}))
    md = render(["coinrun"], tmp_path / "only", old)  # only the play tests measured: the rest is kept
    section = md.split("\n## coinrun\n")[1]
    assert KEPT in section and "### Headline" in section and "| hold_right | greedy | 64 of 64 | 0.10 |" in section
    program["liveliness"] = 0.9
    (pt / "playtest.json").write_text(json.dumps({"meta": meta, "programs": [program]}))
    again = render(["coinrun"], tmp_path / "only", md)
    assert again.count("### Play tests") == 1 and "| 0.90 |" in again and "| 0.10 |" not in again
