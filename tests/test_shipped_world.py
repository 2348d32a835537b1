"""The shipped worlds load, match their assets and cards, and produce moving frames."""

from pathlib import Path

import numpy as np
import pytest

from ochre import WorldModel
from ochre.inputs import load_actions, load_seed

ROOT = Path(__file__).resolve().parents[1]
# world -> (action schema, smallest mean change between consecutive frames under the scripted input)
SHIPPED = {"coinrun": ("procgen", 0.5), "doom": ("first_person", 0.5), "pong": ("atari:ALE/Pong-v5", 0.05)}


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def shipped(request):
    return request.param, WorldModel.load(ROOT / "checkpoints" / f"{request.param}.pt", device="cpu")


def test_checkpoint_is_small_and_self_describing(shipped):
    world, wm = shipped
    assert (ROOT / "checkpoints" / f"{world}.pt").stat().st_size < 25 * 2**20
    assert wm.info["world"] == world and wm.frame_shape == (64, 64, 3) and wm.action_spec.name == SHIPPED[world][0]
    assert wm.dynamics.cfg.codebook_size == wm.tokenizer.codebook_size  # the model is built for its tokenizer
    card = (ROOT / "checkpoints" / f"{world}.md").read_text()
    assert "python -m train.evaluate --checkpoint checkpoints/" + world in card  # the card names its evaluation


def test_assets_drive_the_shipped_world(shipped):
    world, wm = shipped
    frames, seed_actions = load_seed(ROOT / "assets" / world / "seed.npz")
    one = wm.action_spec.shape
    actions = wm.action_spec.validate(load_actions(ROOT / "assets" / world / "actions.json", one[0] if one else 0))
    video = wm.rollout(frames[:2], seed_actions[:2], np.broadcast_to(actions[:8], (2, 8, *one)))
    assert video.shape == (2, 8, 64, 64, 3)
    assert video.std() > 10  # an image, not a grey average
    assert np.abs(video[:, 1:].astype(int) - video[:, :-1]).mean() > SHIPPED[world][1]  # the scripted input moves it


def test_the_flow_world_ships_beside_the_token_world():
    """checkpoints/coinrun_flow.pt: one small weights_only file that plays CoinRun from its own seed contexts and the
    shipped CoinRun assets, with its sampler's settings and the game it was drawn from."""
    path = ROOT / "checkpoints" / "coinrun_flow.pt"
    assert path.stat().st_size < 25 * 2**20
    wm = WorldModel.load(path, device="cpu")
    assert wm.info["world"] == "coinrun" and wm.action_spec.name == "procgen" and wm.flow_steps == 2
    assert wm.info["source"]["settings"]["game"] == "coinrun" and wm.seeds is not None
    frames, seed_actions = load_seed(ROOT / "assets" / "coinrun" / "seed.npz")
    actions = wm.action_spec.validate(load_actions(ROOT / "assets" / "coinrun" / "actions.json", 0))
    video = wm.rollout(frames[:2], seed_actions[:2], np.broadcast_to(actions[:8], (2, 8)), seed=0)
    assert video.shape == (2, 8, 64, 64, 3) and video.std() > 10
    assert np.abs(video[:, 1:].astype(int) - video[:, :-1]).mean() > 0.5
    assert "python -m train.compare" in (ROOT / "checkpoints" / "coinrun_flow.md").read_text()
