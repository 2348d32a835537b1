"""Generic play tests: a world with no programs registered plays a set derived from its action schema, end to end on
a tiny CartPole world; the shipped worlds keep their registered programs."""

import json

import numpy as np
import pytest

from ochre.actions import PROCGEN_ACTIONS, FactoredActionSpec, FirstPersonActionSpec
from ochre.envs.gym import discrete_schema
from ochre.playtest.checks import GENERIC_CHECKS, WORLD_CHECKS, playtest_plan
from ochre.playtest.generic import generic_programs, has_rest, write_programs
from ochre.playtest.programs import MAX_STEPS, MIN_STEPS, encode_input, load_programs
from ochre.playtest.report import playtest_markdown
from ochre.playtest.suite import SEED_BASE, fidelity_columns, play_real, score_program
from tests.conftest import run_module

CARTPOLE = discrete_schema("gym:CartPole-v1", 2, None)  # ids 0 and 1 push left and right: no do-nothing
ARM = FactoredActionSpec(name="arm", controls=("torque", "grip"), values=((-2.0, 0.0, 2.0), (0.0, 1.0)), rest=(1, 0))
FP = FirstPersonActionSpec()


def held_action(program, spec):
    seg = program.segments[0]
    return encode_input(spec, seg.hold, seg.look)


# --- the set derived from a schema ------------------------------------------------------------------


def test_a_discrete_schema_holds_each_action_and_stands_only_with_a_real_noop():
    procgen = generic_programs(PROCGEN_ACTIONS)
    assert list(procgen)[0] == "stand" and list(procgen)[-1] == "sticky_random"
    held = {int(held_action(p, PROCGEN_ACTIONS)) for n, p in procgen.items() if n.startswith("hold_")}
    assert held == set(range(15)) - {PROCGEN_ACTIONS.noop} and "hold_right+up" in procgen
    cartpole = generic_programs(CARTPOLE)
    assert not has_rest(CARTPOLE) and list(cartpole) == ["hold_action_0", "hold_action_1", "sticky_random"]
    assert [int(held_action(cartpole[f"hold_action_{i}"], CARTPOLE)) for i in (0, 1)] == [0, 1]


def test_factored_and_first_person_schemas_hold_each_value_off_rest():
    arm = generic_programs(ARM)
    assert list(arm) == ["stand", "hold_torque=-2", "hold_torque=2", "hold_grip", "sticky_random"]
    assert held_action(arm["hold_torque=-2"], ARM).tolist() == [0, 0] and held_action(arm["hold_grip"], ARM).tolist() == [1, 1]
    fp = generic_programs(FP)
    assert {f"hold_{b}" for b in FP.buttons} <= set(fp)
    yaw = [held_action(p, FP) for n, p in fp.items() if n.startswith("hold_yaw=")]
    assert sorted(int(a[0]) for a in yaw) == [b for b in range(FP.camera_bins) if b != FP.still_bin]
    assert all(a[1] == FP.still_bin and not a[2:].any() for a in yaw)


@pytest.mark.parametrize("spec", [PROCGEN_ACTIONS, CARTPOLE, ARM, FP], ids=lambda s: s.name)
def test_every_generic_program_fits_its_schema_and_the_protocol(spec):
    programs = generic_programs(spec)
    for program in programs.values():
        program.check(spec)
        assert MIN_STEPS <= program.steps <= MAX_STEPS and program.name == program.name.strip()
    held = [held_action(p, spec).tobytes() for n, p in programs.items() if n != "sticky_random"]
    assert len(held) == len(set(held))  # no two programs hold the same action


def test_generic_programs_written_as_json_load_back_the_same(tmp_path):
    programs = generic_programs(ARM)
    write_programs(tmp_path, programs)
    again = load_programs(tmp_path)
    assert set(again) == set(programs)
    for name, program in programs.items():
        assert again[name].segments == program.segments and again[name].description == program.description


# --- the registry: shipped worlds unchanged, anything else generic ------------------------------------


@pytest.mark.parametrize(("world", "spec", "folder"), [("coinrun", PROCGEN_ACTIONS, "coinrun"), ("doom", FP, "doom"),
                                                       ("pong", PROCGEN_ACTIONS, "pong")])  # fmt: skip
