"""World-specific checks: phase correlation and find_ball on hand-made and real frames, the sign convention on the
real ViZDoom, the scores on fake worlds, the report section, and the evaluator on a tiny first-person world."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ochre.actions import FirstPersonActionSpec
from ochre.data.store import DatasetWriter, EpisodeDataset
from ochre.data.windows import WindowSampler
from ochre.report import render_markdown, world_checks_section
from ochre.world_checks import (
    BALL_EVENTS,
    CAMERA_STEPS,
    DIRECTIONS,
    PITCH_LIMITS,
    PONG_BACKGROUND,
    PONG_BALL,
    PONG_PADDLES,
    ball_ceiling,
    ball_event,
    ball_tracking,
    camera_action,
    camera_gain,
    camera_response,
    clamped_pitch,
    find_ball,
    held_out_seeds,
    phase_correlation,
    real_camera_response,
    sequence_shift,
    turn_degrees,
)
from tests.conftest import run_module, tiny_doom_world
from tests.test_report import fake_results
from train.evaluate import world_checks_line

SPEC = FirstPersonActionSpec()


def texture(size: int = 96, seed: int = 0) -> np.ndarray:
    """A smooth random gray texture in [0, 255], (size, size)."""
    noise = np.random.default_rng(seed).random((size, size))
    smooth = gaussian_filter(noise, 1.5, mode="wrap")
    return 255 * (smooth - smooth.min()) / (smooth.max() - smooth.min())


# --- phase correlation -----------------------------------------------------------


@pytest.mark.parametrize("shift", [(3, -5), (-7, 2), (0, 9), (-4, -4), (6, 0)])
def test_phase_correlation_returns_the_roll_of_a_texture(shift):
    a = texture(64)
    rgb = np.repeat(a[..., None], 3, axis=-1).astype(np.uint8)
    # The Hann window does not roll with the image, so the peak is a little off its integer place.
    assert phase_correlation(a, np.roll(a, shift, axis=(0, 1))) == pytest.approx(shift, abs=0.15)
    assert phase_correlation(rgb, np.roll(rgb, shift, axis=(0, 1))) == pytest.approx(shift, abs=0.15)
    assert phase_correlation(a, a) == pytest.approx((0, 0), abs=0.01)


@pytest.mark.parametrize("shift", [(4, -6), (-5, 3)])
def test_phase_correlation_on_a_moving_crop(shift):
    """Not a circular shift: a window over a larger texture, moved so the content goes down by dy and right by dx."""
    big, (dy, dx) = texture(128, seed=1), shift
    a, b = big[30:94, 30:94], big[30 - dy : 94 - dy, 30 - dx : 94 - dx]
    assert phase_correlation(a, b) == pytest.approx(shift, abs=0.5)


def test_phase_correlation_is_sub_pixel():
    from scipy.ndimage import fourier_shift

    a = texture(64, seed=2)
    b = np.fft.ifft2(fourier_shift(np.fft.fft2(a), (1.5, -2.25))).real
    assert phase_correlation(a, b) == pytest.approx((1.5, -2.25), abs=0.3)


def test_sequence_shift_sums_consecutive_shifts():
    big = texture(128, seed=3)
    frames = np.stack([big[20:84, 40 - 2 * t : 104 - 2 * t] for t in range(5)])  # content moves 2 px right per frame
    assert sequence_shift(np.repeat(frames[..., None], 3, axis=-1)) == pytest.approx((0, 8), abs=0.6)


# --- camera response on fake worlds ----------------------------------------------


class ShiftWorld:
    """A fake first-person world: each step rolls the last seed frame by the camera action, `sign` the right way."""

    action_spec = SPEC

    def __init__(self, px_per_degree: float = 0.5, sign: int = 1):
        self.px_per_degree, self.sign = px_per_degree, sign

    def rollout(self, seed_frames: np.ndarray, seed_actions: np.ndarray, future_actions: np.ndarray) -> np.ndarray:
        frame, out = seed_frames[:, -1].copy(), []
        for t in range(future_actions.shape[1]):
            degrees = SPEC.degrees(future_actions[:, t]) * self.px_per_degree * self.sign  # (B, 2) yaw, pitch
            frame = np.stack([np.roll(f, (round(p), -round(y)), axis=(0, 1)) for f, (y, p) in zip(frame, degrees, strict=True)])
            out.append(frame)
        return np.stack(out, axis=1)


def fake_seeds(count: int = 3) -> tuple[np.ndarray, np.ndarray]:
    frames = np.stack([np.repeat(texture(64, seed=s)[..., None], 3, -1) for s in range(count)]).astype(np.uint8)
    return np.repeat(frames[:, None], 4, axis=1), SPEC.neutral((count, 3))


def test_camera_gain_recovers_the_shift_per_degree():
    """A recorded episode whose picture moves 0.5 px per degree of yaw and 0.25 per degree of pitch, the DIRECTIONS way."""
    right, up, forward = SPEC.neutral(), SPEC.neutral(), SPEC.neutral()
    right[0], up[1] = SPEC.camera_bins - 1, SPEC.camera_bins - 1  # 12 degrees each: 6 px left, 3 px down
    forward[SPEC.index("forward")] = 1
    steps = [(right, (0, -6)), (up, (3, 0)), (forward, (0, 5)), (up, (0, 0)), (right, (0, -6)), (SPEC.neutral(), (2, 2))]
    frame, frames = texture(64, seed=4), []
    for _, roll in steps:
        frames.append(frame)
        frame = np.roll(frame, roll, axis=(0, 1))
    frames.append(frame)
    rgb = np.repeat(np.stack(frames)[..., None], 3, -1).astype(np.uint8)
    actions = np.stack([a for a, _ in steps] + [SPEC.neutral()])
    gains = camera_gain([(rgb, actions)], SPEC)
    assert gains["yaw"]["gain"] == pytest.approx(0.5, abs=0.03) and gains["yaw"]["steps"] == 2
    assert gains["pitch"]["gain"] == pytest.approx(0.25, abs=0.03) and gains["pitch"] == gains["pitch"] | {"steps": 1, "still": 1}
    assert camera_gain([(rgb[:1], actions[:1])], SPEC)["yaw"] == {"gain": None, "steps": 0, "still": 0}


def test_camera_action_is_pure_camera():
    yaw_left, pitch_up = camera_action(SPEC, "yaw_left"), camera_action(SPEC, "pitch_up")
    assert yaw_left[0] < SPEC.still_bin and yaw_left[1] == SPEC.still_bin and not yaw_left[2:].any()
    assert pitch_up[1] > SPEC.still_bin and pitch_up[0] == SPEC.still_bin and not pitch_up[2:].any()
    assert SPEC.degrees(yaw_left)[0] == pytest.approx(-turn_degrees(SPEC)) and turn_degrees(SPEC) == pytest.approx(6.375)


def test_camera_response_scores_right_wrong_and_frozen_worlds():
    seeds, actions = fake_seeds()
    right = camera_response(ShiftWorld(), seeds, actions, batch=2)
    assert right["passed"] and right["fraction"] == 1.0 and right["seeds"] == 3
    assert right["directions"]["yaw_left"]["mean_shift_px"] == pytest.approx(8 * 3, abs=0.5)  # round(6.375 * 0.5) px a step
    assert right["directions"]["pitch_down"]["mean_cross_shift_px"] == pytest.approx(0, abs=0.1)
    wrong = camera_response(ShiftWorld(sign=-1), seeds, actions)
    assert not wrong["passed"] and wrong["yaw_fraction"] == 0.0 and wrong["pitch_fraction"] == 0.0
    frozen = camera_response(ShiftWorld(px_per_degree=0), seeds, actions)
    assert frozen["fraction"] == 0.0 and frozen["directions"]["yaw_right"]["mean_shift_px"] == pytest.approx(0, abs=0.1)


def test_camera_response_skips_pitch_directions_at_the_clamp():
    seeds, actions = fake_seeds()
    result = camera_response(ShiftWorld(), seeds, actions, pitch=np.array([0.0, 30.0, -50.0]), pitch_limits=(-56.0, 32.0))
    d = result["directions"]
    assert (d["pitch_up"]["scored"], d["pitch_up"]["skipped"], d["pitch_down"]["skipped"]) == (2, 1, 1)
    assert d["yaw_left"]["skipped"] == 0 and result["pitch_limits"] == [-56.0, 32.0]


def test_held_out_seeds_rebuild_the_pitch(tmp_path):
    up, down = camera_action(SPEC, "pitch_up"), camera_action(SPEC, "pitch_down")
    actions = np.stack([up] * 10 + [down] * 4 + [SPEC.neutral()] * 2)  # up into the clamp, then 4 steps down
    rows = np.repeat(np.arange(16, dtype=np.uint8), 8 * 8 * 3).reshape(16, 8, 8, 3)  # each frame holds its row number
    meta = {"world": "doom", "action_schema": SPEC.to_dict(), "frame_shape": [8, 8, 3]}
    writer = DatasetWriter(tmp_path / "fp", "frames", meta)
    writer.add_episode(rows, actions)
    writer.close()
    seeds = held_out_seeds(EpisodeDataset(tmp_path / "fp"), count=100, context=4, pitch_limits=(-56.0, 32.0))
    assert seeds.frames.shape == (13, 4, 8, 8, 3) and seeds.actions.shape == (13, 3, 10)
    track = clamped_pitch(SPEC.degrees(actions)[:, 1], (-56.0, 32.0))  # pitch at each frame
    assert track.max() == 32.0 and track[14] == pytest.approx(32.0 - 4 * 6.375)
    assert seeds.pitch == pytest.approx(track[seeds.frames[:, -1, 0, 0, 0]])  # at each window's last seed frame


# --- the sign convention on the real game ----------------------------------------


def test_camera_sign_convention_on_real_doom():
    """Ground truth: pure yaw / pitch in ViZDoom shifts the picture the way DIRECTIONS expects, step by step."""
    pytest.importorskip("vizdoom")
    from ochre.envs.worlds import make_env, world_settings

    env = make_env("doom", world_settings("doom"), seed=0)
    try:
        angles = {}
        for name, d in DIRECTIONS.items():
            frames = [env.reset(seed=0)] + [env.step(camera_action(env.action_spec, name))[0] for _ in range(CAMERA_STEPS)]
            steps = np.array([sequence_shift(np.stack(frames[t : t + 2])) for t in range(CAMERA_STEPS)])  # (steps, 2)
            assert (d.expected * steps[:4, d.axis] > 2).all(), f"{name}: per-step shifts {steps.round(1).tolist()}"
            assert (np.abs(steps[:4, 1 - d.axis]) < 1).all(), f"{name}: per-step shifts {steps.round(1).tolist()}"
            angles[name] = env.camera_angles()
        turn = CAMERA_STEPS * turn_degrees(env.action_spec)  # the engine quantises each tic's turn: within 0.5 degrees
        assert angles["yaw_left"][0] == pytest.approx(360 - turn, abs=0.5)  # clockwise heading: left turns decrease it
        assert angles["yaw_right"][0] == pytest.approx(turn, abs=0.5)
        assert angles["pitch_up"][1] == pytest.approx(PITCH_LIMITS["doom"][1], abs=0.01)  # clamped
        assert angles["pitch_down"][1] == pytest.approx(-turn, abs=0.5)
        env.reset(seed=0)
        for _ in range(10):
            env.step(camera_action(env.action_spec, "pitch_down"))
        assert env.camera_angles()[1] == pytest.approx(PITCH_LIMITS["doom"][0], abs=0.01)
    finally:
        env.close()


def test_real_doom_scores_the_check_and_its_pitch_bookkeeping():
    pytest.importorskip("vizdoom")
    from ochre.data.policies import ExplorationPolicy, PolicyConfig
    from ochre.envs.worlds import make_env, world_settings

    env = make_env("doom", world_settings("doom"), seed=0)
    try:
        policy = ExplorationPolicy(PolicyConfig(), env.action_spec, 1, np.random.default_rng(0))
        warm = np.stack([policy.act()[0] for _ in range(60)])
        env.reset(seed=0)
        for a in warm:
            env.step(a)
        rebuilt = clamped_pitch(env.action_spec.degrees(warm)[:, 1], PITCH_LIMITS["doom"])[-1]
        assert env.camera_angles()[1] == pytest.approx(rebuilt, abs=0.1)
        result = real_camera_response(env, episodes=6, pitch_limits=PITCH_LIMITS["doom"])
    finally:
        env.close()
    assert result["passed"] and result["yaw_fraction"] == 1.0, json.dumps(result["directions"])
    assert result["directions"]["yaw_left"]["mean_shift_px"] > 15


# --- Pong ball ---------------------------------------------------------------------


def pong_frame(ball: dict[tuple[int, int], float] | None = None) -> np.ndarray:
    """A hand-made 64x64 Pong frame: walls, score digits, both paddles; `ball` maps pixels to ball coverage."""
    frame = np.empty((64, 64, 3), np.uint8)
    frame[:] = PONG_BACKGROUND
    frame[8:10] = frame[59:] = PONG_BALL  # walls
    frame[1:6, 10:13], frame[1:6, 50:53] = PONG_PADDLES  # score digits
    frame[30:34, 6:8], frame[40:44, 56:58] = PONG_PADDLES
    frame[34, 6] = np.round((np.array(PONG_BACKGROUND) + PONG_PADDLES[0]) / 2)  # a paddle's blended edge
    for (y, x), cover in (ball or {}).items():
        frame[y, x] = np.round((1 - cover) * np.array(PONG_BACKGROUND) + cover * np.array(PONG_BALL))
    return frame


def test_find_ball_on_hand_made_frames():
    assert find_ball(pong_frame({(20, 30): 1.0})) == pytest.approx((20, 30))
    assert find_ball(pong_frame({(20, 30): 0.3, (21, 30): 0.6})) == pytest.approx((20 + 2 / 3, 30), abs=0.01)
    assert find_ball(pong_frame({(40, 55): 0.5})) == pytest.approx((40, 55))  # next to the green paddle
    assert find_ball(pong_frame()) is None  # walls, score and paddles are not the ball
    assert find_ball(pong_frame({(20, 30): 0.08})) is None  # too faint
    assert find_ball(pong_frame({(3, 30): 1.0, (10, 20): 1.0, (60, 5): 0.5})) is None  # score area, wall rows


def pong_frames(steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real 64x64 Pong frames under random actions: frames (T+1, ...), actions (T+1,), rewards (T+1,)."""
    pytest.importorskip("ale_py")
    from ochre.envs.worlds import make_env, world_settings

    env = make_env("pong", world_settings("pong"), seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, env.action_spec.n, steps + 1)
    frames, rewards = [env.reset(seed=seed)], [0.0]
    for a in actions[:-1]:
        frame, reward, _ = env.step(int(a))
        frames.append(frame)
        rewards.append(reward)
    env.close()
    return np.stack(frames), actions, np.array(rewards)


