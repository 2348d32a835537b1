"""A first-person world end to end: ViZDoom data -> tokenizer -> dynamics with every recipe term -> runtime."""

import json

import numpy as np
import pytest

from tests.conftest import run_module, tiny_doom_world

pytest.importorskip("vizdoom")


@pytest.mark.slow
def test_doom_world_trains_and_plays(tmp_path):
    data, world = tiny_doom_world(tmp_path, 240, "model.memory=4", "model.idm_span=2", "train.idm_weight=0.5",
                                  "train.idm_pred_weight=0.1", "train.pixel_weight=1", "train.feedback=gumbel",
                                  "model.camera_warp=[0.56,0.74]")  # fmt: skip

    from ochre import WorldModel
    from ochre.data.store import EpisodeDataset

    wm = WorldModel.load(world, "cpu")
    assert wm.action_spec.kind == "first_person" and wm.dynamics.cfg.camera_factors == 2
    assert len(wm.dynamics.cfg.camera_shift) == 14 and wm.dynamics.camera_shift.shape == (14,)
    frames, actions = EpisodeDataset(data).rows(0, 0, 10)
    state = wm.reset(frames[:4], actions[:3])
    frame, state = wm.step(state, actions[3])
    assert frame.shape == (64, 64, 3) and state.step_count == 4
    np.savez(tmp_path / "seed.npz", frames=frames[:4], actions=actions[:3])
    (tmp_path / "actions.json").write_text(json.dumps(actions[3:9].tolist()))
    run_module("inference.py", "--checkpoint", str(world), "--seed-frames", str(tmp_path / "seed.npz"),
               "--actions", str(tmp_path / "actions.json"), "--out", str(tmp_path / "inf"))  # fmt: skip
    assert np.load(tmp_path / "inf" / "frames.npz")["frames"].shape == (6, 64, 64, 3)
    metrics = (world.parents[1] / "metrics.csv").read_text()
    assert "train/idm_acc" in metrics and "grad_norm/film" in metrics and "val/ar_gap" in metrics
    assert "camera/yaw_right_cells" in metrics
    gain = run_module("preprocess.camera_gain", "--data", str(data)).stdout
    assert "yaw" in gain and "model.camera_warp=[" in gain
