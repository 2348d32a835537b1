"""Play tests: the same input program played in the real game and in the learned world, scored side by side.

    real = play_real("coinrun", programs["hold_right"], seeds=list(range(64)), context=4)
    world = wm.rollout(real.seed_frames, real.seed_actions, real.actions, sampling="greedy")
    ceiling = wm.decode(wm.encode(real.frames[:, fidelity_columns(real.frames.shape[1])]))
    scores = score_program(real, world, ceiling, checks, finder, "greedy")
    report = run_playtests(wm, PlaytestSettings(seeds=64))    # all of that for every program of the world

A world with programs registered (ochre/playtest/checks.py) plays those; any other world
plays the generic set derived from its action schema (ochre/playtest/generic.py), scored
with the same world-independent measures and without objects; the report's
`meta.programs` says which set ran.

The real game starts on fresh held-out seeds (`HELDOUT` settings: CoinRun levels from
1,000,000, other worlds' seeds from `SEED_BASE`), takes K-1 do-nothing steps to give the
world its context, then plays the program; the world is seeded with those K frames and
fed the same actions. Where the real episode ends early (CoinRun's player dies or takes
the coin) the comparison stops there; the world plays on, and avatar presence counts
every frame it draws.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ochre.envs.worlds import make_env, source_settings, world_kind, world_settings
from ochre.errors import OchreError
from ochre.frames import to_unit
from ochre.io import write_video
from ochre.metrics import psnr_from_mse, ssim, to_gray84
from ochre.playtest.avatar import Finder
from ochre.playtest.checks import PlayChecks, PlaytestPlan, playtest_plan
from ochre.playtest.programs import Program
from ochre.playtest.scores import frame_change, laplacian_variance, motion_agreement, step_motion
from ochre.runtime import WorldModel

SEED_BASE = 100_000  # real-game seeds of the play tests start here, away from the data's seeds
HELDOUT = {"procgen": {"start_level": 1_000_000, "num_levels": 1_000}}  # settings by env kind (levels never trained on)
DETAIL_STEPS = (1, 32, 300)
FIDELITY_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 300)
MOTION_STEPS = (8, 16, 32)
MOVED = {"dy": 2.0, "dx": 2.0, "zoom": 0.03}  # least real motion (px, log scale) for a seed to be scored
AVATAR_STEP = 16
MIN_SEEDS = 8  # fewer valid seeds than this at a step: the step is not scored
STILL_CHANGE = 0.02  # mean frame change (0-255) below which the real picture counts as still (no liveliness ratio)


@dataclass
class RealPlay:
    """A program played in the real game from B seeds: what the world is given and what it must match."""

    program: str
    seed_frames: np.ndarray  # (B, K, H, W, 3) uint8
    seed_actions: np.ndarray  # (B, K-1, ...)
    actions: np.ndarray  # (B, N, ...) the program's actions
    frames: np.ndarray  # (B, N, H, W, 3) the real game's frames after each action
    valid: np.ndarray  # (B, N) bool: the real episode had not ended yet


def heldout_settings(kind: str) -> dict[str, Any]:
    """Env settings that keep the real game off the data's levels, by env kind (`world_kind`)."""
    return dict(HELDOUT.get(kind, {}))


def real_game_settings(world: str, frame_shape: tuple[int, ...], source: Any = None) -> dict[str, Any]:
    """Settings for the real game: those its data was drawn with (`source`, the checkpoint's), on held-out levels,
    drawing frames at the world's size where the env's size is a setting."""
    overrides = source_settings(world, source) | heldout_settings(world_kind(world))
    size = getattr(world_settings(world, overrides), "frame_size", None)
    if size is not None and tuple(size) != tuple(frame_shape[:2]):
        overrides["frame_size"] = list(frame_shape[:2])
    return overrides


