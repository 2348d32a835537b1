"""The app's input mapping and its window loop under SDL's dummy video driver."""

import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np
import pygame
import pytest

from live.bindings import PROCGEN_KEYS, PlayerInput, procgen_action, read_input
from ochre.actions import PROCGEN_ACTIONS
from tests.conftest import ROOT


def pressed(*keys):
    state = defaultdict(bool)
    for k in keys:
        state[k] = True
    return state


@pytest.mark.parametrize(
    ("keys", "label"),
    [
        ((), "noop"),
        ((pygame.K_LEFT,), "left"),
        ((pygame.K_a,), "left"),
        ((pygame.K_RIGHT,), "right"),
        ((pygame.K_d, pygame.K_w), "right+up"),
        ((pygame.K_RIGHT, pygame.K_SPACE), "right+up"),
        ((pygame.K_LEFT, pygame.K_DOWN), "left+down"),
        ((pygame.K_UP,), "up"),
        ((pygame.K_s,), "down"),
        ((pygame.K_LEFT, pygame.K_RIGHT), "noop"),
    ],
)
def test_procgen_keys_encode_to_the_right_action(keys, label):
    action = procgen_action(read_input(pressed(*keys), PROCGEN_KEYS))
    assert PROCGEN_ACTIONS.labels[action] == label


def test_every_direction_combo_is_reachable():
    combos = {
        procgen_action(PlayerInput(frozenset(h + v))) for h in ((), ("left",), ("right",)) for v in ((), ("up",), ("down",))
    }
    assert combos == set(range(9))


def test_window_loop_runs_and_quits(tiny_world, monkeypatch):
    from live.app import Session, Window
    from ochre import WorldModel
    from ochre.data.store import EpisodeDataset
    from ochre.data.windows import WindowSampler

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    wm = WorldModel.load(tiny_world["world"], device="cpu")
    batch = WindowSampler(EpisodeDataset(tiny_world["frames"]), 4, split="all").fixed(2)
    session = Session(wm, batch.rows.numpy(), batch.actions.numpy()[:, :3])
    window = Window(session, scale=2)
    monkeypatch.setattr(window, "current_input", lambda: PlayerInput(frozenset({"right"})))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_n))
    window.run(max_frames=3)
    assert session.seed_index == 1 and session.last_action == PROCGEN_ACTIONS.labels.index("right")
    assert len(session.timings) == 3 and session.frame.shape == (64, 64, 3)
    assert np.asarray(session.frame).dtype == np.uint8


XVFB_SCRIPT = """
import pygame
from live.app import Session, Window
from ochre import WorldModel
from ochre.inputs import load_seed

wm = WorldModel.load({world!r}, device="cpu")
frames, actions = load_seed("assets/coinrun/seed.npz")
window = Window(Session(wm, frames, actions), scale=2)
assert pygame.display.get_driver() == "x11", pygame.display.get_driver()
window.pg.quit = lambda: None  # keep the display open to read the pixels back
window.run(max_frames=3)
pixels = pygame.surfarray.array3d(pygame.display.get_surface())
print("frames", len(window.session.timings), "std", float(pixels.std()))
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