def test_find_ball_follows_the_real_ball():
    frames, _, rewards = pong_frames(400)
    balls = [find_ball(f) for f in frames]
    found = np.array([b is not None for b in balls])
    points = np.flatnonzero(rewards)
    assert len(points) >= 3
    for t in points:
        assert not found[t + 2 : t + 8].any(), f"a ball right after the point at step {t}"
    assert found.mean() > 0.6
    # Constant velocity between bounces: second differences of the position stay under a pixel (the ball moves 1.2 px
    # down and 1.6 px across a step, sampled at 64x64) except at bounces, where they are about 2 px and more.
    runs = [np.array([balls[t - 1], balls[t], balls[t + 1]]) for t in range(1, len(balls) - 1) if found[t - 1 : t + 2].all()]
    accel = np.array([np.abs(r[2] - 2 * r[1] + r[0]).max() for r in runs])
    assert len(runs) > 150 and (accel < 1.0).mean() > 0.9
    speed = np.array([np.abs(r[1] - r[0]) for r in runs])
    assert (speed.max(1) > 0.8).mean() > 0.9  # the ball is moving, not a paddle pixel


def test_find_ball_matches_the_emulator_screen():
    """Against the ball's true position read from ALE's 210x160 screen (the same env settings as `pong`)."""
    gymnasium, ale_py = pytest.importorskip("gymnasium"), pytest.importorskip("ale_py")
    from ochre.frames import resize

    gymnasium.register_envs(ale_py)
    env = gymnasium.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.0, full_action_space=False)
    obs, _ = env.reset(seed=1)
    rng, errors, false_balls = np.random.default_rng(1), [], 0
    for _ in range(300):
        obs, *_ = env.step(int(rng.integers(0, 6)))
        ball = np.all(obs == PONG_BALL, axis=-1)
        ball[:38], ball[190:] = False, False  # the ball entirely inside the playfield (it is 4 rows tall)
        got = find_ball(resize(obs, (64, 64)))
        if ball.any():
            ys, xs = np.nonzero(ball)
            truth = ((ys.min() + ys.max() + 1) / 2 * 64 / 210 - 0.5, (xs.min() + xs.max() + 1) / 2 * 64 / 160 - 0.5)
            errors.append(np.inf if got is None else np.hypot(got[0] - truth[0], got[1] - truth[1]))
        elif not np.all(obs[34:194] == PONG_BALL, axis=-1).any():
            false_balls += got is not None
    env.close()
    assert len(errors) > 150 and false_balls == 0
    assert np.mean(np.array(errors) < 0.75) > 0.98