def play_real(
    world: str, program: Program, seeds: list[int], context: int, overrides: dict | None = None, warmup: int = 0
) -> RealPlay:
    """Play `program` in the real `world` from each seed: an episode start, `warmup` random actions, K-1 do-nothing steps."""
    settings = world_settings(world, overrides)
    env = make_env(world, settings, seeds[0])
    spec = env.action_spec
    n = program.steps
    out = {k: [] for k in ("seed_frames", "seed_actions", "actions", "frames", "valid")}
    for seed in seeds:
        frames = [env.reset(seed=seed)]
        warm = np.random.default_rng([seed, 1])
        for _ in range(warmup):  # random keys: a deterministic game (Pong) reaches a different state from each seed
            frames.append(env.step(spec.sample(warm))[0])
        for _ in range(context - 1):
            frames.append(env.step(spec.neutral())[0])
        frames = frames[-context:]
        player = program.player(spec, np.random.default_rng(seed))
        acts, real, valid, alive = [], [], [], True
        for _ in range(n):
            action = player.act(real[-1] if real else frames[-1])
            acts.append(action)
            if alive:
                frame, _, done = env.step(action)
                alive = not done
            real.append(frame if alive else np.zeros_like(frames[0]))
            valid.append(alive)
        out["seed_frames"].append(np.stack(frames))
        out["seed_actions"].append(spec.neutral(context - 1))
        out["actions"].append(np.stack(acts))
        out["frames"].append(np.stack(real))
        out["valid"].append(np.array(valid))
    env.close()
    return RealPlay(program.name, **{k: np.stack(v) for k, v in out.items()})


# --- scores --------------------------------------------------------------------


