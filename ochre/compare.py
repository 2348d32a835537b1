"""Several worlds scored side by side on the same held-out windows: one table.

    rows = [copy_last_row(data), Row("token", "world", WorldModel.load("checkpoints/coinrun.pt")), *flow_rows(...)]
    comparison = compare(rows, EpisodeDataset("data/coinrun_heldout"), CompareSettings(samples=4))
    print(render_markdown(comparison))

Every row is scored by the same code on the same windows (`ochre.evaluation.evaluate_world`
with one `EvalSettings`): open-loop fidelity per horizon (greedy, the "mean" prediction),
controllability (delta PSNR, true minus random actions), and for a stochastic world (a token
world sampling its codes, a flow world sampling its noise) the best of N sampled rollouts:
for each window and horizon the sample nearest the truth, its MSE averaged over windows
before PSNR. A deterministic row's best of N is its greedy rollout and is not recomputed.
Then, where they apply: action following by an inverse-dynamics model (`ochre.idm`), the
play tests (`ochre.playtest.suite`), the long-horizon stability verdicts (`ochre.stability`)
and live milliseconds per frame (one `WorldModel.step` at batch 1: a model step and a decode).
A flow world gives one row per sampler step count, the same loaded model with `flow_steps` set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ochre.actions import ActionSpec
from ochre.benchmark import step_times
from ochre.data.store import EpisodeDataset
from ochre.data.windows import WindowSampler
from ochre.errors import OchreError
from ochre.evaluation import VIEWS, EvalSettings, HorizonStats, Predictor, evaluate_world
from ochre.frames import to_unit
from ochre.idm import FrameIDM, action_following
from ochre.metrics import to_gray84
from ochre.pixel_world import PixelWorld
from ochre.playtest.suite import PlaytestSettings, run_playtests
from ochre.runtime import LatentWorldModel, WorldModel
from ochre.stability import POLICIES, Thresholds, judge, stability_rollout

TABLE_HORIZONS = (1, 8, 32)  # the table's columns (those that --horizon allows, and --horizon itself if shorter)
DELTA_HORIZON = 8  # delta PSNR is reported here (or at --horizon if shorter)
PLAY_STEP = 32  # play-test PSNR step shown in the table
MOTION_STEP = 16  # play-test view-motion and avatar step shown in the table

Tables = dict[str, dict[str, list[float]]]  # view -> metric (mse, psnr, ssim) -> one value per horizon


class CopyLast:
    """The copy-last-frame predictor behind the batched `rollout`: every future frame is the last seed frame."""

    def __init__(self, action_spec: ActionSpec, frame_shape: tuple[int, ...]):
        self.action_spec = action_spec
        self.frame_shape = frame_shape

    def rollout(self, seed_frames: np.ndarray, seed_actions: np.ndarray, future_actions: np.ndarray, **_: Any) -> np.ndarray:
        """(B, K, H, W, 3) -> (B, N, H, W, 3): the last seed frame N times."""
        return np.repeat(np.asarray(seed_frames)[:, -1:], np.asarray(future_actions).shape[1], axis=1)


@dataclass
class Row:
    """One line of the table: a name, what kind of predictor it is, and the predictor.

    kind: "copy_last", "baseline" (the pixel FiLM world: rollouts only) or "world" (a `WorldModel`).
    flow_steps: a flow world's sampler steps for this row (set on the shared model before each use).
    """

    name: str
    kind: str
    predictor: Predictor
    source: str = ""
    flow_steps: int | None = None

    @property
    def world(self) -> WorldModel | None:
        return self.predictor if isinstance(self.predictor, WorldModel) else None

    @property
    def stochastic(self) -> bool:
        """Whether sampling changes its rollouts: a token world (codes) or a flow world (noise); not the bridge."""
        wm = self.world
        return wm is not None and (not isinstance(wm, LatentWorldModel) or wm.flow_steps is not None)

    def ready(self) -> Predictor:
        """The predictor, with this row's sampler steps set on a flow world."""
        if self.flow_steps is not None and self.world is not None:
            self.world.flow_steps = self.flow_steps
        return self.predictor


def data_frame_shape(data: EpisodeDataset) -> tuple[int, ...]:
    """(H, W, 3) of a frame dataset's frames."""
    return tuple(data.shards[0][data.kind].shape[1:])


def copy_last_row(data: EpisodeDataset) -> Row:
    return Row("copy_last", "copy_last", CopyLast(data.action_spec, data_frame_shape(data)), source=str(data.path))