def test_shipped_worlds_play_their_registered_programs(world, spec, folder):
    plan = playtest_plan(world, spec)
    assert plan.source == "registered" and plan.origin == f"assets/{folder}/programs"
    assert plan.checks is not GENERIC_CHECKS and plan.checks in WORLD_CHECKS.values()
    shipped = load_programs(f"assets/{folder}/programs")
    assert {n: p.segments for n, p in plan.programs.items()} == {n: p.segments for n, p in shipped.items()}


def test_an_unregistered_world_plays_the_generic_set_and_a_folder_replaces_it(tmp_path):
    plan = playtest_plan("gym:CartPole-v1", CARTPOLE)
    assert plan.checks is GENERIC_CHECKS and plan.source == "generic" and plan.programs == generic_programs(CARTPOLE)
    assert GENERIC_CHECKS.avatar is None and GENERIC_CHECKS.motion == ("dy", "dx") and GENERIC_CHECKS.evaluator == ()
    assert "gym:CartPole-v1" in plan.origin
    write_programs(tmp_path, {"hold_action_1": plan.programs["hold_action_1"]})
    mine = playtest_plan("gym:CartPole-v1", CARTPOLE, tmp_path)
    assert mine.source == "folder" and list(mine.programs) == ["hold_action_1"] and mine.checks is GENERIC_CHECKS


def test_the_real_game_passes_the_generic_checks_and_copy_last_does_not():
    program = generic_programs(CARTPOLE)["hold_action_1"]
    real = play_real("gym:CartPole-v1", program, [SEED_BASE + i for i in range(8)], 4)
    assert real.frames.shape[2:] == (64, 64, 3) and real.valid[:, :8].all()  # the pole takes a while to fall
    at = fidelity_columns(real.frames.shape[1])
    own = score_program(real, real.frames, real.frames[:, at], GENERIC_CHECKS, None, "real")
    assert own.psnr_gray84[1] == own.ceiling_gray84[1] == 100.0 and own.objects == {}
    assert own.liveliness == pytest.approx(1.0) and own.detail[1] == pytest.approx(1.0)
    copy = np.repeat(real.seed_frames[:, -1:], real.frames.shape[1], axis=1)
    frozen = score_program(real, copy, real.frames[:, at], GENERIC_CHECKS, None, "copy_last")
    assert frozen.liveliness < 0.1 and frozen.psnr_gray84[8] < own.psnr_gray84[8]


def test_the_report_says_the_programs_are_the_generic_set():
    meta = {"world": "gym:X-v0", "checkpoint": "w.pt", "seeds": 2, "seed_base": 0, "settings": {}, "temperature": 1.0,
            "top_k": 0, "programs": playtest_plan("gym:X-v0", CARTPOLE).to_json() | {"played": ["hold_action_1"]}}  # fmt: skip
    text = playtest_markdown({"meta": meta, "programs": []})
    assert "Programs: the generic set (no play tests are registered for this world" in text and "`hold_action_1`." in text
    del meta["programs"]  # reports written before the programs were recorded still render
    assert "Programs:" not in playtest_markdown({"meta": meta, "programs": []})


# --- end to end: a tiny CartPole world ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cartpole_world(tmp_path_factory):
    """gym:CartPole-v1 -> tiny tokenizer -> tokens -> tiny dynamics, through the entry points."""
    root, world = tmp_path_factory.mktemp("cartpole"), "gym:CartPole-v1"
    data, runs, tokens = root / "data", root / "runs", root / "tokens"
    run_module("preprocess.generate", "--world", world, "--frames", "240", "--policy", "uniform", "--out", str(data), "--quiet")
    run_module("vqvae.train", "--config", "configs/tiny/vqvae.yaml", f"data.path={data}", f"run.dir={runs}", "run.name=vq",
               "data.val_every=4", f"run.world={world}")  # fmt: skip
    run_module("vqvae.tokenize", "--tokenizer", str(runs / "vq/checkpoints/tokenizer.pt"), "--data", str(data),
               "--out", str(tokens), "--device", "cpu")  # fmt: skip
    run_module("train.dynamics", "--config", "configs/tiny/dynamics.yaml", f"data.path={tokens}", f"run.dir={runs}",
               "run.name=dyn", "data.val_every=4", f"run.world={world}")  # fmt: skip
    return {"data": data, "world": runs / "dyn" / "checkpoints" / "world.pt"}


