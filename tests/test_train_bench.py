"""train.bench: a tiny end-to-end run, and the FLOP counts it divides by."""

import json

import pytest
import torch

from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.training.dynamics import DynamicsLoopConfig, LossContext
from train.bench import count_flops, main, random_batch, training_step

TINY = DynamicsConfig(codebook_size=16, token_grid=[4, 4], num_actions=3, embed_dim=8, hidden_dim=8, layers=1)


def step_flops(batch: int) -> int:
    torch.manual_seed(0)
    loop = DynamicsLoopConfig(batch_size=batch, seq_len=4)
    model = Dynamics(TINY)
    return count_flops(
        training_step(model, random_batch(TINY, batch, 4, torch.device("cpu")), loop, LossContext(), torch.device("cpu"))
    )


def test_step_flops_are_positive_and_linear_in_batch():
    small, large = step_flops(2), step_flops(6)
    assert small > 0
    assert large / small == pytest.approx(3, rel=0.05)


def test_conv_flops_follow_the_usual_convention():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1)
    x = torch.randn(2, 8, 5, 5)
    assert count_flops(lambda: conv(x)) == 2 * 2 * 8 * 8 * 9 * 5 * 5


def test_tiny_benchmark_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    main(["--batch", "2", "--seq-len", "3", "--steps", "2", "--repeats", "2", "--warmup", "1", "--matmul-size", "128",
          "--pixel-weight", "1", "--memory", "2", "--idm-span", "1", "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert "| metric | value |" in printed and "train MFU vs conv peak" in printed and "inference per frame" in printed
    results = json.loads(out.read_text())
    assert results["machine"]["threads"] >= 1 and results["settings"]["pixel_weight"] == 1.0
    numbers = [
        *(results["peak"][k] for k in ("matmul_gflops", "conv_gflops")),
        *(
            results["train"][k]
            for k in ("params", "step_s", "frames_per_s", "flops_per_step", "gflops", "mfu_matmul", "mfu_conv")
        ),
        *(results["inference"][k] for k in ("frame_ms", "frames_per_s", "flops_per_frame", "gflops")),
    ]
    assert all(v > 0 for v in numbers)
    assert results["train"]["frames_per_s"] == pytest.approx(2 * 2 / results["train"]["step_s"])
