"""Long-horizon stability: rollout traces on the tiny world, the CLI, and the verdict rules on synthetic traces."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from ochre.actions import PROCGEN_ACTIONS, FirstPersonActionSpec
from ochre.data.store import EpisodeDataset
from ochre.runtime import WorldModel
from ochre.stability import (
    SCRIPT_HOLD,
    StabilityTrace,
    Thresholds,
    codes_in_use,
    frame_detail,
    frame_stats,
    judge,
    policy_actions,
    stability_rollout,
)
from tests.conftest import run_module

STEPS = 50


@pytest.fixture(scope="module")
def world(tiny_world) -> WorldModel:
    return WorldModel.load(tiny_world["world"], device="cpu")


@pytest.fixture(scope="module")
def seed(tiny_world) -> tuple[np.ndarray, np.ndarray]:
    """The first 4 frames of the tiny dataset's first episode and the 3 actions between them."""
    data = EpisodeDataset(tiny_world["frames"])
    shard, start, _ = data.episodes()[0]
    frames, actions = data.rows(shard, start, 4)
    return frames, actions[:3]


def test_rollout_records_every_step_and_keeps_every_nth_frame(world, seed):
    trace = stability_rollout(world, *seed, "scripted", steps=STEPS, every=7, chunk=16)
    h, w = world.dynamics.cfg.token_grid
    assert trace.steps == STEPS and trace.tokens.shape == (STEPS, h, w) and trace.actions.shape == (STEPS,)
    for series in (trace.pressed, trace.codes_in_use, trace.change, trace.pixel_std):
        assert series.shape == (STEPS,)
    assert trace.pressed.all()  # the script always presses a control
    assert list(trace.frame_steps) == list(range(0, STEPS, 7))
    assert trace.frames.dtype == np.uint8 and trace.frames.shape == (8, *world.frame_shape)
    np.testing.assert_array_equal(trace.frames, world.decode(torch.as_tensor(trace.tokens[trace.frame_steps])))
    frames = world.decode(torch.as_tensor(trace.tokens)).astype(np.float64) / 255
    first = world.decode(world.reset(*seed).tokens)[0] / 255
    change = np.abs(np.diff(np.concatenate([first[None], frames]), axis=0)).mean((1, 2, 3))
    np.testing.assert_allclose(trace.change, change, atol=1e-6)
    np.testing.assert_allclose(trace.pixel_std, frames.reshape(STEPS, -1).std(1), atol=1e-6)


def test_scripted_and_seeded_random_rollouts_are_deterministic(world, seed):
    for policy, kwargs in (("scripted", {}), ("random", {"seed": 3})):
        a, b = (stability_rollout(world, *seed, policy, steps=20, **kwargs) for _ in range(2))
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.tokens, b.tokens)
        np.testing.assert_array_equal(a.change, b.change)
    assert not np.array_equal(
        policy_actions(world.action_spec, "random", 50, 0), policy_actions(world.action_spec, "random", 50, 1)
    )


@pytest.mark.parametrize("spec", [PROCGEN_ACTIONS, FirstPersonActionSpec()])
def test_policies_press_what_they_should(spec):
    noop = policy_actions(spec, "noop", 30)
    assert not spec.active_controls(noop).any()
    scripted = policy_actions(spec, "scripted", 200)
    assert scripted.shape == (200, *spec.shape) and spec.active_controls(scripted).reshape(200, -1).any(1).all()
    segments = scripted[::SCRIPT_HOLD]
    np.testing.assert_array_equal(scripted, np.repeat(segments, SCRIPT_HOLD, axis=0)[:200])  # held for SCRIPT_HOLD steps
    assert len({a.tobytes() for a in segments}) >= 4  # and varied
    np.testing.assert_array_equal(policy_actions(spec, "random", 40, seed=5), policy_actions(spec, "random", 40, seed=5))


def test_frame_stats_and_codes_in_use():
    frames = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)
    frames[1, :2] = 255  # half white
    std, change = frame_stats(frames, torch.zeros(4, 4, 3, dtype=torch.uint8))
    np.testing.assert_allclose(std.numpy(), [0.0, 0.5])
    np.testing.assert_allclose(change.numpy(), [0.0, 0.5])
    tokens = torch.tensor([[[1, 1], [1, 1]], [[0, 3], [3, 7]]])
    assert codes_in_use(tokens).tolist() == [1, 3]


