"""Seed contexts inside a world checkpoint, so a world plays from its file alone.

    seeds = seed_contexts(data, context=4, val_every=10, decode=tokenizer_decoder(tokenizer))
    payload["seeds"] = seeds.to_payload()                          # at save time, in the checkpoint
    seeds = SeedContexts.from_payload(payload["seeds"], path, (64, 64, 3), spec)   # at load time, checked

A world checkpoint carries `COUNT` short clips of its data: K frames as the runtime takes
them (uint8 RGB) and the K-1 actions between them, from different validation episodes
(never trained on), evenly spread over them. Every other clip starts at its episode's
first frame (a level start, where a player starts); the others in the episode's middle
(where the game is under way: Pong's ball is in play). Token and latent datasets hold
no frames: their clips are decoded with the world's own tokenizer.

`live.play`, `inference.py` and `gymnasium.make("ochre/World-v0", checkpoint=...)` seed
the world from these clips when no seed file is given; `python -m train.seeds` adds them
to a checkpoint written before they existed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ochre.actions import ActionSpec
from ochre.data.store import EpisodeDataset
from ochre.data.windows import split_episodes
from ochre.errors import OchreError
from ochre.frames import to_uint8

COUNT = 8  # clips a checkpoint carries
CONTEXT = 4  # frames per clip (the evaluation protocol's K)
Decoder = Callable[[np.ndarray], np.ndarray]  # dataset rows (N, ...) -> frames (N, H, W, 3) uint8


@dataclass(frozen=True)
class SeedContexts:
    """S clips of K frames: frames (S, K, H, W, 3) uint8, actions (S, K-1, ...) int64 in the world's schema."""

    frames: np.ndarray
    actions: np.ndarray
    source: dict[str, Any]  # dataset, split, and each clip's episode index and first row in it

    def to_payload(self) -> dict[str, Any]:
        """Tensors and plain containers only, so the checkpoint still loads with weights_only=True."""
        return {
            "frames": torch.from_numpy(np.ascontiguousarray(self.frames)),
            "actions": torch.from_numpy(np.ascontiguousarray(self.actions, dtype=np.int64)),
            "source": self.source,
        }

    @classmethod
    def from_payload(cls, payload: Any, path: str | Path, frame_shape: tuple[int, ...], spec: ActionSpec) -> SeedContexts:
        """The `seeds` section of checkpoint `path`, once known to fit the world; one error line naming the file."""
        where = f"{path}: seeds"
        if not isinstance(payload, dict) or not all(isinstance(payload.get(k), torch.Tensor) for k in ("frames", "actions")):
            raise OchreError(f"{where} must hold 'frames' and 'actions' tensors; add them again with python -m train.seeds")
        frames, actions = payload["frames"].numpy(), payload["actions"].numpy()
        if frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[2:] != tuple(frame_shape) or 0 in frames.shape[:2]:
            raise OchreError(f"{where}: frames are {frames.dtype} {frames.shape}, this world needs uint8 (S, K, *{frame_shape})")
        actions = spec.validate(actions, f"{where}: actions")
        want = (frames.shape[0], frames.shape[1] - 1, *spec.shape)
        if actions.shape != want:
            raise OchreError(f"{where}: actions have shape {actions.shape}, the frames need {want}")
        return cls(frames, actions, dict(payload.get("source") or {}))

    def __len__(self) -> int:
        return len(self.frames)


def clip_starts(data: EpisodeDataset, context: int, val_every: int, count: int = COUNT) -> tuple[list[tuple], str]:
    """[(episode index, shard, first row)] of up to `count` clips of `context` rows, and the split they come from:
    the validation episodes, or every episode when none of those is long enough (or val_every is 0)."""
    indexed = list(enumerate(data.episodes()))  # split by position in the dataset, as the trainers split it
    split = "val" if val_every > 0 else "all"
    chosen = [(i, ep) for i, ep in split_episodes(indexed, split, val_every) if ep[2] >= context]
    if not chosen:
        split, chosen = "all", [(i, ep) for i, ep in indexed if ep[2] >= context]
    if not chosen:
        raise OchreError(f"{data.path}: no episode has {context} frames, so no seed context can be cut from it")
    picks = np.unique(np.linspace(0, len(chosen) - 1, min(count, len(chosen))).round().astype(int))
    starts = []
    for n, pick in enumerate(picks):
        index, (shard, first, length) = chosen[pick]
        offset = 0 if n % 2 == 0 else (length - context) // 2  # a level start, then the middle of a game
        starts.append((index, shard, first + offset))
    return starts, split


def seed_contexts(
    data: EpisodeDataset, context: int = CONTEXT, val_every: int = 10, decode: Decoder | None = None, count: int = COUNT
) -> SeedContexts:
    """Up to `count` clips of `context` frames from the validation episodes of `data` (see the module docstring).

    decode: rows -> uint8 frames, for token and latent datasets (`tokenizer_decoder`); frame datasets need none.
    """
    starts, split = clip_starts(data, context, val_every, count)
    rows, actions = zip(*(data.rows(shard, row, context) for _, shard, row in starts), strict=True)
    frames = np.stack(rows)  # (S, K, ...): frames, tokens or latents
    if data.kind != "frames":
        if decode is None:
            raise OchreError(f"{data.path}: a {data.kind} dataset; its seed contexts need the world's tokenizer to decode")
        flat = decode(frames.reshape(-1, *frames.shape[2:]))  # (S*K, H, W, 3)
        frames = flat.reshape(len(starts), context, *flat.shape[1:])
    source = {
        "dataset": str(data.path),
        "kind": data.kind,
        "split": split,
        "episodes": [int(i) for i, _, _ in starts],
        "rows": [int(r) for _, _, r in starts],
    }
    return SeedContexts(frames.astype(np.uint8), np.stack(actions)[:, :-1].astype(np.int64), source)


def tokenizer_decoder(tokenizer: Any, device: torch.device | str = "cpu") -> Decoder:
    """Rows of a token dataset (N, h, w) or a latent dataset (N, C, h, w) -> frames (N, H, W, 3) uint8."""

    @torch.inference_mode()
    def decode(rows: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(rows, device=device)
        if tokenizer.cfg.continuous:
            return to_uint8(tokenizer.decode_codes(x.float()))
        return to_uint8(tokenizer.decode_tokens(x.long()))

    return decode
