"""The held-out evaluation report: a results dict (what results.json holds) rendered as markdown.

`build_results` gathers the per-horizon rows of `ochre.evaluation.summary_rows` into
nested lists; `render_markdown` turns a results dict into report.md. Both are pure, so
the report can be checked from a hand-made dict without a model.

Results layout (every number is a plain float, lists are indexed by horizon - 1):
    metrics[predictor][view][metric]   predictor: model | copy_last | model_random_actions | a baseline
                                       (pixel_film), view: rgb | gray84, metric: mse | psnr | ssim (| lpips on rgb)
    delta_psnr[view]                   model PSNR minus model-with-random-actions PSNR
    lpips                              {"available": bool, "note": why it is missing, or ""}
    stability                          None (skipped) or {"steps", "thresholds", "policies": {policy: judgement}}
    action_following                   None (no --idm) or {"idm", "results": {predictor: ochre.idm.action_following dict}}
    world_checks                       None (--no-world-checks) or {"camera", "ball"}, each None where it does not apply:
                                       camera {"results": {predictor: ochre.world_checks.camera_response dict},
                                       "real_game": real_camera_response dict or None, "real_game_note": why it is None};
                                       ball {"results": {predictor: ochre.world_checks.ball_tracking dict},
                                             "ceiling": ochre.world_checks.ball_ceiling dict (absent in older reports)}
    files                              {"plots": {label: path}, "videos": {label: path}}, relative to report.md
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ochre.evaluation import VIEWS

REPORT_HORIZONS = (1, 2, 4, 8, 16, 32)
PUBLISHED_HORIZON = 32  # the published rollout numbers are over h = 1..32
PUBLISHED = {
    "source": "DESIGN.md, section 'Evaluation protocol (public part)': the pixel world model report, CoinRun, grayscale 84x84 protocol",
    "quote": "val PSNR 26.90, SSIM 0.863, rollout mean PSNR over h=1..32 of 23.95 dB, PSNR@32 26.34 dB on CoinRun",
    "val_psnr": 26.90,
    "val_ssim": 0.863,
    "rollout_mean_psnr": 23.95,
    "psnr_at_32": 26.34,
}
LABELS = {
    "model": "model",
    "copy_last": "copy-last frame",
    "model_random_actions": "model, random actions",
    "pixel_film": "pixel-space FiLM baseline (same data)",
    "tokenizer_ceiling": "tokenizer ceiling (true frame encoded and decoded)",
}


def label(name: str) -> str:
    return LABELS.get(name, name)


def report_horizons(horizon: int) -> list[int]:
    """The horizons shown as columns: 1, 2, 4, 8, 16, 32 up to `horizon`, and `horizon` itself."""
    return sorted({h for h in REPORT_HORIZONS if h <= horizon} | {horizon})


def build_results(rows: list[dict[str, float]], meta: dict[str, Any]) -> dict[str, Any]:
    """Nest the summary rows by predictor/view/metric, add delta PSNR and the published numbers; `meta` is merged in."""
    metrics: dict[str, dict[str, dict[str, list[float]]]] = {}
    for key in rows[0]:
        if key != "horizon":
            name, view, metric = key.split("/")
            metrics.setdefault(name, {}).setdefault(view, {})[metric] = [float(r[key]) for r in rows]
    delta = {
        view: [a - b for a, b in zip(metrics["model"][view]["psnr"], metrics["model_random_actions"][view]["psnr"], strict=True)]
        for view in VIEWS
    }
    return meta | {
        "horizon": len(rows),
        "report_horizons": report_horizons(len(rows)),
        "metrics": metrics,
        "delta_psnr": delta,
        "published": PUBLISHED,
    }


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(head: list[str], body: list[list[str]]) -> str:
    return "\n".join([_row(head), _row(["---"] * len(head)), *(_row(r) for r in body)])


def _cells(values: list[float], horizons: list[int], digits: int) -> list[str]:
    """Values at the report horizons, then the mean over every horizon."""
    return [f"{values[h - 1]:.{digits}f}" for h in horizons] + [f"{np.mean(values):.{digits}f}"]


def headline_section(results: dict[str, Any]) -> str:
    """Model vs copy-last vs random actions vs the published pixel world model, grayscale 84x84."""
    n = results["horizon"]
    m = results["metrics"]
    head = ["predictor (gray84)", "PSNR@1", f"PSNR@{n}", f"mean PSNR h=1..{n}", "SSIM@1", f"SSIM@{n}"]
    body = []
    for name in m:
        g = m[name]["gray84"]
        body.append(
            [
                label(name),
                *(f"{v:.2f}" for v in (g["psnr"][0], g["psnr"][-1], np.mean(g["psnr"]))),
                f"{g['ssim'][0]:.3f}",
                f"{g['ssim'][-1]:.3f}",
            ]
        )
    p = results["published"]
    comparable = n == PUBLISHED_HORIZON
    at_n, mean = (f"{p['psnr_at_32']:.2f}", f"{p['rollout_mean_psnr']:.2f}") if comparable else ("—", "—")
    body.append(["pixel world model (published)", "—", at_n, mean, "—", "—"])
    lines = [
        "## Headline (grayscale 84x84 protocol)",
        "",
        _table(head, body),
        "",
        f"Published numbers, quoted from {p['source']}:",
        f"> {p['quote']}",
        "",
        "The published val PSNR and SSIM are validation numbers, not an open-loop horizon, so they fill no column.",
    ]
    if not comparable:
        lines.append(
            f"The published rollout numbers are over h=1..{PUBLISHED_HORIZON}; this run's horizon is {n}, so they are not placed in the table."
        )
    return "\n".join(lines)


def horizon_section(results: dict[str, Any]) -> str:
    """Per-horizon PSNR, SSIM (and RGB LPIPS when available) of every predictor, one table per view."""
    hs = results["report_horizons"]
    head = ["metric", "predictor", *(f"@{h}" for h in hs), "mean"]
    parts = ["## Per-horizon metrics"]
    for view in VIEWS:
        body = []
        for metric, digits in (("psnr", 2), ("ssim", 3), ("lpips", 3)):
            for name in results["metrics"]:
                values = results["metrics"][name][view].get(metric)
                if values is not None:
                    body.append([metric.upper() if metric != "psnr" else "PSNR (dB)", label(name), *_cells(values, hs, digits)])
        parts += ["", f"### {view}", "", _table(head, body)]
    if not results["lpips"]["available"]:
        parts += ["", f"LPIPS is not reported: {results['lpips']['note']}"]
    return "\n".join(parts)


def controllability_section(results: dict[str, Any]) -> str:
    """Delta PSNR per horizon: how much the true actions beat random ones from the same seed frames."""
    hs = results["report_horizons"]
    body = [[view, *_cells(results["delta_psnr"][view], hs, 2)] for view in VIEWS]
    return "\n".join(
        [
            "## Controllability",
            "",
            "ΔPSNR(h) = PSNR with the true actions − PSNR with random actions from the same seed frames (dB; higher means the actions matter).",
            "",
            _table(["view", *(f"@{h}" for h in hs), "mean"], body),
        ]
    )


def stability_section(results: dict[str, Any]) -> str:
    """The long-horizon verdict per policy with the statistics of the judged window, or why it was skipped."""
    st = results.get("stability")
    if not st:
        return "## Long-horizon stability\n\nSkipped (`--stability-steps 0`)."
    head = [
        "policy",
        "verdict",
        "pixel std",
        "codes seed/first/last",
        "code ratio",
        "max change",
        "mean change",
        "detail vs real",
    ]
    body = [
        [
            policy,
            f"**{j['verdict']}**",
            f"{j['pixel_std']:.3f}",
            f"{j['codes_in_use_seed']}/{j['codes_in_use_first']:.1f}/{j['codes_in_use']:.1f}",
            f"{j['code_ratio']:.2f}",
            f"{j['max_change']:.4f}",
            f"{j['mean_change']:.4f}",
            "—" if j.get("detail_ratio") is None else f"{j['detail_ratio']:.2f}",
        ]  # fmt: skip
        for policy, j in st["policies"].items()
    ]
    start, end = next(iter(st["policies"].values()))["window"]
    collapsed = [p for p, j in st["policies"].items() if j["collapsed"]]
    floors = ""
    if th := st.get("thresholds"):
        floors = (
            f" Floors: blur below pixel std {th['min_pixel_std']}, code ratio {th['min_code_ratio']} or "
            f"{th.get('min_detail_ratio', '—')} of the real seed frames' detail; frozen when every "
            f"change stays below {th['min_change']:.4g}"
        )
        if st.get("real_window_change") is not None:
            floors += f" (the held-out data's slow 20-frame windows peak at {st['real_window_change']:.4f})"
        floors += "."
    return "\n".join(
        [
            "## Long-horizon stability",
            "",
            f"{st['steps']} open-loop steps per policy from the first held-out window's seed frames, judged on steps {start + 1}-{end} "
            "(`ochre.stability`: blur and frozen are collapses; static is a still world with nothing pressed)." + floors,
            "",
            _table(head, body),
            "",
            f"Collapsed: {', '.join(collapsed) if collapsed else 'none'}.",
        ]
    )


def action_following_section(results: dict[str, Any]) -> str:
    """IDM accuracy on generated transitions next to its accuracy on the real ones (the ceiling) and chance."""
    af = results.get("action_following")
    if not af:
        return (
            "## Action following\n\nNot measured: pass `--idm IDM.pt` (trained with `python -m train.idm`) "
            "to score the generated frames with an inverse-dynamics classifier."
        )
    first = next(iter(af["results"].values()))
    body = [["real frames (ceiling)", f"{first['real_accuracy']:.3f}"]]
    body += [[f"generated: {label(name)}", f"{r['generated_accuracy']:.3f}"] for name, r in af["results"].items()]
    body.append(["chance", f"{first['chance']:.3f}"])
    return "\n".join(
        [
            "## Action following",
            "",
            f"An inverse-dynamics classifier (`{af['idm']}`, trained on real frames) guesses the action between consecutive frames; "
            f"{first['windows']} held-out windows, {first['pairs']} transitions, {first['horizon']} generated frames after "
            f"{first['context']} seed frames. Accuracy is averaged over the action's components.",
            "",
            _table(["frames", "IDM accuracy"], body),
        ]
    )


def _frac(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _verdict(passed: bool) -> str:
    return "**pass**" if passed else "**fail**"


def camera_section(camera: dict[str, Any]) -> str:
    """Per direction: fraction of seeds whose picture shifted the right way, per predictor and the real game."""
    rows = {label(name): r for name, r in camera["results"].items()}
    if camera["real_game"]:
        rows["real game"] = camera["real_game"]
    head = ["frames", "yaw left", "yaw right", "pitch up", "pitch down", "yaw", "pitch", "verdict"]
    body = [
        [name]
        + [f"{_frac(d['fraction'])} ({_frac(d['mean_shift_px'], 1)} px, n={d['scored']})" for d in r["directions"].values()]
        + [_frac(r["yaw_fraction"]), _frac(r["pitch_fraction"]), _verdict(r["passed"])]
        for name, r in rows.items()
    ]
    first = next(iter(camera["results"].values()))
    intro = (
        f"From each of {first['seeds']} held-out seeds the world holds one pure camera action for {first['steps']} steps "
        f"({first['degrees_per_step']:.3g}° per step, no buttons, greedy). The picture's shift between consecutive frames is "
        "measured by phase correlation on the top of the frame and summed; a seed passes when the sum has the expected sign "
        f"and is at least {first['min_shift_px']:g} px: yaw left moves the scene right, yaw right left, pitch up moves it down, "
        "pitch down up (measured on ViZDoom). Cells: fraction correct (mean shift the expected way, seeds scored). "
        f"Pass: at least {first['pass_fraction']:.0%} on each axis."
    )
    return "\n\n".join(["### Camera response", intro, _table(head, body), *camera_notes(camera)])


def camera_notes(camera: dict[str, Any]) -> list[str]:
    """Which pitch seeds were not scored, and where the real game's row comes from (or why it is missing)."""
    first = next(iter(camera["results"].values()))
    notes = []
    if first["pitch_limits"]:
        low, high = first["pitch_limits"]
        up, down = (first["directions"][k]["skipped"] for k in ("pitch_up", "pitch_down"))
        notes.append(
            f"Seeds whose view was within two steps of the pitch clamp ({low:g}° to {high:g}°, rebuilt from the episode's "
            f"actions) are not scored for that direction: {up} up, {down} down."
        )
    real = camera["real_game"]
    if real:
        notes.append(f"Real game: {real['seeds']} fresh starts after data-like exploration, each replayed once per direction.")
    else:
        notes.append(f"Real game not scored: {camera['real_game_note']}.")
    return notes


