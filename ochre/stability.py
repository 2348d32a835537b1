"""Long-horizon stability: does a 1,000-step open-loop rollout stay alive, or collapse?

A world that is fine for 32 steps can still drift over a long rollout into a smooth
grey-brown blur (it forgets the texture and predicts an average frame) or a frozen
picture (it stops responding to input). `stability_rollout` runs one seed open loop
under a policy and records per step, on the model's device:

- `codes_in_use`: distinct codes in that frame's token grid,
- `pixel_std`: standard deviation of the frame's pixel values (all pixels and channels),
- `change`: mean |frame_t - frame_{t-1}| of consecutive frames (frame_{-1} is the
  decoded last seed frame).

Pixel values are in [0, 1] units of the uint8 frames the world shows. `judge` reads the
last 10% of the rollout (the window) and gives one verdict, checked in this order:

- "blur": mean pixel std in the window < `min_pixel_std`, or mean codes in use in the
  window < `min_code_ratio` x the mean codes in use in the first 10% of the rollout, or
  the window's detail (Laplacian variance of the luma, `detail`) < `min_detail_ratio` x
  the real seed frames' detail (a picture washed out against the real game);
- "frozen": every frame change in the window < `min_change` while the policy pressed a
  control in the window;
- "static": the same still frames with no control pressed (the "noop" policy): a world
  left alone may well stand still, so this is reported, not counted as a collapse;
- "alive": none of the above.

Thresholds (`Thresholds`), calibrated on held-out CoinRun levels (`data/coinrun_heldout`)
and on the shipped world (`checkpoints/coinrun.pt`: 64x64 frames, 16x16 tokens of 1,000
codes) run for 1,000 steps from each of the 8 seeds in `assets/coinrun/seed.npz` under
each policy:

- `min_pixel_std` = 0.03. Over 1,201 real frames (every 25th held-out frame) the pixel
  std is 0.057 at the lowest, 0.075 at the 1st percentile, 0.21 at the median. Even the
  mean of all those frames (every level averaged into one blur) keeps 0.099, and a
  Gaussian blur of radius 8 px keeps at least 0.038; the world's rollouts end between
  0.084 and 0.28. The floor, about half the dullest real frame, is crossed only by a
  nearly uniform frame.
- `min_code_ratio` = 0.5. Real frames use 33-158 distinct codes in their 256-token grid
  (median 93), and within a real episode the mean over any 20 frames stays >= 0.69 of
  the episode's best 20 (7 episodes, 1,463 frames). The world's rollouts end at
  0.76-1.06 of their first 10%, except one that froze (0.54). Blurring real frames
  before encoding halves their codes at radius 4 px (median ratio 0.48) and leaves a
  third at 8 px (0.34): below half, the texture is gone. The world loses texture within
  its first steps (its first 10% uses 35-69 codes where the last seed frames use
  63-100), before the reference window; `Judgement.codes_in_use_seed` shows that loss,
  while the verdict looks for a collapse after it.
- `min_change` = 0.005. Consecutive real frames differ by 0.031 at the median, and in
  no 20-frame window of the real episodes (as the tokenizer reconstructs them) is the
  largest change under 0.0175: the camera follows the player, so pressing moves the
  picture. Live rollouts keep a largest change of 0.014-0.077 in their last 100 steps;
  the one that froze (seed 4, random policy) only flickers a few tokens, largest change
  0.0002-0.0015 per 20 steps (one token swapped for a random code moves 0.0004 at the
  median, 0.002 at most). The floor is about 3x below the slowest live window and 3x
  above that flicker.
  Scaled to the world by `calibrate_change`: a game whose real pictures hardly move
  (Pong: one small ball and two paddles on a still field) gets the floor
  `REAL_CHANGE_FRACTION` x the 5th percentile of its real 20-frame windows' largest
  change, when that is lower. Over 6 held-out Pong episodes consecutive frames differ
  by 0.00056 at the median and the slowest 20-frame window's largest change is
  0.0006 (5th percentile 0.0008), so 0.005 would call the real game frozen; its floor
  becomes 0.0004. CoinRun (5th percentile >= 0.0175) and Doom keep 0.005.
- `min_detail_ratio` = 0.5, against the real game. Over the 186 held-out CoinRun episodes
  of 100+ frames, the detail of an episode's last 10% over its first 4 frames is 0.56 at
  the 1st percentile (0.70 at the 5th, 1.02 at the median; one episode of 186 falls to
  0.29). The shipped CoinRun world (before the play tests) keeps 0.31-0.47 of the real
  detail already through its tokenizer and ends 300-step rollouts at 0.13-0.67 of it
  (`assets/coinrun/seed.npz`, seeds 0-3): its grey, soft pictures are "blur" now, where
  pixel std and codes in use called them alive.
- `window` = 0.1: 100 steps of a 1,000-step rollout, more than one scripted cycle
  through procgen's 10 controls (80 steps).

Policies: "noop" holds the schema's neutral action; "scripted" cycles through the
control groups of `ochre.data.policies.isolated_groups`, each held for `SCRIPT_HOLD`
steps (a group with several actions takes the next one on each cycle), so it presses a
control at every step; "random" draws a fresh `spec.sample` action every step from a
seeded generator. All three are deterministic for a given seed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from ochre.actions import ActionSpec
from ochre.data.policies import isolated_groups
from ochre.data.store import EpisodeDataset
from ochre.errors import OchreError
from ochre.runtime import WorldModel

POLICIES = ("noop", "scripted", "random")
SCRIPT_HOLD = 8  # steps each scripted control is held: long enough to see it act
COLLAPSES = ("blur", "frozen")


@dataclass(frozen=True)
class Thresholds:
    """Collapse floors; the module docstring says how they were chosen."""

    window: float = 0.1  # share of the rollout judged (its end) and used as the reference (its start)
    min_pixel_std: float = 0.03
    min_code_ratio: float = 0.5
    min_change: float = 0.005
    min_detail_ratio: float = 0.5


REAL_CHANGE_FRACTION = 0.5  # of the real data's slow-window change, for worlds whose pictures barely move
REAL_CHANGE_CHUNK = 20  # frames per window when measuring the real data's change


def real_window_change(episodes: list[np.ndarray], chunk: int = REAL_CHANGE_CHUNK) -> float | None:
    """5th percentile over the real episodes' `chunk`-frame windows of the largest consecutive-frame change.

    episodes: uint8 (T, H, W, 3) arrays; change is mean |frame_t - frame_{t-1}| in [0, 1] units.
    None when no episode has `chunk` + 1 frames.
    """
    peaks = []
    for frames in episodes:
        change = np.abs(np.diff(np.asarray(frames, dtype=np.float32) / 255.0, axis=0)).mean(axis=(1, 2, 3))
        peaks += [change[i : i + chunk].max() for i in range(0, len(change) - chunk + 1, chunk)]
    return float(np.percentile(peaks, 5)) if peaks else None


def calibrate_change(thresholds: Thresholds, real_change: float | None) -> Thresholds:
    """`thresholds` with the frozen floor lowered for a world whose real pictures change less than
    1 / REAL_CHANGE_FRACTION times it (`real_change` from `real_window_change`); never raised,
    unchanged without a measurement."""
    if real_change is None:
        return thresholds
    return replace(thresholds, min_change=min(thresholds.min_change, REAL_CHANGE_FRACTION * real_change))


@dataclass(frozen=True)
class StabilityTrace:
    """One rollout's record; arrays have one row per predicted step (T) unless noted."""

    policy: str
    actions: np.ndarray  # (T, *action shape) the actions fed
    pressed: np.ndarray  # (T,) bool: the action presses a control
    tokens: np.ndarray  # (T, h, w) predicted tokens
    codes_in_use: np.ndarray  # (T,) distinct codes in each token grid
    change: np.ndarray  # (T,) mean |frame_t - frame_{t-1}|, [0, 1] units
    pixel_std: np.ndarray  # (T,) pixel standard deviation, [0, 1] units
    frames: np.ndarray  # (F, H, W, 3) uint8, the frames at `frame_steps`
    frame_steps: np.ndarray  # (F,) step of each kept frame: 0, every, 2 * every, ...
    seed_codes_in_use: int  # distinct codes in the last seed frame's tokens
    detail: np.ndarray | None = None  # (T,) Laplacian variance of each frame's luma ([0, 1] units)
    seed_detail: float | None = None  # the same, averaged over the real seed frames

    @property
    def steps(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class Judgement:
    """The verdict on one trace and the window statistics behind it."""

    verdict: str  # alive | static | frozen | blur
    window: tuple[int, int]  # judged steps [start, end)
    pixel_std: float  # mean over the window
    codes_in_use: float  # mean over the window
    codes_in_use_first: float  # mean over the rollout's first `window` share
    codes_in_use_seed: int  # in the last seed frame, for reference
    code_ratio: float  # codes_in_use / codes_in_use_first
    max_change: float  # largest frame change in the window
    mean_change: float
    pressed: bool  # a control was pressed somewhere in the window
    detail_ratio: float | None = None  # the window's mean detail over the real seed frames'

    @property
    def collapsed(self) -> bool:
        return self.verdict in COLLAPSES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"window": list(self.window), "collapsed": self.collapsed}


