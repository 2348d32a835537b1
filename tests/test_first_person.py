"""A first-person world end to end: ViZDoom data -> tokenizer -> dynamics with every recipe term -> runtime."""

import json

import numpy as np
import pytest

from tests.conftest import run_module

pytest.importorskip("vizdoom")


@pytest.mark.slow
def test_doom_world_trains_and_plays(tmp_path):
    data, runs = tmp_path / "doom", tmp_path / "runs"
    run_module("preprocess.generate", "--world", "doom", "--frames", "240", "--shard-frames", "120",
               "--env", "episode_timeout=200", "--out", str(data), "--quiet")  # fmt: skip
    run_module("vqvae.train", "--config", "configs/tiny/vqvae.yaml", f"data.path={data}", f"run.dir={runs}", "run.name=vq",
               "data.val_every=4", "model.quantizer=vq", "model.vq_codes=64", "model.vq_dim=8")  # fmt: skip
    tokens = tmp_path / "tokens"
    run_module("vqvae.tokenize", "--tokenizer", str(runs / "vq/checkpoints/tokenizer.pt"), "--data", str(data),
               "--out", str(tokens), "--device", "cpu")  # fmt: skip
    run_module("train.dynamics", "--config", "configs/tiny/dynamics.yaml", f"data.path={tokens}", f"run.dir={runs}",
               "run.name=dyn", "data.val_every=4", "run.world=doom", "model.memory=4", "model.idm_span=2",
               "train.idm_weight=0.5", "train.idm_pred_weight=0.1", "train.pixel_weight=1", "train.feedback=gumbel")  # fmt: skip
    world = runs / "dyn" / "checkpoints" / "world.pt"

    from ochre import WorldModel
    from ochre.data.store import EpisodeDataset

    wm = WorldModel.load(world, "cpu")
    assert wm.action_spec.kind == "first_person" and wm.dynamics.cfg.camera_factors == 2
    frames, actions = EpisodeDataset(data).rows(0, 0, 10)
    state = wm.reset(frames[:4], actions[:3])
    frame, state = wm.step(state, actions[3])
    assert frame.shape == (64, 64, 3) and state.step_count == 4
    np.savez(tmp_path / "seed.npz", frames=frames[:4], actions=actions[:3])
    (tmp_path / "actions.json").write_text(json.dumps(actions[3:9].tolist()))
    run_module("inference.py", "--checkpoint", str(world), "--seed-frames", str(tmp_path / "seed.npz"),
               "--actions", str(tmp_path / "actions.json"), "--out", str(tmp_path / "inf"))  # fmt: skip
    assert np.load(tmp_path / "inf" / "frames.npz")["frames"].shape == (6, 64, 64, 3)
    metrics = (runs / "dyn" / "metrics.csv").read_text()
    assert "train/idm_acc" in metrics and "grad_norm/film" in metrics and "val/ar_gap" in metrics
