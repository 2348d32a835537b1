"""The shipped CoinRun world loads, matches its assets, and produces moving frames."""

from pathlib import Path

import numpy as np
import pytest

from ochre import WorldModel
from ochre.inputs import load_actions, load_seed

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "checkpoints" / "coinrun.pt"


@pytest.fixture(scope="module")
def wm():
    return WorldModel.load(CHECKPOINT, device="cpu")


def test_checkpoint_is_small_and_self_describing(wm):
    assert CHECKPOINT.stat().st_size < 25 * 2**20
    assert wm.info["world"] == "coinrun" and wm.frame_shape == (64, 64, 3) and wm.action_spec.name == "procgen"
    assert wm.dynamics.cfg.codebook_size == wm.tokenizer.codebook_size
    assert (ROOT / "checkpoints" / "coinrun.md").is_file()


def test_assets_drive_the_shipped_world(wm):
    frames, seed_actions = load_seed(ROOT / "assets" / "coinrun" / "seed.npz")
    actions = wm.action_spec.validate(load_actions(ROOT / "assets" / "coinrun" / "actions.json"))
    video = wm.rollout(frames[:2], seed_actions[:2], np.broadcast_to(actions[:8], (2, 8)))
    assert video.shape == (2, 8, 64, 64, 3)
    assert video.std() > 10  # an image, not a grey average
    assert np.abs(video[:, 1:].astype(int) - video[:, :-1]).mean() > 0.5  # the world moves under "run right"