def policy_actions(spec: ActionSpec, policy: str, steps: int, seed: int = 0) -> np.ndarray:
    """(steps, *spec.shape) int64 actions of `policy`; only "random" uses `seed`."""
    if policy == "noop":
        return spec.neutral(steps)
    if policy == "scripted":
        return _script(spec, steps)
    if policy == "random":
        return spec.validate(spec.sample(np.random.default_rng(seed), size=steps))
    raise OchreError(f"unknown stability policy '{policy}' (choose from {', '.join(POLICIES)})")


def _script(spec: ActionSpec, steps: int) -> np.ndarray:
    """Each control group held for SCRIPT_HOLD steps in turn; on cycle c a group presses its action c (mod its count)."""
    groups = list(isolated_groups(spec).values())
    if not groups:
        raise OchreError(f"action schema '{spec.name}' has no controls to script")
    held = []
    for segment in range(math.ceil(steps / SCRIPT_HOLD)):
        cycle, group = divmod(segment, len(groups))
        held.append(groups[group][cycle % len(groups[group])])
    return np.repeat(np.stack(held), SCRIPT_HOLD, axis=0)[:steps]


def codes_in_use(tokens: torch.Tensor) -> torch.Tensor:
    """(T, h, w) tokens -> (T,) number of distinct codes in each grid, on the tokens' device."""
    flat = tokens.flatten(1).sort(1).values
    return (flat[:, 1:] != flat[:, :-1]).sum(1) + 1


