"""World-specific checks: does the camera turn the right way, does the Pong ball fly true?

    seeds = held_out_seeds(EpisodeDataset("data/doom_heldout"), count=256)
    camera = camera_response(wm, seeds.frames, seeds.actions, pitch=seeds.pitch, pitch_limits=PITCH_LIMITS["doom"])
    ball = ball_tracking(wm, EpisodeDataset("data/pong_heldout"), windows=256)

Camera response (first-person worlds). From each held-out seed the world holds one pure
camera action (yaw left, yaw right, pitch up or pitch down; no buttons) for `steps`
steps. The image shift between consecutive frames is measured by phase correlation on
the top of the frame (the weapon or hand at the bottom does not move with the view) and
summed over the steps. A seed passes a direction when the summed shift along its axis
has the expected sign and is at least `MIN_SHIFT_PX` pixels.

Sign convention: `phase_correlation(a, b) == (dy, dx)` means b shows a's content moved dy
pixels down and dx pixels right (b ~ np.roll(a, (dy, dx), axis=(0, 1))). Measured on the
real ViZDoom (tests/test_world_checks.py): turning left moves the scene right (dx > 0),
turning right moves it left; looking up moves the scene down (dy > 0), looking down up.

Ball tracking (Pong). Open-loop rollouts from held-out windows; the ball is found by its
colour (`find_ball`) in the predicted and the true frame at step `horizon`, and a window
counts as tracked when the two are within `tol` pixels, among windows whose true ball is
on screen. Per-horizon RGB PSNR of the same rollouts is reported beside it.
The score is also split into balls already in flight in the last seed frame and balls
served after it, and by what the true ball does over the rollout (`ball_event`: straight
flight, a wall bounce, a paddle hit, a serve). `ball_ceiling` is the most a dynamics model
over a given tokenizer can score: the share of true frames that still show the ball once
encoded and decoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ochre.actions import FirstPersonActionSpec
from ochre.data.policies import ExplorationPolicy, PolicyConfig
from ochre.data.store import EpisodeDataset
from ochre.data.windows import WindowSampler
from ochre.envs.base import Env
from ochre.errors import OchreError
from ochre.evaluation import Predictor
from ochre.metrics import psnr_from_mse

PASS_FRACTION = 0.9  # both checks pass at 90% of the scored seeds / windows

# --- camera response -----------------------------------------------------------

CAMERA_STEPS = 8
CAMERA_DEGREES = 6.0  # requested turn per step; the schema bins it (the default schema sends 6.375 degrees)
CAMERA_ROWS = 0.65  # top fraction of the frame that is measured: Doom's weapon fills the bottom third and stays put
MIN_SHIFT_PX = 1.0  # a summed shift smaller than this counts as "did not move"
# The view's pitch range in degrees (down, up) where the engine clamps it: ochre/envs/doom.py, checked in the tests.
PITCH_LIMITS = {"doom": (-56.0, 32.0)}


@dataclass(frozen=True)
class Direction:
    """A pure camera action and the scene shift it must cause."""

    control: str  # "yaw" or "pitch"
    sign: int  # of the control's continuous value (yaw > 0 turns right, pitch > 0 looks up)
    axis: int  # of the measured shift: 0 = dy (down), 1 = dx (right)
    expected: int  # sign the summed shift must have


DIRECTIONS = {
    "yaw_left": Direction("yaw", -1, 1, +1),
    "yaw_right": Direction("yaw", +1, 1, -1),
    "pitch_up": Direction("pitch", +1, 0, +1),
    "pitch_down": Direction("pitch", -1, 0, -1),
}


def to_gray(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) RGB (any range) -> (..., H, W) float64 luma; (..., H, W) passes through as float."""
    x = np.asarray(frames, dtype=np.float64)
    return x @ np.array([0.299, 0.587, 0.114]) if x.shape[-1] == 3 else x


def _subpixel(left: float, mid: float, right: float) -> float:
    """Offset in (-0.5, 0.5) of a parabola's vertex through three samples around a peak."""
    denom = left - 2 * mid + right
    return 0.0 if denom >= 0 else float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))


