"""The side-by-side comparison (`ochre.compare.Comparison`) as report.md and a PSNR-per-horizon plot.

    text = render_markdown(comparison)        # the table, what each column measures, the command and the machine
    plot_horizons("OUT/plots/psnr_per_horizon.png", comparison)

Pure but for the plot: the report can be checked from a hand-made `Comparison`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ochre.compare import MOTION_STEP, PLAY_STEP, Comparison, RowScores, Tables
from ochre.evaluation import VIEWS
from ochre.io import atomic_path
from ochre.report import report_horizons
from ochre.stability import POLICIES


def _f(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _psnr(t: Tables, view: str, horizons: list[int]) -> str:
    return " / ".join(f"{t[view]['psnr'][h - 1]:.2f}" for h in horizons)


def _best(r: RowScores, view: str, horizons: list[int]) -> str:
    if r.best_of_n is not None:
        return _psnr(r.best_of_n, view, horizons)
    return "not sampled" if r.stochastic else "= greedy (deterministic)"


def _delta(r: RowScores, h: int) -> str:
    cells = [r.delta_psnr(view) for view in ("gray84", "rgb")]
    return "—" if cells[0] is None else " / ".join(f"{d[h - 1]:+.2f}" for d in cells if d is not None)


def _idm(r: RowScores) -> str:
    return "—" if r.action_following is None else f"{r.action_following['generated_accuracy']:.3f}"


def _play(r: RowScores) -> str:
    if r.playtest is None:
        return "—"
    s = r.playtest["summary"].get("greedy", {})
    return f"{_f(s.get('psnr_gray84'))} / {_f(s.get('motion_sign'))} / {_f(s.get('avatar_in_place'))}"


def _stability(r: RowScores) -> str:
    if r.stability is None:
        return "—"
    return " / ".join(r.stability["policies"][p]["verdict"] for p in POLICIES)


def _live(r: RowScores) -> str:
    return "—" if r.live_ms is None else f"{r.live_ms['p50']:.1f} / {r.live_ms['p99']:.1f}"


def main_table(c: Comparison) -> list[str]:
    hs, dh, n = c.horizons, c.delta_horizon, c.settings.samples
    at = " / ".join(f"@{h}" for h in hs)
    head = ["row", f"PSNR gray84 {at} (dB)", f"best of {n}, gray84 (dB)", f"PSNR RGB {at} (dB)", f"best of {n}, RGB (dB)",
            f"ΔPSNR@{dh} gray84 / RGB (dB)", "IDM accuracy", f"play: PSNR@{PLAY_STEP} gray84 (dB) / motion sign / avatar in place",
            f"stability {c.settings.stability_steps} steps ({' / '.join(POLICIES)})", "live ms p50 / p99"]  # fmt: skip
    lines = [_row(head), _row(["---"] * len(head))]
    for r in c.rows:
        cells = [r.name, _psnr(r.greedy, "gray84", hs), _best(r, "gray84", hs), _psnr(r.greedy, "rgb", hs), _best(r, "rgb", hs),
                 _delta(r, dh), _idm(r), _play(r), _stability(r), _live(r)]  # fmt: skip
        lines.append(_row(cells))
    return lines


def column_notes(c: Comparison) -> list[str]:
    ev, n = c.settings.eval, c.settings.samples
    real = next((r.action_following for r in c.rows if r.action_following), None)
    ceiling = f" (real frames of the same windows: {real['real_accuracy']:.3f}, chance {real['chance']:.3f})" if real else ""
    return [
        f"- **PSNR**: open-loop rollout of {ev.horizon} frames from {ev.context} real seed frames and the recorded actions, "
        "greedy (deterministic: zero noise for a flow world, argmax codes for a token world) — the row's mean prediction; "
        "PSNR = 10 log10(1 / MSE) with MSE over all windows at that horizon, frames in [0, 1]; gray84 = grayscale, "
        "area-resized to 84x84 (DESIGN.md protocol), RGB at native size.",
        f"- **best of {n}**: {n} rollouts sampled with different seeds (temperature / noise std "
        f"{c.settings.temperature:g}); for each window and horizon the sample nearest the truth, its MSE averaged over the "
        "windows. Only rows whose sampling changes the rollout (token and flow worlds); for a deterministic row it is the "
        "greedy rollout, not recomputed.",
        "- **ΔPSNR**: PSNR with the recorded actions minus PSNR with uniformly random actions from the same seeds (greedy); "
        "near 0 means the row ignores its actions.",
        "- **IDM accuracy**: "
        + (
            "an inverse-dynamics classifier trained on real frames recovers the action between generated frames t and "
            f"t+1 ({c.settings.idm_horizon} frames per window, greedy){ceiling}."
            if real
            else "skipped (no --idm)."
        ),
        _skippable(
            "play",
            c.settings.playtest_seeds,
            "--playtest-seeds",
            f"the play-test suite against the real game ({c.settings.playtest_seeds} held-out seeds per program), greedy, "
            f"means over programs: PSNR gray84 at step {PLAY_STEP}, sign agreement of the view motion over the first "
            f"{MOTION_STEP} steps, share of seeds with the avatar in place at step 16 (details below).",
        ),
        _skippable(
            "stability",
            c.settings.stability_steps,
            "--stability-steps",
            "the verdict (alive, static, frozen, blur; `ochre/stability.py`) of a greedy open-loop rollout of "
            f"{c.settings.stability_steps} steps from the first window's seed under each policy.",
        ),
        _skippable(
            "live ms",
            c.settings.bench_steps,
            "--bench-steps",
            f"wall milliseconds per frame at batch 1 over {c.settings.bench_steps} steps: `WorldModel.step` (one model "
            "step + decode, greedy) for a world, a one-frame rollout for the pixel baseline; median and 99th percentile.",
        ),
        "- —: skipped or does not apply to the row (copy-last and the pixel baseline have no step state for play tests or "
        "stability).",
    ]


def _skippable(column: str, count: int, flag: str, what: str) -> str:
    return f"- **{column}**: " + (what if count else f"skipped ({flag} 0).")


def horizon_tables(c: Comparison) -> list[str]:
    hs = report_horizons(c.settings.eval.horizon)
    lines = []
    for view in VIEWS:
        head = ["row", "rollout", *(f"@{h}" for h in hs), f"mean h=1..{c.settings.eval.horizon}"]
        lines += ["", f"PSNR {view} (dB) per horizon:", "", _row(head), _row(["---"] * len(head))]
        for r in c.rows:
            for what, t in (("greedy", r.greedy), (f"best of {c.settings.samples}", r.best_of_n), ("sampled, mean", r.sampled)):
                if t is not None:
                    psnr = t[view]["psnr"]
                    lines.append(_row([r.name, what, *(f"{psnr[h - 1]:.2f}" for h in hs), f"{np.mean(psnr):.2f}"]))
    return lines


def playtest_table(c: Comparison) -> list[str]:
    rows = [r for r in c.rows if r.playtest is not None]
    if not rows:
        return []
    head = ["row", "sampling", f"PSNR@{PLAY_STEP} gray84 world / copy-last / ceiling (dB)", "liveliness", "detail @32",
            f"motion sign @{MOTION_STEP}", "avatar present", "avatar in place @16"]  # fmt: skip
    lines = ["", "## Play tests, means over programs", "", _row(head), _row(["---"] * len(head))]
    for r in rows:
        for mode, s in r.playtest["summary"].items():
            psnr = f"{_f(s['psnr_gray84'])} / {_f(s['copy_last_gray84'])} / {_f(s['ceiling_gray84'])}"
            lines.append(_row([r.name, mode, psnr, _f(s["liveliness"]), _f(s["detail"]), _f(s["motion_sign"]),
                               _f(s["avatar_present"]), _f(s["avatar_in_place"])]))  # fmt: skip
    return lines


def render_markdown(c: Comparison) -> str:
    ev, meta = c.settings.eval, c.meta
    m = meta.get("machine", {})
    where = (
        m.get("gpu")
        or f"CPU ({m.get('processor', '?')}, {m.get('cpu_count', '?')} cores, {m.get('torch_threads', '?')} torch threads)"
    )
    lines = [
        f"# Side by side: {meta.get('world', 'world')}",
        "",
        f"{ev.windows} held-out windows of `{meta.get('data', '?')}` (K={ev.context} seed frames, N={ev.horizon} predicted, "
        f"window seed {ev.seed}), the same windows for every row.",
        "",
        *main_table(c),
        "",
        *column_notes(c),
        *horizon_tables(c),
        *playtest_table(c),
        "",
        "## Run",
        "",
        f"- command: `{meta.get('command', '?')}`",
        f"- machine: {where}, torch {m.get('torch', '?')}, device {m.get('device', '?')}, "
        f"load average {m.get('load_average_1min', 0):.2f} while running",
    ]
    lines += [f"- {name}: `{path}`" for name, path in meta.get("sources", {}).items()]
    return "\n".join(lines) + "\n"


def plot_horizons(path: str | Path, c: Comparison) -> None:
    """PSNR per horizon for every row, one panel per view: greedy solid, best of N dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(VIEWS), figsize=(11, 4))
    x = np.arange(1, c.settings.eval.horizon + 1)
    marker = "." if len(x) < 12 else None
    for ax, view in zip(axes, VIEWS, strict=True):
        for i, r in enumerate(c.rows):
            color = f"C{i % 10}"
            ax.plot(x, r.greedy[view]["psnr"], color=color, marker=marker, label=r.name)
            if r.best_of_n is not None:
                ax.plot(
                    x, r.best_of_n[view]["psnr"], color=color, linestyle="--", label=f"{r.name}, best of {c.settings.samples}"
                )
        ax.set(title=f"PSNR per horizon ({view})", xlabel="horizon", ylabel="dB")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