def world_rows(name: str, wm: WorldModel, source: str, flow_steps: tuple[int, ...]) -> list[Row]:
    """One row for a world; for a flow world one per sampler step count ("<name>@<steps>"; none given: its own)."""
    if wm.flow_steps is None:
        return [Row(name, "world", wm, source)]
    return [Row(f"{name}@{s}", "world", wm, source, flow_steps=s) for s in (flow_steps or (wm.flow_steps,))]


def check_fits(row: Row, data: EpisodeDataset, context: int, what: str) -> None:
    """A row must make the data's frames from the data's actions, and a baseline must fit the seed length."""
    p, shape = row.predictor, data_frame_shape(data)
    if tuple(p.frame_shape) != shape or p.action_spec.to_dict() != data.action_spec.to_dict():
        raise OchreError(
            f"{what}: {row.source} makes {tuple(p.frame_shape)} frames from '{p.action_spec.name}' actions, but {data.path} "
            f"holds {shape} frames and '{data.action_spec.name}' actions; compare worlds of that data"
        )
    if isinstance(p, PixelWorld) and p.model.cfg.past_frames > context:
        raise OchreError(f"{what}: {row.source} reads {p.model.cfg.past_frames} past frames; pass --context of at least that")


@dataclass(frozen=True)
class CompareSettings:
    eval: EvalSettings = field(default_factory=EvalSettings)  # windows, context, horizon, batch, seed: shared by all rows
    samples: int = 4  # N rollouts per window for best of N (stochastic rows)
    temperature: float = 1.0  # sampling temperature (flow: noise std) of those rollouts and the sampled play tests
    idm_horizon: int = 8  # generated frames per window scored by the IDM
    stability_steps: int = 1000  # open-loop steps per stability policy (0: skip)
    playtest_seeds: int = 16  # real-game seeds per play-test program (0: skip)
    playtest_programs: tuple[str, ...] = ()  # empty: all of the world's
    bench_steps: int = 200  # timed WorldModel.step calls per row (0: skip)
    bench_warmup: int = 10


@dataclass
class RowScores:
    """Everything measured for one row; None where a measurement was skipped or does not apply."""

    name: str
    kind: str
    source: str
    flow_steps: int | None
    stochastic: bool
    greedy: Tables  # the greedy (deterministic) rollout: the "mean" prediction
    random_actions: Tables | None  # the greedy rollout fed random actions (None for copy-last)
    copy_last: Tables  # copy-last on this row's windows: identical for every row when the windows are the same
    best_of_n: Tables | None = None  # stochastic rows only; a deterministic row's is `greedy`
    sampled: Tables | None = None  # the N sampled rollouts' mean MSE (stochastic rows only)
    action_following: dict[str, Any] | None = None
    stability: dict[str, Any] | None = None
    playtest: dict[str, Any] | None = None  # {"summary": {mode: scores}, "report": the suite's report}
    live_ms: dict[str, Any] | None = None

    def delta_psnr(self, view: str) -> list[float] | None:
        if self.random_actions is None:
            return None
        return [a - b for a, b in zip(self.greedy[view]["psnr"], self.random_actions[view]["psnr"], strict=True)]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"delta_psnr": {view: self.delta_psnr(view) for view in VIEWS}}


@dataclass
class Comparison:
    settings: CompareSettings
    rows: list[RowScores]
    meta: dict[str, Any]  # data, command, machine, worlds

    @property
    def horizons(self) -> list[int]:
        n = self.settings.eval.horizon
        return sorted({h for h in TABLE_HORIZONS if h <= n} | {min(n, TABLE_HORIZONS[-1])})

    @property
    def delta_horizon(self) -> int:
        return min(DELTA_HORIZON, self.settings.eval.horizon)

    def to_json(self) -> dict[str, Any]:
        settings = asdict(self.settings)
        return {"meta": self.meta, "settings": settings, "horizons": self.horizons, "rows": [r.to_json() for r in self.rows]}


def tables(stats: HorizonStats) -> Tables:
    return {view: {metric: [float(v) for v in values] for metric, values in stats.table(view).items()} for view in VIEWS}


# -- fidelity -------------------------------------------------------------------------------------------------------


def score_fidelity(row: Row, data: EpisodeDataset, settings: EvalSettings) -> tuple[RowScores, np.ndarray, np.ndarray]:
    """Greedy fidelity, random-action fidelity and copy-last on the fixed windows -> (scores, first seed frames
    (K, H, W, 3), their K-1 actions)."""
    ev = evaluate_world(row.ready(), data, settings, keep=0)  # type: ignore[arg-type]  # any Predictor with an action_spec
    copy_last = tables(ev.stats["copy_last"])
    own = row.kind != "copy_last"
    scores = RowScores(
        name=row.name,
        kind=row.kind,
        source=row.source,
        flow_steps=row.flow_steps,
        stochastic=row.stochastic,
        greedy=tables(ev.stats["model"]) if own else copy_last,
        random_actions=tables(ev.stats["model_random_actions"]) if own else None,
        copy_last=copy_last,
    )
    return scores, ev.seed_frames, ev.seed_actions