def phase_correlation(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Dominant translation (dy, dx) from image a to image b, in pixels, sub-pixel.

    a, b: (H, W, 3) RGB or (H, W) gray, same shape. dy > 0: b's content sits lower than
    a's; dx > 0: further right (b ~ np.roll(a, (dy, dx), axis=(0, 1))). A Hann window
    tapers the borders so the wrap-around of the FFT does not pull the peak to zero.
    """
    ga, gb = to_gray(a), to_gray(b)
    if ga.shape != gb.shape or ga.ndim != 2:
        raise OchreError(f"phase correlation needs two images of one shape, got {np.shape(a)} and {np.shape(b)}")
    h, w = ga.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    fa, fb = np.fft.fft2((ga - ga.mean()) * window), np.fft.fft2((gb - gb.mean()) * window)
    cross = fb * np.conj(fa)
    surface = np.fft.ifft2(cross / (np.abs(cross) + 1e-9)).real  # a peak at the shift
    iy, ix = np.unravel_index(int(np.argmax(surface)), surface.shape)
    dy = iy + _subpixel(surface[iy - 1, ix], surface[iy, ix], surface[(iy + 1) % h, ix])
    dx = ix + _subpixel(surface[iy, ix - 1], surface[iy, ix], surface[iy, (ix + 1) % w])
    return float((dy + h / 2) % h - h / 2), float((dx + w / 2) % w - w / 2)  # wrap into [-H/2, H/2)


def top_gray(frames: np.ndarray, rows: float = CAMERA_ROWS) -> np.ndarray:
    """(T, H, W, 3) frames -> (T, rows * H, W) luma of the part that turns with the view (not the weapon below)."""
    return to_gray(frames)[:, : max(2, round(rows * frames.shape[1]))]


def sequence_shift(frames: np.ndarray, rows: float = CAMERA_ROWS) -> np.ndarray:
    """(T, H, W, 3) frames -> (2,) summed (dy, dx) between consecutive frames, measured on the top `rows` of each."""
    top = top_gray(frames, rows)
    return np.sum([phase_correlation(top[t], top[t + 1]) for t in range(len(top) - 1)], axis=0).reshape(2)


def camera_action(spec: FirstPersonActionSpec, direction: str, degrees: float = CAMERA_DEGREES) -> np.ndarray:
    """One encoded action that turns `degrees` in `direction` with no button held."""
    d = DIRECTIONS[direction]
    continuous = np.zeros(spec.shape)
    continuous[spec.index(d.control)] = d.sign * degrees / spec.max_deg
    return spec.encode(continuous)


def turn_degrees(spec: FirstPersonActionSpec, degrees: float = CAMERA_DEGREES) -> float:
    """The per-step turn the encoded camera action stands for (the requested degrees, binned)."""
    return float(abs(spec.degrees(camera_action(spec, "yaw_right", degrees))[0]))


def _first_person(spec: Any) -> FirstPersonActionSpec:
    if not isinstance(spec, FirstPersonActionSpec):
        raise OchreError(f"the camera check needs a first-person world, this one has a '{spec.kind}' action schema")
    return spec


def _ratio(num: float, den: float) -> float | None:
    """num / den, or None (null in results.json) when there is nothing to divide by."""
    return float(num / den) if den else None


def score_shifts(shifts: np.ndarray, direction: str, scored: np.ndarray | None = None) -> dict[str, Any]:
    """shifts (S, 2) summed (dy, dx) per seed for one direction -> fraction with the expected sign and size.

    scored: (S,) bool, seeds the direction is judged on (the others could not move that way).
    """
    d = DIRECTIONS[direction]
    scored = np.ones(len(shifts), bool) if scored is None else np.asarray(scored, bool)
    shifts = np.asarray(shifts).reshape(-1, 2)[scored]
    along = d.expected * shifts[:, d.axis]  # > 0: the expected way
    n = len(along)
    return {
        "scored": n,
        "skipped": int((~scored).sum()),
        "correct": int((along >= MIN_SHIFT_PX).sum()),
        "fraction": _ratio((along >= MIN_SHIFT_PX).sum(), n),
        "mean_shift_px": _ratio(along.sum(), n),  # along the expected axis, > 0 the expected way
        "mean_cross_shift_px": _ratio(np.abs(shifts[:, 1 - d.axis]).sum(), n),  # size of the shift on the other axis
    }


def camera_result(
    shifts: dict[str, np.ndarray],
    steps: int,
    degrees: float,
    pitch: np.ndarray | None = None,
    pitch_limits: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Summed shifts {direction: (S, 2)} -> per-direction and per-axis fractions and the verdict.

    degrees: the per-step turn. pitch (S,): the view's pitch in degrees at each start, when
    known; with `pitch_limits` (down, up) a pitch direction is judged only on starts with room
    for two steps that way (the real game would not move either).
    """
    rooms = pitch_room(pitch, pitch_limits, degrees)
    per_direction = {name: score_shifts(shifts[name], name, rooms[name]) for name in DIRECTIONS}

    def pooled(names: list[str]) -> float | None:
        return _ratio(sum(per_direction[n]["correct"] for n in names), sum(per_direction[n]["scored"] for n in names))

    axes = {"yaw": pooled(["yaw_left", "yaw_right"]), "pitch": pooled(["pitch_up", "pitch_down"])}
    return {
        "seeds": len(shifts["yaw_left"]),
        "steps": steps,
        "degrees_per_step": degrees,
        "min_shift_px": MIN_SHIFT_PX,
        "pass_fraction": PASS_FRACTION,
        "pitch_limits": list(pitch_limits) if pitch is not None and pitch_limits is not None else None,
        "directions": per_direction,
        "yaw_fraction": axes["yaw"],
        "pitch_fraction": axes["pitch"],
        "fraction": pooled(list(DIRECTIONS)),
        "passed": all(v is not None and v >= PASS_FRACTION for v in axes.values()),
    }


def pitch_room(pitch: np.ndarray | None, limits: tuple[float, float] | None, degrees: float) -> dict[str, np.ndarray | None]:
    """Which starts can look up / down at least two steps before the engine's clamp (None: all of them)."""
    if pitch is None or limits is None:
        return {name: None for name in DIRECTIONS}
    up, down = limits[1] - pitch >= 2 * degrees, pitch - limits[0] >= 2 * degrees
    return {"yaw_left": None, "yaw_right": None, "pitch_up": up, "pitch_down": down}


def score_camera_sequences(
    sequences: dict[str, np.ndarray],
    degrees: float,
    pitch: np.ndarray | None = None,
    pitch_limits: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Score frame sequences, real or generated: {direction: (S, 1 + steps, H, W, 3)}, each starting at the
    frame the camera action was first applied to."""
    shifts = {name: np.array([sequence_shift(s) for s in seqs]).reshape(-1, 2) for name, seqs in sequences.items()}
    return camera_result(shifts, next(iter(sequences.values())).shape[1] - 1, degrees, pitch, pitch_limits)


MOVING_BUTTONS = ("forward", "left", "back", "right", "jump")  # buttons that move the player (and the picture) too
MIN_GAIN_SHIFT_PX = 0.5  # steps that moved the picture less than this are left out of the gain (a clamped pitch, a wall)


def camera_gain(
    episodes: Iterable[tuple[np.ndarray, np.ndarray]], spec: FirstPersonActionSpec, rows: float = CAMERA_ROWS
) -> dict[str, dict[str, Any]]:
    """How far the picture moves per degree of camera turn, measured on recorded play.

    episodes: (frames (T, H, W, 3), encoded actions (T, ...)) pairs, actions[t] taken between
    frames t and t+1. Uses the steps that turn one axis only with no movement button held; per
    axis the gain is the median of shift / degrees over the steps that moved the picture at least
    MIN_GAIN_SHIFT_PX, signed to be positive when the scene moves the way DIRECTIONS says (turn
    right -> left, look up -> down). -> {"yaw": {"gain", "steps", "still"}, "pitch": {...}}: gain
    in pixels per degree (None without steps), steps used, steps left out as not moving.
    """
    spec = _first_person(spec)
    buttons = [spec.index(b) for b in MOVING_BUTTONS if b in spec.buttons]
    ratios: dict[str, list[float]] = {"yaw": [], "pitch": []}
    still = {"yaw": 0, "pitch": 0}
    for frames, actions in episodes:
        top = top_gray(frames, rows)
        turn = actions[:, :2] != spec.still_bin
        degrees = spec.degrees(actions)
        for t in np.flatnonzero((turn.sum(-1) == 1) & ~actions[:, buttons].any(-1)):
            if t + 1 >= len(top):
                continue
            axis = int(turn[t, 1])  # 0 = yaw, 1 = pitch
            name = ("yaw", "pitch")[axis]
            dy, dx = phase_correlation(top[t], top[t + 1])
            shift = -dx if axis == 0 else dy
            if abs(shift) < MIN_GAIN_SHIFT_PX:
                still[name] += 1
            else:
                ratios[name].append(shift / degrees[t, axis])
    return {
        name: {"gain": float(np.median(r)) if r else None, "steps": len(r), "still": still[name]} for name, r in ratios.items()
    }


class CameraWorld(Predictor, Protocol):
    action_spec: Any  # a FirstPersonActionSpec


def camera_response(
    world: CameraWorld,
    seeds: np.ndarray,
    seed_actions: np.ndarray,
    steps: int = CAMERA_STEPS,
    degrees: float = CAMERA_DEGREES,
    pitch: np.ndarray | None = None,
    pitch_limits: tuple[float, float] | None = None,
    batch: int = 32,
) -> dict[str, Any]:
    """Hold each pure camera direction for `steps` greedy steps from every seed and score the image shift.

    seeds: (S, K, H, W, 3) uint8 with their (S, K-1, ...) actions; pitch and pitch_limits as in
    `camera_result`. The shift is measured from the last seed frame through the predicted ones.
    """
    spec = _first_person(world.action_spec)
    shifts = {}
    for name in DIRECTIONS:
        action = camera_action(spec, name, degrees)
        found = []
        for i in range(0, len(seeds), batch):
            seed_b = seeds[i : i + batch]
            future = np.ascontiguousarray(np.broadcast_to(action, (len(seed_b), steps, *action.shape)))
            pred = world.rollout(seed_b, seed_actions[i : i + batch], future)
            found += [sequence_shift(f) for f in np.concatenate([seed_b[:, -1:], pred], axis=1)]
        shifts[name] = np.array(found).reshape(-1, 2)
    return camera_result(shifts, steps, turn_degrees(spec, degrees), pitch, pitch_limits)


def real_camera_response(
    env: Env,
    episodes: int = 16,
    steps: int = CAMERA_STEPS,
    degrees: float = CAMERA_DEGREES,
    warmup: int = 24,
    seed: int = 0,
    pitch_limits: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The same check on the real game: `episodes` starts, each replayed once per direction.

    A start is `env.reset(seed + e)` then `warmup` actions of the data generator's default
    exploration policy, so the view is moving, pitched and placed like a held-out seed's; the
    game replays them identically for every direction. The pitch at each start is the clamped
    sum of the warmup's pitch deltas.
    """
    spec = _first_person(env.action_spec)
    rng = np.random.default_rng(seed)
    policies = [ExplorationPolicy(PolicyConfig(), spec, 1, rng) for _ in range(episodes)]
    starts = [np.stack([policy.act()[0] for _ in range(warmup)]) for policy in policies]
    sequences = {
        name: np.stack([_play(env, seed + e, warm, camera_action(spec, name, degrees), steps) for e, warm in enumerate(starts)])
        for name in DIRECTIONS
    }
    pitch = None if pitch_limits is None else np.array([clamped_pitch(spec.degrees(w)[:, 1], pitch_limits)[-1] for w in starts])
    return score_camera_sequences(sequences, turn_degrees(spec, degrees), pitch, pitch_limits)


def _play(env: Env, seed: int, warmup: np.ndarray, action: np.ndarray, steps: int) -> np.ndarray:
    """Reset, play the warmup actions, then hold `action`: (1 + steps, H, W, 3) from the last warmup frame."""
    frame = env.reset(seed=seed)
    for a in warmup:
        frame = env.step(a)[0]
    return np.stack([frame] + [env.step(action)[0] for _ in range(steps)])


def clamped_pitch(deltas: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    """(T,) pitch deltas in degrees from a level view -> (T+1,) pitch before each delta and after the last,
    clamped at `limits` (down, up) as the engine does."""
    out = np.zeros(len(deltas) + 1)
    for t, d in enumerate(deltas):
        out[t + 1] = np.clip(out[t] + d, *limits)
    return out


@dataclass
class SeedWindows:
    """Held-out seeds: frames (S, K, H, W, 3) uint8, actions (S, K-1, ...), and the view pitch (S,) in
    degrees at the last seed frame (None when the world has no known pitch limits)."""

    frames: np.ndarray
    actions: np.ndarray
    pitch: np.ndarray | None


def held_out_seeds(
    data: EpisodeDataset, count: int, context: int = 4, seed: int = 0, pitch_limits: tuple[float, float] | None = None
) -> SeedWindows:
    """`count` fixed K-frame windows from every episode of `data` (pass held-out data).

    With `pitch_limits`, the view's pitch at each seed is rebuilt from the episode's camera
    actions (every episode starts level; the engine clamps at the limits).
    """
    sampler = WindowSampler(data, context, split="all", seed=seed)
    rng = np.random.default_rng(seed)  # the same picks as WindowSampler.fixed
    picks = sampler.starts[rng.choice(len(sampler.starts), size=min(count, len(sampler.starts)), replace=False)]
    batch = sampler.gather(picks)
    pitch = None if pitch_limits is None else _seed_pitch(data, picks, context, pitch_limits)
    return SeedWindows(batch.rows.numpy(), batch.actions[:, : context - 1].numpy(), pitch)


def _seed_pitch(data: EpisodeDataset, picks: np.ndarray, context: int, limits: tuple[float, float]) -> np.ndarray:
    """(S,) pitch in degrees at each window's last seed frame: clamped sum of the episode's pitch deltas."""
    spec = _first_person(data.action_spec)
    track = {}  # (shard, row) -> pitch at that row's frame
    for shard, start, n in data.episodes():
        deltas = spec.degrees(np.asarray(data.shards[shard]["actions"][start : start + n]))[:, 1]
        track |= {(shard, start + r): p for r, p in enumerate(clamped_pitch(deltas, limits)[:n])}
    return np.array([track[int(sh), int(st) + context - 1] for sh, st in picks])


# --- Pong ball tracking --------------------------------------------------------

PONG_BACKGROUND = (144, 72, 17)
PONG_BALL = (236, 236, 236)
PONG_PADDLES = ((213, 130, 74), (92, 186, 92))  # orange (left), green (right)
PONG_PLAYFIELD = (34, 194, 210)  # ALE's screen: playfield rows [34, 194) of 210; walls and score above and below
MIN_BALL_FRACTION = 0.15  # the ball's brightest pixel covers at least ~0.24 of a 64x64 pixel on real frames
MAX_BALL_RESIDUAL = 30.0  # RGB distance a pixel may sit off the background -> ball colour line
BALL_TOL_PX = 2.0
BALL_HORIZON = 6
BALL_EVENTS = ("straight", "wall", "paddle", "serve", "gap")  # `ball_event`'s answers


def playfield_rows(height: int) -> slice:
    """Rows of a frame `height` rows tall that hold only playfield (no wall, no score) after area resizing."""
    top, bottom, full = PONG_PLAYFIELD
    return slice(int(np.ceil(top * height / full)), int(np.floor(bottom * height / full)))


def colour_fit(frame: np.ndarray, colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 -> (amount, residual), each (H, W): each pixel unmixed against Pong's background along the
    line towards `colour` (amount in [0, 1] of the colour, RGB distance left off the line)."""
    bg = np.array(PONG_BACKGROUND, dtype=np.float64)
    diff = np.asarray(frame, dtype=np.float64) - bg
    line = np.array(colour, dtype=np.float64) - bg
    amount = np.clip(diff @ line / (line @ line), 0.0, 1.0)
    return amount, np.linalg.norm(diff - amount[..., None] * line, axis=-1)


def ball_weight(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) fraction of each pixel covered by the ball, 0 where it is not ball-coloured.

    Each pixel is unmixed against the background along three lines (towards the ball,
    the orange and the green paddle colour); it is ball when the ball line fits it best
    and well. Rows outside the playfield are 0.
    """
    (amount, residual), (_, orange), (_, green) = (colour_fit(frame, c) for c in (PONG_BALL, *PONG_PADDLES))
    weight = np.where((residual <= MAX_BALL_RESIDUAL) & (residual <= np.minimum(orange, green)), amount, 0.0)
    rows = playfield_rows(frame.shape[0])
    weight[: rows.start], weight[rows.stop :] = 0.0, 0.0
    return weight


def find_ball(frame: np.ndarray) -> tuple[float, float] | None:
    """(y, x) sub-pixel centre of the Pong ball in an (H, W, 3) uint8 frame, or None when no ball is drawn.

    The brightest ball-coloured pixel of the playfield, refined by the coverage-weighted
    centroid of its 3x3 neighbourhood (the ball spans one or two pixels at 64x64).
    """
    weight = ball_weight(frame)
    y, x = np.unravel_index(int(np.argmax(weight)), weight.shape)
    if weight[y, x] < MIN_BALL_FRACTION:
        return None
    y0, x0 = max(0, y - 1), max(0, x - 1)
    patch = weight[y0 : y + 2, x0 : x + 2]
    ys, xs = np.mgrid[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]]
    return float((ys * patch).sum() / patch.sum()), float((xs * patch).sum() / patch.sum())


def ball_errors(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, N, H, W, 3) predicted and true frames -> (on_screen (B, N) bool, error (B, N) px).

    error is the distance between the predicted and the true ball; inf where the model drew
    no ball, nan where the truth has none.
    """
    b, n = truth.shape[:2]
    on_screen, error = np.zeros((b, n), bool), np.full((b, n), np.nan)
    for i in range(b):
        for t in range(n):
            true_ball = find_ball(truth[i, t])
            if true_ball is None:
                continue
            on_screen[i, t] = True
            got = find_ball(pred[i, t])
            error[i, t] = np.inf if got is None else float(np.hypot(got[0] - true_ball[0], got[1] - true_ball[1]))
    return on_screen, error


class Codec(Protocol):
    """Frames to tokens and back (`ochre.runtime.WorldModel`)."""

    def encode(self, frames: np.ndarray) -> Any: ...
    def decode(self, tokens: Any) -> np.ndarray: ...


def ball_event(frames: np.ndarray) -> str:
    """(N, H, W, 3) true frames, the last two seed frames then the rollout's steps -> what the ball does meanwhile.

    'serve': no ball in the last seed frame; 'gap': it is gone from a later frame (left play, or
    too faint to find); else 'paddle' when its horizontal motion turns, 'wall' when its vertical
    motion turns, 'straight' when neither does.
    """
    track = [find_ball(f) for f in frames]
    if track[1] is None:
        return "serve"
    if any(p is None for p in track[2:]):
        return "gap"
    step = np.diff(np.array([p for p in track if p is not None]), axis=0)  # (steps, 2) motion in (y, x)
    turns = (np.sign(step[1:]) * np.sign(step[:-1]) < 0).any(axis=0)
    return "paddle" if turns[1] else "wall" if turns[0] else "straight"


def ball_ceiling(
    codec: Codec,
    data: EpisodeDataset,
    windows: int = 256,
    context: int = 4,
    horizon: int = BALL_HORIZON,
    tol: float = BALL_TOL_PX,
    seed: int = 0,
    batch: int = 32,
) -> dict[str, Any]:
    """The most of `ball_tracking`'s score any dynamics model over this tokenizer can reach, on the same windows.

    tokenizer_fraction: the true frame at `horizon`, encoded and decoded, still shows the ball
    within `tol` px (a perfect token predictor draws exactly that).
    """
    picked = WindowSampler(data, context + horizon, split="all", seed=seed).fixed(windows, seed=seed)
    kept = []
    for i in range(0, len(picked.rows), batch):
        truth = picked.rows[i : i + batch, -1:].numpy()
        seen, err = ball_errors(codec.decode(codec.encode(truth)), truth)
        kept.append(err[seen[:, 0], 0] <= tol)
    kept_all = np.concatenate(kept)
    return {"cases": len(kept_all), "tokenizer_fraction": _ratio(kept_all.sum(), len(kept_all))}


def ball_tracking(
    world: Predictor,
    data: EpisodeDataset,
    windows: int = 256,
    context: int = 4,
    horizon: int = BALL_HORIZON,
    tol: float = BALL_TOL_PX,
    seed: int = 0,
    batch: int = 32,
) -> dict[str, Any]:
    """Open-loop rollouts on fixed held-out windows (the data's actions): is the ball within `tol` px at `horizon`?

    Also: the same score split into balls already in flight in the last seed frame and balls
    served after it, the score at every step, the copy-last-frame reference at `horizon`, and
    per-horizon RGB PSNR (MSE averaged over the windows, frames in [0, 1]).
    """
    if context < 2:
        raise OchreError(f"ball tracking needs at least 2 seed frames to see the ball move, got context {context}")
    picked = WindowSampler(data, context + horizon, split="all", seed=seed).fixed(windows, seed=seed)
    on_screen, error, copy_error, events, sse = [], [], [], [], np.zeros(horizon)
    for i in range(0, len(picked.rows), batch):
        frames, actions = picked.rows[i : i + batch].numpy(), picked.actions[i : i + batch].numpy()
        truth = frames[:, context:]
        events += [ball_event(f[context - 2 :]) for f in frames]
        pred = world.rollout(frames[:, :context], actions[:, : context - 1], actions[:, context - 1 : context - 1 + horizon])
        seen, err = ball_errors(pred, truth)
        on_screen.append(seen)
        error.append(err)
        copy_error.append(ball_errors(frames[:, context - 1 : context], truth[:, -1:])[1][:, 0])
        sse += ((pred / 255.0 - truth / 255.0) ** 2).mean(axis=(2, 3, 4)).sum(0)
    seen, err, copy_err = np.concatenate(on_screen), np.concatenate(error), np.concatenate(copy_error)
    last, within = seen[:, -1], err <= tol
    cases = int(last.sum())
    flight, serve = last & np.isfinite(copy_err), last & np.isinf(copy_err)  # copy-last draws no ball where none was in flight
    found = last & np.isfinite(err[:, -1])
    fraction = _ratio(within[:, -1].sum(), cases)
    by_event, kind = {}, np.array(events)
    for name in BALL_EVENTS:
        cased = last & (kind == name)
        by_event[name] = {
            "cases": int(cased.sum()),
            "within_tol": int((cased & within[:, -1]).sum()),
            "no_ball": int((cased & np.isinf(err[:, -1])).sum()),
        }
    return {
        "windows": len(seen),
        "context": context,
        "horizon": horizon,
        "tol_px": tol,
        "pass_fraction": PASS_FRACTION,
        "cases": cases,
        "within_tol": int(within[:, -1].sum()),
        "fraction": fraction,
        "no_ball_fraction": _ratio((last & np.isinf(err[:, -1])).sum(), cases),
        "mean_error_px": _ratio(err[found, -1].sum(), found.sum()),  # where both balls were found
        "fraction_by_step": [_ratio(within[:, t].sum(), seen[:, t].sum()) for t in range(horizon)],
        "in_flight_cases": int(flight.sum()),  # the ball is on screen in the last seed frame too
        "in_flight_fraction": _ratio(within[flight, -1].sum(), flight.sum()),
        "serve_cases": int(serve.sum()),  # served after the last seed frame
        "serve_fraction": _ratio(within[serve, -1].sum(), serve.sum()),
        "by_event": by_event,  # what the true ball does over the rollout (`ball_event`)
        "copy_last_fraction": _ratio((copy_err[last] <= tol).sum(), cases),
        "psnr_by_step": [psnr_from_mse(float(m)) for m in sse / len(seen)],
        "passed": fraction is not None and fraction >= PASS_FRACTION,
    }
