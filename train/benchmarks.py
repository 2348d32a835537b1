"""BENCHMARKS.md: every shipped world's numbers in one file, regenerated from measurements.

    make bench                                    # measure everything, then write BENCHMARKS.md
    python -m train.benchmarks --measure          # the same
    python -m train.benchmarks                    # rewrite BENCHMARKS.md from what runs/bench/ holds
                                                  # (a world it holds nothing for keeps its part of the old file)

Measuring runs the project's own commands into runs/bench/:
    <world>/eval/results.json   python -m train.evaluate --checkpoint checkpoints/<world>.pt --data data/<world>_heldout
                                (plus --baseline checkpoints/baselines/<world>_pixel_film.pt and --idm
                                checkpoints/baselines/<world>_idm.pt when those files exist)
    <world>/live.json           python -m live.bench --checkpoint checkpoints/<world>.pt
    <world>/playtest/           python -m train.playtest --checkpoint checkpoints/<world>.pt (64 held-out seeds per program;
                                also draws docs/<world>_play.gif: the world's showcase program, real game | world)
    train.json                  python -m train.bench
    data.json                   python -m preprocess.bench
and draws docs/<world>.gif for the README: the shipped world played greedily from the first
seeds of assets/<world>/seed.npz with the scripted actions of assets/<world>/actions.json.
A world without a checkpoint or without held-out data is listed with the command that is missing.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ochre.errors import OchreError, cli_entry
from ochre.io import write_text
from ochre.playtest.report import playtest_markdown
from ochre.report import (
    action_following_section,
    controllability_section,
    headline_section,
    stability_section,
    world_checks_section,
)

WORLDS = ("coinrun", "doom", "pong")
SHOWCASE = {"coinrun": "run_and_jump_greedy", "doom": "walk_and_turn_greedy", "pong": "follow_ball_greedy"}  # README GIFs
PLAYTEST = "### Play tests"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--measure", action="store_true", help="run the measuring commands first (takes a while on a CPU)")
    p.add_argument("--worlds", nargs="+", default=list(WORLDS), help="worlds to measure and list")
    p.add_argument("--runs", default="runs/bench", help="folder of the measurements")
    p.add_argument("--out", default="BENCHMARKS.md", help="the markdown file to write")
    p.add_argument("--windows", type=int, default=256, help="evaluation windows per world")
    p.add_argument("--gifs", default="docs", help="folder for the README's <world>.gif (written when measuring)")
    return p.parse_args(argv)


def run(cmd: list[str]) -> bool:
    """Run one measuring command, echoing it; a failure is reported and the rest goes on."""
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run([sys.executable, "-m", *cmd])
    if proc.returncode != 0:
        print(f"warning: {' '.join(cmd[:1])} failed with exit code {proc.returncode}; its numbers are left out", flush=True)
    return proc.returncode == 0


def measure(args: argparse.Namespace) -> None:
    runs = Path(args.runs)
    for world in args.worlds:
        ckpt, held_out = Path(f"checkpoints/{world}.pt"), Path(f"data/{world}_heldout")
        if not ckpt.is_file():
            print(f"skip {world}: {ckpt} does not exist")
            continue
        if held_out.is_dir():
            cmd = ["train.evaluate", "--checkpoint", str(ckpt), "--data", str(held_out), "--windows", str(args.windows)]
            for flag, path in (
                ("--baseline", f"checkpoints/baselines/{world}_pixel_film.pt"),
                ("--idm", f"checkpoints/baselines/{world}_idm.pt"),
            ):
                cmd += [flag, path] if Path(path).is_file() else []
            run([*cmd, "--playtest-seeds", "0", "--out", str(runs / world / "eval")])
        else:
            print(f"skip evaluating {world}: {held_out} does not exist (its command is in checkpoints/{world}.md)")
        run(["live.bench", "--checkpoint", str(ckpt), "--out", str(runs / world / "live.json")])
        gif = ["--gif", str(Path(args.gifs) / f"{world}_play.gif"), "--gif-program", SHOWCASE[world]] if world in SHOWCASE else []
        run(["train.playtest", "--checkpoint", str(ckpt), "--out", str(runs / world / "playtest"), *gif])
        write_play_gif(ckpt, Path("assets") / world, Path(args.gifs) / f"{world}.gif")
    run(["train.bench", "--out", str(runs / "train.json")])
    run(["preprocess.bench", "--out", str(runs / "data.json")])


def write_play_gif(checkpoint: Path, assets: Path, out: Path, seeds: int = 2, scale: int = 2) -> None:
    """The world played from its first `seeds` seed sequences with the scripted actions, side by side.

    Each panel shows the K seed frames, then the greedy open-loop prediction; written as a GIF
    at the world's frame rate.
    """
    from inference import prepare_inputs
    from ochre import WorldModel
    from ochre.io import write_video

    seed_file, script = assets / "seed.npz", assets / "actions.json"
    if not (seed_file.is_file() and script.is_file()):
        print(f"skip {out}: needs {seed_file} and {script}")
        return
    wm = WorldModel.load(checkpoint)
    frames, seed_actions, future, _ = prepare_inputs(wm, seed_file, script)
    b = min(seeds, len(frames))
    pred = wm.rollout(frames[:b], seed_actions[:b], future[:b])
    video = np.concatenate([frames[:b], pred], axis=1)  # (b, K+N, H, W, 3)
    video = np.concatenate(list(video), axis=2)  # panels side by side
    write_video(out, video, fps=wm.fps, scale=scale)
    print(f"wrote {out} ({len(video)} frames)")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def demote(markdown: str) -> str:
    """One heading level down, so a report section nests under a world's heading."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())