@pytest.mark.slow
def test_playtest_entry_point_plays_the_generic_set_on_a_gym_world(cartpole_world, tmp_path):
    out = tmp_path / "pt"
    proc = run_module("train.playtest", "--checkpoint", str(cartpole_world["world"]), "--seeds", "2", "--sampling",
                      "greedy", "--out", str(out), "--device", "cpu")  # fmt: skip
    report = json.loads((out / "playtest.json").read_text())
    names = ["hold_action_0", "hold_action_1", "sticky_random"]
    assert [p["program"] for p in report["programs"]] == names
    assert report["meta"]["programs"]["source"] == "generic" and report["meta"]["programs"]["played"] == names
    assert all(p["objects"] == {} and set(p["motion"]) == {"dy", "dx"} for p in report["programs"])
    assert "no play tests are registered for world 'gym:CartPole-v1'" in proc.stdout
    assert "the generic set" in (out / "playtest.md").read_text() and "| sticky_random | greedy |" in proc.stdout
    assert (out / "videos" / "hold_action_1_greedy.mp4").stat().st_size > 0
    assert set(load_programs(out / "programs")) == set(names)  # the set, as files to edit and play with --program-dir
    again = run_module("train.playtest", "--checkpoint", str(cartpole_world["world"]), "--seeds", "2", "--sampling",
                       "greedy", "--program-dir", str(out / "programs"), "--programs", "hold_action_1", "--no-videos",
                       "--out", str(tmp_path / "again"), "--device", "cpu")  # fmt: skip
    assert "Programs: the programs of --program-dir" in again.stdout


@pytest.mark.slow
def test_evaluate_runs_the_generic_play_tests_on_a_gym_world(cartpole_world, tmp_path):
    out = tmp_path / "eval"
    run_module("train.evaluate", "--checkpoint", str(cartpole_world["world"]), "--data", str(cartpole_world["data"]),
               "--horizon", "4", "--windows", "4", "--batch", "2", "--stability-steps", "0", "--playtest-seeds", "8",
               "--playtest-programs", "hold_action_1,sticky_random", "--out", str(out), "--device", "cpu")  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    played = [(p["program"], p["sampling"]) for p in results["playtest"]["programs"]]
    assert played == [("hold_action_1", "greedy"), ("hold_action_1", "sample"), ("sticky_random", "greedy"),
                      ("sticky_random", "sample")]  # fmt: skip
    assert results["playtest"]["meta"]["programs"]["source"] == "generic"
    hold = results["playtest"]["programs"][0]
    assert hold["psnr_gray84"]["1"] is not None and hold["copy_last_gray84"]["1"] is not None  # scored on 8 seeds
    assert hold["detail"]["1"] is not None and hold["liveliness"] is not None
    report = (out / "report.md").read_text()
    assert "## Play tests: gym:CartPole-v1" in report and "the generic set" in report
    bad = run_module("train.evaluate", "--checkpoint", str(cartpole_world["world"]), "--data", str(cartpole_world["data"]),
                     "--playtest-programs", "stand", "--out", str(tmp_path / "bad"), check=False)  # fmt: skip
    assert bad.returncode == 2 and "--playtest-programs: stand not found" in bad.stderr and "Traceback" not in bad.stderr


def test_the_new_game_recipe_evaluates_with_play_tests(tmp_path):
    from ochre.recipe import load_recipe

    rec = load_recipe("configs/new_game/recipe.yaml", [], str(tmp_path))
    evaluate = next(s for s in rec.stages if s.name == "evaluate").display()
    assert evaluate.startswith("python -m train.evaluate ") and "--playtest-seeds" not in evaluate  # the default, 16
    assert any(n.key.startswith("playtest.programs.program=sticky_random") for n in rec.card)