def test_a_washed_out_rollout_is_blur_against_the_real_seed_frames():
    sharp = np.random.default_rng(1).integers(0, 256, (T + 1, 32, 32, 3), dtype=np.uint8)
    soft = np.repeat(np.repeat(sharp[:, ::4, ::4], 4, axis=1), 4, axis=2)  # the same scene, fine detail gone
    trace = synthetic(soft, VARIED_TOKENS, True)
    as_sharp = synthetic(sharp, VARIED_TOKENS, True)
    seed = float(frame_detail(torch.as_tensor(sharp[:1])).mean())
    assert judge(trace).verdict == "alive"  # without a real reference only pixel std and codes are judged
    washed = judge(replace(trace, detail=frame_detail(torch.as_tensor(soft[1:])).numpy(), seed_detail=seed))
    kept = judge(replace(as_sharp, detail=frame_detail(torch.as_tensor(sharp[1:])).numpy(), seed_detail=seed))
    assert washed.verdict == "blur" and washed.detail_ratio < 0.5
    assert kept.verdict == "alive" and kept.detail_ratio == pytest.approx(1.0, abs=0.1)


def synthetic(frames: np.ndarray, tokens: np.ndarray, pressed: bool) -> StabilityTrace:
    """A trace of frames (T + 1, H, W, 3): the seed frame, then T predicted ones with their tokens (T, h, w)."""
    std, change = frame_stats(torch.as_tensor(frames[1:]), torch.as_tensor(frames[0]))
    steps = len(tokens)
    return StabilityTrace(
        policy="scripted" if pressed else "noop",
        actions=np.zeros(steps, dtype=np.int64),
        pressed=np.full(steps, pressed),
        tokens=tokens,
        codes_in_use=codes_in_use(torch.as_tensor(tokens)).numpy(),
        change=change.numpy(),
        pixel_std=std.numpy(),
        frames=frames[1:],
        frame_steps=np.arange(steps),
        seed_codes_in_use=int(codes_in_use(torch.as_tensor(tokens[:1]))[0]),
    )


T = 60
RNG = np.random.default_rng(0)
TEXTURE = RNG.integers(0, 256, (32, 64, 3), dtype=np.uint8)  # wider than a frame, to scroll through
VARIED_TOKENS = RNG.integers(0, 100, (T, 8, 8))


def scrolling() -> np.ndarray:
    return np.stack([np.roll(TEXTURE, t, axis=1)[:, :32] for t in range(T + 1)])


def still() -> np.ndarray:
    return np.repeat(TEXTURE[None, :, :32], T + 1, axis=0)


FADING_TOKENS = np.where(np.arange(T)[:, None, None] < T - 10, VARIED_TOKENS, VARIED_TOKENS % 2)  # 2 codes at the end
STILL_TOKENS = np.repeat(VARIED_TOKENS[:1], T, axis=0)


@pytest.mark.parametrize(
    ("frames", "tokens", "pressed", "verdict"),
    [
        pytest.param(np.full((T + 1, 32, 32, 3), 120, np.uint8), np.zeros((T, 8, 8), np.int64), True, "blur", id="grey"),
        pytest.param(scrolling(), FADING_TOKENS, True, "blur", id="codes-fade"),
        pytest.param(still(), STILL_TOKENS, True, "frozen", id="still-pressing"),
        pytest.param(still(), STILL_TOKENS, False, "static", id="still-noop"),
        pytest.param(scrolling(), VARIED_TOKENS, True, "alive", id="scrolling-pressing"),
        pytest.param(scrolling(), VARIED_TOKENS, False, "alive", id="scrolling-noop"),
    ],
)
def test_verdicts_on_synthetic_traces(frames, tokens, pressed, verdict):
    judgement = judge(synthetic(frames, tokens, pressed))
    assert judgement.verdict == verdict
    assert judgement.collapsed == (verdict in ("blur", "frozen"))
    assert judgement.window == (T - 6, T)  # the last 10%


