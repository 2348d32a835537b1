"""Action schemas: encoding round trips, validation errors, serialisation."""

import numpy as np
import pytest

from ochre.actions import (
    PROCGEN_ACTIONS,
    DiscreteActionSpec,
    FactoredActionSpec,
    FirstPersonActionSpec,
    action_spec_from_dict,
)
from ochre.errors import OchreError

FP = FirstPersonActionSpec()
CAR = FactoredActionSpec("car", ("steer", "gas"), ((-1.0, -0.5, 0.0, 0.5, 1.0), (0.0, 0.5, 1.0)), (2, 0))


def test_first_person_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    encoded = FP.sample(rng, size=(64, 5))
    assert encoded.shape == (64, 5, 10)
    np.testing.assert_array_equal(FP.encode(FP.decode(encoded)), encoded)


def test_first_person_continuous_round_trip_is_within_one_bin():
    rng = np.random.default_rng(1)
    cont = np.concatenate([rng.uniform(-1, 1, (500, 2)), rng.integers(0, 2, (500, 8))], axis=1)
    back = FP.decode(FP.encode(cont))
    bounds = np.r_[-1.0, FP.camera_edges, 1.0]
    width = np.diff(bounds).max()
    assert np.abs(back[:, :2] - cont[:, :2]).max() <= width
    np.testing.assert_array_equal(back[:, 2:], cont[:, 2:])
    # Same bin before and after: decoding picks a value inside the bin it came from.
    np.testing.assert_array_equal(FP.encode(back), FP.encode(cont))


def test_first_person_still_camera_and_clipping():
    zero = FP.encode(np.zeros(10))
    np.testing.assert_array_equal(zero, FP.neutral())
    assert FP.decode(zero)[:2].tolist() == [0.0, 0.0]
    assert not FP.active_controls(zero).any()
    big = FP.encode(np.r_[FP.normalise_degrees([90.0, -90.0]), np.zeros(8)])
    assert big[0] == FP.camera_bins - 1 and big[1] == 0
    assert FP.degrees(big)[0] > 0 > FP.degrees(big)[1]


def test_first_person_buttons_threshold_fraction_held():
    cont = np.zeros((2, 10))
    cont[0, FP.index("forward")] = 0.6
    cont[1, FP.index("forward")] = 0.4
    enc = FP.encode(cont)
    assert enc[0, FP.index("forward")] == 1 and enc[1, FP.index("forward")] == 0


def test_first_person_validate_names_the_control():
    bad = FP.neutral(3)
    bad[1, FP.index("jump")] = 2
    with pytest.raises(OchreError, match="'jump' value 2"):
        FP.validate(bad, "clip.json")
    with pytest.raises(OchreError, match="10 columns"):
        FP.validate(np.zeros((3, 4), dtype=np.int64), "clip.json")
    with pytest.raises(OchreError, match="integers"):
        FP.validate(np.full((2, 10), 0.5), "clip.json")


def test_first_person_rejects_bad_edges():
    with pytest.raises(OchreError, match="strictly increasing"):
        FirstPersonActionSpec(camera_edges=(0.5, -0.5))
    with pytest.raises(OchreError, match="0 strictly inside"):
        FirstPersonActionSpec(camera_edges=(-0.5, 0.0, 0.5))


@pytest.mark.parametrize("spec", [PROCGEN_ACTIONS, FP, FirstPersonActionSpec(camera_edges=(-0.3, 0.1, 0.7), max_deg=30.0), CAR])
def test_schema_serialises_round_trip(spec):
    back = action_spec_from_dict(spec.to_dict())
    assert back == spec


def test_schema_version_and_kind_checked():
    with pytest.raises(OchreError, match="version 9"):
        action_spec_from_dict({**FP.to_dict(), "version": 9})
    with pytest.raises(OchreError, match="unknown action schema kind"):
        action_spec_from_dict({"kind": "joystick"})


def test_discrete_controls_from_labels():
    assert PROCGEN_ACTIONS.control_names[:4] == ("left", "down", "up", "right")
    active = PROCGEN_ACTIONS.active_controls(np.array([0, 4, 7]))
    names = PROCGEN_ACTIONS.control_names
    assert active[0, names.index("left")] and active[0, names.index("down")] and active[0].sum() == 2
    assert not active[1].any()
    assert active[2].sum() == 1 and active[2, names.index("right")]
    pong = DiscreteActionSpec("atari", ("noop", "fire", "right", "left", "right+fire", "left+fire"))
    assert pong.control_names == ("fire", "right", "left")
    np.testing.assert_array_equal(pong.neutral(3), [0, 0, 0])


def test_factored_encodes_indices_into_each_controls_values():
    assert CAR.shape == (2,) and CAR.factors == (5, 3) and CAR.control_names == ("steer", "gas")
    np.testing.assert_array_equal(CAR.neutral(2), [[2, 0], [2, 0]])
    assert not CAR.active_controls(CAR.neutral()).any()
    assert CAR.active_controls(np.array([0, 0])).tolist() == [True, False]
    np.testing.assert_array_equal(CAR.decode(np.array([[0, 2], [3, 1]])), [[-1.0, 1.0], [0.5, 0.5]])
    assert CAR.nearest("steer", -0.7) == 1 and CAR.nearest("gas", 9.0) == 2
    sample = CAR.sample(np.random.default_rng(0), size=(100,))
    assert sample.shape == (100, 2) and (sample.max(0) == [4, 2]).all()
    assert CAR.to_dict()["values"] == [[-1.0, -0.5, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0]]


def test_factored_validate_and_construction_name_the_control():
    with pytest.raises(OchreError, match="'gas' value 3 is outside 0-2"):
        CAR.validate(np.array([0, 3]), "clip.json")
    with pytest.raises(OchreError, match="2 columns"):
        CAR.validate(np.zeros((4, 3), dtype=np.int64), "clip.json")
    with pytest.raises(OchreError, match="rest index 5"):
        FactoredActionSpec("x", ("a",), ((0.0, 1.0),), (5,))
    with pytest.raises(OchreError, match="distinct"):
        FactoredActionSpec("x", ("a", "a"), ((0.0,), (0.0,)), (0, 0))
    with pytest.raises(OchreError, match="no control 'brake'"):
        CAR.index("brake")
