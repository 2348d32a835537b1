"""The ViZDoom and Atari worlds: frame shapes, reproducible seeds, camera directions, action labels, errors."""

from __future__ import annotations

import numpy as np
import pytest

from ochre.errors import OchreError


def wrapped(delta: float) -> float:
    """An angle difference in (-180, 180]."""
    return (delta + 180.0) % 360.0 - 180.0


# --- ViZDoom ------------------------------------------------------------------


@pytest.fixture(scope="module")
def doom():
    pytest.importorskip("vizdoom")
    from ochre.envs.doom import DoomEnv, DoomSettings

    env = DoomEnv(DoomSettings())
    yield env
    env.close()


def camera_action(spec, yaw_bin: int | None = None, pitch_bin: int | None = None) -> np.ndarray:
    action = spec.neutral()
    if yaw_bin is not None:
        action[spec.index("yaw")] = yaw_bin
    if pitch_bin is not None:
        action[spec.index("pitch")] = pitch_bin
    return action


def test_doom_frames_at_default_size(doom):
    frame = doom.reset(seed=1)
    assert frame.shape == doom.frame_shape == (64, 64, 3) and frame.dtype == np.uint8
    frame, reward, done = doom.step(doom.action_spec.neutral())
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert isinstance(reward, float) and done is False
    assert doom.fps == 35 / 4


def test_doom_non_square_frames_and_timeout_keep_the_last_frame():
    pytest.importorskip("vizdoom")
    from ochre.envs.doom import DoomEnv, DoomSettings

    env = DoomEnv(DoomSettings(frame_size=(72, 128), frame_skip=4, episode_timeout=8))
    try:
        assert env.reset(seed=0).shape == (72, 128, 3)
        first, _, done = env.step(env.action_spec.neutral())
        assert not done
        last, _, done = env.step(env.action_spec.neutral())
        assert done and last.shape == (72, 128, 3) and last.dtype == np.uint8
    finally:
        env.close()


def test_doom_same_seed_and_actions_give_identical_frames(doom):
    from ochre.envs.doom import DoomEnv, DoomSettings

    actions = doom.action_spec.sample(np.random.default_rng(0), 60)

    def play(env) -> np.ndarray:
        frames = [env.reset(seed=7)]
        frames += [env.step(a)[0] for a in actions]
        return np.stack(frames)

    other = DoomEnv(DoomSettings())
    try:
        first = play(doom)
        assert np.array_equal(first, play(other))
        assert np.array_equal(first, play(doom))  # a reset with the same seed replays too
        assert len({f.tobytes() for f in first}) > 10  # the random actions really moved the view
    finally:
        other.close()


def test_doom_yaw_turns_right_and_left_by_the_requested_degrees(doom):
    spec = doom.action_spec
    right, left = camera_action(spec, yaw_bin=spec.camera_bins - 1), camera_action(spec, yaw_bin=0)
    for action in (right, left):
        doom.reset(seed=0)
        yaw0, pitch0 = doom.camera_angles()
        frame0 = doom.step(spec.neutral())[0]
        frame, _, _ = doom.step(action)
        yaw, pitch = doom.camera_angles()
        requested = spec.degrees(action)[0]
        assert abs(wrapped(yaw - yaw0) - requested) < 0.1 and pitch == pitch0
        assert not np.array_equal(frame, frame0)
    assert spec.degrees(right)[0] > 0 > spec.degrees(left)[0]


def test_doom_pitch_looks_up_and_down_by_the_requested_degrees(doom):
    spec = doom.action_spec
    doom.reset(seed=0)
    for pitch_bin in (spec.camera_bins - 1, 0, 0):  # up, back level, down
        action = camera_action(spec, pitch_bin=pitch_bin)
        yaw0, pitch0 = doom.camera_angles()
        doom.step(action)
        yaw, pitch = doom.camera_angles()
        assert abs((pitch - pitch0) - spec.degrees(action)[1]) < 0.1 and yaw == yaw0
    assert pitch < 0  # ended looking down


def image_shift(before: np.ndarray, after: np.ndarray, axis: int, most: int = 12) -> int:
    """How many pixels the picture content moved along `axis` (rows 0, columns 1), by best match."""
    a, b = before.mean(-1), after.mean(-1)
    inner = (slice(most, -most), slice(most, -most))
    errors = [np.abs(np.roll(a, s, axis=axis)[inner] - b[inner]).mean() for s in range(-most, most + 1)]
    return int(np.argmin(errors)) - most


def test_doom_view_slides_against_the_camera_motion(doom):
    """Turning right slides the scene left; looking up slides it down (checks the sign convention on pixels)."""
    spec = doom.action_spec
    top = spec.camera_bins - 1
    cases = [(camera_action(spec, yaw_bin=top), 1, -1), (camera_action(spec, yaw_bin=0), 1, 1)]
    cases += [(camera_action(spec, pitch_bin=top), 0, 1), (camera_action(spec, pitch_bin=0), 0, -1)]
    for action, axis, direction in cases:
        doom.reset(seed=0)
        before = doom.step(spec.neutral())[0]
        after = doom.step(action)[0]
        assert np.sign(image_shift(before, after, axis)) == direction


