"""Frame tokenizer: a convolutional autoencoder with a discrete (FSQ) bottleneck.

64x64 RGB -> (64/f)x(64/f) token grid, f = 2 ** len(channels). Frames are float
in [-1, 1] inside the model; see `ochre.frames` for the uint8 conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ochre.models.fsq import FSQ


@dataclass
class TokenizerConfig:
    frame_size: list[int] = field(default_factory=lambda: [64, 64])  # (H, W) of input frames
    channels: list[int] = field(default_factory=lambda: [48, 96])  # width after each 2x downsampling
    res_blocks: int = 2  # residual blocks at token resolution, in encoder and decoder each
    quantizer: Literal["fsq"] = "fsq"
    fsq_levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # codebook = product

    def __post_init__(self) -> None:
        factor = 2 ** len(self.channels)
        if any(s % factor for s in self.frame_size):
            raise ValueError(f"frame_size {self.frame_size} must be divisible by the downsampling factor {factor}")

    @property
    def token_grid(self) -> tuple[int, int]:
        factor = 2 ** len(self.channels)
        return self.frame_size[0] // factor, self.frame_size[1] // factor

    @property
    def codebook_size(self) -> int:
        out = 1
        for level in self.fsq_levels:
            out *= level
        return out


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


class Tokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.quantizer = FSQ(cfg.fsq_levels)
        d = self.quantizer.dim
        chans = [3, *cfg.channels]
        down = [nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1) for i in range(len(cfg.channels))]
        self.encoder = nn.Sequential(
            *[m for conv in down for m in (conv, nn.GELU())][:-1],
            *[ResBlock(chans[-1]) for _ in range(cfg.res_blocks)],
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

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, H, W) in [-1, 1] -> (tokens (B, h, w) long, codes (B, d, h, w))."""
        z = self.encoder(x).movedim(1, -1)
        codes, tokens = self.quantizer(z)
        return tokens, codes.movedim(-1, 1)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (B, d, h, w) -> frames (B, 3, H, W) in about [-1, 1]."""
        return self.decoder(codes)

    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (B, h, w) long -> frames (B, 3, H, W)."""
        return self.decode_codes(self.quantizer.ids_to_codes(tokens).movedim(-1, 1))

    def decode_soft(self, probs: torch.Tensor) -> torch.Tensor:
        """probs: (B, K, h, w) distribution over codes -> frames; differentiable in probs."""
        codes = torch.einsum("bkhw,kd->bdhw", probs, self.quantizer.codebook())
        return self.decode_codes(codes)

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        tokens, codes = self.encode(x)
        return TokenizerOutput(self.decode_codes(codes), tokens, codes)