def frame_stats(frames: torch.Tensor, previous: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames (n, H, W, 3) and the frame before them (H, W, 3) -> (pixel std (n,), change (n,)) in [0, 1] units."""
    x = frames.float().div(255)
    before = torch.cat([previous[None].float().div(255), x[:-1]])
    return x.flatten(1).std(1, correction=0), (x - before).abs().flatten(1).mean(1)


def frame_detail(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (n, H, W, 3) -> (n,) variance of the 4-neighbour Laplacian of the luma, [0, 1] units."""
    g = (frames.float().div(255) @ torch.tensor([0.299, 0.587, 0.114], device=frames.device))[:, None]
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=frames.device)[None, None]
    return torch.nn.functional.conv2d(g, kernel).flatten(1).var(1, correction=0)


def _decode_uint8(wm: WorldModel, tokens: torch.Tensor) -> torch.Tensor:
    """(n, ...) codes -> (n, H, W, 3) uint8 on the model's device, rounded as `ochre.frames.to_uint8` rounds.

    Token grids decode on the device; a latent world's float codes go through its own `decode`. (Their
    `codes_in_use` counts distinct latent values, nearly all of them, so the code-collapse test stays quiet.)
    """
    if tokens.is_floating_point():
        return torch.as_tensor(wm.decode(tokens), device=wm.device)
    x = wm.tokenizer.decode_tokens(tokens)
    return x.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).movedim(-3, -1)