@dataclass
class ProgramScores:
    program: str
    sampling: str
    seeds: int
    steps: int
    real_steps_median: float  # how long the real episodes lasted, median over seeds
    liveliness: float | None  # mean frame change, world over real game (None: the real picture stands still)
    change_world: float  # mean |frame t - frame t-1|, 0-255
    change_real: float
    detail: dict[int, float | None]  # Laplacian variance ratio world / real at these steps
    psnr_rgb: dict[int, float | None]
    psnr_gray84: dict[int, float | None]
    copy_last_gray84: dict[int, float | None]
    ceiling_gray84: dict[int, float | None]  # the tokenizer's reconstruction of the real frames
    ssim_gray84: dict[int, float | None]
    motion: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)  # component -> step -> agreement
    objects: dict[str, dict[str, float | None]] = field(default_factory=dict)  # name -> presence, real presence, in place

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _mean_or_none(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if len(x) >= MIN_SEEDS else None


def fidelity_columns(n: int) -> list[int]:
    """The 0-based steps of an n-step program that FIDELITY_STEPS score (the last step stands in for longer ones)."""
    return sorted({min(s, n) - 1 for s in FIDELITY_STEPS})


def _psnr_steps(pred: np.ndarray, real: RealPlay, gray: bool, columns: list[int] | None = None) -> dict[int, float | None]:
    """PSNR at each of FIDELITY_STEPS, MSE averaged over the valid seeds first.

    pred: (B, N, H, W, 3) uint8, or (B, len(columns), H, W, 3) holding only the steps `columns` lists.
    """
    out: dict[int, float | None] = {}
    n = real.frames.shape[1]
    for s in FIDELITY_STEPS:
        t = min(s, n) - 1
        keep = real.valid[:, t]
        if (s > n and s != FIDELITY_STEPS[-1]) or keep.sum() < MIN_SEEDS:
            continue
        col = columns.index(t) if columns is not None else t
        p, r = to_unit(pred[keep, col]), to_unit(real.frames[keep, t])
        if gray:
            p, r = to_gray84(p), to_gray84(r)
        out[s] = psnr_from_mse(float(((p - r) ** 2).mean()))
    return out


def _ssim_steps(pred: np.ndarray, real: RealPlay) -> dict[int, float | None]:
    out: dict[int, float | None] = {}
    for s in (1, 8, 32):
        t = min(s, pred.shape[1]) - 1
        keep = real.valid[:, t]
        if s <= pred.shape[1] and keep.sum() >= MIN_SEEDS:
            p, r = (to_gray84(to_unit(x[keep, t])) for x in (pred, real.frames))
            out[s] = ssim(p, r)
    return out


def liveliness(world: np.ndarray, real: RealPlay) -> tuple[float | None, float, float]:
    """-> (world change over real change or None where the real picture stands still, world change, real change).

    Change is the mean |frame t - frame t-1| (0-255) over the steps where the real episode runs.
    """
    pairs = real.valid[:, 1:]
    if pairs.sum() < MIN_SEEDS:
        return None, float("nan"), float("nan")
    world_change, real_change = frame_change(world)[pairs].mean(), frame_change(real.frames)[pairs].mean()
    ratio = float(world_change / real_change) if real_change >= STILL_CHANGE else None
    return ratio, float(world_change), float(real_change)


def detail_ratios(world: np.ndarray, real: RealPlay) -> dict[int, float | None]:
    """Mean Laplacian variance, world over real game, at each of DETAIL_STEPS (the last step stands in for longer ones)."""
    w, r = laplacian_variance(world), laplacian_variance(real.frames)
    n = world.shape[1]
    out: dict[int, float | None] = {}
    for s in DETAIL_STEPS:
        if s > n and s != DETAIL_STEPS[-1]:
            continue
        t = min(s, n) - 1
        keep = real.valid[:, t]
        real_mean = _mean_or_none(r[keep, t])
        out[s] = None if real_mean is None else float(w[keep, t].mean() / max(real_mean, 1e-12))
    return out


def motion_scores(world: np.ndarray, real: RealPlay, checks: PlayChecks) -> dict[str, dict[int, dict[str, Any]]]:
    """Per component and horizon h: the summed motion of frames 0..h (last seed frame first), world against real."""
    if not checks.motion:
        return {}
    h = min(max(MOTION_STEPS), world.shape[1])
    last = real.seed_frames[:, -1:]
    wm = step_motion(np.concatenate([last, world[:, :h]], 1), checks.motion, checks.motion_rows).cumsum(1)
    rm = step_motion(np.concatenate([last, real.frames[:, :h]], 1), checks.motion, checks.motion_rows).cumsum(1)
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for k, name in enumerate(checks.motion):
        out[name] = {}
        for s in MOTION_STEPS:
            if s <= h:
                keep = real.valid[:, s - 1]
                out[name][s] = motion_agreement(wm[keep, s - 1, k], rm[keep, s - 1, k], MOVED[name])
    return out


def object_scores(world: np.ndarray, real: RealPlay, finder: Finder, tol: float) -> dict[str, dict[str, float | None]]:
    """Per object: share of world frames that draw it where the real game does, of all world frames, of real
    frames that draw it, and of seeds where it is in place at step 16."""
    b, n = world.shape[:2]
    w = finder.find(world.reshape(-1, *world.shape[2:])).reshape(b, n, len(finder.names), 2)
    r = finder.find(real.frames.reshape(-1, *world.shape[2:])).reshape(b, n, len(finder.names), 2)
    t = min(AVATAR_STEP, n) - 1
    out = {}
    for j, name in enumerate(finder.names):
        present = ~np.isnan(w[..., j, 0])
        real_present = ~np.isnan(r[..., j, 0]) & real.valid
        scored = real_present[:, t]
        err = np.hypot(*(w[scored, t, j] - r[scored, t, j]).T) if scored.any() else np.array([])
        out[name] = {
            "present": float(present[real_present].mean()) if real_present.any() else None,
            "present_all": float(present.mean()),
            "real_present": float(real_present.sum() / max(real.valid.sum(), 1)),
            "in_place_at_16": float(np.mean(np.nan_to_num(err, nan=np.inf) <= tol)) if scored.sum() >= MIN_SEEDS else None,
            "scored_at_16": int(scored.sum()),
        }
    return out


def score_program(
    real: RealPlay, world: np.ndarray, ceiling: np.ndarray, checks: PlayChecks, finder: Finder | None, sampling: str
) -> ProgramScores:
    """All scores of one program. world: (B, N, H, W, 3) uint8; ceiling: the real frames through the tokenizer at
    `fidelity_columns(N)` only, (B, len(columns), H, W, 3)."""
    copy_last = np.repeat(real.seed_frames[:, -1:], world.shape[1], axis=1)
    lively, change_world, change_real = liveliness(world, real)
    return ProgramScores(
        program=real.program,
        sampling=sampling,
        seeds=len(world),
        steps=world.shape[1],
        real_steps_median=float(np.median(real.valid.sum(1))),
        liveliness=lively,
        change_world=change_world,
        change_real=change_real,
        detail=detail_ratios(world, real),
        psnr_rgb=_psnr_steps(world, real, gray=False),
        psnr_gray84=_psnr_steps(world, real, gray=True),
        copy_last_gray84=_psnr_steps(copy_last, real, gray=True),
        ceiling_gray84=_psnr_steps(ceiling, real, gray=True, columns=fidelity_columns(world.shape[1])),
        ssim_gray84=_ssim_steps(world, real),
        motion=motion_scores(world, real, checks),
        objects=object_scores(world, real, finder, checks.avatar_tol_px) if finder else {},
    )


# --- a whole play-test run -----------------------------------------------------------

VIDEO_SEEDS = 4  # seeds shown in each side-by-side video: those whose real episodes last longest


@dataclass(frozen=True)
class PlaytestSettings:
    seeds: int = 64
    modes: tuple[str, ...] = ("greedy", "sample")
    temperature: float = 1.0
    top_k: int = 0
    context: int = 4
    programs: tuple[str, ...] = ()  # names to play (empty: all of the world's)


def side_by_side(real: np.ndarray, world: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(B, N, H, W, 3) real and world frames -> (N, B*H, 2*W + 2, 3): one row per seed, real left; ended real episodes black."""
    real = np.where(valid[..., None, None, None], real, 0)
    gap = np.full((*real.shape[:3], 2, 3), 255, np.uint8)
    rows = np.concatenate([real, gap, world], axis=3)  # (B, N, H, 2W+2, 3)
    return rows.transpose(1, 0, 2, 3, 4).reshape(rows.shape[1], -1, *rows.shape[3:])


def run_playtests(
    wm: WorldModel,
    settings: PlaytestSettings,
    plan: PlaytestPlan | None = None,
    videos: Path | None = None,
    clips: dict[str, np.ndarray] | None = None,
    log=print,
) -> dict[str, Any]:
    """Play every program of `wm`'s world in the real game and in `wm`; -> the report {meta, programs}.

    `plan`: the checks and programs (None: `playtest_plan` of the world: registered, else the generic set).

    `videos`: a folder for one side-by-side mp4 per program and sampling mode (None: none written).
    `clips`: filled with those side-by-side frames, by "<program>_<mode>", for a caller that wants them.
    """
    world = str(wm.info.get("world", ""))
    plan = plan or playtest_plan(world, wm.action_spec)
    checks, programs = plan.checks, plan.programs
    missing = [p for p in settings.programs if p not in programs]
    if missing:
        raise OchreError(f"--programs: {', '.join(missing)} not found (the world has: {', '.join(programs)})")
    chosen = [programs[p] for p in settings.programs] if settings.programs else list(programs.values())
    finder = checks.avatar() if checks.avatar else None
    seeds = [SEED_BASE + i for i in range(settings.seeds)]
    overrides = real_game_settings(world, wm.frame_shape, wm.info.get("source"))
    results = []
    for program in chosen:
        real = play_real(world, program, seeds, settings.context, overrides, checks.warmup)
        ceiling = wm.decode(wm.encode(real.frames[:, fidelity_columns(program.steps)]))
        for mode in settings.modes:
            frames = wm.rollout(
                real.seed_frames, real.seed_actions, real.actions, mode, settings.temperature, settings.top_k or None, seed=0
            )
            results.append(score_program(real, frames, ceiling, checks, finder, mode))
            shown = np.argsort(-real.valid.sum(1), kind="stable")[:VIDEO_SEEDS]  # the longest real episodes
            clip = side_by_side(real.frames[shown], frames[shown], real.valid[shown])
            if videos is not None:
                write_video(Path(videos) / f"{program.name}_{mode}.mp4", clip, fps=wm.fps, scale=2)
            if clips is not None:
                clips[f"{program.name}_{mode}"] = clip[: max(int(real.valid[shown].sum(1).max()), 1)]
        log(f"play test {program.name}: {len(seeds)} seeds x {program.steps} steps")
    meta = {
        "world": world,
        "seeds": settings.seeds,
        "seed_base": SEED_BASE,
        "settings": overrides,
        "programs": plan.to_json() | {"played": [p.name for p in chosen]},
        "temperature": settings.temperature,
        "top_k": settings.top_k,
        "device": str(wm.device),
        "torch": torch.__version__,
    }
    return {"meta": meta, "programs": [r.to_json() for r in results]}