def headline_row(world: str, ev: dict | None, live: dict | None) -> list[str]:
    cells = [world]
    if ev:
        g = ev["metrics"]["model"]["gray84"]["psnr"]
        base = ev["metrics"].get("pixel_film", {}).get("gray84", {}).get("psnr")
        copy = ev["metrics"]["copy_last"]["gray84"]["psnr"]
        h8 = min(8, ev["horizon"]) - 1
        cells += [f"{g[0]:.2f}", f"{g[-1]:.2f}", f"{np.mean(g):.2f}", f"{np.mean(copy):.2f}"]
        cells += [f"{np.mean(base):.2f}" if base else "—", f"{ev['delta_psnr']['gray84'][h8]:+.2f}"]
        st = ev.get("stability") or {}
        cells.append(", ".join(f"{p} {j['verdict']}" for p, j in st.get("policies", {}).items()) or "—")
    else:
        cells += ["—"] * 7
    if live:
        t = live["step_decode_ms"]
        cells.append(f"{t['p50']:.1f} / {t['p99']:.1f}")
    else:
        cells.append("—")
    return cells


def table(head: list[str], body: list[list[str]]) -> str:
    rows = [head, ["---"] * len(head), *body]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def playtest_part(runs: Path, world: str) -> str | None:
    """The world's play-test tables from runs/<world>/playtest/playtest.json, under a level-3 heading."""
    report = read_json(runs / world / "playtest" / "playtest.json")
    if not report:
        return None
    body = playtest_markdown(report).split("\n", 1)[1]
    return f"{PLAYTEST}\n\nCommand: `python -m train.playtest --checkpoint {report['meta'].get('checkpoint', '?')}`.\n{body}"


def with_playtest(section: str, part: str | None) -> str:
    """`section` with its play-test part replaced by `part` (appended when it had none)."""
    if part is None:
        return section
    head, _, rest = section.partition(f"\n{PLAYTEST}")
    tail = rest.split("\n### ", 1)
    after = f"\n### {tail[1]}" if len(tail) > 1 else ""
    return f"{head.rstrip()}\n\n{part.rstrip()}\n{after}".rstrip()


