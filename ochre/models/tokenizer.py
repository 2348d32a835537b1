"""Frame tokenizer: a convolutional autoencoder with a discrete or a continuous bottleneck.

(H, W) RGB -> (H/f, W/f) token grid, f = 2 ** len(channels): 64x64 -> 16x16 with two
downsamplings, 72x128 -> 18x32. The bottleneck is FSQ (no codebook parameters, so
nothing to collapse) or an EMA vector quantizer with k-means initialisation and
dead-code restarts; or, with `quantizer: continuous`, no quantizer at all: a Gaussian
latent of `latent_channels` channels on the same grid (`latent_gaussian.py`), which the
latent worlds (`latent_gru.py`, `latent_flow.py`) predict. Frames are float in [-1, 1]
inside the model; see `ochre.frames` for the uint8 conversion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ochre.errors import OchreError
from ochre.models.fsq import FSQ
from ochre.models.latent_gaussian import GaussianLatent
from ochre.models.vq import EMAVectorQuantizer, Quantized


@dataclass
class TokenizerConfig:
    frame_size: list[int] = field(default_factory=lambda: [64, 64])  # (H, W) of input frames
    channels: list[int] = field(default_factory=lambda: [48, 96])  # width after each 2x downsampling
    res_blocks: int = 2  # residual blocks at token resolution, in encoder and decoder each
    encoder_res_blocks: int = -1  # encoder's own count (-1 = res_blocks); 0: a token sees its patch and 3 px around it
    encoder_patch: bool = False  # True: a token is computed from its own f x f patch alone (needs encoder_res_blocks 0)
    quantizer: Literal["fsq", "vq", "continuous"] = "fsq"  # continuous: a Gaussian latent, no tokens
    fsq_levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # fsq: codebook = product of levels
    vq_codes: int = 1024  # vq: codebook size
    vq_dim: int = 32  # vq: code vector size
    vq_decay: float = 0.99  # vq: EMA decay of the codebook statistics
    vq_commitment: float = 0.25  # vq: weight of ||z - sg(code)||^2
    vq_dead_threshold: float = 1.0  # vq: codes whose EMA usage falls below this are restarted
    latent_channels: int = 8  # continuous: channels of the latent (4-16)

    def __post_init__(self) -> None:
        factor = 2 ** len(self.channels)
        if len(self.frame_size) != 2 or any(s % factor for s in self.frame_size):
            raise ValueError(f"frame_size {self.frame_size} must be [H, W], each divisible by the downsampling factor {factor}")
        if self.encoder_res_blocks < -1:
            raise ValueError(f"encoder_res_blocks {self.encoder_res_blocks} must be >= 0, or -1 for res_blocks")
        if self.continuous and not 1 <= self.latent_channels <= 64:
            raise ValueError(f"latent_channels {self.latent_channels} must lie in 1-64 (4-16 is the useful range)")
        if self.encoder_patch and self.encoder_blocks:
            raise ValueError(
                "encoder_patch needs encoder_res_blocks: 0 (a residual block's 3x3 convs see the neighbouring patches)"
            )

    @property
    def encoder_blocks(self) -> int:
        return self.res_blocks if self.encoder_res_blocks < 0 else self.encoder_res_blocks

    @property
    def token_grid(self) -> tuple[int, int]:
        factor = 2 ** len(self.channels)
        return self.frame_size[0] // factor, self.frame_size[1] // factor

    @property
    def continuous(self) -> bool:
        return self.quantizer == "continuous"

    @property
    def codebook_size(self) -> int:
        """Codes of the discrete bottleneck; 0 for a continuous latent."""
        sizes = {"fsq": math.prod(self.fsq_levels), "vq": self.vq_codes, "continuous": 0}
        return sizes[self.quantizer]

    @property
    def embed_dim(self) -> int:
        """Channels the decoder takes: the code vector size, or the continuous latent's channels."""
        dims = {"fsq": len(self.fsq_levels), "vq": self.vq_dim, "continuous": self.latent_channels}
        return dims[self.quantizer]


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.gelu(self.conv1(F.gelu(x))))


@dataclass
class TokenizerOutput:
    recon: torch.Tensor  # (B, 3, H, W) in about [-1, 1]
    tokens: torch.Tensor  # (B, h, w) long
    codes: torch.Tensor  # (B, d, h, w) quantized latents
    quant_loss: torch.Tensor  # scalar: VQ commitment loss (0 for FSQ and continuous)
    restarted: int = 0  # dead codes restarted in this call (VQ, training only)
    kl: torch.Tensor | None = None  # continuous: scalar KL to N(0, I) per latent element (codes holds the mean); else None


