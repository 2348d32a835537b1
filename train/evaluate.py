"""Score a world checkpoint on held-out episodes against copy-last-frame.

    python -m train.evaluate --checkpoint checkpoints/coinrun.pt --data data/coinrun_heldout

Prints per-horizon PSNR tables (RGB and grayscale 84x84) and writes metrics.csv,
summary.json and plots/horizon.png into a run folder.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np

from ochre import WorldModel
from ochre.data.store import EpisodeDataset
from ochre.errors import OchreError, cli_entry
from ochre.evaluation import EvalSettings, evaluate_world, format_table, summary_rows
from ochre.io import atomic_path, write_json, write_text
from ochre.training.logger import make_run_dir

NAMES = ["model", "copy_last", "model_random_actions"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="world checkpoint")
    p.add_argument("--data", required=True, help="held-out frame dataset folder")
    p.add_argument("--context", type=int, default=4, help="seed frames K")
    p.add_argument("--horizon", type=int, default=32, help="predicted frames N")
    p.add_argument("--windows", type=int, default=256, help="number of evaluation windows")
    p.add_argument("--batch", type=int, default=32, help="windows per batch")
    p.add_argument("--seed", type=int, default=0, help="window selection seed")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--out", default=None, help="output folder (default: runs/<time>_<world>_eval)")
    return p.parse_args(argv)


def write_outputs(out: Path, rows: list[dict[str, float]], summary: dict) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "metrics.csv", buf.getvalue())
    write_json(out / "summary.json", summary)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    hs = [r["horizon"] for r in rows]
    for ax, view in zip(axes, ("rgb", "gray84"), strict=True):
        for name in NAMES:
            ax.plot(hs, [r[f"{name}/{view}/psnr"] for r in rows], label=name)
        ax.set(title=f"PSNR per horizon ({view})", xlabel="horizon", ylabel="dB")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    (out / "plots").mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "plots" / "horizon.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.context < 1 or args.horizon < 1:
        raise OchreError("--context and --horizon must be at least 1")
    wm = WorldModel.load(args.checkpoint, device=args.device)
    data = EpisodeDataset(args.data, expect_kind="frames")
    settings = EvalSettings(args.context, args.horizon, args.windows, args.batch, args.seed)
    rows = summary_rows(evaluate_world(wm, data, settings))
    out = Path(args.out) if args.out else make_run_dir("runs", wm.info.get("world", "world"), "eval")
    summary = {"checkpoint": args.checkpoint, "data": args.data, "settings": vars(settings)}
    for name in NAMES:
        for view in ("rgb", "gray84"):
            summary[f"{name}/{view}/mean_psnr"] = float(np.mean([r[f"{name}/{view}/psnr"] for r in rows]))
    for view in ("rgb", "gray84"):
        for h in (1, 8, args.horizon):
            if h <= args.horizon:
                summary[f"delta_psnr@{h}/{view}"] = (
                    rows[h - 1][f"model/{view}/psnr"] - rows[h - 1][f"model_random_actions/{view}/psnr"]
                )
    summary["model/gray84/ssim@1"] = rows[0]["model/gray84/ssim"]
    write_outputs(out, rows, summary)
    print(f"{settings.windows} windows, K={args.context}, N={args.horizon}, data {args.data}")
    for view in ("rgb", "gray84"):
        print()
        print(format_table(rows, view, NAMES))
    print(f"\nSSIM@1 (gray84): model {rows[0]['model/gray84/ssim']:.3f}, copy_last {rows[0]['copy_last/gray84/ssim']:.3f}")
    print(f"wrote {out}/metrics.csv, summary.json, plots/horizon.png")


if __name__ == "__main__":
    main()
