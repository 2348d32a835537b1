"""Frame dataset -> token dataset (or, with a continuous tokenizer, latent dataset) with the same episodes and actions.

A latent dataset (kind "latents") holds the posterior means as (C, h, w) float16 rows; its
manifest records `latent_shape` and the per-channel `latent_mean` and `latent_std` over all
its rows, which the latent dynamics models normalise by.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ochre.data.store import MANIFEST, DatasetWriter, EpisodeDataset, read_manifest
from ochre.errors import OchreError
from ochre.frames import to_model
from ochre.io import sha256_file
from ochre.models.tokenizer import Tokenizer


@torch.inference_mode()
def encode_frames(model: Tokenizer, frames: np.ndarray, batch: int = 256, device: str = "cpu") -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, h, w) uint16 tokens, or (T, C, h, w) float16 latents from a continuous tokenizer."""
    if model.cfg.continuous:
        out = [model.encode_latents(to_model(frames[i : i + batch], device)).cpu() for i in range(0, len(frames), batch)]
        return torch.cat(out).numpy().astype(np.float16)
    out = [model.encode(to_model(frames[i : i + batch], device))[0].cpu() for i in range(0, len(frames), batch)]
    return torch.cat(out).numpy().astype(np.uint16)


def latent_statistics(root: Path, chunk: int = 8192) -> dict[str, list[float]]:
    """Per-channel mean and std of every latent row of the dataset at `root` (float64 sums, `chunk` rows at a time)."""
    total, total_sq, count = 0.0, 0.0, 0
    for shard in read_manifest(root)["shards"]:
        rows = np.load(root / shard["files"]["latents"], mmap_mode="r")
        for i in range(0, len(rows), chunk):
            x = np.asarray(rows[i : i + chunk], dtype=np.float64)  # (n, C, h, w)
            total, total_sq = total + x.sum((0, 2, 3)), total_sq + np.square(x).sum((0, 2, 3))
            count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 1e-12))
    return {"latent_mean": [round(float(v), 6) for v in mean], "latent_std": [round(float(v), 6) for v in std]}


def tokenize_dataset(
    model: Tokenizer, tokenizer_path: str | Path, data_path: str | Path, out: str | Path, batch: int = 256, device: str = "cpu"
) -> dict:
    """One token (or latent) shard per frame shard. An interrupted run of the same tokenizer on the same
    frames continues after the last finished shard."""
    out = Path(out)
    data = EpisodeDataset(data_path, expect_kind="frames")
    data.verify_once()  # sha256 of every shard the first time, then of what changed since
    frame_shape = list(data.manifest["frame_shape"][:2])
    if frame_shape != list(model.cfg.frame_size):
        raise OchreError(f"{data_path}: frames are {frame_shape} but the tokenizer expects {model.cfg.frame_size}")
    meta = {k: v for k, v in data.manifest.items() if k in ("world", "action_schema", "frame_shape", "fps", "source")}
    kind = "latents" if model.cfg.continuous else "tokens"
    meta |= {"token_grid": list(model.cfg.token_grid)}
    if model.cfg.continuous:
        meta |= {"latent_shape": [model.cfg.latent_channels, *model.cfg.token_grid]}
    else:
        meta |= {"codebook_size": model.codebook_size}
    meta |= {"tokenizer": {"path": str(tokenizer_path), "sha256": sha256_file(tokenizer_path)}, "frames_dataset": str(data_path)}
    writer = DatasetWriter(out, kind, meta, shard_frames=10**9)
    done = _resumable_shards(out, meta) if (out / MANIFEST).exists() else 0
    if done:
        writer.resume()
        print(f"{out}: resuming after {done} finished shards")
    model = model.to(device).eval()
    episodes = data.episodes()
    for shard_index, shard in list(enumerate(data.manifest["shards"]))[done:]:
        for sh, start, length in tqdm(
            [e for e in episodes if e[0] == shard_index], desc=f"tokenize {shard['name']}", unit="episode"
        ):
            frames, actions = data.rows(sh, start, length)
            writer.add_episode(encode_frames(model, frames, batch, device), actions)
        writer.flush()  # one token shard per frame shard
    if kind == "latents":
        writer.meta |= latent_statistics(out)
    return writer.close()


def _resumable_shards(out: Path, meta: dict) -> int:
    """Finished shards of an interrupted run with the same tokenizer and frames, or an error."""
    existing = read_manifest(out)
    same = (
        existing.get("tokenizer", {}).get("sha256") == meta["tokenizer"]["sha256"]
        and existing.get("frames_dataset") == meta["frames_dataset"]
    )
    if existing.get("complete", True) or not same:
        raise OchreError(f"{out}: a dataset already exists here; choose another --out or delete it")
    return len(existing["shards"])