class CopyLast:
    def rollout(self, seed_frames: np.ndarray, seed_actions: np.ndarray, future_actions: np.ndarray) -> np.ndarray:
        return np.repeat(seed_frames[:, -1:], future_actions.shape[1], axis=1)


class Replay:
    """Returns the given futures in order: the true frames of the same fixed windows."""

    def __init__(self, futures: np.ndarray):
        self.futures, self.used = futures, 0

    def rollout(self, seed_frames: np.ndarray, seed_actions: np.ndarray, future_actions: np.ndarray) -> np.ndarray:
        self.used += len(seed_frames)
        return self.futures[self.used - len(seed_frames) : self.used]


def pong_dataset(path, steps: int, seed: int) -> None:
    """Real Pong frames under random actions, written as a two-episode frame dataset at `path`."""
    frames, actions, _ = pong_frames(steps, seed=seed)
    meta = {"world": "pong", "action_schema": {"kind": "discrete", "name": "pong", "labels": list("abcdef")}, "fps": 15}
    writer = DatasetWriter(path, "frames", meta | {"frame_shape": [64, 64, 3]})
    half = steps // 2
    writer.add_episode(frames[:half], actions[:half])
    writer.add_episode(frames[half:], actions[half:])
    writer.close()


def track(*path: tuple[int, int] | None) -> np.ndarray:
    """Hand-made frames with the ball at each (y, x) of `path`, None for a frame without it."""
    return np.stack([pong_frame(None if p is None else {p: 1.0}) for p in path])


