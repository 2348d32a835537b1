"""Play-test results as markdown: one table of what a player notices, one of fidelity, per world.

text = playtest_markdown(json.load(open("runs/playtest_coinrun/playtest.json")))
"""

from __future__ import annotations

from typing import Any

MOTION_STEP = 16


def _f(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _get(d: dict, key: int) -> Any:
    """JSON turns int keys into strings; read either."""
    return d.get(key, d.get(str(key)))


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _lively(p: dict[str, Any]) -> str:
    """The ratio, or where the real picture stands still the world's own change (0-255)."""
    if p["liveliness"] is not None:
        return _f(p["liveliness"])
    return f"still; world {_f(p['change_world'])}"


def _motion_cell(motion: dict[str, Any]) -> str:
    parts = []
    for name, by_step in motion.items():
        m = _get(by_step, MOTION_STEP) or {}
        if m.get("scored"):
            parts.append(f"{name} {_f(m['sign_agreement'])} ({_f(m['magnitude_ratio'])}x, n={m['scored']})")
    return "; ".join(parts) or "—"


def _objects_cell(objects: dict[str, Any]) -> str:
    return "; ".join(f"{name} {_f(o['present'])} / {_f(o['in_place_at_16'])}" for name, o in objects.items()) or "—"


PROGRAM_SETS = {
    "registered": "the programs registered for this world",
    "folder": "the programs of --program-dir",
    "generic": "the generic set (no play tests are registered for this world; no objects are scored)",
}


def _programs_lines(meta: dict[str, Any]) -> list[str]:
    """Which programs ran and where they came from (reports written before this was recorded: nothing)."""
    programs = meta.get("programs")
    if not programs:
        return []
    played = ", ".join(f"`{name}`" for name in programs.get("played", programs["names"]))
    return [f"Programs: {PROGRAM_SETS.get(programs['source'], programs['source'])}, {programs['from']}: {played}.", ""]


def playtest_markdown(report: dict[str, Any]) -> str:
    meta, programs = report["meta"], report["programs"]
    lines = [
        f"## Play tests: {meta['world']} (`{meta['checkpoint']}`)",
        "",
        f"{meta['seeds']} held-out real-game seeds per program (from seed {meta['seed_base']}, settings {meta['settings'] or 'default'}), "
        f"the same actions in the real game and the world; sampled at temperature {meta['temperature']}"
        + (f", top-k {meta['top_k']}" if meta["top_k"] else "")
        + ". Liveliness and detail are world over real game (1 = like the game); motion is the sign agreement of the "
        f"summed view motion over the first {MOTION_STEP} steps where the real view moved, with the world's motion along it "
        "over the real one; objects: share of the world's frames that draw each, / share of seeds where it is in place at step 16.",
        "",
        *_programs_lines(meta),
        _row(
            [
                "program",
                "sampling",
                "real steps",
                "liveliness",
                "detail @1 / @32 / @300 (or last)",
                "motion @16",
                "objects present / in place @16",
            ]
        ),
        _row(["---"] * 7),
    ]
    for p in programs:
        d = p["detail"]
        detail = " / ".join(_f(_get(d, s)) for s in (1, 32, 300))
        lines.append(
            _row(
                [
                    p["program"],
                    p["sampling"],
                    f"{p['real_steps_median']:.0f} of {p['steps']}",
                    _lively(p),
                    detail,
                    _motion_cell(p["motion"]),
                    _objects_cell(p["objects"]),
                ]
            )  # fmt: skip
        )
    lines += [
        "",
        "PSNR gray 84x84 (dB) against the real game: world / copy-last / tokenizer ceiling (the real frames encoded and decoded).",
        "",
        _row(["program", "sampling", "@1", "@8", "@32", "@300 (or last)", "SSIM @1"]),
        _row(["---"] * 7),
    ]
    for p in programs:
        cells = []
        for s in (1, 8, 32, 300):
            cells.append(
                f"{_f(_get(p['psnr_gray84'], s))} / {_f(_get(p['copy_last_gray84'], s))} / {_f(_get(p['ceiling_gray84'], s))}"
            )
        lines.append(_row([p["program"], p["sampling"], *cells, _f(_get(p["ssim_gray84"], 1), 3)]))
    return "\n".join(lines) + "\n"
