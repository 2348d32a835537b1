"""Metric functions against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ochre.errors import OchreError
from ochre.evaluation import HorizonStats
from ochre.metrics import codebook_usage, mse, psnr, psnr_from_mse, ssim, to_gray84


def test_mse_and_psnr_of_a_constant_error():
    pred, target = torch.zeros(2, 3, 8, 8), torch.full((2, 3, 8, 8), 0.5)
    assert float(mse(pred, target)) == pytest.approx(0.25)
    assert psnr(pred, target) == pytest.approx(10 * math.log10(4))  # 6.02 dB
    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    assert psnr_from_mse(0.0) == pytest.approx(100.0)  # clamped at 1e-10, never inf


def test_ssim_of_equal_and_of_flat_images():
    x = torch.rand(2, 3, 16, 16)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-5)
    a, b = torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.6)
    c1 = 0.01**2  # flat images: no variance, so SSIM = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)
    assert ssim(a, b) == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1), rel=1e-4)


def test_gray84_uses_luma_weights_and_resizes():
    frame = torch.tensor([0.2, 0.4, 0.8]).view(3, 1, 1).expand(3, 64, 64)
    gray = to_gray84(frame[None, None])
    assert gray.shape == (1, 1, 1, 84, 84)
    assert torch.allclose(gray, torch.tensor(0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.8), atol=1e-6)


def test_horizon_psnr_averages_mse_over_windows_first():
    """Window errors 0.01 and 0.03 at h=1: PSNR of the mean MSE (0.02, 16.99 dB), not the mean PSNR (17.61 dB)."""
    stats = HorizonStats(1)
    gt = torch.zeros(2, 1, 3, 16, 16)
    pred = torch.stack([torch.full((1, 3, 16, 16), 0.1), torch.full((1, 3, 16, 16), math.sqrt(0.03))])
    stats.add(pred, gt)
    table = stats.table("rgb")
    assert table["mse"][0] == pytest.approx(0.02, rel=1e-5)
    assert table["psnr"][0] == pytest.approx(10 * math.log10(50), rel=1e-5)


def test_codebook_usage_counts_codes_and_perplexity():
    assert codebook_usage(torch.tensor([0, 0, 1, 1]), 4) == (2, pytest.approx(2.0))
    used, perplexity = codebook_usage(torch.arange(8), 16)
    assert used == 8 and perplexity == pytest.approx(8.0)


def test_token_changes_counts_token_and_patch_changes():
    from ochre.tokenizer_eval import token_changes

    frames = np.zeros((3, 8, 8, 3), np.uint8)
    frames[1, 0, 0] = 255  # one pixel of cell (0, 0) changes at step 1, back at step 2
    tokens = torch.zeros(3, 2, 2, dtype=torch.long)
    tokens[1, 0, :] = 1  # the token of its cell and of the cell beside it change
    got = token_changes(tokens, frames)
    assert got == {"token_changed": 4 / 8, "patch_changed": 2 / 8}
    with pytest.raises(OchreError, match="at least 2 consecutive frames"):
        token_changes(tokens[:1], frames[:1])
