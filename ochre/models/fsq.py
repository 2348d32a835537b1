"""Finite Scalar Quantization (Mentzer et al., 2023, https://arxiv.org/abs/2309.15505).

Each of the d latent channels is bounded and rounded to one of `levels[i]` values;
the implicit codebook is their product (e.g. [8, 5, 5, 5] -> 1000 codes). No
codebook parameters, so no codebook collapse and no dead codes to restart.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ochre.models.vq import Quantized


class FSQ(nn.Module):
    def __init__(self, levels: list[int]):
        super().__init__()
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.long), persistent=False)
        basis = torch.cumprod(torch.tensor([1, *levels[:-1]], dtype=torch.long), 0)
        self.register_buffer("basis", basis, persistent=False)
        self.dim = len(levels)
        self.codebook_size = math.prod(levels)

    @property
    def _half_width(self) -> torch.Tensor:
        return (self.levels // 2).float()

    def _bound(self, z: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
        half_l = (self.levels - 1).float() * (1 + eps) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: torch.Tensor) -> Quantized:
        """z: (..., d) float -> codes (..., d) in [-1, 1] with straight-through grads, ids (...) long."""
        bounded = self._bound(z.float())
        rounded = bounded + (bounded.round() - bounded).detach()
        codes = rounded / self._half_width
        return Quantized(codes, self.codes_to_ids(codes), codes.new_zeros(()))

    def codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., d) normalized codes -> (...) ids in [0, codebook_size)."""
        digits = (codes * self._half_width + self._half_width).round().long()
        return (digits * self.basis).sum(-1)

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """(...) ids -> (..., d) normalized codes."""
        digits = (ids.unsqueeze(-1) // self.basis) % self.levels
        return (digits.float() - self._half_width) / self._half_width

    def codebook(self) -> torch.Tensor:
        """(codebook_size, d): every code, row i is code id i."""
        return self.ids_to_codes(torch.arange(self.codebook_size, device=self.levels.device))
