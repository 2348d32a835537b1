"""Windows of consecutive frames that never cross an episode boundary.

The train/validation split is by episode: every `val_every`-th episode (by
index) is validation, so no validation frame is ever seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ochre.data.store import EpisodeDataset
from ochre.errors import OchreError


@dataclass
class Batch:
    """rows: (B, T, ...) uint8 frames or int64 tokens; actions: (B, T, ...) int64.

    actions[:, t] is the action taken at row t, which produces row t+1.
    """

    rows: torch.Tensor
    actions: torch.Tensor

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.rows.to(device, non_blocking=True), self.actions.to(device, non_blocking=True))


def split_episodes(episodes: list[tuple[int, int, int]], split: str, val_every: int) -> list[tuple[int, int, int]]:
    if split == "all" or val_every <= 0:
        return episodes
    is_val = [i % val_every == val_every - 1 for i in range(len(episodes))]
    return [ep for ep, v in zip(episodes, is_val, strict=True) if v == (split == "val")]


class WindowSampler:
    """Samples (B, length) windows uniformly over all valid window starts.

    `focus(pool, share)` draws that share of every batch from a pool of starts instead
    (the hardest windows, say), the rest still uniformly from all of them.
    """

    def __init__(self, data: EpisodeDataset, length: int, split: str = "train", val_every: int = 10, seed: int = 0):
        self.data = data
        self.length = length
        episodes = [ep for ep in split_episodes(data.episodes(), split, val_every) if ep[2] >= length]
        if not episodes:
            raise OchreError(f"{data.path}: no {split} episode has {length} frames (generate more data or shorten the window)")
        # One entry per valid start: (shard, row).
        self.starts = np.concatenate(
            [np.stack([np.full(n - length + 1, sh), np.arange(st, st + n - length + 1)], 1) for sh, st, n in episodes]
        )
        self.rng = np.random.default_rng(seed)
        self.pool, self.share = np.zeros(0, dtype=np.int64), 0.0

    def focus(self, pool: np.ndarray, share: float) -> None:
        """Draw round(share x batch) windows of every batch from `pool` (indices into `starts`)."""
        if not 0.0 <= share <= 1.0:
            raise OchreError(f"focus share must lie in [0, 1], got {share}")
        if share > 0 and len(pool) == 0:
            raise OchreError(f"{self.data.path}: the pool of windows to focus on is empty")
        self.pool, self.share = np.asarray(pool, dtype=np.int64), share

    def __len__(self) -> int:
        return len(self.starts)

    def sample(self, batch_size: int) -> Batch:
        n_pool = round(self.share * batch_size)
        index = self.rng.integers(0, len(self.starts), size=batch_size - n_pool)
        if n_pool:
            index = np.concatenate([self.pool[self.rng.integers(0, len(self.pool), size=n_pool)], index])
        return self.gather(self.starts[index])

    def gather(self, picks: np.ndarray) -> Batch:
        rows, actions = zip(*(self.data.rows(int(sh), int(st), self.length) for sh, st in picks), strict=True)
        rows_t = torch.from_numpy(np.stack(rows))
        if rows_t.dtype != torch.uint8:
            rows_t = rows_t.long()
        return Batch(rows_t, torch.from_numpy(np.stack(actions)).long())

    def fixed(self, count: int, seed: int = 1234) -> Batch:
        """A deterministic batch (same windows every call), for validation and samples."""
        rng = np.random.default_rng(seed)
        picks = self.starts[rng.choice(len(self.starts), size=min(count, len(self.starts)), replace=False)]
        return self.gather(picks)