def test_a_flickering_pixel_is_still_frozen():
    frames, tokens = still(), STILL_TOKENS
    frames[-1, 0, 0] = 255 - frames[-1, 0, 0]  # one pixel flips in the last frame: a change far below the floor
    assert judge(synthetic(frames, tokens, True)).verdict == "frozen"
    assert judge(synthetic(frames, tokens, True), Thresholds(min_change=1e-6)).verdict == "alive"


def test_cli_writes_outputs_and_prints_table(tiny_world, seed, tmp_path):
    np.savez(tmp_path / "seed.npz", frames=seed[0][None], actions=seed[1][None])  # a batch of one seed
    out = tmp_path / "stability"
    proc = run_module("train.stability", "--checkpoint", str(tiny_world["world"]), "--seed-frames", str(tmp_path / "seed.npz"),
                      "--steps", str(STEPS), "--every", "2", "--out", str(out), "--device", "cpu")  # fmt: skip
    assert "verdict" in proc.stdout and "max change" in proc.stdout
    report = json.loads((out / "stability.json").read_text())
    assert list(report["policies"]) == ["noop", "scripted", "random"]
    for policy, summary in report["policies"].items():
        assert summary["verdict"] in ("alive", "static", "frozen", "blur") and f"\n{policy} " in proc.stdout
        assert summary["window"] == [STEPS - 5, STEPS]
    assert report["thresholds"] == {
        "window": 0.1,
        "min_pixel_std": 0.03,
        "min_code_ratio": 0.5,
        "min_change": 0.005,
        "min_detail_ratio": 0.5,
    }
    assert (out / "plots" / "stability.png").stat().st_size > 0
    for policy in report["policies"]:
        assert (out / "videos" / f"{policy}.mp4").stat().st_size > 0


def test_all_seeds_runs_from_every_seed_and_tallies_the_verdicts(tiny_world, seed, tmp_path):
    np.savez(tmp_path / "seed.npz", frames=np.stack([seed[0], seed[0][::-1]]), actions=np.stack([seed[1], seed[1]]))
    out = tmp_path / "stability"
    proc = run_module("train.stability", "--checkpoint", str(tiny_world["world"]), "--seed-frames", str(tmp_path / "seed.npz"),
                      "--steps", str(STEPS), "--policies", "scripted", "random", "--all-seeds", "--out", str(out),
                      "--device", "cpu")  # fmt: skip
    report = json.loads((out / "stability.json").read_text())
    assert report["seeds"] == 2 and list(report["per_seed"]) == ["0", "1"]
    for policy, count in report["tally"].items():
        verdicts = [report["per_seed"][i]["policies"][policy]["verdict"] for i in ("0", "1")]
        assert count["verdicts"] == {v: verdicts.count(v) for v in ("alive", "static", "frozen", "blur")}
        assert count["collapsed"] == sum(v in ("blur", "frozen") for v in verdicts)
        assert re.search(rf"\n{policy} +{verdicts.count('alive')} .* of 2", proc.stdout)
    assert report["collapsed_rollouts"] == sum(c["collapsed"] for c in report["tally"].values())
    for i in (0, 1):
        assert json.loads((out / f"seed{i}" / "stability.json").read_text())["seed_index"] == i
        assert (out / f"seed{i}" / "videos" / "random.mp4").stat().st_size > 0


def test_frozen_floor_follows_a_world_whose_real_pictures_barely_move():
    from ochre.stability import Thresholds, calibrate_change, real_window_change

    rng = np.random.default_rng(0)
    still = np.full((41, 64, 64, 3), 100, dtype=np.uint8)
    ball = still.copy()
    for t in range(41):  # a 2x2 "ball" moving one pixel per frame: a tiny change every step
        ball[t, 30:32, t % 60 : t % 60 + 2] = 255
    busy = rng.integers(0, 256, size=(41, 64, 64, 3), dtype=np.uint8)
    slow = real_window_change([ball])
    assert 0 < slow < 0.005 and real_window_change([busy]) > 0.2
    assert calibrate_change(Thresholds(), slow).min_change == pytest.approx(0.5 * slow)
    assert calibrate_change(Thresholds(), real_window_change([busy])).min_change == Thresholds().min_change  # never raised
    assert real_window_change([still[:20]]) is None  # too short to measure: the floor stays
    assert calibrate_change(Thresholds(), None) == Thresholds()
