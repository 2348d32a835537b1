"""The live app: bindings per schema from scripted events, the window loop, headless play, rewind,
recordings that replay through inference.py, ghost mode, human recording, the benchmark, bad input."""

import csv
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pygame
import pytest
import torch

from live.app import load_world, open_session
from live.bindings import PlayerInput, bindings_for, describe_action, discrete_encoder
from live.controller import PLAY_KEYS, PlayController
from live.keymap import SPARE_KEYS, derived_keymap, load_key_file
from live.record import RECORD_KEYS
from live.tracker import InputTracker, MouseSettings
from live.window import WINDOW_KEYS, Window, WindowSettings
from ochre import WorldModel
from ochre.actions import PROCGEN_ACTIONS, DiscreteActionSpec, FactoredActionSpec, FirstPersonActionSpec
from ochre.checkpoint import tokenizer_payload
from ochre.envs.atari import ale_label
from ochre.envs.gym import discrete_schema
from ochre.errors import OchreError
from ochre.models.dynamics import Dynamics, DynamicsConfig
from ochre.models.tokenizer import Tokenizer, TokenizerConfig
from ochre.world import save_world
from tests.conftest import ROOT

FP = FirstPersonActionSpec()
PONG = DiscreteActionSpec(
    "atari:ALE/Pong-v5", tuple(ale_label(m) for m in ("NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"))
)
SMALL = WindowSettings(scale=2)
CARTPOLE = discrete_schema("gym:CartPole-v1", 2, None)
ARCADE = discrete_schema("gym:Arcade", 7, ["NOOP", "FIRE", "UP", "UPRIGHT", "DOWNLEFTFIRE", "JUMP", "Crouch Down"])
CAR = FactoredActionSpec(
    "gym:Car", ("axis_0", "axis_1", "axis_2"), ((-1.0, -0.5, 0.0, 0.5, 1.0), (0.0, 0.5, 1.0), (-2.0, 0.0, 2.0)), (2, 0, 1)
)


def random_world(path, spec, world="doom"):
    """A tiny untrained 32x32 world of any schema (saved as a real checkpoint), with 4 random seed frames."""
    torch.manual_seed(0)
    tok = Tokenizer(TokenizerConfig(frame_size=[32, 32], channels=[8, 16], res_blocks=0, fsq_levels=[2, 2, 2, 4]))
    factors = (
        dict(action_factors=list(spec.factors), camera_factors=2) if spec.kind == "first_person" else dict(num_actions=spec.n)
    )
    dyn = Dynamics(
        DynamicsConfig(
            codebook_size=32, token_grid=[8, 8], embed_dim=8, hidden_dim=8, layers=1, action_dim=8, memory=2, **factors
        )
    )
    for film in [*dyn.films, *getattr(dyn, "camera_films", [])]:
        torch.nn.init.normal_(film.proj.weight)  # FiLM starts as the identity; make actions matter
    save_world(path / "world.pt", tokenizer_payload(tok, 0, {}), dyn, spec, {}, 0, world, 15.0)
    rng = np.random.default_rng(0)
    np.savez(path / "seed.npz", frames=rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), actions=spec.sample(rng, 3))
    return path / "world.pt", path / "seed.npz"


@pytest.fixture(scope="module")
def fp_world(tmp_path_factory):
    return random_world(tmp_path_factory.mktemp("fp"), FP)


@pytest.fixture(scope="module")
def coinrun_seed():
    return str(ROOT / "assets" / "coinrun" / "seed.npz")


def session_of(world, seed, rewind_seconds=10.0, **kw):
    return open_session(load_world(str(world), "cpu", **kw), str(seed), rewind_seconds)


def events(tracker, *evs):
    for e in evs:
        tracker.handle(e)
    return tracker.read()


def key(k, down=True):
    return pygame.event.Event(pygame.KEYDOWN if down else pygame.KEYUP, key=k)


def motion(dx, dy):
    return pygame.event.Event(pygame.MOUSEMOTION, rel=(dx, dy), pos=(0, 0), buttons=(0, 0, 0))