def world_section(world: str, ev: dict | None, live: dict | None, runs: Path) -> str:
    parts = [f"## {world}", ""]
    card = Path(f"checkpoints/{world}.md")
    parts.append(f"Model card: [{card}]({card})." if card.is_file() else f"No shipped checkpoint yet (`checkpoints/{world}.pt`).")
    if ev:
        parts += [
            "",
            f"Evaluation: `{runs / world / 'eval' / 'report.md'}` (checkpoint `{ev['checkpoint']}`, data `{ev['data']}`).",
            "",
        ]
        sections = [headline_section, controllability_section, action_following_section, world_checks_section, stability_section]
        parts += [demote(s(ev)) + "\n" for s in sections]
    else:
        parts += ["", f"Not evaluated: needs `checkpoints/{world}.pt` and `data/{world}_heldout` (commands in the model card)."]
    if live:
        t, lat = live["step_decode_ms"], live["latency_frames"]
        parts += [
            "",
            "### Live play",
            "",
            table(
                ["step + decode p50", "p99", "latency (frames) p50 / max", "display fps", "load average"],
                [
                    [
                        f"{t['p50']:.1f} ms",
                        f"{t['p99']:.1f} ms",
                        f"{lat['p50']:.0f} / {lat['max']:.0f}",
                        f"{live['display_fps']:.1f} of {live['target_fps']:.0f}",
                        f"{live['machine'].get('load_average_1min', 0):.1f}",
                    ]
                ],
            ),  # fmt: skip
        ]
    return "\n".join(parts)


def throughput_section(train: dict | None, data: dict | None) -> str:
    parts = ["## Training throughput", ""]
    if train:
        tr, peak, inf = train["train"], train["peak"], train["inference"]
        s = train["settings"]
        parts.append(
            table(
                [
                    "device",
                    "batch x seq",
                    "step",
                    "frames/s",
                    "GFLOP/step",
                    "achieved GFLOP/s",
                    "MFU (matmul peak)",
                    "MFU (conv peak)",
                ],
                [
                    [
                        train["machine"]["device"],
                        f"{s['batch']} x {s['seq_len']}",
                        f"{tr['step_s'] * 1000:.0f} ms",
                        f"{tr['frames_per_s']:.0f}",
                        f"{tr['flops_per_step'] / 1e9:.1f}",
                        f"{tr['gflops']:.0f}",
                        f"{tr['mfu_matmul']:.0%} of {peak['matmul_gflops']:.0f}",
                        f"{tr['mfu_conv']:.0%} of {peak['conv_gflops']:.0f}",
                    ]
                ],
            )  # fmt: skip
        )
        parts += [
            "",
            f"Inference: {inf['frame_ms']:.1f} ms per frame ({inf['frames_per_s']:.0f} frames/s). Command: `python -m train.bench`.",
        ]
    else:
        parts.append("Not measured: `python -m train.bench --out runs/bench/train.json`.")
    parts += ["", "## Data generation", ""]
    if data:
        body = [[r["world"], str(r["workers"]), str(r["num_envs"]), f"{r['raw_fps']:,}", f"{r['e2e_fps']:,}", f"{r['ratio_per_worker']:.2f}"]
                for r in data["results"]]  # fmt: skip
        parts.append(
            table(["world", "workers", "envs/worker", "raw env frames/s", "end-to-end frames/s", "per worker / raw"], body)
        )
        parts += ["", "Command: `python -m preprocess.bench`."]
    else:
        parts.append("Not measured: `python -m preprocess.bench --out runs/bench/data.json`.")
    return "\n".join(parts)


def measurements(worlds: list[str], runs: Path) -> list[Path]:
    """The measurement files under `runs` that BENCHMARKS.md is written from."""
    files = [runs / w / name for w in worlds for name in ("eval/results.json", "live.json", "playtest/playtest.json")]
    return [f for f in [*files, runs / "train.json", runs / "data.json"] if f.is_file()]


