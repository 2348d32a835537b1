"""Play tests: programs as data, each score on synthetic and real frames, the real game passing its own checks."""

import json

import numpy as np
import pytest

from ochre.actions import PROCGEN_ACTIONS, DiscreteActionSpec, FirstPersonActionSpec
from ochre.errors import OchreError
from ochre.playtest.avatar import PongObjects, erase
from ochre.playtest.checks import WORLD_CHECKS, find_play_checks, play_checks
from ochre.playtest.programs import encode_input, load_programs
from ochre.playtest.scores import frame_change, laplacian_variance, log_zoom, motion_agreement, step_motion
from ochre.playtest.suite import HELDOUT, SEED_BASE, fidelity_columns, play_real, score_program
from tests.conftest import run_module

FP = FirstPersonActionSpec()
COINRUN = WORLD_CHECKS["coinrun"]


def texture(h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4, w // 4, 3))
    return np.kron(small, np.ones((4, 4, 1))).astype(np.uint8)


def scrolling(steps, speed, seed=0):
    """(1, steps, 64, 64, 3): a textured scene whose content moves `speed` px right per step."""
    big = texture(64, 64 + abs(speed) * steps + 8, seed)
    start = abs(speed) * steps if speed > 0 else 0
    return np.stack([big[:, start - speed * t : start - speed * t + 64] for t in range(steps)])[None]


# --- programs -----------------------------------------------------------------


@pytest.mark.parametrize("world", ["coinrun", "doom", "pong"])
def test_every_shipped_program_loads_and_fits_its_schema(world):
    programs = load_programs(f"assets/{world}/programs")
    assert len(programs) >= 4 and "sticky_random" in programs
    for program in programs.values():
        assert 32 <= program.steps <= 300
        if world == "coinrun":
            program.check(PROCGEN_ACTIONS)
        if world == "doom":
            program.check(FP)


def test_program_errors_name_the_file_and_the_fix(tmp_path):
    cases = {
        "short.json": ({"name": "s", "segments": [{"steps": 5}]}, "lasts 5 steps"),
        "key.json": ({"name": "k", "segments": [{"hold": ["fly"], "steps": 40}]}, "no action holding"),
        "ctrl.json": ({"name": "c", "segments": [{"controller": "dance", "steps": 40}]}, "unknown controller 'dance'"),
        "extra.json": ({"name": "e", "segments": [{"steps": 40, "speed": 2}]}, "unknown keys"),
    }
    for name, (data, message) in cases.items():
        folder = tmp_path / name.removesuffix(".json")
        folder.mkdir()
        (folder / name).write_text(json.dumps(data))
        with pytest.raises(OchreError, match=message) as err:
            load_programs(folder).popitem()[1].check(PROCGEN_ACTIONS)
        assert name in str(err.value)
    with pytest.raises(OchreError, match="no input programs"):
        load_programs(tmp_path / "nothing")


def test_inputs_encode_to_the_schema():
    assert int(encode_input(PROCGEN_ACTIONS, frozenset({"up", "right"}))) == PROCGEN_ACTIONS.labels.index("right+up")
    assert int(encode_input(PROCGEN_ACTIONS, frozenset())) == PROCGEN_ACTIONS.noop
    walk_turn = encode_input(FP, frozenset({"forward"}), (6.0, 0.0))
    assert walk_turn[FP.index("forward")] == 1 and walk_turn[0] > FP.still_bin and walk_turn[1] == FP.still_bin


def test_held_random_segments_hold_each_action():
    program = load_programs("assets/coinrun/programs")["sticky_random"]
    player = program.player(PROCGEN_ACTIONS, np.random.default_rng(0))
    actions = np.array([int(player.act(None)) for _ in range(program.steps)])
    changes = np.flatnonzero(actions[1:] != actions[:-1])
    assert len(changes) >= 5 and np.diff(changes).min() >= 1 and np.mean(np.diff(changes)) > 4


# --- scores on synthetic frames --------------------------------------------------


def test_motion_follows_a_scroll_and_a_zoom():
    right = step_motion(scrolling(6, 2), ("dy", "dx"))
    assert np.allclose(right[0, :, 1], 2, atol=0.3) and np.allclose(right[0, :, 0], 0, atol=0.3)
    left = step_motion(scrolling(6, -3), ("dx",))
    assert np.allclose(left[0, :, 0], -3, atol=0.3)
    import torch
    import torch.nn.functional as F

    scene = texture(64, 64).astype(np.float32)[..., 0] / 255
    grown = F.interpolate(torch.from_numpy(scene)[None, None], scale_factor=1.04, mode="bilinear", align_corners=False)[0, 0]
    off = (grown.shape[0] - 64) // 2
    b = grown[off : off + 64, off : off + 64].numpy()
    assert 0.02 < log_zoom(scene[None], b[None])[0] < 0.06  # the scene grew: walking forward
    assert -0.06 < log_zoom(b[None], scene[None])[0] < -0.02


def test_a_copy_last_world_fails_liveliness_and_motion():
    real_frames = scrolling(20, 2)
    copy = np.repeat(real_frames[:, :1], 20, axis=1)
    assert frame_change(copy).max() == 0 and frame_change(real_frames).mean() > 5
    real_dx = step_motion(real_frames, ("dx",)).sum(1)[:, 0]
    copy_dx = step_motion(copy, ("dx",)).sum(1)[:, 0]
    scores = motion_agreement(np.repeat(copy_dx, 10), np.repeat(real_dx, 10), moved=2.0)
    assert scores["sign_agreement"] == 0.0 and abs(scores["magnitude_ratio"]) < 0.05
    same = motion_agreement(np.repeat(real_dx, 10), np.repeat(real_dx, 10), moved=2.0)
    assert same["sign_agreement"] == 1.0 and same["magnitude_ratio"] == pytest.approx(1.0)


def test_detail_falls_when_a_frame_is_blurred():
    sharp = texture(64, 64)
    blurred = ((sharp.astype(float) + np.roll(sharp, 1, 0) + np.roll(sharp, 1, 1) + np.roll(sharp, (1, 1), (0, 1))) / 4).astype(
        np.uint8
    )
    assert laplacian_variance(blurred) < 0.5 * laplacian_variance(sharp)


def test_registry_finds_checks_by_world_or_schema():
    assert play_checks("coinrun", PROCGEN_ACTIONS) is COINRUN
    assert play_checks("doom", FP) is WORLD_CHECKS["first_person"]
    with pytest.raises(OchreError, match="no play tests are registered for world 'maze'"):
        play_checks("maze", DiscreteActionSpec(name="maze", labels=("noop",), noop=0))


def test_factored_controls_are_held_at_their_top_or_a_named_value():
    from ochre.actions import FactoredActionSpec

    spec = FactoredActionSpec(name="arm", controls=("torque", "grip"), values=((-2.0, 0.0, 2.0), (0.0, 1.0)), rest=(1, 0))
    assert encode_input(spec, frozenset()).tolist() == [1, 0]  # nothing held: every control at rest
    assert encode_input(spec, frozenset({"grip"})).tolist() == [1, 1]
    assert encode_input(spec, frozenset({"torque=-2", "grip"})).tolist() == [0, 1]
    with pytest.raises(OchreError, match="no control 'jump'"):
        encode_input(spec, frozenset({"jump"}))


def test_the_evaluator_finds_its_world_checks_through_the_registry():
    maze = DiscreteActionSpec(name="maze", labels=("noop",), noop=0)
    assert find_play_checks("maze", maze) is None  # an unregistered world: no play or world checks, no error
    assert find_play_checks("atari:ALE/Pong-v5", maze).evaluator == ("ball",)
    assert find_play_checks("my_shooter", FP).evaluator == ("camera",)  # any first-person schema gets the camera check
    assert find_play_checks("coinrun", PROCGEN_ACTIONS).evaluator == ()


# --- the real games pass their own checks ---------------------------------------------


@pytest.fixture(scope="module")
def coinrun_runs():
    programs = load_programs(COINRUN.programs)
    seeds = [SEED_BASE + i for i in range(12)]
    return {name: play_real("coinrun", programs[name], seeds, 4, HELDOUT["procgen"]) for name in ("hold_right", "stand")}


def test_the_detector_finds_the_real_avatar_and_not_an_erased_one(coinrun_runs):
    finder = COINRUN.avatar()
    frames = coinrun_runs["hold_right"].frames[coinrun_runs["hold_right"].valid]
    where = finder.find(frames)[:, 0]
    found = np.hypot(where[:, 0] - finder.home[0], where[:, 1] - finder.home[1]) <= 2
    assert found.mean() >= 0.97
    missing = np.isnan(finder.find(erase(frames, finder.anchor))[:, 0, 0])
    assert missing.mean() >= 0.9


def test_the_real_game_passes_its_own_play_checks_and_copy_last_does_not(coinrun_runs):
    finder = COINRUN.avatar()
    real = coinrun_runs["hold_right"]
    at = fidelity_columns(real.frames.shape[1])
    own = score_program(real, real.frames, real.frames[:, at], COINRUN, finder, "real")
    assert own.ceiling_gray84[1] == own.psnr_gray84[1] == 100.0
    assert own.liveliness == pytest.approx(1.0) and own.detail[1] == pytest.approx(1.0)
    dx = own.motion["dx"][16]
    assert dx["scored"] >= 6 and dx["sign_agreement"] == 1.0
    assert own.objects["avatar"]["present"] >= 0.97 and own.objects["avatar"]["in_place_at_16"] >= 0.97
    copy = np.repeat(real.seed_frames[:, -1:], real.frames.shape[1], axis=1)
    frozen = score_program(real, copy, real.frames[:, at], COINRUN, finder, "copy_last")
    assert frozen.liveliness < 0.1 and frozen.motion["dx"][16]["sign_agreement"] < 0.5
    still = coinrun_runs["stand"]
    assert score_program(still, still.frames, still.frames[:, at], COINRUN, finder, "real").liveliness is None


def test_real_pong_paddles_are_found_and_answer_the_keys():
    checks = play_checks("pong", PROCGEN_ACTIONS)  # looked up by world name
    programs = load_programs(checks.programs)
    real = play_real("pong", programs["hold_up"], [SEED_BASE, SEED_BASE + 1], 4)
    where = PongObjects().find(real.frames.reshape(-1, *real.frames.shape[2:])).reshape(2, -1, 3, 2)
    own_y, other = where[:, :, 0, 0], where[:, :, 1, 0]
    assert not np.isnan(own_y[:, :3]).any() and (own_y[:, 3] < own_y[:, 0] - 4).all()  # holding up moves it up
    assert (~np.isnan(other[:, 12:])).mean() >= 0.97  # the computer's paddle, once it is in play
    served = play_real("pong", programs["follow_ball"], [SEED_BASE], 4, warmup=checks.warmup)
    found = PongObjects().find(served.seed_frames[0])
    assert not np.isnan(found[:, :2]).any()  # after the warm-up the seed frames show both paddles


def test_real_doom_moves_the_view_the_way_the_program_says():
    checks = WORLD_CHECKS["first_person"]
    programs = load_programs(checks.programs)
    seeds = [SEED_BASE + i for i in range(4)]
    turn = play_real("doom", programs["turn_left"], seeds, 4)
    dx = step_motion(turn.frames[:, :8], ("dx",), checks.motion_rows).sum(1)[:, 0]
    assert (dx > 2).all()  # turning left moves the scene right
    walk = play_real("doom", programs["walk_forward"], seeds, 4)
    zoom = step_motion(walk.frames[:, :12], ("zoom",), checks.motion_rows).sum(1)[:, 0]
    assert np.mean(zoom > 0) >= 0.75  # walking forward grows the scene (a wall in front may stop it)


# --- the entry point ------------------------------------------------------------------


@pytest.mark.slow
def test_playtest_entry_point_on_a_tiny_world(tiny_world, tmp_path):
    out = tmp_path / "pt"
    proc = run_module("train.playtest", "--checkpoint", str(tiny_world["world"]), "--seeds", "2", "--programs",
                      "stand,hold_right", "--out", str(out), "--device", "cpu")  # fmt: skip
    report = json.loads((out / "playtest.json").read_text())
    assert [(p["program"], p["sampling"]) for p in report["programs"]] == [
        ("stand", "greedy"), ("stand", "sample"), ("hold_right", "greedy"), ("hold_right", "sample")]  # fmt: skip
    assert "avatar" in report["programs"][0]["objects"] and "| hold_right | greedy |" in proc.stdout
    assert (out / "videos" / "hold_right_sample.mp4").stat().st_size > 0
    bad = run_module("train.playtest", "--checkpoint", str(tiny_world["world"]), "--programs", "fly", check=False)
    assert bad.returncode == 2 and "--programs: fly not found" in bad.stderr and "Traceback" not in bad.stderr


# --- the play check inside training -------------------------------------------------------


def test_held_key_windows_pick_only_windows_that_hold_one_key(tmp_path):
    from ochre.data.store import DatasetWriter, EpisodeDataset
    from ochre.training.play_validation import held_key_windows, play_probe

    meta = {"world": "coinrun", "action_schema": PROCGEN_ACTIONS.to_dict(), "token_grid": [4, 4]}
    writer = DatasetWriter(tmp_path / "tok", "tokens", meta)
    rng = np.random.default_rng(0)
    for i in range(20):  # episodes 9 and 19 are validation (val_every 10): one holds right, one presses random keys
        actions = np.full(40, 7) if i == 9 else rng.integers(0, 15, 40)
        writer.add_episode(rng.integers(0, 8, (40, 4, 4)).astype(np.uint16), actions)
    writer.close()
    data = EpisodeDataset(tmp_path / "tok")
    windows = held_key_windows(data, context=4, horizon=16, val_every=10, count=64)
    assert windows is not None and len(windows.rows) > 0 and (windows.actions[:, 3:-1] == 7).all()
    uniform = DatasetWriter(tmp_path / "uni", "tokens", meta)
    for _ in range(20):
        uniform.add_episode(rng.integers(0, 8, (40, 4, 4)).astype(np.uint16), np.tile(np.arange(15), 3)[:40])
    uniform.close()
    assert play_probe(EpisodeDataset(tmp_path / "uni"), "coinrun", 4, 16, 10, 64) is None