def click(button=1, down=True):
    return pygame.event.Event(pygame.MOUSEBUTTONDOWN if down else pygame.MOUSEBUTTONUP, button=button, pos=(0, 0))


# -- bindings: scripted events -> encoded actions, per schema ---------------------------------------


@pytest.mark.parametrize(
    ("keys", "label"),
    [
        ((), "noop"),
        ((pygame.K_LEFT,), "left"),
        ((pygame.K_a,), "left"),
        ((pygame.K_d, pygame.K_w), "right+up"),
        ((pygame.K_RIGHT, pygame.K_SPACE), "right+up"),
        ((pygame.K_LEFT, pygame.K_DOWN), "left+down"),
        ((pygame.K_s,), "down"),
        ((pygame.K_LEFT, pygame.K_RIGHT), "noop"),
        ((pygame.K_1,), "d"),
        ((pygame.K_6,), "e"),
    ],
)
def test_procgen_key_events_encode_to_the_right_action(keys, label):
    bindings = bindings_for(PROCGEN_ACTIONS)
    action = bindings.encode(events(InputTracker(bindings), *(key(k) for k in keys)))
    assert PROCGEN_ACTIONS.labels[int(action)] == label


def test_every_procgen_id_is_reachable():
    encode = discrete_encoder(PROCGEN_ACTIONS)
    names = [(), ("left",), ("right",), ("up",), ("down",), ("d",), ("a",), ("w",), ("s",), ("q",), ("e",)]
    ids = {int(encode(PlayerInput(frozenset(a + b)))) for a in names for b in names}
    assert ids == set(range(PROCGEN_ACTIONS.n))


@pytest.mark.parametrize(
    ("evs", "label"),
    [
        ((key(pygame.K_SPACE),), "fire"),
        ((click(),), "fire"),
        ((key(pygame.K_RIGHT), key(pygame.K_LCTRL)), "right+fire"),
        ((key(pygame.K_a),), "left"),
        ((key(pygame.K_a), key(pygame.K_d)), "noop"),
        ((key(pygame.K_UP),), "right"),  # Pong's "right" moves the paddle up: the screen's up key sends it
        ((key(pygame.K_s), key(pygame.K_SPACE)), "left+fire"),
    ],
)
def test_atari_events_encode_to_ale_ids(evs, label):
    bindings = bindings_for(PONG)
    assert PONG.labels[int(bindings.encode(events(InputTracker(bindings), *evs)))] == label


def test_first_person_mouse_and_keys_encode_camera_bins_and_buttons():
    bindings = bindings_for(FP)
    tracker = InputTracker(bindings, MouseSettings(sensitivity=0.15))
    tracker.captured = True
    # 40 px right = 6 deg = 0.4 of max_deg -> bin 5; 20 px up = 3 deg up = 0.2 -> bin 4
    action = bindings.encode(events(tracker, key(pygame.K_w), key(pygame.K_LSHIFT), motion(40, -20), click()))
    assert action.tolist() == [
        5,
        4,
        1,
        0,
        0,
        0,
        0,
        1,
        0,
        1,
    ]  # yaw, pitch, forward, left, back, right, jump, attack, sprint, sneak
    # the motion was consumed: the next frame has a still camera, buttons still held
    assert bindings.encode(tracker.read()).tolist() == [FP.still_bin, FP.still_bin, 1, 0, 0, 0, 0, 1, 0, 1]
    tracker.handle(motion(-1000, 1000))  # clipped at max_deg
    assert bindings.encode(tracker.read())[:2].tolist() == [0, 0]


def test_first_person_invert_arrows_capture_and_focus_loss():
    bindings = bindings_for(FP)
    inverted = InputTracker(bindings, MouseSettings(sensitivity=0.15, invert=True))
    inverted.captured = True
    assert bindings.encode(events(inverted, motion(0, -20)))[1] == 2  # mouse up looks down when inverted
    loose = InputTracker(bindings)
    assert bindings.encode(events(loose, motion(500, 0)))[0] == FP.still_bin  # an uncaptured mouse does not turn
    assert bindings.encode(events(loose, key(pygame.K_RIGHT), key(pygame.K_SPACE)))[[0, 6]].tolist() == [5, 1]  # no mouse
    loose.release()  # focus lost: nothing stays held
    assert bindings.encode(loose.read()).tolist() == FP.neutral().tolist()