def test_ball_event_names_what_the_true_ball_does():
    assert ball_event(track((20, 30), (21, 32), (22, 34), (23, 36))) == "straight"
    assert ball_event(track((13, 30), (12, 32), (11, 34), (12, 36))) == "wall"  # up, then down off the top wall
    assert ball_event(track((30, 12), (31, 10), (32, 8), (33, 10))) == "paddle"  # left, then back right
    assert ball_event(track((30, 12), (31, 10), (32, 8), (31, 10))) == "paddle"  # both turn: the paddle decides
    assert ball_event(track(None, None, (35, 32), (36, 33))) == "serve"  # no ball in the last seed frame
    assert ball_event(track(None, (35, 32), (36, 33), (37, 34))) == "straight"  # served in the last seed frame
    assert ball_event(track((30, 12), (31, 10), None, (33, 10))) == "gap"
    assert ball_event(track((20, 30), (20, 30), (21, 31))) == "straight"  # a still step turns nothing


def test_ball_tracking_on_real_pong_windows(tmp_path):
    pong_dataset(tmp_path / "pong", 300, seed=2)
    data = EpisodeDataset(tmp_path / "pong")
    truth = WindowSampler(data, 10, split="all", seed=0).fixed(40, seed=0).rows[:, 4:].numpy()
    perfect = ball_tracking(Replay(truth), data, windows=40, batch=16)
    assert perfect["cases"] > 15 and perfect["fraction"] == 1.0 and perfect["passed"]
    assert perfect["mean_error_px"] == 0.0 and perfect["no_ball_fraction"] == 0.0 and perfect["psnr_by_step"][-1] == 100.0
    assert perfect["in_flight_cases"] + perfect["serve_cases"] == perfect["cases"] and perfect["in_flight_cases"] > 0
    assert perfect["in_flight_fraction"] == 1.0 and perfect["serve_fraction"] in (1.0, None)
    events = perfect["by_event"]
    assert list(events) == list(BALL_EVENTS) and sum(e["cases"] for e in events.values()) == perfect["cases"]
    assert all(e["within_tol"] == e["cases"] and e["no_ball"] == 0 for e in events.values())
    assert events["serve"]["cases"] == perfect["serve_cases"]
    copy = ball_tracking(CopyLast(), data, windows=40, batch=16)
    assert copy["fraction"] == copy["copy_last_fraction"] < 0.5 and not copy["passed"]
    assert copy["cases"] == perfect["cases"] and len(copy["fraction_by_step"]) == 6
    assert copy["psnr_by_step"][0] > copy["psnr_by_step"][-1]
    assert copy["serve_fraction"] in (0.0, None)  # copying a frame without the ball never draws a served one
    assert copy["by_event"]["serve"]["no_ball"] == copy["by_event"]["serve"]["cases"]
    assert sum(e["within_tol"] for e in copy["by_event"].values()) == copy["within_tol"]


