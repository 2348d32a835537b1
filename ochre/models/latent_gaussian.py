"""The continuous bottleneck of the tokenizer: a diagonal Gaussian latent (a VAE, Kingma & Welling 2014,
https://arxiv.org/abs/1312.6114).

    latent = GaussianLatent(8)
    out = latent(encoder_output)        # (B, 16, h, w) -> sample, mean (B, 8, h, w) and the KL term

The encoder gives a mean and a log-variance per channel. Training decodes a sample
(mean + std * noise), so the decoder learns to draw from latents that are slightly
off, as a world model's predicted latents are; evaluation and encoding use the mean.
The KL to N(0, I), weighted by `train.kl_weight` in the tokenizer trainer, keeps the
latent's scale calibrated: without it the encoder could shrink or grow the latents
freely. No parameters, no codebook: `codebook_size` is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

LOGVAR_RANGE = (-30.0, 20.0)  # clamp, so exp() neither underflows to 0 std nor overflows


@dataclass
class LatentSample:
    codes: torch.Tensor  # (B, C, h, w): a sample in training, the mean in evaluation
    mean: torch.Tensor  # (B, C, h, w) posterior mean: what `encode` returns and datasets store
    kl: torch.Tensor  # scalar: KL(N(mean, var) || N(0, 1)) averaged over latent elements


class GaussianLatent(nn.Module):
    """(B, 2C, h, w) mean and log-variance -> a C-channel latent."""

    codebook_size = 0

    def __init__(self, channels: int):
        super().__init__()
        self.dim = channels
        self.in_dim = 2 * channels

    def forward(self, z: torch.Tensor) -> LatentSample:
        mean, logvar = z.float().chunk(2, 1)
        logvar = logvar.clamp(*LOGVAR_RANGE)
        codes = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.training else mean
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        return LatentSample(codes, mean, kl)
