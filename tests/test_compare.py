"""train.compare on tiny worlds: every row on the same windows, a flow world's rows per sampler step count, best of
N for the stochastic rows, the skips, the report, and one-line errors for bad arguments."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from ochre import WorldModel
from ochre.compare import CompareSettings, Comparison, Row, compare, copy_last_row, playtest_summary, world_rows
from ochre.compare_report import render_markdown
from ochre.data.store import EpisodeDataset
from ochre.evaluation import EvalSettings
from ochre.idm import save_idm, train_idm
from ochre.pixel_world import PixelWorld
from ochre.runtime import LatentWorldModel
from tests.conftest import run_module
from train.compare import main

EVAL = EvalSettings(context=4, horizon=8, windows=6, batch=3, seed=0)
QUIET = CompareSettings(eval=EVAL, samples=3, stability_steps=0, playtest_seeds=0, bench_steps=0)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory, tiny_world, frames_dataset) -> dict:
    """The tiny token world, a tiny bridge and flow world on a tiny continuous autoencoder, a tiny pixel FiLM
    baseline and a tiny IDM, all from the same frames."""
    root = tmp_path_factory.mktemp("compare")
    runs, latents = root / "runs", root / "latents"
    common = [f"run.dir={runs}", "data.val_every=4"]
    run_module("vqvae.train", "--config", "configs/tiny/latent_ae.yaml", f"data.path={frames_dataset}", "run.name=ae", *common)
    run_module("vqvae.tokenize", "--tokenizer", str(runs / "ae/checkpoints/tokenizer.pt"), "--data", str(frames_dataset),
               "--out", str(latents), "--device", "cpu")  # fmt: skip
    for kind in ("latent_gru", "latent_flow"):
        run_module("train.dynamics", "--config", f"configs/tiny/{kind}.yaml", f"data.path={latents}", f"run.name={kind}", *common)  # fmt: skip
    run_module("train.dynamics", "--config", "configs/tiny/pixel_film.yaml", f"data.path={frames_dataset}", "run.name=pixel", *common)  # fmt: skip
    data = EpisodeDataset(frames_dataset)
    idm, report = train_idm(data, data.action_spec, steps=3, batch=8, val_every=4, channels=(8, 8), progress=False)
    save_idm(root / "idm.pt", idm, data.action_spec, report.val_accuracy)
    return {
        "data": frames_dataset,
        "token": tiny_world["world"],
        "gru": runs / "latent_gru/checkpoints/world.pt",
        "flow": runs / "latent_flow/checkpoints/world.pt",
        "pixel": runs / "pixel/checkpoints/pixel_world.pt",
        "idm": root / "idm.pt",
    }


def rows_of(worlds: dict, flow_steps: tuple[int, ...] = (1, 2)) -> list[Row]:
    data = EpisodeDataset(worlds["data"])
    rows = [copy_last_row(data), Row("pixel_film", "baseline", PixelWorld.load(worlds["pixel"], device="cpu"))]
    for name in ("token", "gru", "flow"):
        rows += world_rows(name, WorldModel.load(worlds[name], device="cpu"), str(worlds[name]), flow_steps)
    return rows


@pytest.fixture(scope="module")
def scored(worlds) -> Comparison:
    return compare(rows_of(worlds), EpisodeDataset(worlds["data"]), QUIET)


def by_name(c: Comparison) -> dict:
    return {r.name: r for r in c.rows}


def test_every_row_is_scored_on_the_same_windows(scored, worlds):
    rows = by_name(scored)
    assert list(rows) == ["copy_last", "pixel_film", "token", "gru", "flow@1", "flow@2"]
    for r in scored.rows:
        assert r.copy_last == rows["copy_last"].copy_last and len(r.greedy["gray84"]["psnr"]) == EVAL.horizon
    assert rows["copy_last"].greedy == rows["copy_last"].copy_last and rows["copy_last"].random_actions is None
    again = compare([copy_last_row(EpisodeDataset(worlds["data"]))], EpisodeDataset(worlds["data"]), QUIET)
    assert again.rows[0].greedy["rgb"]["psnr"] == rows["copy_last"].greedy["rgb"]["psnr"]  # a call of its own: same windows


def test_a_flow_world_gets_one_row_per_sampler_step_count(scored, worlds, monkeypatch):
    rows = by_name(scored)
    assert (rows["flow@1"].flow_steps, rows["flow@2"].flow_steps) == (1, 2)
    own = world_rows("flow", WorldModel.load(worlds["flow"], device="cpu"), "", ())
    assert [r.name for r in own] == ["flow@2"]  # without --flow-steps: the world's own (the tiny preset's 2)
    seen = []  # the sampler steps each flow rollout step ran with (the tiny decoder hides the difference in pixels)
    real = LatentWorldModel._flow_sampling
    monkeypatch.setattr(LatentWorldModel, "_flow_sampling", lambda self, *a: seen.append(self.flow_steps) or real(self, *a))
    flow = [r for r in rows_of(worlds, (1, 3)) if r.name.startswith("flow")]
    compare(flow, EpisodeDataset(worlds["data"]), replace(QUIET, samples=0))
    per_row = EVAL.windows * EVAL.horizon * 2 // EVAL.batch  # steps of the true- and random-action rollouts
    assert seen == [1] * per_row + [3] * per_row


def test_best_of_n_for_stochastic_rows_only(scored):
    rows = by_name(scored)
    for name in ("token", "flow@1", "flow@2"):
        r = rows[name]
        assert r.stochastic and r.best_of_n is not None and r.sampled is not None
        for view in ("rgb", "gray84"):
            best, mean = np.array(r.best_of_n[view]["psnr"]), np.array(r.sampled[view]["psnr"])
            assert (best >= mean - 1e-9).all() and (best > mean).any()
    for name in ("copy_last", "pixel_film", "gru"):
        assert not rows[name].stochastic and rows[name].best_of_n is None
    table = render_markdown(scored)
    assert "= greedy (deterministic)" in table and "| flow@2 |" in table


def test_skipped_sections_are_none_and_dashes(scored):
    for r in scored.rows:
        assert r.stability is None and r.playtest is None and r.live_ms is None and r.action_following is None
    line = next(line for line in render_markdown(scored).splitlines() if line.startswith("| gru |"))
    assert line.endswith("| — | — | — | — |")


def test_play_test_rows_summarise_the_suite(worlds, monkeypatch):
    """Greedy play tests for a deterministic world, greedy and sampled for a flow world; the summary's means."""
    import ochre.compare as module

    def fake(wm, settings, **_):
        program = {"program": "hold_right", "psnr_gray84": {"32": 20.0}, "copy_last_gray84": {"32": 15.0},
                   "ceiling_gray84": {"32": 30.0}, "liveliness": 0.5, "detail": {"32": 0.8},
                   "motion": {"dx": {"16": {"scored": 3, "sign_agreement": 1.0}}, "dy": {"16": {"scored": 1, "sign_agreement": 0.0}}},
                   "objects": {"avatar": {"present": 0.9, "in_place_at_16": 0.25}}}  # fmt: skip
        return {"meta": {}, "programs": [program | {"sampling": mode} for mode in settings.modes]}

    monkeypatch.setattr(module, "run_playtests", fake)
    rows = [r for r in rows_of(worlds, (2,)) if r.name in ("gru", "flow@2")]
    c = compare(rows, EpisodeDataset(worlds["data"]), CompareSettings(eval=EVAL, samples=1, stability_steps=0, playtest_seeds=8, bench_steps=0))  # fmt: skip
    gru, flow = c.rows
    assert list(gru.playtest["summary"]) == ["greedy"] and list(flow.playtest["summary"]) == ["greedy", "sample"]
    s = flow.playtest["summary"]["sample"]
    assert s["psnr_gray84"] == 20.0 and s["motion_sign"] == 0.75 and s["avatar_in_place"] == 0.25
    assert "| gru | greedy | 20.00 / 15.00 / 30.00 |" in render_markdown(c)
    assert playtest_summary({"programs": []}) == {}