class Identity:
    """A lossless codec: tokens are the frames themselves."""

    def encode(self, frames: np.ndarray) -> np.ndarray:
        return frames

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return tokens


class Blank(Identity):
    """A codec that loses everything but the background colour."""

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.array(PONG_BACKGROUND, np.uint8), tokens.shape).copy()


def test_ball_ceiling_counts_the_balls_the_tokenizer_keeps(tmp_path):
    pong_dataset(tmp_path / "pong", 300, seed=2)
    data = EpisodeDataset(tmp_path / "pong")
    lossless = ball_ceiling(Identity(), data, windows=40, batch=16)
    assert lossless["cases"] == ball_tracking(CopyLast(), data, windows=40, batch=16)["cases"] > 15
    assert lossless["tokenizer_fraction"] == 1.0
    assert ball_ceiling(Blank(), data, windows=40, batch=16)["tokenizer_fraction"] == 0.0


def test_tokenizer_evaluation_counts_the_ball_it_keeps_on_pong(tmp_path):
    from ochre.tokenizer_eval import sample_frames

    pong_dataset(tmp_path / "pong", 200, seed=3)
    run_module("vqvae.train", "--config", "configs/tiny/vqvae.yaml", f"data.path={tmp_path / 'pong'}",
               f"run.dir={tmp_path / 'runs'}", "run.name=vq", "run.world=pong", "data.val_every=2")  # fmt: skip
    out = run_module("vqvae.evaluate", "--tokenizer", str(tmp_path / "runs/vq/checkpoints/tokenizer.pt"),
                     "--data", str(tmp_path / "pong"), "--frames", "64", "--out", str(tmp_path / "eval")).stdout  # fmt: skip
    kept = json.loads((tmp_path / "eval" / "summary.json").read_text())["ball_kept"]
    scored = sample_frames(EpisodeDataset(tmp_path / "pong"), 64, "all", 10, 0)  # the frames the evaluator drew
    assert kept["frames"] == sum(find_ball(f) is not None for f in scored) > 10
    assert 0 <= kept["within_tol"] <= kept["frames"] and kept["tol_px"] == 2.0
    assert f"{kept['within_tol']}/{kept['frames']} frames with a ball" in out