def test_doom_accepts_every_control(doom):
    spec = doom.action_spec
    doom.reset(seed=0)
    for name in spec.control_names:
        action = spec.neutral()
        action[spec.index(name)] = spec.factors[spec.index(name)] - 1
        frame, _, _ = doom.step(action)
        assert frame.shape == (64, 64, 3)
    doom.step(np.array(spec.factors) - 1)  # everything at once
    assert spec.control_names == ("yaw", "pitch", "forward", "left", "back", "right", "jump", "attack", "sprint", "sneak")


def test_doom_rejects_bad_actions(doom):
    spec = doom.action_spec
    doom.reset(seed=0)
    with pytest.raises(OchreError, match="sneak"):
        doom.step(spec.neutral() + np.eye(spec.shape[0], dtype=np.int64)[-1] * 2)
    with pytest.raises(OchreError, match="shape"):
        doom.step(spec.neutral(2))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"wad": "doom3"}, "unknown Doom wad 'doom3' .*freedoom2"),
        ({"wad": "freedoom1"}, "map 'map01' is not in wad 'freedoom1' .*e1m1"),
        ({"map": "map99"}, "map 'map99'"),
        ({"resolution": "RES_64X64"}, "RES_160X120"),
        ({"frame_skip": 0}, "frame_skip"),
        ({"frame_size": (64,)}, "frame_size"),
    ],
)
def test_doom_bad_settings_name_the_setting(change, message):
    pytest.importorskip("vizdoom")
    from ochre.envs.doom import DoomSettings

    with pytest.raises(OchreError, match=message):
        DoomSettings(**change).check()


def test_doom_scenario_wads_are_listed():
    pytest.importorskip("vizdoom")
    from ochre.envs.doom import DoomSettings, available_wads

    assert {"freedoom1", "freedoom2", "deathmatch", "my_way_home", "defend_the_center"} <= set(available_wads())
    DoomSettings(wad="deathmatch").check()
    DoomSettings(wad="freedoom1", map="E1M1").check()


# --- Atari --------------------------------------------------------------------


@pytest.mark.parametrize(
    "meaning, label",
    [
        ("NOOP", "noop"),
        ("FIRE", "fire"),
        ("UP", "up"),
        ("RIGHTFIRE", "right+fire"),
        ("UPRIGHTFIRE", "up+right+fire"),
        ("DOWNLEFT", "down+left"),
        ("DOWNLEFTFIRE", "down+left+fire"),
    ],
)
def test_ale_label(meaning, label):
    from ochre.envs.atari import ale_label

    assert ale_label(meaning) == label


def test_ale_label_rejects_unknown_meanings():
    from ochre.envs.atari import ale_label

    with pytest.raises(OchreError, match="JUMP"):
        ale_label("JUMP")


@pytest.fixture(scope="module")
def pong():
    pytest.importorskip("ale_py")
    from ochre.envs.atari import AtariEnv, AtariSettings

    env = AtariEnv(AtariSettings())
    yield env
    env.close()


def test_pong_action_labels(pong):
    assert pong.action_spec.labels == ("noop", "fire", "right", "left", "right+fire", "left+fire")
    assert pong.action_spec.noop == 0 and pong.action_spec.name == "atari:ALE/Pong-v5"
    assert pong.fps == 15


def test_atari_frames_at_both_sizes(pong):
    from ochre.envs.atari import AtariEnv, AtariSettings

    frame = pong.reset(seed=0)
    assert frame.shape == pong.frame_shape == (64, 64, 3) and frame.dtype == np.uint8
    frame, reward, done = pong.step(1)
    assert frame.shape == (64, 64, 3) and isinstance(reward, float) and done is False

    wide = AtariEnv(AtariSettings(frame_size=(72, 128), max_episode_frames=3))
    try:
        assert wide.reset(seed=0).shape == (72, 128, 3)
        dones = [wide.step(np.int64(0))[2] for _ in range(3)]
        assert dones == [False, False, True]
    finally:
        wide.close()


def test_atari_same_seed_and_actions_give_identical_frames(pong):
    from ochre.envs.atari import AtariEnv, AtariSettings

    actions = pong.action_spec.sample(np.random.default_rng(0), 100)

    def play(env) -> np.ndarray:
        return np.stack([env.reset(seed=3)] + [env.step(a)[0] for a in actions])

    other = AtariEnv(AtariSettings())
    try:
        first = play(pong)
        assert np.array_equal(first, play(other))
        assert len({f.tobytes() for f in first}) > 10
    finally:
        other.close()


def test_atari_rejects_bad_actions(pong):
    pong.reset(seed=0)
    with pytest.raises(OchreError, match="outside 0-5"):
        pong.step(6)
    with pytest.raises(OchreError, match="integer"):
        pong.step(1.5)


def test_atari_unknown_game_names_the_id_and_how_to_list():
    pytest.importorskip("ale_py")
    from ochre.envs.atari import AtariSettings, list_games

    with pytest.raises(OchreError, match="'ALE/Pongg-v5'.*list_games.*ALE/Pong-v5"):
        AtariSettings(game="ALE/Pongg-v5").check()
    assert "ALE/Pong-v5" in list_games()
