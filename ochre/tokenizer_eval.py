"""How well a tokenizer reconstructs held-out frames, and how much of its codebook they use.

PSNR is reported on native RGB and on the grayscale 84x84 protocol of the
evaluation design (MSE averaged over all frames first, then converted), next to
SSIM, LPIPS (when its backbone is available) and codebook usage/perplexity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ochre.data.store import EpisodeDataset
from ochre.data.windows import split_episodes
from ochre.errors import OchreError
from ochre.frames import to_model, to_uint8
from ochre.losses import LPIPSLoss
from ochre.metrics import codebook_usage, psnr, ssim, to_gray84
from ochre.models.tokenizer import Tokenizer


@dataclass
class ReconReport:
    frames: int
    psnr_rgb: float
    psnr_gray84: float
    ssim: float
    lpips: float | None
    codes_used: int
    codebook_size: int
    perplexity: float

    @property
    def usage(self) -> float:
        return self.codes_used / self.codebook_size

    def to_dict(self) -> dict[str, float | int | None]:
        return {**self.__dict__, "usage": self.usage}


def sample_frames(data: EpisodeDataset, count: int, split: str, val_every: int, seed: int) -> np.ndarray:
    """`count` frames (uint8) drawn uniformly from the episodes of `split`, in dataset order."""
    episodes = split_episodes(data.episodes(), split, val_every)
    if not episodes:
        raise OchreError(f"{data.path}: no episodes in split '{split}'")
    rows = np.concatenate([np.stack([np.full(n, sh), np.arange(st, st + n)], 1) for sh, st, n in episodes])
    rng = np.random.default_rng(seed)
    picks = rows[np.sort(rng.choice(len(rows), size=min(count, len(rows)), replace=False))]
    return np.stack([data.shards[sh][data.kind][r] for sh, r in picks])


@torch.no_grad()
def reconstruct(
    model: Tokenizer, frames: np.ndarray, device: torch.device | str, batch: int = 64
) -> tuple[np.ndarray, torch.Tensor]:
    """(N, H, W, 3) uint8 -> (reconstructions uint8, tokens (N, h, w))."""
    recon, tokens = [], []
    for i in range(0, len(frames), batch):
        out = model(to_model(frames[i : i + batch], device))
        recon.append(to_uint8(out.recon.float().clamp(-1, 1)))
        tokens.append(out.tokens.cpu())
    return np.concatenate(recon), torch.cat(tokens)


@torch.no_grad()
def evaluate_reconstruction(
    model: Tokenizer, frames: np.ndarray, device: torch.device | str, lpips: LPIPSLoss | None = None, batch: int = 64
) -> tuple[ReconReport, np.ndarray]:
    """Scores the uint8 reconstructions (what the world model will show), plus the reconstructions."""
    model = model.eval().to(device)
    recon, tokens = reconstruct(model, frames, device, batch)
    pred, target = to_model(recon).add(1).div(2), to_model(frames).add(1).div(2)
    score = None
    if lpips is not None:
        lp = [
            float(lpips(to_model(recon[i : i + batch], device), to_model(frames[i : i + batch], device)))
            * len(recon[i : i + batch])
            for i in range(0, len(frames), batch)
        ]
        score = sum(lp) / len(frames)
    used, perplexity = codebook_usage(tokens, model.codebook_size)
    report = ReconReport(
        frames=len(frames),
        psnr_rgb=psnr(pred, target),
        psnr_gray84=psnr(to_gray84(pred), to_gray84(target)),
        ssim=ssim(pred, target),
        lpips=score,
        codes_used=used,
        codebook_size=model.codebook_size,
        perplexity=perplexity,
    )
    return report, recon


def token_changes(tokens: torch.Tensor, frames: np.ndarray) -> dict[str, float]:
    """Consecutive frames of one episode: the share of token cells whose token changes, and whose pixels do.

    tokens (N, h, w), frames (N, H, W, 3) uint8. A token changing where its own patch did
    not means the encoder looks past its patch: every moving object then rewrites the
    tokens around it too, and the dynamics has to predict all of those.
    """
    if len(tokens) < 2:
        raise OchreError(f"token changes need at least 2 consecutive frames, got {len(tokens)}")
    n, h, w = tokens.shape
    cells = frames.reshape(n, h, frames.shape[1] // h, w, frames.shape[2] // w, 3).astype(np.int16)
    patch_changed = (cells[1:] != cells[:-1]).any(axis=(2, 4, 5))
    return {
        "token_changed": float((tokens[1:] != tokens[:-1]).float().mean()),
        "patch_changed": float(patch_changed.mean()),
    }