def test_first_person_button_without_a_key_is_a_clear_error_that_a_keys_file_fixes():
    spec = FirstPersonActionSpec(buttons=("forward", "use"))
    with pytest.raises(OchreError, match="no key bound to button.*use.*--keys"):
        bindings_for(spec)
    bindings = bindings_for(spec, {"e": "use"})
    assert bindings.encode(events(InputTracker(bindings), key(pygame.K_e)))[spec.index("use")] == 1


def test_game_keys_do_not_collide_with_app_keys():
    app = set(PLAY_KEYS) | set(WINDOW_KEYS) | set(RECORD_KEYS) | {pygame.K_ESCAPE, pygame.K_BACKSPACE}
    many = discrete_schema("gym:Many", 40, None)
    for spec in (PROCGEN_ACTIONS, PONG, FP, CARTPOLE, ARCADE, CAR, many):
        b = bindings_for(spec)
        assert not app & (set(b.keys) | set(b.look_keys)), spec.name


# -- key maps derived from a schema -----------------------------------------------------------------


def test_derived_discrete_keys_move_by_direction_fire_with_space_and_number_the_rest():
    keys = derived_keymap(ARCADE).keys
    assert keys[pygame.K_UP] == keys[pygame.K_w] == "up" and keys[pygame.K_RIGHT] == keys[pygame.K_d] == "right"
    assert keys[pygame.K_DOWN] == "down" and keys[pygame.K_a] == "left" and keys[pygame.K_SPACE] == "fire"
    assert keys[pygame.K_1] == "jump" and keys[pygame.K_2] == "crouch_down"
    bindings = bindings_for(ARCADE)
    label = lambda *ks: ARCADE.labels[int(bindings.encode(events(InputTracker(bindings), *(key(k) for k in ks))))]
    assert label() == "noop" and label(pygame.K_w, pygame.K_d) == "up+right" and label(pygame.K_2) == "crouch_down"
    assert label(pygame.K_s, pygame.K_a, pygame.K_SPACE) == "down+left+fire" and label(pygame.K_UP, pygame.K_DOWN) == "noop"


def test_actions_without_meanings_take_number_keys():
    bindings = bindings_for(CARTPOLE)
    assert bindings.keys == {pygame.K_1: "action_0", pygame.K_2: "action_1"}
    assert int(bindings.encode(events(InputTracker(bindings), key(pygame.K_2)))) == 1
    assert int(bindings.encode(events(InputTracker(bindings), key(pygame.K_1)))) == 0
    assert any("action_1: 2" in line for line in bindings.help_lines())
    many = bindings_for(DiscreteActionSpec("chess", tuple(f"m{i}" for i in range(40))))
    assert len(many.keys) == len(SPARE_KEYS) and "no key for: m26, m27" in many.help_lines()[-1]


def test_box_keys_push_each_axis_to_its_extremes():
    bindings = bindings_for(CAR)
    keys = bindings.keys
    assert keys[pygame.K_LEFT] == keys[pygame.K_a] == "axis_0=-1" and keys[pygame.K_d] == "axis_0=1"
    assert keys[pygame.K_DOWN] == "axis_2=-2" and keys[pygame.K_w] == "axis_2=2"  # the second two-sided axis
    assert keys[pygame.K_1] == "axis_1=1"  # a one-sided axis (a throttle) has one key, for its far end
    encode = lambda *ks: bindings.encode(events(InputTracker(bindings), *(key(k) for k in ks))).tolist()
    assert encode() == [2, 0, 1] and encode(pygame.K_a, pygame.K_1) == [0, 2, 1] and encode(pygame.K_UP) == [2, 0, 2]
    assert encode(pygame.K_LEFT, pygame.K_RIGHT) == [2, 0, 1]  # both ends of one axis cancel
    assert describe_action(CAR, np.array([0, 2, 1])) == "axis_0=-1 axis_1=1" and describe_action(CAR, CAR.neutral()) == "at rest"


