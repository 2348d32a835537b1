"""Roll out a real game with a random policy into an episode dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ochre.data.store import MANIFEST, DatasetWriter
from ochre.envs.procgen import ProcgenSettings, ProcgenVecEnv
from ochre.errors import OchreError


def generate_procgen(
    out: str | Path,
    settings: ProcgenSettings,
    steps: int,
    num_envs: int = 16,
    seed: int = 0,
    shard_frames: int = 20_000,
    max_episode_frames: int = 0,
    progress: bool = True,
) -> dict:
    """Record `steps` frames of uniform-random play; returns the manifest.

    max_episode_frames > 0 restarts all envs on fresh levels whenever env 0's current
    episode reaches that many frames, truncating every open episode, so a fixed frame
    budget covers many more levels (random agents rarely finish a CoinRun level and
    would otherwise sit in one level ~600 frames). Other envs' episodes can run longer
    when env 0 started a new episode inside the chunk.
    """
    out = Path(out)
    if (out / MANIFEST).exists():
        raise OchreError(f"{out}: a dataset already exists here; choose another --out or delete it")
    env = ProcgenVecEnv(settings, num=num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    meta = {
        "world": settings.game,
        "action_schema": env.action_spec.to_dict(),
        "frame_shape": [64, 64, 3],
        "fps": env.fps,
        "source": {
            "env": "procgen",
            "game": settings.game,
            "distribution_mode": settings.distribution_mode,
            "start_level": settings.start_level,
            "num_levels": settings.num_levels,
            "policy": "uniform",
            "seed": seed,
            "max_episode_frames": max_episode_frames,
        },
    }
    writer = DatasetWriter(out, "frames", meta, shard_frames=shard_frames)
    frames: list[list[np.ndarray]] = [[] for _ in range(num_envs)]
    actions: list[list[int]] = [[] for _ in range(num_envs)]
    obs, _ = env.observe()
    bar = tqdm(total=steps, desc=f"generate {settings.game}", unit="frame", disable=not progress)
    recorded, chunk = 0, 0
    while recorded < steps:
        if max_episode_frames and len(frames[0]) >= max_episode_frames:
            for i in range(num_envs):
                writer.add_episode(np.stack(frames[i]), np.array(actions[i]))
            frames, actions = [[] for _ in range(num_envs)], [[] for _ in range(num_envs)]
            chunk += 1
            env = ProcgenVecEnv(settings, num=num_envs, seed=seed * 100_003 + chunk)
            obs, _ = env.observe()
        act = env.action_spec.sample(rng, size=num_envs)
        for i in range(num_envs):
            frames[i].append(obs[i])
            actions[i].append(int(act[i]))
        env.act(act)
        obs, first = env.observe()
        for i in np.flatnonzero(first):  # episode i ended; obs[i] starts the next one
            writer.add_episode(np.stack(frames[i]), np.array(actions[i]))
            frames[i], actions[i] = [], []
        recorded += num_envs
        bar.update(num_envs)
    bar.close()
    for i in range(num_envs):  # unfinished episodes are kept as truncated episodes
        if frames[i]:
            writer.add_episode(np.stack(frames[i]), np.array(actions[i]))
    return writer.close()