@torch.inference_mode()
def stability_rollout(
    wm: WorldModel,
    seed_frames: np.ndarray,
    seed_actions: np.ndarray | None,
    policy: str,
    steps: int = 1000,
    every: int = 1,
    seed: int = 0,
    chunk: int = 100,
) -> StabilityTrace:
    """Run `steps` open-loop steps of `policy` from one seed (K, H, W, 3) and its K-1 actions (noop if None).

    The steps use `wm.advance` with the world's own sampling settings (greedy unless
    changed), so nothing is decoded while rolling out. Afterwards every step is decoded,
    `chunk` at a time, for the frame statistics (`change` needs consecutive frames);
    every `every`-th frame is kept for the video. Everything stays on the model's
    device until the finished arrays are copied out.
    """
    if steps < 1 or every < 1 or chunk < 1:
        raise OchreError(f"steps, every and chunk must be at least 1, got {steps}, {every} and {chunk}")
    actions = policy_actions(wm.action_spec, policy, steps, seed)
    state = wm.reset(seed_frames, seed_actions)
    seed_tokens = state.tokens
    predicted = []
    for action in actions:
        state = wm.advance(state, action)
        predicted.append(state.tokens[0])
    tokens = torch.stack(predicted)
    previous = _decode_uint8(wm, seed_tokens)[0]
    stds, changes, details, kept = [], [], [], []
    for start in range(0, steps, chunk):
        frames = _decode_uint8(wm, tokens[start : start + chunk])
        std, change = frame_stats(frames, previous)
        stds.append(std)
        changes.append(change)
        details.append(frame_detail(frames))
        kept.append(frames[(-start) % every :: every])
        previous = frames[-1]
    return StabilityTrace(
        policy=policy,
        actions=actions,
        pressed=wm.action_spec.active_controls(actions).reshape(steps, -1).any(1),
        tokens=tokens.cpu().numpy(),
        codes_in_use=codes_in_use(tokens).cpu().numpy(),
        change=torch.cat(changes).cpu().numpy(),
        pixel_std=torch.cat(stds).cpu().numpy(),
        frames=torch.cat(kept).cpu().numpy(),
        frame_steps=np.arange(0, steps, every),
        seed_codes_in_use=int(codes_in_use(seed_tokens)[0]),
        detail=torch.cat(details).cpu().numpy(),
        seed_detail=float(frame_detail(torch.as_tensor(np.asarray(seed_frames), device=wm.device)).mean()),
    )


def judge(trace: StabilityTrace, thresholds: Thresholds = Thresholds()) -> Judgement:
    """The verdict (module docstring) on the last `thresholds.window` share of `trace`, at least one step."""
    n = trace.steps
    w = max(1, math.ceil(n * thresholds.window))
    late = slice(n - w, n)
    std = float(trace.pixel_std[late].mean())
    codes = float(trace.codes_in_use[late].mean())
    first = float(trace.codes_in_use[:w].mean())
    max_change = float(trace.change[late].max())
    pressed = bool(trace.pressed[late].any())
    detail_ratio = None
    if trace.detail is not None and trace.seed_detail:
        detail_ratio = float(trace.detail[late].mean() / trace.seed_detail)
    washed_out = detail_ratio is not None and detail_ratio < thresholds.min_detail_ratio
    if std < thresholds.min_pixel_std or codes < thresholds.min_code_ratio * first or washed_out:
        verdict = "blur"
    elif max_change < thresholds.min_change:
        verdict = "frozen" if pressed else "static"
    else:
        verdict = "alive"
    return Judgement(
        verdict=verdict,
        window=(n - w, n),
        pixel_std=std,
        codes_in_use=codes,
        codes_in_use_first=first,
        codes_in_use_seed=trace.seed_codes_in_use,
        code_ratio=codes / first,
        max_change=max_change,
        mean_change=float(trace.change[late].mean()),
        pressed=pressed,
        detail_ratio=detail_ratio,
    )


def real_episodes(data: EpisodeDataset, frames: int = 4000, longest: int = 600) -> list[np.ndarray]:
    """About `frames` real frames from the held-out data, the start of each episode up to `longest` frames."""
    out, total = [], 0
    for shard, start, length in data.episodes():
        rows, _ = data.rows(shard, start, min(length, longest))
        out.append(rows)
        total += len(rows)
        if total >= frames:
            break
    return out