# --- report ------------------------------------------------------------------------


def camera_result(fraction: float, passed: bool) -> dict:
    direction = {"scored": 10, "skipped": 2, "correct": 9, "fraction": fraction, "mean_shift_px": 21.5,
                 "mean_cross_shift_px": 0.4}  # fmt: skip
    return {"seeds": 12, "steps": 8, "degrees_per_step": 6.375, "min_shift_px": 1.0, "pass_fraction": 0.9,
            "pitch_limits": [-56.0, 32.0], "directions": dict.fromkeys(DIRECTIONS, direction), "yaw_fraction": fraction,
            "pitch_fraction": fraction, "fraction": fraction, "passed": passed}  # fmt: skip


def ball_result() -> dict:
    return {"windows": 64, "context": 4, "horizon": 6, "tol_px": 2.0, "pass_fraction": 0.9, "cases": 50, "within_tol": 47,
            "fraction": 0.94, "no_ball_fraction": 0.02, "mean_error_px": 0.8, "fraction_by_step": [1.0, 0.98, 0.96, 0.96, 0.94, 0.94],
            "copy_last_fraction": 0.04, "psnr_by_step": [30.0, 29.0, 28.0, 27.0, 26.0, 25.5], "passed": True,
            "in_flight_cases": 40, "in_flight_fraction": 0.975, "serve_cases": 10, "serve_fraction": 0.8,
            "by_event": {"straight": {"cases": 30, "within_tol": 30, "no_ball": 0}, "wall": {"cases": 8, "within_tol": 7, "no_ball": 1},
                         "paddle": {"cases": 2, "within_tol": 2, "no_ball": 0}, "serve": {"cases": 10, "within_tol": 8, "no_ball": 1},
                         "gap": {"cases": 0, "within_tol": 0, "no_ball": 0}}}  # fmt: skip