def build_quantizer(cfg: TokenizerConfig) -> FSQ | EMAVectorQuantizer | GaussianLatent:
    if cfg.quantizer == "fsq":
        return FSQ(cfg.fsq_levels)
    if cfg.quantizer == "continuous":
        return GaussianLatent(cfg.latent_channels)
    return EMAVectorQuantizer(
        cfg.vq_codes, cfg.vq_dim, decay=cfg.vq_decay, commitment=cfg.vq_commitment, dead_threshold=cfg.vq_dead_threshold
    )


class Tokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.quantizer = build_quantizer(cfg)
        d = self.quantizer.dim
        d_enc = 2 * d if cfg.continuous else d  # a continuous latent's encoder gives mean and log-variance
        chans = [3, *cfg.channels]
        # 4x4 kernels let a token see 3 pixels past its patch on every side, so a one-pixel object near a
        # patch edge rewrites up to 3x3 tokens; 2x2 kernels keep each token to exactly its own patch.
        kernel, pad = (2, 0) if cfg.encoder_patch else (4, 1)
        down = [nn.Conv2d(chans[i], chans[i + 1], kernel, stride=2, padding=pad) for i in range(len(cfg.channels))]
        self.encoder = nn.Sequential(
            *[m for conv in down for m in (conv, nn.GELU())][:-1],
            *[ResBlock(chans[-1]) for _ in range(cfg.encoder_blocks)],
            nn.GELU(),
            nn.Conv2d(chans[-1], d_enc, 1),
        )
        up = []
        for i in reversed(range(len(cfg.channels))):
            width = chans[i] if i > 0 else 32  # the last upsampling ends in 32 features before RGB
            up += [nn.GELU(), nn.ConvTranspose2d(chans[i + 1], width, 4, stride=2, padding=1)]
            if i > 0:
                up += [nn.GELU(), nn.Conv2d(chans[i], chans[i], 3, padding=1)]
        self.decoder = nn.Sequential(
            nn.Conv2d(d, chans[-1], 1),
            *[ResBlock(chans[-1]) for _ in range(cfg.res_blocks)],
            *up,
            nn.GELU(),
            nn.Conv2d(32, 3, 3, padding=1),
        )

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def _encoded(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [-1, 1] -> the encoder's output (B, d or 2C, h, w)."""
        if tuple(x.shape[-2:]) != tuple(self.cfg.frame_size):
            raise OchreError(f"frames are {tuple(x.shape[-2:])} but this tokenizer takes {tuple(self.cfg.frame_size)} (H, W)")
        return self.encoder(x)

    def quantize(self, x: torch.Tensor) -> Quantized:
        """x: (B, 3, H, W) in [-1, 1] -> the quantizer's output on the encoder's (B, h, w, d) latents."""
        if self.cfg.continuous:
            raise OchreError("a continuous tokenizer has no quantizer; use encode_latents")
        return self.quantizer(self._encoded(x).movedim(1, -1))

    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous only. x: (B, 3, H, W) in [-1, 1] -> the posterior mean (B, C, h, w)."""
        if not self.cfg.continuous:
            raise OchreError(f"a {self.cfg.quantizer} tokenizer has no continuous latent; use encode")
        return self.quantizer(self._encoded(x)).mean

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, H, W) in [-1, 1] -> (tokens (B, h, w) long, z_q (B, d, h, w) quantized latents).

        A continuous tokenizer has no tokens: zeros, beside its latent mean.
        """
        if self.cfg.continuous:
            mean = self.encode_latents(x)
            return mean.new_zeros((mean.shape[0], *mean.shape[2:]), dtype=torch.long), mean
        q = self.quantize(x)
        return q.ids, q.codes.movedim(-1, 1)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (B, d, h, w) -> frames (B, 3, H, W) in about [-1, 1]."""
        return self.decoder(codes)

    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (B, h, w) long -> frames (B, 3, H, W)."""
        if self.cfg.continuous:
            raise OchreError("a continuous tokenizer has no tokens; decode its latents with decode_codes")
        return self.decode_codes(self.quantizer.ids_to_codes(tokens).movedim(-1, 1))

    def decode_embeddings(self, probs: torch.Tensor) -> torch.Tensor:
        """probs: (B, K, h, w) weights over the K codes (softmax or Gumbel-softmax samples) -> frames.

        The expected code vector is decoded, so gradients flow from pixel losses back
        into whatever produced `probs` (the dynamics model's logits).
        """
        codes = torch.einsum("bkhw,kd->bdhw", probs, self.quantizer.codebook().to(probs.dtype))
        return self.decode_codes(codes)

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        if self.cfg.continuous:
            s = self.quantizer(self._encoded(x))
            ids = s.mean.new_zeros((s.mean.shape[0], *s.mean.shape[2:]), dtype=torch.long)
            return TokenizerOutput(self.decode_codes(s.codes), ids, s.mean, s.kl.new_zeros(()), kl=s.kl)
        q = self.quantize(x)
        codes = q.codes.movedim(-1, 1)
        return TokenizerOutput(self.decode_codes(codes), q.ids, codes, q.loss, q.restarted)
