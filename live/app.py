"""Putting the app together from a checkpoint: seeds, session, ghost, controller.

    wm = load_world("checkpoints/coinrun.pt", device="auto")
    session = open_session(wm, seed_path=None)      # the checkpoint's seed contexts
    controller = PlayController(session, bindings_for(wm.action_spec), checkpoint=...)

The parts live in their own modules: `bindings` (keys -> actions), `tracker`
(events -> input), `session` (the model's state, rewind, the log), `worker` (the
inference thread), `controller` (one frame of play), `window` (pygame),
`headless` (policies instead of a player), `ghost` (the real game beside it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from live.ghost import Ghost
from live.session import Session
from ochre import WorldModel
from ochre.errors import OchreError
from ochre.inputs import load_seed


def default_seed_path(wm: WorldModel) -> str:
    return f"assets/{wm.info.get('world', 'coinrun')}/seed.npz"


def load_seeds(path: str, wm: WorldModel) -> tuple[np.ndarray, np.ndarray]:
    """-> seeds (S, K, H, W, 3) uint8 and seed actions (S, K-1, ...), checked against the world."""
    if not Path(path).exists():
        raise OchreError(
            f"{path}: seed frames not found; pass --seed-frames FILE (.npz, .mp4 or a PNG folder), "
            "or --ghost to seed the world from the real game"
        )
    frames, actions = load_seed(path)
    frames = frames if frames.ndim == 5 else frames[None]
    if tuple(frames.shape[2:]) != wm.frame_shape:
        h, w = wm.frame_shape[:2]
        raise OchreError(
            f"{path}: seed frames are {frames.shape[3]}x{frames.shape[2]} but this world plays {w}x{h} frames; "
            f"use seed frames of that size (e.g. from a dataset of this world)"
        )
    s, k = frames.shape[:2]
    if actions is None:
        actions = wm.action_spec.neutral((s, k - 1))
    actions = wm.action_spec.validate(actions, path)
    one = wm.action_spec.shape
    if actions.size != s * (k - 1) * int(np.prod(one, dtype=int)):
        raise OchreError(f"{path}: 'actions' must have shape {(k - 1, *one)} per seed clip, got {actions.shape}")
    return frames, actions.reshape(s, k - 1, *one)


def set_threads(threads: int = 0) -> int:
    """Torch CPU threads for the model; 0: every core but one, left to the event loop and drawing."""
    import torch

    n = threads or max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1))
    torch.set_num_threads(n)
    return n


def load_world(
    checkpoint: str, device: str = "auto", sampling: str = "greedy", temperature: float = 1.0, top_k: int | None = None
) -> WorldModel:
    wm = WorldModel.load(checkpoint, device=device)
    wm.sampling, wm.temperature, wm.top_k = sampling, temperature, top_k
    return wm


def open_session(wm: WorldModel, seed_path: str | None = None, rewind_seconds: float = 10.0) -> Session:
    """A session on `wm` seeded from `seed_path`; without one, from the clips its checkpoint carries, or for an
    older checkpoint without them, from assets/<world>/seed.npz."""
    if seed_path is None and wm.seeds is not None:
        seeds, seed_actions = wm.seeds.frames, wm.seeds.actions
    else:
        seeds, seed_actions = load_seeds(seed_path or default_seed_path(wm), wm)
    return Session(wm, seeds, seed_actions, rewind_frames=int(rewind_seconds * wm.fps))


def ghost_session(wm: WorldModel, ghost: Ghost, rewind_seconds: float = 10.0) -> Session:
    """A session whose seed is the real game's first K frames (R and N take new ones from the game)."""
    frames, actions = ghost.reset()
    return Session(wm, frames[None], actions[None], rewind_frames=int(rewind_seconds * wm.fps))
