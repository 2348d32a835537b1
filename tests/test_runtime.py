import numpy as np
import pytest
import torch

from ochre import WorldModel
from ochre.errors import OchreError


@pytest.fixture(scope="module")
def wm(tiny_world):
    return WorldModel.load(tiny_world["world"], device="cpu")


@pytest.fixture(scope="module")
def seeds(tiny_world):
    from ochre.data.store import EpisodeDataset
    from ochre.data.windows import WindowSampler

    batch = WindowSampler(EpisodeDataset(tiny_world["frames"]), 8, split="all").fixed(2)
    return batch.rows.numpy(), batch.actions.numpy()


def test_contract_shapes_and_types(wm, seeds):
    frames, actions = seeds
    assert wm.frame_shape == (64, 64, 3) and wm.action_spec.n == 15
    tokens = wm.encode(frames[0, :4])
    assert tokens.shape == (4, 16, 16)
    decoded = wm.decode(tokens)
    assert decoded.shape == (4, 64, 64, 3) and decoded.dtype == np.uint8
    state = wm.reset(frames[0, :4], actions[0, :3])
    frame, state2 = wm.step(state, int(wm.action_spec.sample(np.random.default_rng(0))))
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert state2.step_count == state.step_count + 1
    video = wm.rollout(frames[:, :4], actions[:, :3], actions[:, 3:7])
    assert video.shape == (2, 4, 64, 64, 3) and video.dtype == np.uint8


def test_rollout_matches_repeated_step(wm, seeds):
    frames, actions = seeds
    video = wm.rollout(frames[:1, :4], actions[:1, :3], actions[:1, 3:7])
    state = wm.reset(frames[0, :4], actions[0, :3])
    for j in range(4):
        frame, state = wm.step(state, int(actions[0, 3 + j]))
        assert (frame == video[0, j]).all()


def test_state_can_rewind(wm, seeds):
    frames, actions = seeds
    state = wm.reset(frames[0, :4], actions[0, :3])
    saved = state.clone()
    first, _ = wm.step(state, 7)
    _, moved = wm.step(state, 1)
    again, _ = wm.step(saved, 7)
    assert (first == again).all() and moved.step_count == 4


def test_sampling_is_seeded(wm, seeds):
    frames, actions = seeds
    a = wm.rollout(frames[:, :4], actions[:, :3], actions[:, 3:6], sampling="sample", temperature=1.0, top_k=5, seed=3)
    b = wm.rollout(frames[:, :4], actions[:, :3], actions[:, 3:6], sampling="sample", temperature=1.0, top_k=5, seed=3)
    assert (a == b).all()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda wm, f, a: wm.reset(f[0, :4, :32], a[0, :3]), "must end in"),
        (lambda wm, f, a: wm.reset(f[0, :4], np.array([1, 2, 15])), "outside 0-14"),
        (lambda wm, f, a: wm.reset(f[0, :4].astype(np.float32), a[0, :3]), "uint8"),
        (lambda wm, f, a: wm.rollout(f[:, :4], a[:, :3], a[:1, 3:6]), "match 2 seed"),
        (lambda wm, f, a: wm.rollout(f[:, :4], a[:, :2], a[:, 3:6]), "seed actions must have shape"),
    ],
)
def test_bad_input_is_one_clear_error(wm, seeds, call, match):
    frames, actions = seeds
    with pytest.raises(OchreError, match=match):
        call(wm, frames, actions)


def test_checkpoint_loads_weights_only(tiny_world):
    payload = torch.load(tiny_world["world"], weights_only=True)
    assert payload["format"] == "ochre-world" and payload["codebook_size"] == 125
    assert payload["dynamics"]["config"]["codebook_size"] == payload["codebook_size"]
    assert payload["action_schema"]["name"] == "procgen" and payload["frame_shape"] == [64, 64, 3]
    assert "dynamics_train" in payload["configs"] and "tokenizer_train" in payload["configs"]


def test_missing_and_wrong_checkpoints(tmp_path, tiny_world):
    with pytest.raises(OchreError, match="not found"):
        WorldModel.load(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(OchreError, match="not a readable"):
        WorldModel.load(tmp_path / "junk.pt")
    with pytest.raises(OchreError, match="expected an ochre-world checkpoint"):
        WorldModel.load(tiny_world["tokenizer"])