def test_keys_file_rebinds_keys_by_label_meaning_or_axis_value(tmp_path):
    (tmp_path / "keys.yaml").write_text("space: JUMP\n'1': null\nleft: axis_0=-0.4\nq: UPRIGHT\n")
    overrides = load_key_file(tmp_path / "keys.yaml")
    arcade = bindings_for(ARCADE, {k: v for k, v in overrides.items() if k != "left"})
    assert arcade.keys[pygame.K_SPACE] == "jump" and pygame.K_1 not in arcade.keys and arcade.keys[pygame.K_q] == "up+right"
    assert ARCADE.labels[int(arcade.encode(events(InputTracker(arcade), key(pygame.K_q))))] == "up+right"
    car = bindings_for(CAR, {"left": "axis_0=-0.4", "e": "axis_1=1"})
    assert car.keys[pygame.K_LEFT] == "axis_0=-0.5" and car.keys[pygame.K_a] == "axis_0=-1"  # snapped to the nearest bin


@pytest.mark.parametrize(
    ("text", "spec", "message"),
    [
        ("spaec: FIRE\n", ARCADE, "unknown key 'spaec'"),
        ("space: SHOOT\n", ARCADE, "'SHOOT' is no action of the 'gym:Arcade' schema"),
        ("left: steer=-1\n", CAR, "must be control=value for the 'gym:Car' schema (controls: axis_0"),
        ("- space\n", ARCADE, "must map key names to actions"),
    ],
)
def test_bad_keys_file_is_one_line_naming_the_file(tmp_path, text, spec, message):
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(OchreError) as err:
        bindings_for(spec, load_key_file(path), str(path))
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


# -- the window loop under SDL's dummy driver ------------------------------------------------------


def test_window_turns_posted_key_events_into_actions(tiny_world, coinrun_seed):
    session = session_of(tiny_world["world"], coinrun_seed)
    controller = PlayController(session, bindings_for(session.wm.action_spec))
    window = Window(controller, SMALL)
    for e in (key(pygame.K_n), key(pygame.K_d), key(pygame.K_w)):
        pygame.event.post(e)
    window.run(max_frames=4)
    assert session.seed_index == 1 and len(controller.timings) == 4
    assert [PROCGEN_ACTIONS.labels[int(a)] for a in session.actions] == ["right+up"] * 4
    assert controller.shown.frame.shape == (64, 64, 3) and controller.shown.frame.dtype == np.uint8
    assert all(lat.frames <= 2 for lat in controller.latencies)  # shown on the frame its input was read, or soon after


def test_first_person_window_mouse_focus_loss_and_resume(fp_world):
    world, seed = fp_world
    session = session_of(world, seed)
    controller = PlayController(session, bindings_for(FP))
    window = Window(controller, SMALL)
    assert window.tracker.captured  # first-person worlds grab the mouse at once
    for e in (key(pygame.K_w), motion(40, 0), click()):
        pygame.event.post(e)
    window.run(max_frames=2)
    assert session.actions[0].tolist() == [5, FP.still_bin, 1, 0, 0, 0, 0, 1, 0, 0]
    assert session.actions[1][0] == FP.still_bin  # the motion counted once

    window = Window(PlayController(session_of(world, seed), bindings_for(FP)), SMALL)
    pygame.event.post(key(pygame.K_w))
    pygame.event.post(pygame.event.Event(pygame.WINDOWFOCUSLOST, window=None))
    window.run(max_frames=3)
    assert window.focus_lost and not window.tracker.captured and not window.tracker.keys
    assert window.controller.session.steps == 0  # paused while unfocused

    window = Window(PlayController(session_of(world, seed), bindings_for(FP)), SMALL)
    pygame.event.post(pygame.event.Event(pygame.WINDOWFOCUSLOST, window=None))
    window.handle_events()
    pygame.event.post(click())
    window.handle_events()
    assert not window.focus_lost and window.tracker.captured and not window.tracker.buttons  # the click only resumed
    window.controller.close()
    pygame.display.quit()


