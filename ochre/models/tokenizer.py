"""Frame tokenizer: a convolutional autoencoder with a discrete bottleneck.

(H, W) RGB -> (H/f, W/f) token grid, f = 2 ** len(channels): 64x64 -> 16x16 with two
downsamplings, 72x128 -> 18x32. The bottleneck is FSQ (no codebook parameters, so
nothing to collapse) or an EMA vector quantizer with k-means initialisation and
dead-code restarts. Frames are float in [-1, 1] inside the model; see `ochre.frames`
for the uint8 conversion.
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
from ochre.models.vq import EMAVectorQuantizer, Quantized


@dataclass
class TokenizerConfig:
    frame_size: list[int] = field(default_factory=lambda: [64, 64])  # (H, W) of input frames
    channels: list[int] = field(default_factory=lambda: [48, 96])  # width after each 2x downsampling
    res_blocks: int = 2  # residual blocks at token resolution, in encoder and decoder each
    encoder_res_blocks: int = -1  # encoder's own count (-1 = res_blocks); 0: a token sees its patch and 3 px around it
    encoder_patch: bool = False  # True: a token is computed from its own f x f patch alone (needs encoder_res_blocks 0)
    quantizer: Literal["fsq", "vq"] = "fsq"
    fsq_levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # fsq: codebook = product of levels
    vq_codes: int = 1024  # vq: codebook size
    vq_dim: int = 32  # vq: code vector size
    vq_decay: float = 0.99  # vq: EMA decay of the codebook statistics
    vq_commitment: float = 0.25  # vq: weight of ||z - sg(code)||^2
    vq_dead_threshold: float = 1.0  # vq: codes whose EMA usage falls below this are restarted

    def __post_init__(self) -> None:
        factor = 2 ** len(self.channels)
        if len(self.frame_size) != 2 or any(s % factor for s in self.frame_size):
            raise ValueError(f"frame_size {self.frame_size} must be [H, W], each divisible by the downsampling factor {factor}")
        if self.encoder_res_blocks < -1:
            raise ValueError(f"encoder_res_blocks {self.encoder_res_blocks} must be >= 0, or -1 for res_blocks")
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
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels) if self.quantizer == "fsq" else self.vq_codes

    @property
    def embed_dim(self) -> int:
        return len(self.fsq_levels) if self.quantizer == "fsq" else self.vq_dim


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
    quant_loss: torch.Tensor  # scalar: VQ commitment loss (0 for FSQ)
    restarted: int = 0  # dead codes restarted in this call (VQ, training only)


def build_quantizer(cfg: TokenizerConfig) -> FSQ | EMAVectorQuantizer:
    if cfg.quantizer == "fsq":
        return FSQ(cfg.fsq_levels)
    return EMAVectorQuantizer(
        cfg.vq_codes, cfg.vq_dim, decay=cfg.vq_decay, commitment=cfg.vq_commitment, dead_threshold=cfg.vq_dead_threshold
    )


class Tokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.quantizer = build_quantizer(cfg)
        d = self.quantizer.dim
        chans = [3, *cfg.channels]
        # 4x4 kernels let a token see 3 pixels past its patch on every side, so a one-pixel object near a
        # patch edge rewrites up to 3x3 tokens; 2x2 kernels keep each token to exactly its own patch.
        kernel, pad = (2, 0) if cfg.encoder_patch else (4, 1)
        down = [nn.Conv2d(chans[i], chans[i + 1], kernel, stride=2, padding=pad) for i in range(len(cfg.channels))]
        self.encoder = nn.Sequential(
            *[m for conv in down for m in (conv, nn.GELU())][:-1],
            *[ResBlock(chans[-1]) for _ in range(cfg.encoder_blocks)],
            nn.GELU(),
            nn.Conv2d(chans[-1], d, 1),
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

    def quantize(self, x: torch.Tensor) -> Quantized:
        """x: (B, 3, H, W) in [-1, 1] -> the quantizer's output on the encoder's (B, h, w, d) latents."""
        if tuple(x.shape[-2:]) != tuple(self.cfg.frame_size):
            raise OchreError(f"frames are {tuple(x.shape[-2:])} but this tokenizer takes {tuple(self.cfg.frame_size)} (H, W)")
        return self.quantizer(self.encoder(x).movedim(1, -1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, H, W) in [-1, 1] -> (tokens (B, h, w) long, z_q (B, d, h, w) quantized latents)."""
        q = self.quantize(x)
        return q.ids, q.codes.movedim(-1, 1)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (B, d, h, w) -> frames (B, 3, H, W) in about [-1, 1]."""
        return self.decoder(codes)

    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (B, h, w) long -> frames (B, 3, H, W)."""
        return self.decode_codes(self.quantizer.ids_to_codes(tokens).movedim(-1, 1))

    def decode_embeddings(self, probs: torch.Tensor) -> torch.Tensor:
        """probs: (B, K, h, w) weights over the K codes (softmax or Gumbel-softmax samples) -> frames.

        The expected code vector is decoded, so gradients flow from pixel losses back
        into whatever produced `probs` (the dynamics model's logits).
        """
        codes = torch.einsum("bkhw,kd->bdhw", probs, self.quantizer.codebook().to(probs.dtype))
        return self.decode_codes(codes)

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        q = self.quantize(x)
        codes = q.codes.movedim(-1, 1)
        return TokenizerOutput(self.decode_codes(codes), q.ids, codes, q.loss, q.restarted)
