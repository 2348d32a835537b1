"""ViZDoom as an Ochre world: a first-person camera (yaw/pitch deltas) plus held buttons, headless.

One env step is `frame_skip` game tics (Doom runs at 35 tics/s) with the same input held.
Frames are the RGB screen at `resolution`, resized to `frame_size`; no HUD, no crosshair, no sound.

Camera facts, measured with the ANGLE and PITCH game variables and with the image shift
on freedoom2 map01 (ViZDoom 1.3):

- A delta button is applied on *every* tic of `make_action(action, tics)`, so holding
  TURN_LEFT_RIGHT_DELTA = d for 4 tics turns by 4*d. One env step therefore sends
  degrees / frame_skip per tic, and the step rotates by the requested degrees
  (within the 360/65536 degree quantisation of a tic's turn).
- TURN_LEFT_RIGHT_DELTA > 0 turns right: ANGLE (counter-clockwise, degrees) decreases and
  the scene slides left in the image. Our yaw > 0 means right, so it is passed unchanged.
- LOOK_UP_DOWN_DELTA > 0 looks up: PITCH (ZDoom's, negative = up) decreases and the scene
  slides down in the image. Our pitch > 0 means up, so it is passed unchanged.
  The engine clamps the view between 32 degrees up and 56 degrees down.
- The engine ignores turning and moving for the first ~8 tics of an episode (seen on the
  Freedoom maps and most scenarios), so episodes start at tic `START_TIC`, where every
  recorded action takes effect. `episode_timeout` counts tics after that start.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ochre.actions import FirstPersonActionSpec
from ochre.errors import OchreError
from ochre.frames import resize

DOOM_TICRATE = 35
START_TIC = 10
DEFAULT_ACTION_SPEC = FirstPersonActionSpec()
IWADS = ("freedoom1", "freedoom2")
# ViZDoom button for each first-person button name of an action schema.
BUTTONS = {
    "forward": "MOVE_FORWARD",
    "left": "MOVE_LEFT",
    "back": "MOVE_BACKWARD",
    "right": "MOVE_RIGHT",
    "jump": "JUMP",
    "attack": "ATTACK",
    "sprint": "SPEED",
    "sneak": "CROUCH",
}


def _vizdoom() -> Any:
    """The `vizdoom` module, or a one-line error saying how to install it."""
    try:
        import vizdoom
    except ImportError:
        raise OchreError("the Doom world needs ViZDoom: pip install vizdoom") from None
    return vizdoom


def _package_dir() -> Path:
    return Path(_vizdoom().__file__).parent


def available_wads() -> tuple[str, ...]:
    """WAD names shipped with the installed ViZDoom: the Freedoom IWADs, then the scenarios."""
    scenarios = sorted(p.stem for p in (_package_dir() / "scenarios").glob("*.wad"))
    return IWADS + tuple(scenarios)


def wad_path(name: str) -> Path:
    """File of a shipped WAD (see `available_wads`)."""
    return _package_dir() / (f"{name}.wad" if name in IWADS else f"scenarios/{name}.wad")


@cache
def wad_maps(path: Path) -> tuple[str, ...]:
    """Map names (lower case) in a WAD, read from its lump directory.

    A map is a marker lump followed by THINGS (Doom format) or TEXTMAP (UDMF). Checked
    up front because ViZDoom hangs in `init()` when asked for a map the WAD lacks.
    """
    with open(path, "rb") as f:
        _, count, offset = struct.unpack("<4sii", f.read(12))
        f.seek(offset)
        directory = f.read(16 * count)
    names = [directory[i + 8 : i + 16].rstrip(b"\0").decode("ascii", "replace").lower() for i in range(0, 16 * count, 16)]
    return tuple(name for name, after in zip(names, names[1:], strict=False) if after in ("things", "textmap"))


def _check_frame_size(frame_size: tuple[int, int]) -> None:
    if len(frame_size) != 2 or any(int(s) != s or s < 1 for s in frame_size):
        raise OchreError(f"frame_size must be two positive integers (height, width), got {frame_size}")


@dataclass
class DoomSettings:
    """Which map to play and how frames and steps are made from it."""

    wad: str = "freedoom2"
    map: str = "map01"
    frame_size: tuple[int, int] = (64, 64)  # (h, w) after resizing
    frame_skip: int = 4  # tics per env step
    episode_timeout: int = 2100  # tics; 0 = none
    render_weapon: bool = True
    resolution: str = "RES_160X120"  # ViZDoom render resolution, before resizing

    def check(self) -> None:
        """Raise `OchreError` naming the first bad setting and its valid choices."""
        wads = available_wads()
        if self.wad not in wads:
            raise OchreError(f"unknown Doom wad '{self.wad}' (shipped with ViZDoom: {', '.join(wads)})")
        maps = wad_maps(wad_path(self.wad))
        if self.map.lower() not in maps:
            raise OchreError(f"Doom map '{self.map}' is not in wad '{self.wad}' (its maps: {', '.join(maps)})")
        _check_frame_size(self.frame_size)
        if self.frame_skip < 1:
            raise OchreError(f"Doom frame_skip must be at least 1 tic, got {self.frame_skip}")
        if self.episode_timeout < 0:
            raise OchreError(f"Doom episode_timeout must be 0 (none) or a number of tics, got {self.episode_timeout}")
        resolutions = tuple(_vizdoom().ScreenResolution.__members__)
        if self.resolution not in resolutions:
            raise OchreError(f"unknown Doom resolution '{self.resolution}' (choose from: {', '.join(resolutions)})")


def _button_list(spec: FirstPersonActionSpec) -> list[Any]:
    """ViZDoom buttons in the column order of the spec's encoded actions."""
    vzd = _vizdoom()
    unknown = [b for b in spec.buttons if b not in BUTTONS]
    if unknown:
        raise OchreError(f"action schema '{spec.name}': no Doom button for {unknown} (known: {', '.join(BUTTONS)})")
    names = {"yaw": "TURN_LEFT_RIGHT_DELTA", "pitch": "LOOK_UP_DOWN_DELTA", **BUTTONS}
    return [getattr(vzd.Button, names[c]) for c in spec.control_names]