def sample_seed(seed: int, sample: int, batch: int) -> int:
    """The generator seed of one sampled rollout: distinct for every (run seed, sample, batch)."""
    return int(np.random.SeedSequence([seed, sample, batch]).generate_state(1)[0])


def frame_errors(preds: torch.Tensor, gt: torch.Tensor, view: str) -> torch.Tensor:
    """(S, B, N, 3, H, W) samples and (B, N, 3, H, W) truth in [0, 1] -> (S, B, N) MSE per frame on `view`."""
    if view == "gray84":
        preds, gt = to_gray84(preds), to_gray84(gt)
    return (preds - gt).pow(2).flatten(3).mean(-1)


@torch.inference_mode()
def score_samples(row: Row, data: EpisodeDataset, settings: CompareSettings) -> tuple[Tables, Tables]:
    """Best of N and the mean over N sampled rollouts on the windows of `evaluate_world` -> (best, sampled).

    Best of N on a view: for each window and horizon the sample with the least MSE on that view, then
    `HorizonStats` over those picks (so PSNR is of the MSE averaged over windows, as everywhere)."""
    wm, ev = row.ready(), settings.eval
    k, n = ev.context, ev.horizon
    picked = WindowSampler(data, k + n, split="all", seed=ev.seed).fixed(ev.windows, seed=ev.seed)
    device = getattr(wm, "device", torch.device("cpu"))
    best = {view: HorizonStats(n) for view in VIEWS}
    sampled = HorizonStats(n)
    desc = f"best of {settings.samples}: {row.name}"
    for start in tqdm(range(0, len(picked.rows), ev.batch), desc=desc, unit="batch"):
        frames = picked.rows[start : start + ev.batch].numpy()
        actions = picked.actions[start : start + ev.batch].numpy()
        seed, future, gt = frames[:, :k], actions[:, k - 1 : k - 1 + n], to_unit(frames[:, k:]).to(device)
        preds = torch.stack([
            to_unit(wm.rollout(seed, actions[:, : k - 1], future, sampling="sample", temperature=settings.temperature,
                               seed=sample_seed(ev.seed, j, start))).to(device)
            for j in range(settings.samples)
        ])  # fmt: skip  # (S, B, N, 3, H, W)
        for pred in preds:
            sampled.add(pred, gt)
        b, h = torch.arange(len(gt), device=device)[:, None], torch.arange(n, device=device)[None, :]
        for view in VIEWS:
            best[view].add(preds[frame_errors(preds, gt, view).argmin(0), b, h], gt)
    best_tables = {view: tables(best[view])[view] for view in VIEWS}
    return best_tables, tables(sampled)


# -- the other measures -----------------------------------------------------------------------------------------------


def stability_verdicts(
    wm: WorldModel, seed: tuple[np.ndarray, np.ndarray], steps: int, thresholds: Thresholds, run_seed: int
) -> dict:
    """Every stability policy for `steps` greedy steps from one seed -> {"steps", "policies": {policy: judgement}}."""
    policies = {}
    for policy in tqdm(POLICIES, desc=f"stability ({steps} steps)", unit="policy"):
        policies[policy] = judge(stability_rollout(wm, *seed, policy, steps, seed=run_seed), thresholds).to_dict()
    return {"steps": steps, "thresholds": asdict(thresholds), "policies": policies}


