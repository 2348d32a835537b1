"""Hard-window focus: a share of every batch drawn from the training windows the starting world predicts worst.

    focus_hard_windows(sampler, scorer, cfg.train, device, out=run_dir / "hard_windows.csv")

`train.hard_share > 0` turns it on; the scorer is the `train.init_from` world, whose
teacher-forced loss on the cells that change (`window_difficulty`) ranks the windows.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ochre.data.windows import WindowSampler
from ochre.io import write_text
from ochre.models.dynamics import Dynamics
from ochre.training.dynamics_config import DynamicsLoopConfig


def focus_hard_windows(
    sampler: WindowSampler, scorer: Dynamics, cfg: DynamicsLoopConfig, device: torch.device, out: Path | None = None
) -> None:
    """Point `sampler` at the windows `scorer` (the starting world, init_from) predicts worst, for cfg.hard_share of
    each batch, from a pool of the cfg.hard_pool hardest of cfg.hard_scan evenly spaced windows.

    The pool comes from the init_from weights even on resume, so a resumed run draws from the same pool.
    out: a CSV of every scored window (shard, row, score, in_pool), hardest first, to look at what the pool holds;
    given on the main process only, which also prints the progress.
    """
    verbose = out is not None
    index = np.unique(np.linspace(0, len(sampler) - 1, min(cfg.hard_scan, len(sampler))).round().astype(np.int64))
    t0 = time.time()
    scores = window_difficulty(scorer, sampler, index, cfg.context, device, verbose)
    order = np.argsort(-scores, kind="stable")
    pool = index[order[: max(1, round(cfg.hard_pool * len(index)))]]
    sampler.focus(pool, cfg.hard_share)
    if out is not None:
        ranked = zip(sampler.starts[index[order]], scores[order], strict=True)
        rows = [f"{sh},{row},{score:.5f},{int(rank < len(pool))}" for rank, ((sh, row), score) in enumerate(ranked)]
        write_text(out, "shard,row,score,in_pool\n" + "\n".join(rows) + "\n")
        tqdm.write(
            f"hard windows: scored {len(index)} in {time.time() - t0:.0f} s; {cfg.hard_share:.0%} of each batch comes from "
            f"the {len(pool)} hardest (loss on changing cells >= {scores[order[len(pool) - 1]]:.3f}, median {np.median(scores):.3f})"
        )


@torch.no_grad()
def window_difficulty(
    model: Dynamics,
    sampler: WindowSampler,
    index: np.ndarray,
    context: int,
    device: torch.device,
    verbose: bool = False,
    batch: int = 64,
) -> np.ndarray:
    """For the windows sampler.starts[index]: the teacher-forced cross-entropy averaged over every token cell that
    changes from one frame to the next, in the predictions of frames `context` on; a window where nothing changes scores 0."""
    was_training = model.training
    model.eval()
    out = []
    for i in tqdm(range(0, len(index), batch), desc="scoring windows", unit="batch", disable=not verbose, leave=False):
        windows = sampler.gather(sampler.starts[index[i : i + batch]]).to(device)
        tokens, actions = windows.rows, windows.actions
        state = model.initial_state(len(tokens), device)
        total, count = torch.zeros(len(tokens), device=device), torch.zeros(len(tokens), device=device)
        for t in range(tokens.shape[1] - 1):
            state, logits = model.step(state, tokens[:, t], actions[:, t])
            if t + 1 < context:
                continue
            changed = (tokens[:, t + 1] != tokens[:, t]).float()
            ce = F.cross_entropy(logits.float(), tokens[:, t + 1], reduction="none")
            total = total + (ce * changed).sum((1, 2))
            count = count + changed.sum((1, 2))
        out.append((total / count.clamp(min=1)).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out).astype(np.float64)