def _make_game(settings: DoomSettings, buttons: list[Any]) -> Any:
    """A headless, synchronous ViZDoom game, initialised (the engine process is running)."""
    vzd = _vizdoom()
    game = vzd.DoomGame()
    if settings.wad in IWADS:
        game.set_doom_game_path(str(wad_path(settings.wad)))
    else:
        game.set_doom_game_path(str(wad_path("freedoom2")))
        game.set_doom_scenario_path(str(wad_path(settings.wad)))
    game.set_doom_map(settings.map.lower())
    game.set_mode(vzd.Mode.PLAYER)
    game.set_screen_resolution(getattr(vzd.ScreenResolution, settings.resolution))
    game.set_screen_format(vzd.ScreenFormat.RGB24)
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_render_hud(False)
    game.set_render_minimal_hud(False)
    game.set_render_crosshair(False)
    game.set_render_messages(False)
    game.set_render_weapon(settings.render_weapon)
    game.add_game_args("+freelook 1")
    game.set_available_buttons(buttons)
    game.set_available_game_variables([])
    game.set_episode_start_time(START_TIC)
    game.set_episode_timeout(settings.episode_timeout)
    game.init()
    return game


class DoomEnv:
    """One ViZDoom game behind `reset(seed)` / `step(encoded first-person action)`."""

    def __init__(self, settings: DoomSettings, spec: FirstPersonActionSpec = DEFAULT_ACTION_SPEC):
        settings.check()
        self.settings = settings
        self.action_spec = spec
        self.fps = DOOM_TICRATE / settings.frame_skip
        self.frame_shape = (*settings.frame_size, 3)
        self._yaw, self._pitch = spec.index("yaw"), spec.index("pitch")
        # Degrees per tic for each camera bin, from the spec's own bin -> degrees mapping.
        bins = spec.neutral(spec.camera_bins)
        bins[:, self._yaw] = np.arange(spec.camera_bins)
        self._tic_degrees = [float(d) for d in spec.degrees(bins)[:, 0] / settings.frame_skip]
        self._factors = np.array(spec.factors)
        self._frame = np.zeros(self.frame_shape, dtype=np.uint8)
        variables = _vizdoom().GameVariable
        self._angle_vars = (variables.ANGLE, variables.PITCH)
        self._game = _make_game(settings, _button_list(spec))

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode; the same seed and the same actions replay the same frames."""
        if seed is not None:
            self._game.set_seed(int(seed))
        self._game.new_episode()
        return self._grab()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool]:
        """Hold one encoded action for `frame_skip` tics -> (frame, reward, done).

        done is true once the episode is over (timeout, death or exit); the frame is then
        the last one rendered, since ViZDoom has no state after the end.
        """
        a = np.asarray(action)
        if a.dtype.kind not in "iu" or a.shape != self.action_spec.shape or not ((a >= 0) & (a < self._factors)).all():
            a = self._checked(action)  # the slow path: convert float ids, or raise naming the bad control
        command = a.tolist()  # one value per ViZDoom button, in the same order
        command[self._yaw] = self._tic_degrees[command[self._yaw]]
        command[self._pitch] = self._tic_degrees[command[self._pitch]]
        reward = self._game.make_action(command, self.settings.frame_skip)
        return self._grab(), float(reward), self._game.is_episode_finished()

    def _checked(self, action: Any) -> np.ndarray:
        a = self.action_spec.validate(action, "Doom action")
        if a.shape != self.action_spec.shape:
            raise OchreError(f"Doom action: step takes one action of shape {self.action_spec.shape}, got shape {a.shape}")
        return a

    def camera_angles(self) -> tuple[float, float]:
        """(yaw, pitch) of the view in degrees, in the action convention.

        yaw is the clockwise heading in [0, 360), so turning right increases it;
        pitch > 0 is looking up.
        """
        angle, pitch = (self._game.get_game_variable(v) for v in self._angle_vars)
        return (-angle) % 360.0, -pitch

    def close(self) -> None:
        self._game.close()

    def _grab(self) -> np.ndarray:
        """The current screen resized, or the last frame when the episode has ended."""
        state = self._game.get_state()
        if state is not None:
            self._frame = resize(state.screen_buffer, self.settings.frame_size)
        return self._frame