def test_cli_writes_the_report_results_and_plot(worlds, tmp_path, capsys):
    out = tmp_path / "cmp"
    main(["--data", str(worlds["data"]), "--world", f"token={worlds['token']}", "--world", f"flow={worlds['flow']}",
          "--flow-steps", "1,2", "--samples", "2", "--baseline", str(worlds["pixel"]), "--idm", str(worlds["idm"]),
          "--idm-horizon", "3", "--windows", "4", "--batch", "2", "--horizon", "6", "--playtest-seeds", "0",
          "--stability-steps", "10", "--bench-steps", "3", "--device", "cpu", "--out", str(out)])  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    rows = {r["name"]: r for r in results["rows"]}
    assert list(rows) == ["copy_last", "pixel_film", "token", "flow@1", "flow@2"] and results["horizons"] == [1, 6]
    assert rows["flow@1"]["stability"]["policies"].keys() == {"noop", "scripted", "random"}
    assert rows["pixel_film"]["stability"] is None and rows["pixel_film"]["live_ms"]["p50"] > 0
    assert rows["copy_last"]["live_ms"] is None and rows["token"]["delta_psnr"]["gray84"] is not None
    assert rows["copy_last"]["action_following"]["real_accuracy"] == rows["flow@2"]["action_following"]["real_accuracy"]
    report = (out / "report.md").read_text()
    assert "best of 2, gray84 (dB)" in report and "- command: `python -m train.compare --data" in report
    assert "- **live ms**" in report and (out / "plots/psnr_per_horizon.png").stat().st_size > 0
    assert "| flow@1 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--world", "checkpoints"], "argument --world: must be NAME=PATH"),
        (["--world", "a b=x.pt"], "argument --world: the row name 'a b' must be"),
        (["--world", "w={missing}"], "--world w={missing}: {missing}: checkpoint not found"),
        (["--world", "w={pixel}"], "expected an ochre-world checkpoint"),
        (["--world", "w={garbage}"], "--world w={garbage}: {garbage}: not a readable checkpoint"),
        (["--world", "w={token}", "--baseline", "w={pixel}"], "the row name 'w' is taken"),
        (["--world", "w={token}", "--baseline", "{token}"], "--baseline pixel_film="),
        (["--world", "w={flow}", "--flow-steps", "0,2"], "argument --flow-steps: must be step counts >= 1"),
        (["--world", "w={token}", "--idm", "{token}"], "--idm idm="),
    ],
)
def test_bad_arguments_give_one_line(worlds, tmp_path, capsys, args, message):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    paths = {k: str(v) for k, v in worlds.items()} | {"missing": str(tmp_path / "nope.pt"), "garbage": str(tmp_path / "bad.pt")}
    argv = ["--data", str(worlds["data"]), "--out", str(tmp_path / "o"), *(a.format(**paths) for a in args)]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert message.format(**paths) in err and not (tmp_path / "o").exists()