KEPT = "_Not measured again this time: kept from the previous BENCHMARKS.md._"
THROUGHPUT = "## Training throughput"


def previous_parts(markdown: str) -> tuple[dict[str, str], dict[str, str], str | None]:
    """An earlier BENCHMARKS.md -> (headline row by world, section by world, throughput and data part)."""
    intro, *chunks = ("\n" + markdown).split("\n## ")
    rows = {line.split("|")[1].strip(): line for line in intro.splitlines() if line.startswith("| ")}
    sections, throughput = {}, None
    for chunk in chunks:
        text = ("## " + chunk).strip()
        if text.startswith(THROUGHPUT):
            throughput = text
        elif text.startswith("## Data generation"):  # written right after the throughput part
            throughput = f"{throughput}\n\n{text}" if throughput else None
        else:
            sections[text.splitlines()[0][3:].strip()] = text
    return rows, sections, throughput


def kept(section: str) -> str:
    return section if KEPT in section else section.replace("\n", f"\n\n{KEPT}\n", 1)


def render(worlds: list[str], runs: Path, previous: str = "") -> str:
    """BENCHMARKS.md from the measurements under `runs`.

    A world (or the throughput part) with nothing measured under `runs` keeps its row and
    section from `previous`, the file being replaced, marked as kept; without one it is
    listed with the command that is missing. Sections of `previous` that are no world's (the
    latent worlds' side-by-side table, from `train.compare`) are kept unchanged.
    """
    evals = {w: read_json(runs / w / "eval" / "results.json") for w in worlds}
    lives = {w: read_json(runs / w / "live.json") for w in worlds}
    old_rows, old_sections, old_throughput = previous_parts(previous)
    keep = {w for w in worlds if not (evals[w] or lives[w]) and w in old_rows and w in old_sections}
    head = [
        "world",
        "PSNR@1",
        "PSNR@32",
        "mean PSNR",
        "copy-last mean",
        "pixel FiLM mean",
        "ΔPSNR@8",
        "stability",
        "live p50 / p99 (ms)",
    ]
    rows = [old_rows[w].strip("| ").split(" | ") if w in keep else headline_row(w, evals[w], lives[w]) for w in worlds]
    intro = [
        "# Benchmarks",
        "",
        f"Written by `python -m train.benchmarks` on {time.strftime('%Y-%m-%d')} ({platform.machine()}, "
        f"{platform.python_version()}); `make bench` measures again and rewrites this file.",
        "Quality numbers are open-loop rollouts on held-out data, grayscale 84x84 protocol (DESIGN.md), "
        "K=4 seed frames, 32 steps of the recorded actions. Published pixel world model (CoinRun): mean PSNR 23.95 dB, PSNR@32 26.34 dB.",
        "",
        table(head, rows),
    ]
    sections = [kept(old_sections[w]) if w in keep else world_section(w, evals[w], lives[w], runs) for w in worlds]
    sections = [with_playtest(section, playtest_part(runs, w)) for section, w in zip(sections, worlds, strict=True)]
    train, data = read_json(runs / "train.json"), read_json(runs / "data.json")
    throughput = kept(old_throughput) if not (train or data) and old_throughput else throughput_section(train, data)
    others = [text for title, text in old_sections.items() if title not in worlds]  # written by hand: kept as they are
    return "\n\n".join(["\n".join(intro), *sections, *others, throughput]) + "\n"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.measure:
        measure(args)
    runs = Path(args.runs)
    if not measurements(args.worlds, runs):
        raise OchreError(
            f"{runs}: no measurements to write {args.out} from (<world>/eval/results.json, <world>/live.json, train.json, "
            f"data.json); {args.out} is left as it is. Measure with `make bench` (python -m train.benchmarks --measure)"
        )
    out = Path(args.out)
    write_text(out, render(args.worlds, runs, out.read_text() if out.is_file() else ""))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