def test_escape_releases_the_mouse_then_quits(fp_world):
    world, seed = fp_world
    window = Window(PlayController(session_of(world, seed), bindings_for(FP)), SMALL)
    pygame.event.post(key(pygame.K_ESCAPE))
    window.handle_events()
    assert window.running and not window.tracker.captured
    pygame.event.post(key(pygame.K_ESCAPE))
    window.run(max_frames=50)
    assert not window.running and window.frame <= 1


def test_hud_help_and_controls_change_sampling(tiny_world, coinrun_seed, tmp_path):
    session = session_of(tiny_world["world"], coinrun_seed)
    controller = PlayController(session, bindings_for(session.wm.action_spec))
    window = Window(controller, WindowSettings(scale=2, screenshots=tmp_path / "shots"))
    for k in (pygame.K_F1, pygame.K_g, pygame.K_EQUALS, pygame.K_F12):
        pygame.event.post(key(k))
    window.run(max_frames=3)
    assert window.help and session.wm.sampling == "sample" and session.wm.temperature == pytest.approx(1.25)
    assert "sample T=1.25" in controller.hud_lines(15.0)[2]
    assert len(list((tmp_path / "shots").glob("*.png"))) == 1
    assert any("R: reset" in line for line in controller.help_lines())


# -- threaded inference: a late frame never freezes input ---------------------------------------------


def test_slow_model_does_not_block_the_loop(tiny_world, coinrun_seed):
    session = session_of(tiny_world["world"], coinrun_seed)
    step = session.step
    session.step = lambda action: (time.sleep(0.15), step(action))[1]
    controller = PlayController(session, bindings_for(session.wm.action_spec))
    controller.start()
    reads = []
    t0 = time.perf_counter()
    for frame in range(4):
        controller.tick(frame, lambda: reads.append(1) or np.asarray(7), deadline=time.perf_counter() + 0.01)
    assert time.perf_counter() - t0 < 0.12  # each tick gave up at its deadline
    assert len(reads) == 1  # no new input was queued behind the busy worker
    controller.worker.wait()
    controller.tick(4, lambda: np.asarray(7), deadline=time.perf_counter())
    assert controller.latencies[0].frames == 4  # read on frame 0, shown on frame 4
    controller.close()


def test_worker_error_reaches_the_main_thread(tiny_world, coinrun_seed):
    session = session_of(tiny_world["world"], coinrun_seed)
    controller = PlayController(session)
    controller.start()
    with pytest.raises(OchreError, match="action id 99"):
        controller.tick(0, lambda: np.asarray(99))
    controller.close()


# -- rewind ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", ["greedy", "sample"])
def test_rewind_restores_an_identical_state(fp_world, sampling):
    world, seed = fp_world
    session = session_of(world, seed, sampling=sampling)
    session.reset()
    rng = np.random.default_rng(1)
    for _ in range(3):
        session.step(FP.sample(rng))
    before = session.state.clone()
    action = FP.sample(rng)
    session.step(action)
    after = session.state.tokens.clone()
    for _ in range(4):
        session.step(FP.sample(rng))
    assert session.rewind(5) == 5 and session.steps == 3
    assert torch.equal(session.state.tokens, before.tokens)
    assert all(torch.equal(a, b) for a, b in zip(session.state.dynamics.hidden, before.dynamics.hidden, strict=True))
    assert torch.equal(session.state.dynamics.memory, before.dynamics.memory)
    session.step(action)
    assert torch.equal(session.state.tokens, after)


def test_rewind_stops_at_the_start_of_its_buffer(tiny_world, coinrun_seed):
    session = session_of(tiny_world["world"], coinrun_seed, rewind_seconds=0.2)  # 3 frames at 15 fps
    session.reset()
    for _ in range(5):
        session.step(np.asarray(7))
    assert session.rewind(10) == 3 and session.steps == 2


