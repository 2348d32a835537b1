"""Damaged checkpoints: each is refused before use with one line naming the file and what is wrong.

The damaged files are made here from a real tiny world: sections removed, tensors of the
wrong shape, NaN weights, configs that disagree with their weights or with each other.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from ochre import WorldModel
from ochre.checkpoint import load_tokenizer_or_world
from ochre.errors import OchreError
from ochre.io import save_torch
from tests.conftest import run_module


def _drop(*keys: str) -> Callable[[dict], None]:
    def edit(payload: dict) -> None:
        node = payload
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


def _first_weight(section: str, change: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[dict], None]:
    def edit(payload: dict) -> None:
        state = payload[section]["state_dict"]
        name = next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)
        state[name] = change(state[name])

    return edit


def _set(value: object, *keys: str) -> Callable[[dict], None]:
    def edit(payload: dict) -> None:
        node = payload
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def _nan(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


WORLD_FAULTS = {
    "no dynamics section": (_drop("dynamics"), "has no 'dynamics.config'"),
    "no tokenizer weights": (_drop("tokenizer", "state_dict"), "has no 'tokenizer.state_dict'"),
    "no action schema": (_drop("action_schema"), "has no 'action_schema'"),
    "dynamics weight of the wrong shape": (_first_weight("dynamics", lambda t: t[:1]), "has shape"),
    "tokenizer weight of the wrong shape": (_first_weight("tokenizer", lambda t: t[:1]), "has shape"),
    "NaN dynamics weight": (_first_weight("dynamics", _nan), "NaN or infinite"),
    "NaN tokenizer weight": (_first_weight("tokenizer", _nan), "NaN or infinite"),
    "a dynamics weight missing": (lambda p: p["dynamics"]["state_dict"].pop("head.0.weight"), "missing head.0.weight"),
    "a foreign weight": (_set(torch.zeros(2), "dynamics", "state_dict", "extra.weight"), "unexpected extra.weight"),
    "weights not tensors": (_set({"a": 1}, "dynamics", "state_dict"), "not a dict of tensors"),
    "unknown dynamics config key": (_set(3, "dynamics", "config", "wings"), "unknown config key 'dynamics.config.wings'"),
    "world codebook size disagrees": (_set(7, "codebook_size"), "codebook sizes disagree"),
    "action schema of another world": (
        _set({"kind": "discrete", "name": "pong", "labels": ["noop", "up", "down"], "noop": 0}, "action_schema"),
        "the dynamics model takes actions",
    ),
}


@pytest.fixture(scope="module")
def world_payload(tiny_world) -> dict:
    return torch.load(tiny_world["world"], weights_only=True)


def _damaged(tmp_path: Path, payload: dict, edit: Callable[[dict], None]) -> Path:
    bad = copy.deepcopy(payload)
    edit(bad)
    path = tmp_path / "bad_world.pt"
    save_torch(path, bad)
    return path


@pytest.mark.parametrize("fault", list(WORLD_FAULTS))
def test_a_damaged_world_is_refused_with_one_line(tmp_path, world_payload, fault):
    edit, match = WORLD_FAULTS[fault]
    path = _damaged(tmp_path, world_payload, edit)
    with pytest.raises(OchreError, match=match) as err:
        WorldModel.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_damaged_tokenizer_section_is_refused_where_tokens_are_made(tmp_path, world_payload):
    path = _damaged(tmp_path, world_payload, WORLD_FAULTS["NaN tokenizer weight"][0])
    with pytest.raises(OchreError, match="tokenizer weights: .* NaN or infinite"):
        load_tokenizer_or_world(path)


def test_inference_stops_on_nan_weights_with_exit_2_and_writes_nothing(tmp_path, world_payload):
    path = _damaged(tmp_path, world_payload, WORLD_FAULTS["NaN dynamics weight"][0])
    np.savez(tmp_path / "seed.npz", frames=np.zeros((4, 64, 64, 3), np.uint8), actions=np.zeros(3, np.int64))
    np.save(tmp_path / "actions.npy", np.zeros(4, np.int64))
    out = tmp_path / "out"
    args = ["--checkpoint", str(path), "--seed-frames", str(tmp_path / "seed.npz"), "--actions", str(tmp_path / "actions.npy")]
    result = run_module("inference.py", *args, "--out", str(out), check=False)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "NaN or infinite" in last and "Traceback" not in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_damaged_idm_and_avatar_detector_are_refused(tmp_path):
    from ochre.actions import PROCGEN_ACTIONS
    from ochre.idm import FrameIDM, IDMConfig, load_idm, save_idm
    from ochre.playtest.avatar import PatchAvatar, PatchNet

    idm_path = tmp_path / "idm.pt"
    save_idm(idm_path, FrameIDM(IDMConfig(factors=(15,), channels=(8, 8))), PROCGEN_ACTIONS, [0.5])
    payload = torch.load(idm_path, weights_only=True)
    _first_weight("idm", _nan)({"idm": payload})
    save_torch(idm_path, payload)
    with pytest.raises(OchreError, match="IDM weights: .* NaN or infinite"):
        load_idm(idm_path)
    del payload["state_dict"]
    save_torch(idm_path, payload)
    with pytest.raises(OchreError, match="has no 'state_dict'"):
        load_idm(idm_path)

    avatar_path = tmp_path / "avatar.pt"
    PatchAvatar(PatchNet(4), (26, 26)).save(avatar_path, {})
    payload = torch.load(avatar_path, weights_only=True)
    payload["net"] = {k: v[:1] for k, v in payload["net"].items()}
    save_torch(avatar_path, payload)
    with pytest.raises(OchreError, match="avatar detector weights: .* has shape"):
        PatchAvatar.load(avatar_path)