# `ochre.world_checks.ball_event`'s answers, as the report names them
BALL_EVENT_NAMES = {"straight": "straight flight", "wall": "wall bounce", "paddle": "paddle hit", "serve": "serve",
                    "gap": "gone from a frame"}  # fmt: skip


def ball_section(ball: dict[str, Any]) -> str:
    """Ball within tol px at the last step per predictor, copy-last beside it, then per-horizon PSNR."""
    results = ball["results"]
    first = next(iter(results.values()))
    n, tol = first["horizon"], first["tol_px"]
    head = ["predictor", f"within {tol:g} px @{n}", "no ball drawn", "mean error (px)", "verdict"]
    body = [
        [label(name), _frac(r["fraction"]), _frac(r["no_ball_fraction"]), _frac(r["mean_error_px"], 1), _verdict(r["passed"])]
        for name, r in results.items()
    ]
    body.append([label("copy_last"), _frac(first["copy_last_fraction"]), "—", "—", "—"])
    split = [
        f"{label(name)} {_frac(r['in_flight_fraction'])} of {r['in_flight_cases']} balls in flight, "
        f"{_frac(r['serve_fraction'])} of {r['serve_cases']} serves"
        for name, r in results.items()
        if "in_flight_cases" in r  # absent in older reports
    ]
    by_event = [
        [label(name), *(_event_cell(r["by_event"][kind]) for kind in BALL_EVENT_NAMES)]
        for name, r in results.items()
        if "by_event" in r
    ]
    ceiling = ball.get("ceiling")
    if ceiling:
        body.append([label("tokenizer_ceiling"), _frac(ceiling["tokenizer_fraction"]), "—", "—", "—"])  # what any model can reach
    steps = list(range(1, n + 1))
    per_step = [[label(name), "ball within tol", *(_frac(v) for v in r["fraction_by_step"])] for name, r in results.items()]
    per_step += [[label(name), "PSNR (dB)", *(f"{v:.2f}" for v in r["psnr_by_step"])] for name, r in results.items()]
    return "\n".join(
        [
            "### Pong ball tracking",
            "",
            f"{first['windows']} held-out windows: {first['context']} seed frames, then {n} open-loop steps of the data's actions. "
            "The ball is found by its colour inside the playfield (walls and score excluded); a window counts when the true ball "
            f"is on screen at step {n} ({first['cases']} cases) and passes when the predicted ball is within {tol:g} px of it. "
            f"Pass: at least {first['pass_fraction']:.0%}.",
            "",
            _table(head, body),
            *(
                ["", "Balls already in flight in the last seed frame against balls served after it: " + "; ".join(split) + "."]
                if split
                else []
            ),
            *(
                [
                    "",
                    f"By what the true ball does from the last two seed frames to step {n} (within {tol:g} px, of cases; "
                    "no ball drawn):",
                    "",
                    _table(["predictor", *BALL_EVENT_NAMES.values()], by_event),
                ]
                if by_event
                else []
            ),
            "",
            _table(["predictor", "per step", *(f"@{h}" for h in steps)], per_step),
        ]
    )