# -- headless play, recordings and their replay through inference.py --------------------------------


def test_headless_play_writes_outputs_that_replay_in_inference(tiny_world, coinrun_seed, tmp_path):
    import inference
    from live.play import main

    out = tmp_path / "play"
    main(["--checkpoint", str(tiny_world["world"]), "--seed-frames", coinrun_seed, "--headless", "--frames", "6",
          "--out", str(out), "--device", "cpu"])  # fmt: skip
    rows = list(csv.DictReader((out / "timings.csv").open()))
    assert len(rows) == 6 and list(rows[0]) == ["frame", "model_ms", "decode_ms", "total_ms"]
    assert (out / "play.mp4").stat().st_size > 0 and np.load(out / "actions.npy").shape == (6,)
    inference.main(["--checkpoint", str(tiny_world["world"]), "--seed-frames", str(out / "seed.npz"),
                    "--actions", str(out / "actions.npy"), "--out", str(tmp_path / "replay"), "--device", "cpu"])  # fmt: skip
    replay = np.load(tmp_path / "replay" / "frames.npz")["frames"]
    wm = WorldModel.load(tiny_world["world"], "cpu")
    seed = np.load(out / "seed.npz")
    state = wm.reset(seed["frames"], seed["actions"])
    for i, action in enumerate(np.load(out / "actions.npy")):
        frame, state = wm.step(state, action)
        np.testing.assert_array_equal(frame, replay[i])


def test_recorded_first_person_session_replays_exactly(fp_world, tmp_path):
    import inference

    world, seed = fp_world
    session = session_of(world, seed)
    controller = PlayController(session, bindings_for(FP), checkpoint=str(world), record_root=tmp_path / "rec")
    controller.start()
    controller.command("record")
    rng = np.random.default_rng(3)
    for frame in range(5):
        controller.tick(frame, lambda: FP.sample(rng))
    controller.tick(5, lambda: FP.sample(rng), rewind=True)  # the log follows rewinds
    shown = np.stack(list(session.frames)[1:])
    controller.command("record")  # stop: saves
    controller.close()
    (rec,) = (tmp_path / "rec").iterdir()
    info = json.loads((rec / "session.json").read_text())
    assert info["steps"] == 4 and "inference.py" in info["replay"] and (rec / "video.mp4").is_file()
    assert np.load(rec / "actions.npy").shape == (4, 10)
    inference.main(["--checkpoint", str(world), "--seed-frames", str(rec / "seed.npz"), "--actions", str(rec / "actions.npy"),
                    "--out", str(tmp_path / "replay"), "--device", "cpu"])  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "replay" / "frames.npz")["frames"], shown)


def test_headless_script_policy_plays_the_script(fp_world, tmp_path):
    from live.play import main

    world, seed = fp_world
    script = FP.sample(np.random.default_rng(0), 5)
    (tmp_path / "moves.json").write_text(json.dumps(script.tolist()))
    main(["--checkpoint", str(world), "--seed-frames", str(seed), "--headless", "--frames", "50",
          "--policy", "script", str(tmp_path / "moves.json"), "--out", str(tmp_path / "out"), "--device", "cpu"])  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "actions.npy"), script)


# -- ghost mode ---------------------------------------------------------------------------------


def test_ghost_mode_runs_the_real_game_beside_the_world(tiny_world, coinrun_seed, tmp_path):
    from live.play import main

    out = tmp_path / "ghost"
    main(["--checkpoint", str(tiny_world["world"]), "--seed-frames", coinrun_seed, "--ghost", "--headless",
          "--frames", "5", "--out", str(out), "--device", "cpu"])  # fmt: skip
    rows = list(csv.DictReader((out / "ghost.csv").open()))
    assert len(rows) == 5 and all(0 < float(r["psnr"]) <= 100 for r in rows)
    seed = np.load(out / "seed.npz")  # the model was seeded with real frames
    assert seed["frames"].shape == (4, 64, 64, 3) and seed["actions"].tolist() == [4, 4, 4]