def live_ms(row: Row, seed: tuple[np.ndarray, np.ndarray], steps: int, warmup: int, run_seed: int = 0) -> dict[str, Any]:
    """Milliseconds per frame at batch 1 on the row's device: `WorldModel.step` (one step + decode, the greedy
    sampler as the app plays), or for the pixel baseline a one-frame `rollout` from the seed."""
    predictor = row.ready()
    actions = iter(predictor.action_spec.sample(np.random.default_rng(run_seed), size=steps + warmup))
    wm = row.world
    if wm is not None:
        state = [wm.reset(*seed)]

        def one() -> None:
            _, state[0] = wm.step(state[0], next(actions))
    else:

        def one() -> None:
            predictor.rollout(seed[0][None], seed[1][None], np.asarray(next(actions))[None, None])

    device = getattr(predictor, "device", torch.device("cpu"))
    ms = np.asarray(step_times(one, repeats=steps, warmup=warmup, device=device)) * 1000
    what = "WorldModel.step (step + decode)" if wm is not None else "rollout of one frame from the seed"
    return {"p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99)), "steps": steps, "timed": what}


def playtest_summary(report: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """The suite's report -> per sampling mode, means over programs: PSNR gray84 @PLAY_STEP (world, copy-last,
    tokenizer ceiling), liveliness, detail @32, view-motion sign agreement @MOTION_STEP (over scored seeds),
    avatar presence and avatar in place @16."""
    modes: dict[str, dict[str, float | None]] = {}
    for mode in dict.fromkeys(p["sampling"] for p in report["programs"]):
        programs = [p for p in report["programs"] if p["sampling"] == mode]
        motion = [
            m[str(MOTION_STEP)] if str(MOTION_STEP) in m else m.get(MOTION_STEP) for p in programs for m in p["motion"].values()
        ]
        motion = [m for m in motion if m and m.get("scored")]
        agree = sum(m["sign_agreement"] * m["scored"] for m in motion) / sum(m["scored"] for m in motion) if motion else None
        modes[mode] = {
            "psnr_gray84": _mean([_at(p["psnr_gray84"], PLAY_STEP) for p in programs]),
            "copy_last_gray84": _mean([_at(p["copy_last_gray84"], PLAY_STEP) for p in programs]),
            "ceiling_gray84": _mean([_at(p["ceiling_gray84"], PLAY_STEP) for p in programs]),
            "liveliness": _mean([p["liveliness"] for p in programs]),
            "detail": _mean([_at(p["detail"], 32) for p in programs]),
            "motion_sign": agree,
            "avatar_present": _mean([o["present"] for p in programs for n, o in p["objects"].items() if n == "avatar"]),
            "avatar_in_place": _mean([o["in_place_at_16"] for p in programs for n, o in p["objects"].items() if n == "avatar"]),
        }
    return modes


def _at(by_step: dict, step: int) -> float | None:
    """A value keyed by step (int keys, or strings after JSON)."""
    return by_step.get(step, by_step.get(str(step)))


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


# -- the whole comparison -------------------------------------------------------------------------------------------


def compare(
    rows: list[Row],
    data: EpisodeDataset,
    settings: CompareSettings,
    idm: FrameIDM | None = None,
    thresholds: Thresholds | None = None,
    meta: dict[str, Any] | None = None,
) -> Comparison:
    """Score every row on the same windows; the sections that apply to each, in the order of the table.

    `thresholds`: the stability floors (default `Thresholds()`; `train.compare` calibrates them on the data)."""
    thresholds = thresholds or Thresholds()
    scored, seed = [], None
    for row in rows:
        scores, *first = score_fidelity(row, data, settings.eval)
        seed = seed or tuple(first)
        if scored and scores.copy_last != scored[0].copy_last:
            raise OchreError(f"{row.name}: scored on other windows than {scored[0].name} (copy-last differs); report this bug")
        if row.stochastic and settings.samples:
            scores.best_of_n, scores.sampled = score_samples(row, data, settings)
        if idm is not None:
            ev = settings.eval
            scores.action_following = action_following(idm, row.ready(), data, ev.windows, ev.context, settings.idm_horizon, ev.seed, ev.batch)  # type: ignore[arg-type]  # fmt: skip
        scored.append(scores)
    assert seed is not None
    for row, scores in zip(rows, scored, strict=True):
        wm = row.world
        if wm is not None and settings.stability_steps:
            row.ready()
            scores.stability = stability_verdicts(wm, seed, settings.stability_steps, thresholds, settings.eval.seed)
        if wm is not None and settings.playtest_seeds:
            scores.playtest = run_row_playtests(row, settings)
        if row.kind != "copy_last" and settings.bench_steps:
            scores.live_ms = live_ms(row, seed, settings.bench_steps, settings.bench_warmup, settings.eval.seed)
    return Comparison(settings, scored, meta or {})


def run_row_playtests(row: Row, settings: CompareSettings) -> dict[str, Any]:
    """The play tests of one world row: greedy, and sampled too when sampling changes its rollouts."""
    modes = ("greedy", "sample") if row.stochastic else ("greedy",)
    play = PlaytestSettings(
        seeds=settings.playtest_seeds,
        modes=modes,
        temperature=settings.temperature,
        context=settings.eval.context,
        programs=settings.playtest_programs,
    )
    report = run_playtests(row.ready(), play, videos=None, log=tqdm.write)  # type: ignore[arg-type]
    report["meta"] |= {"row": row.name, "checkpoint": row.source}
    return {"summary": playtest_summary(report), "report": report}