def test_report_section_from_a_hand_made_results_dict():
    camera = {"results": {"model": camera_result(0.9, True)}, "real_game": camera_result(1.0, True), "real_game_note": ""}
    md = world_checks_section({"world": "doom", "world_checks": {"camera": camera, "ball": None}})
    assert md.startswith("## World-specific checks") and "### Camera response" in md and "### Pong ball tracking" not in md
    assert "| model | 0.90 (21.5 px, n=10) | 0.90 (21.5 px, n=10) |" in md and "| **pass** |" in md
    assert "| real game | 1.00 (21.5 px, n=10) |" in md and "6.38° per step" in md and "2 up, 2 down" in md
    camera = {"results": {"model": camera_result(0.5, False)}, "real_game": None, "real_game_note": "no source env"}
    md = world_checks_section({"world": "doom", "world_checks": {"camera": camera, "ball": None}})
    assert "| **fail** |" in md and "Real game not scored: no source env." in md
    md = world_checks_section({"world": "pong", "world_checks": {"camera": None, "ball": {"results": {"model": ball_result()}}}})
    assert "### Pong ball tracking" in md and "| model | 0.94 | 0.02 | 0.8 | **pass** |" in md
    assert "| copy-last frame | 0.04 | — | — | — |" in md and "| model | PSNR (dB) | 30.00 |" in md and "(50 cases)" in md
    assert "| model | 1.00 of 30 (0) | 0.88 of 8 (1) | 1.00 of 2 (0) | 0.80 of 10 (1) | — |" in md
    assert "tokenizer ceiling" not in md  # reports written before the ceiling existed still render
    assert "model 0.97 of 40 balls in flight, 0.80 of 10 serves" in md
    ceiling = {"cases": 50, "tokenizer_fraction": 0.96}
    md = world_checks_section({"world": "pong", "world_checks": {"camera": None, "ball": {"results": {"model": ball_result()},
                                                                                          "ceiling": ceiling}}})  # fmt: skip
    assert "| tokenizer ceiling (true frame encoded and decoded) | 0.96 | — | — | — |" in md
    none = world_checks_section({"world": "coinrun", "world_checks": {"camera": None, "ball": None}})
    assert "None applies to world 'coinrun'" in none
    assert "Skipped (`--no-world-checks`)" in world_checks_section({"world_checks": None})


def test_full_report_places_the_section_and_the_console_line():
    results = fake_results(8) | {"world_checks": {"camera": None, "ball": {"results": {"model": ball_result()}}}}
    md = render_markdown(results)
    assert md.index("## Action following") < md.index("## World-specific checks") < md.index("## Long-horizon stability")
    line = world_checks_line(results["world_checks"])
    assert line == "world checks: ball within 2 px at step 6 (50 cases): model 0.94, copy-last 0.04"
    assert world_checks_line({"camera": None, "ball": None}) == "world checks: none applies to this world"


# --- end to end --------------------------------------------------------------------


def test_evaluate_runs_the_camera_check_on_a_tiny_first_person_world(tmp_path):
    """About 20 s: real ViZDoom frames -> tiny tokenizer -> tiny dynamics -> train.evaluate with the real game beside it."""
    pytest.importorskip("vizdoom")
    data, world = tiny_doom_world(tmp_path, 160)
    out = tmp_path / "eval"
    proc = run_module("train.evaluate", "--checkpoint", str(world), "--data", str(data),
                      "--windows", "4", "--batch", "2", "--horizon", "4", "--stability-steps", "0",
                      "--real-game-episodes", "2", "--playtest-seeds", "0", "--out", str(out), "--device", "cpu")  # fmt: skip
    assert "world checks: camera yaw/pitch correct: model" in proc.stdout and "real game" in proc.stdout
    camera = json.loads((out / "results.json").read_text())["world_checks"]["camera"]
    model = camera["results"]["model"]
    assert model["seeds"] == 4 and set(model["directions"]) == set(DIRECTIONS) and model["pitch_limits"] == [-56.0, 32.0]
    assert camera["real_game"]["seeds"] == 2 and camera["real_game"]["yaw_fraction"] == 1.0
    md = (out / "report.md").read_text()
    assert "## World-specific checks" in md and "### Camera response" in md and "| real game |" in md
