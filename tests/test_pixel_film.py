"""The pixel-space FiLM baseline: its loss, its chunked open-loop rollout, training through train.dynamics,
and scoring beside the token world in train.evaluate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ochre.data.store import EpisodeDataset
from ochre.errors import ConfigError
from ochre.idm import save_idm, train_idm
from ochre.models.pixel_film import PixelFiLM, PixelFiLMConfig, motion_weighted_bce, rollout_frames
from ochre.pixel_world import PixelWorld
from tests.conftest import run_module

TINY = PixelFiLMConfig(frame_size=[16, 16], num_actions=5, action_dim=4, channels=[8, 8], groups=4)


def test_bce_without_motion_is_plain_bce():
    logits, last = torch.randn(2, 4, 3, 8, 8), torch.rand(2, 3, 8, 8)
    static = last[:, None].expand(2, 4, 3, 8, 8).contiguous()  # every future frame equals the last input
    loss = motion_weighted_bce(logits, static, last, tau=0.05, dilate=1, weight=4.0)
    assert float(loss) == pytest.approx(float(F.binary_cross_entropy_with_logits(logits, static)), rel=1e-6)


def test_bce_weights_moving_pixels_by_hand():
    """One moving pixel in a 1x1x1x1x4 image, no dilation: weights (5, 1, 1, 1) / 2 -> (2.5, 0.5, 0.5, 0.5)."""
    target = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 1, 1, 4).expand(1, 1, 3, 1, 4).contiguous()
    last = torch.zeros(1, 3, 1, 4)
    logits = torch.zeros(1, 1, 3, 1, 4)  # BCE = log 2 everywhere
    loss = motion_weighted_bce(logits, target, last, tau=0.5, dilate=0, weight=4.0)
    assert float(loss) == pytest.approx(math.log(2) * (2.5 + 3 * 0.5) / 4)
    grown = motion_weighted_bce(logits, target, last, tau=0.5, dilate=1, weight=4.0)  # mask covers pixels 0 and 1
    assert float(grown) == pytest.approx(math.log(2))  # with a constant BCE map the normalised weights average to 1


def test_forward_shape_and_film_starts_as_identity():
    model = PixelFiLM(TINY)
    past = torch.rand(2, 4, 3, 16, 16)
    out = model(past, torch.randint(0, 5, (2, 3)), torch.randint(0, 5, (2, 4)))
    assert out.shape == (2, 4, 3, 16, 16)
    same = model(past, torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))
    assert torch.allclose(out, same)  # zero-initialised FiLM: actions have no effect before training
    with pytest.raises(ValueError, match="divisible"):
        PixelFiLMConfig(frame_size=[18, 16], channels=[8, 8])


def test_rollout_feeds_back_chunks_with_the_right_actions():
    """N=6 with F=4: two calls; the second sees the 4 newest frames and the 3 actions between them."""
    model = PixelFiLM(TINY).eval()
    calls = []
    forward = model.forward

    def spy(past, past_actions, future_actions):
        calls.append((past.clone(), past_actions.clone(), future_actions.clone()))
        return forward(past, past_actions, future_actions)

    model.forward = spy
    seed = torch.rand(1, 5, 3, 16, 16)
    seed_actions = torch.tensor([[9, 0, 1, 2]]) % 5
    future = torch.tensor([[3, 4, 0, 1, 2, 3]])
    out = rollout_frames(model, seed, seed_actions, future)
    assert out.shape == (1, 6, 3, 16, 16) and len(calls) == 2
    assert torch.equal(calls[0][0], seed[:, 1:]) and calls[0][1].tolist() == [[0, 1, 2]]
    assert calls[0][2].tolist() == [[3, 4, 0, 1]]
    assert torch.equal(calls[1][0], out[:, :4]) and calls[1][1].tolist() == [[4, 0, 1]]
    assert calls[1][2].tolist() == [[2, 3, 3, 3]]  # the last chunk repeats its final action


def test_train_dynamics_dispatches_on_model_type_and_resumes(frames_dataset, tmp_path):
    common = ["--config", "configs/tiny/pixel_film.yaml", f"data.path={frames_dataset}", f"run.dir={tmp_path}"]
    run_module("train.dynamics", *common, "run.name=full")
    run_module("train.dynamics", *common, "run.name=half", "train.checkpoint_every=2", "train.max_steps=2")
    run_module("train.dynamics", *common, "run.name=rest", f"train.resume={tmp_path}/half/checkpoints/train_state.pt")
    full = torch.load(tmp_path / "full" / "checkpoints" / "pixel_world.pt", weights_only=True)
    rest = torch.load(tmp_path / "rest" / "checkpoints" / "pixel_world.pt", weights_only=True)
    assert full["format"] == "ochre-pixel-world" and full["step"] == 4 and full["frame_shape"] == [64, 64, 3]
    for key, value in full["model"]["state_dict"].items():
        assert torch.equal(value, rest["model"]["state_dict"][key]), key
    assert "val/rollout_psnr" in (tmp_path / "full" / "metrics.csv").read_text()
    pw = PixelWorld.load(tmp_path / "full" / "checkpoints" / "pixel_world.pt", device="cpu")
    seed = np.zeros((2, 4, 64, 64, 3), np.uint8)
    assert pw.rollout(seed, np.zeros((2, 3), np.int64), np.zeros((2, 5), np.int64)).shape == (2, 5, 64, 64, 3)
    bad = run_module("train.dynamics", *common, "model.type=transformer", check=False)
    assert bad.returncode != 0 and "model.type must be one of" in bad.stderr and "Traceback" not in bad.stderr


def test_pixel_film_config_rejects_a_wrong_action_count(frames_dataset, tmp_path):
    from ochre.config import load_config
    from ochre.training.pixel_film import PixelFiLMTrainConfig, train_pixel_film

    cfg = load_config(
        PixelFiLMTrainConfig, "configs/tiny/pixel_film.yaml", [f"data.path={frames_dataset}", "model.num_actions=7"]
    )
    with pytest.raises(ConfigError, match="model.num_actions=7 but the dataset"):
        train_pixel_film(cfg)


def test_evaluate_trains_and_scores_the_baseline_and_the_idm(tiny_world, tmp_path):
    data = EpisodeDataset(tiny_world["frames"])
    idm, report = train_idm(data, data.action_spec, steps=3, batch=8, val_every=4, channels=(8, 8), progress=False)
    save_idm(tmp_path / "idm.pt", idm, data.action_spec, report.val_accuracy)
    out = tmp_path / "report"
    proc = run_module("train.evaluate", "--checkpoint", str(tiny_world["world"]), "--data", str(tiny_world["frames"]),
                      "--windows", "4", "--batch", "2", "--horizon", "6", "--stability-steps", "0", "--playtest-seeds", "0", "--out", str(out),
                      "--device", "cpu", "--train-baseline", str(tiny_world["frames"]),
                      "--baseline-config", "configs/tiny/pixel_film.yaml", "--idm", str(tmp_path / "idm.pt"),
                      "--idm-horizon", "3")  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert list(results["metrics"]) == ["model", "copy_last", "model_random_actions", "pixel_film"]
    assert len(results["metrics"]["pixel_film"]["gray84"]["psnr"]) == 6
    assert (out / "baseline" / "checkpoints" / "pixel_world.pt").is_file()
    af = results["action_following"]["results"]
    assert set(af) == {"model", "pixel_film"} and af["model"]["real_accuracy"] == af["pixel_film"]["real_accuracy"]
    md = (out / "report.md").read_text()
    assert "| pixel-space FiLM baseline (same data) |" in md and "## Action following" in md and "| chance |" in md
    assert "pixel_film" in proc.stdout and "action following (IDM accuracy)" in proc.stdout