def test_first_person_ghost_needs_no_seed_file(fp_world, tmp_path):
    pytest.importorskip("vizdoom")
    from live.play import main

    out = tmp_path / "doom"
    main(["--checkpoint", str(fp_world[0]), "--ghost", "--env", "frame_size=[32,32]", "--headless", "--frames", "3",
          "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert np.load(out / "seed.npz")["frames"].shape == (4, 32, 32, 3) and np.load(out / "actions.npy").shape == (3, 10)


def test_ghost_resync_seeds_the_world_with_the_latest_real_frames(tiny_world, coinrun_seed):
    from live.ghost import Ghost

    session = session_of(tiny_world["world"], coinrun_seed)
    ghost = Ghost.open("coinrun", {}, session.wm, context=4)
    controller = PlayController(session, bindings_for(PROCGEN_ACTIONS), ghost)
    controller.start()
    for frame in range(3):
        controller.tick(frame, lambda: np.asarray(7))
    controller.command("resync")
    controller.worker.wait()
    frames, actions = session.seed_clip
    np.testing.assert_array_equal(frames[-1], ghost.frame)
    assert actions.tolist() == [7, 7, 7] and session.steps == 0
    assert [name for name, _ in controller.panels()] == ["real game", "learned world"]
    controller.close()


def test_ghost_refuses_a_game_with_another_schema(fp_world):
    from live.ghost import Ghost

    wm = WorldModel.load(fp_world[0], "cpu")
    with pytest.raises(OchreError, match="action schema"):
        Ghost.open("coinrun", {}, wm, context=4)
    with pytest.raises(OchreError, match="not one"):
        Ghost.open("chess", {}, wm, context=4)


# -- human recording ------------------------------------------------------------------------------


def test_record_writes_a_dataset_the_tools_read(tmp_path, capsys):
    from live.record import main
    from ochre.data.store import EpisodeDataset
    from preprocess.inspect import main as inspect

    out = tmp_path / "human"
    main(["--world", "coinrun", "--out", str(out), "--headless", "--frames", "12"])
    main(["--world", "coinrun", "--out", str(out), "--headless", "--frames", "8", "--seed", "5"])  # adds to it
    data = EpisodeDataset(out, expect_kind="frames")
    assert data.num_frames == 20 and len(data.episodes()) >= 2
    assert data.manifest["fps"] == 15 and data.manifest["source"]["recorder"].startswith("live.record")
    inspect([str(out), "--out", str(tmp_path / "inspect"), "--samples", "2"])
    assert (tmp_path / "inspect" / "stats.json").is_file()
    with pytest.raises(SystemExit):
        main(["--world", "bigfish", "--out", str(out), "--headless", "--frames", "2"])
    assert "holds a dataset of 'coinrun'" in capsys.readouterr().err


def test_record_window_records_what_the_keys_press(tmp_path):
    from live.record import RecordController, open_writer
    from ochre.data.store import EpisodeDataset
    from ochre.envs.worlds import make_env, world_settings

    settings = world_settings("coinrun", {})
    env = make_env("coinrun", settings, 0)
    controller = RecordController(
        env, open_writer(tmp_path / "d", "coinrun", env, settings), bindings_for(env.action_spec), "coinrun"
    )
    window = Window(controller, SMALL)
    pygame.event.post(key(pygame.K_RIGHT))
    window.run(max_frames=5)  # closing the window saves the episode
    _, actions = EpisodeDataset(tmp_path / "d").rows(0, 0, 5)
    assert [PROCGEN_ACTIONS.labels[a] for a in actions] == ["right"] * 5


def test_record_window_plays_a_gym_env_with_its_derived_keys(tmp_path):
    from live.record import RecordController, open_writer
    from ochre.data.store import EpisodeDataset
    from ochre.envs.worlds import make_env, world_settings

    world = "gym:MountainCar-v0"  # Discrete(3) without action meanings: keys 1, 2, 3
    settings = world_settings(world, {})
    env = make_env(world, settings, 0)
    bindings = bindings_for(env.action_spec)
    controller = RecordController(env, open_writer(tmp_path / "d", world, env, settings), bindings, world)
    window = Window(controller, SMALL)
    pygame.event.post(key(pygame.K_3))
    window.run(max_frames=5)
    _, actions = EpisodeDataset(tmp_path / "d").rows(0, 0, 5)
    assert actions.tolist() == [2] * 5 and any("action_2: 3" in line for line in controller.help_lines())


# -- benchmark ------------------------------------------------------------------------------------


def test_bench_writes_figures_and_a_markdown_row(tiny_world, coinrun_seed, tmp_path, capsys):
    from live.bench import main

    main(["--checkpoint", str(tiny_world["world"]), "--seed-frames", coinrun_seed, "--frames", "20", "--fps", "60",
          "--warmup", "2", "--device", "cpu", "--out", str(tmp_path / "bench.json")])  # fmt: skip
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["steps"] > 0 and result["step_decode_ms"]["p50"] > 0 and result["latency_frames"]["max"] >= 0
    assert "| CPU," in capsys.readouterr().out


# -- bad input: one clear line, never a traceback ------------------------------------------------


def test_bad_input_is_one_clear_line(tmp_path, fp_world, capsys, monkeypatch):
    from live.play import main as play
    from live.record import main as record

    world, seed = fp_world
    np.savez(tmp_path / "big.npz", frames=np.zeros((4, 64, 64, 3), np.uint8))
    cases = [
        (
            play,
            ["--checkpoint", str(world), "--device", "cpu", "--keys", str(tmp_path / "no.yaml")],
            "no.yaml: keys file not found",
        ),
        (
            play,
            ["--checkpoint", str(world), "--seed-frames", str(tmp_path / "big.npz"), "--headless"],
            "64x64 but this world plays 32x32",
        ),
        (play, ["--checkpoint", str(world), "--headless", "--policy", "scripted"], "--policy must be"),
        (
            play,
            ["--checkpoint", str(world), "--seed-frames", str(seed), "--headless", "--ghost", "--world", "coinrun"],
            "--ghost: the real game 'coinrun' has action schema",
        ),
    ]
    for main, args, message in cases:
        with pytest.raises(SystemExit) as exit_:
            main(args)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and err.count("\n") == 1, (args, err)
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SystemExit):
        record(["--world", "coinrun", "--out", str(tmp_path / "x")])
    assert "no display found" in capsys.readouterr().err and not (tmp_path / "x").exists()


# -- a real window --------------------------------------------------------------------------------

XVFB_SCRIPT = """
import pygame
from live.app import load_world, open_session
from live.bindings import bindings_for
from live.controller import PlayController
from live.window import Window, WindowSettings

session = open_session(load_world({world!r}, "cpu"), "assets/coinrun/seed.npz")
window = Window(PlayController(session, bindings_for(session.wm.action_spec)), WindowSettings(scale=2, fps=60))
assert pygame.display.get_driver() == "x11", pygame.display.get_driver()
quit_display = pygame.display.quit
pygame.display.quit = lambda: None  # keep the display open to read the pixels back
window.run(max_frames=3)
pixels = pygame.surfarray.array3d(pygame.display.get_surface())
print("frames", len(window.controller.timings), "std", float(pixels.std()))
quit_display()
"""


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed (apt-get install xvfb)")
def test_real_window_under_xvfb(tiny_world):
    """A real X11 window (not SDL's dummy driver) opens and shows a non-blank frame."""
    display = ":87"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "320x240x24", "-nolisten", "tcp"], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"} | {"DISPLAY": display, "OMP_NUM_THREADS": "1"}
        script = XVFB_SCRIPT.format(world=str(tiny_world["world"]))
        proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        words = proc.stdout.split()
        assert words[words.index("frames") + 1] == "3"
        assert float(words[words.index("std") + 1]) > 1.0  # an image, not a flat colour
    finally:
        xvfb.terminate()
        xvfb.wait()