def _event_cell(counts: dict[str, int]) -> str:
    """One event kind of `ball_tracking`'s by_event: 'fraction of cases (none drawn)', or '—' without cases."""
    if not counts["cases"]:
        return "—"
    return f"{counts['within_tol'] / counts['cases']:.2f} of {counts['cases']} ({counts['no_ball']})"


def world_checks_section(results: dict[str, Any]) -> str:
    """Camera response (first-person worlds) and ball tracking (pong), or a line saying why there are none."""
    checks = results.get("world_checks")
    if checks is None:
        return "## World-specific checks\n\nSkipped (`--no-world-checks`)."
    parts = [camera_section(checks["camera"])] if checks.get("camera") else []
    parts += [ball_section(checks["ball"])] if checks.get("ball") else []
    if not parts:
        world = results.get("world", "world")
        parts = [f"None applies to world '{world}' (camera response: first-person worlds; ball tracking: pong)."]
    return "\n\n".join(["## World-specific checks", *parts])


def files_section(results: dict[str, Any]) -> str:
    """Markdown links to the plots (shown inline) and the videos."""
    files = results["files"]
    lines = ["## Plots and videos", ""]
    lines += [f"![{label}]({path})" for label, path in files["plots"].items()]
    lines += [""] + [f"- [{label}]({path})" for label, path in files["videos"].items()]
    return "\n".join(lines)


def render_markdown(results: dict[str, Any]) -> str:
    """The whole report.md for a results dict (layout in the module docstring)."""
    s = results["settings"]
    intro = [
        f"# Held-out evaluation: {results.get('world', 'world')}",
        "",
        f"Checkpoint `{results['checkpoint']}`, data `{results['data']}`: {s['windows']} windows, "
        f"K={s['context']} seed frames, N={s['horizon']} open-loop steps of the data's actions, window seed {s['seed']}.",
        "PSNR = 10·log10(1/MSE) with MSE averaged over the windows at each horizon; frames in [0, 1].",
    ]
    sections = [
        headline_section,
        horizon_section,
        controllability_section,
        action_following_section,
        world_checks_section,
        stability_section,
        files_section,
    ]
    return "\n\n".join(["\n".join(intro), *(f(results) for f in sections)]) + "\n"
