"""train.bench: a tiny end-to-end run, the FLOP counts it divides by, and the host reads of one step."""

import json
from dataclasses import replace

import pytest
import torch

from ochre.benchmark import READS, HostReads
from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.training.dynamics_config import DynamicsLoopConfig
from ochre.training.dynamics_loss import LossContext
from train.bench import count_flops, host_reads, main, random_batch, training_step

TINY = DynamicsConfig(codebook_size=16, token_grid=[4, 4], num_actions=3, embed_dim=8, hidden_dim=8, layers=1)


def tiny_step(batch: int, **loop):
    torch.manual_seed(0)
    cfg = DynamicsLoopConfig(batch_size=batch, seq_len=4, **loop)
    model = Dynamics(replace(TINY, idm_span=1 if cfg.idm_weight else 0))
    return training_step(model, random_batch(TINY, batch, 4, torch.device("cpu")), cfg, LossContext(), torch.device("cpu"))


def step_flops(batch: int) -> int:
    return count_flops(tiny_step(batch))


def test_step_flops_are_positive_and_linear_in_batch():
    small, large = step_flops(2), step_flops(6)
    assert small > 0
    assert large / small == pytest.approx(3, rel=0.05)


@pytest.mark.parametrize("loop", [{}, {"idm_weight": 1.0, "idm_pred_weight": 1.0, "ar_len": 2}])
def test_a_training_step_reads_at_most_two_values_from_the_device(loop):
    step = tiny_step(2, **loop)
    step()  # AdamW builds its state on the first step
    assert host_reads(step) <= 2


def test_host_reads_counts_reads_and_puts_the_tensor_methods_back():
    before = {name: getattr(torch.Tensor, name) for name in READS}
    x = torch.arange(3.0)
    with pytest.raises(RuntimeError, match="inside"), HostReads() as reads:
        x.sum().item(), float(x[0]), bool(x[1]), x.tolist(), x.cpu(), x.numpy(), f"{x[2]:.1f}"
        x + 1  # no read
        raise RuntimeError("inside")
    assert reads.count == 7
    assert {name: getattr(torch.Tensor, name) for name in READS} == before


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
    assert results["train"]["host_reads_per_step"] <= 2 and "train host reads per step" in printed
