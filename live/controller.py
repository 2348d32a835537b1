"""Playing the learned world: what the window (or the headless runner) asks for each frame.

    ctl = PlayController(session, bindings, checkpoint="checkpoints/coinrun.pt")
    ctl.start()
    ctl.tick(frame, next_action, rewind=False, deadline=clock.deadline())   # submit input, wait at most to the deadline
    ctl.panels()                                                            # [(caption, frame)] to draw

Model work runs as jobs on a `Worker` thread; this class only submits them and
picks up the newest result. A new action is read only when the previous step has
finished, so when the model runs late the input keeps gathering (mouse motion adds
up) instead of queueing stale actions, and the window keeps handling events meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pygame

from live.bindings import Bindings, describe_action
from live.ghost import Ghost
from live.recording import new_path, write_recording
from live.session import Session, StepTiming
from live.timing import FrameTiming, Latency
from live.worker import Worker
from ochre.frames import to_unit
from ochre.metrics import psnr

TEMPERATURE_FACTOR = 1.25
TEMPERATURE_RANGE = (0.05, 5.0)

PLAY_KEYS: dict[int, str] = {
    pygame.K_r: "reset",
    pygame.K_n: "next_seed",
    pygame.K_EQUALS: "hotter",
    pygame.K_KP_PLUS: "hotter",
    pygame.K_MINUS: "colder",
    pygame.K_KP_MINUS: "colder",
    pygame.K_g: "greedy",
    pygame.K_F5: "resync",
    pygame.K_F9: "record",
}
PLAY_HELP = [
    "R: reset to the seed frames    N: next seed",
    "+ / -: temperature up / down    G: greedy on / off",
    "hold Backspace: rewind",
    "F9: record on / off (from the last reset; replayable with inference.py)",
]
GHOST_HELP = ["F5: re-sync the learned world to the real game"]


@dataclass(frozen=True)
class Shown:
    """A finished job's result: what to draw and how it was made."""

    frame: np.ndarray  # the learned world's frame (H, W, 3) uint8
    real: np.ndarray | None  # the real game's frame, in ghost mode
    steps: int  # steps since the last reset
    action: np.ndarray | None  # the action that produced `frame` (None after a reset or rewind)
    timing: StepTiming | None
    psnr: float | None  # real vs learned frame, in ghost mode


class PlayController:
    def __init__(
        self,
        session: Session,
        bindings: Bindings | None = None,
        ghost: Ghost | None = None,
        checkpoint: str = "C",
        record_root: Path = Path("runs/live"),
    ):
        self.session = session
        self.bindings = bindings  # None: no keyboard (headless play)
        self.ghost = ghost
        self.checkpoint = checkpoint
        self.record_root = record_root
        self.spec = session.wm.action_spec
        self.fps = session.wm.fps
        self.frame_shape = session.wm.frame_shape
        self.title = f"Ochre — {session.wm.info.get('world', 'world')}" + (" — ghost mode" if ghost else "")
        self.panel_names = ("real game", "learned world") if ghost else ("learned world",)
        self.commands = PLAY_KEYS
        self.finished = False
        self.greedy = session.wm.sampling == "greedy"
        self.temperature = session.wm.temperature
        self.recording = False
        self.messages: list[str] = []  # appended by jobs on the worker thread, shown as toasts
        self.timings: list[FrameTiming] = []
        self.latencies: list[Latency] = []
        self.psnrs: list[float] = []
        self.shown = Shown(session.frame, None, 0, None, None, None)
        self.worker = Worker()
        self._fresh: StepTiming | None = None  # timing of a step first picked up this frame
        self._read_at: dict[int, float] = {}  # display frame -> when its input was read
        self._seen = 0
        self._step_ticket: int | None = None  # the last step or rewind submitted

    # -- main thread --------------------------------------------------------
    def start(self) -> None:
        self.worker.submit(lambda: self._restart("reset"))
        self.worker.wait()
        self._pick(0)

    def tick(
        self, frame: int, next_action: Callable[[], np.ndarray], rewind: bool = False, deadline: float | None = None
    ) -> None:
        """Submit this frame's input unless a step is still running, then wait until `deadline` (None: until done)."""
        self._fresh = None
        if self._step_ticket is None or self.worker.finished(self._step_ticket):
            if rewind:
                self._step_ticket = self.worker.submit(self._rewind, frame)
            else:
                action = next_action()
                self._read_at[frame] = time.perf_counter()
                self._step_ticket = self.worker.submit(lambda: self._step(action), frame)
        self.worker.wait(None if deadline is None else max(deadline - time.perf_counter(), 0.0))
        self._pick(frame)

    def command(self, name: str) -> None:
        """A control key was pressed (see PLAY_KEYS)."""
        if name in ("reset", "next_seed"):
            if self.recording:
                self.worker.submit(self._save)
            self.worker.submit(lambda: self._restart(name))
        elif name in ("hotter", "colder", "greedy"):
            self._change_sampling(name)
        elif name == "resync":
            if self.ghost is None:
                self.messages.append("re-sync needs ghost mode (--ghost)")
            else:
                self.worker.submit(self._resync)
        elif name == "record":
            self.recording = not self.recording
            if self.recording:
                self.messages.append("recording (from the last reset) - F9 again to save")
            else:
                self.worker.submit(self._save)

    def record_frame(self, frame: int, total_ms: float) -> None:
        """One row of timings.csv for a displayed frame."""
        model, decode = (self._fresh.model_ms, self._fresh.decode_ms) if self._fresh else (0.0, 0.0)
        self.timings.append(FrameTiming(frame, model, decode, total_ms))

    def panels(self) -> list[tuple[str, np.ndarray]]:
        if self.ghost is None:
            return [("learned world", self.shown.frame)]
        real = self.shown.real if self.shown.real is not None else self.shown.frame
        return [("real game", real), ("learned world", self.shown.frame)]

    def hud_lines(self, fps: float) -> list[str]:
        s = self.shown
        ms = s.timing.model_ms + s.timing.decode_ms if s.timing else 0.0
        action = "-" if s.action is None else describe_action(self.spec, s.action)
        sampling = "greedy" if self.greedy else f"sample T={self.temperature:.2f}"
        wm = self.session.wm
        if wm.flow_steps is not None:  # a flow world: its sampler's Euler steps and guidance
            sampling += f"   flow {wm.flow_steps} steps, guidance {wm.guidance:g}"
        lines = [f"{fps:4.1f} fps   model {ms:4.1f} ms/frame   step {s.steps}", f"action {action}", sampling]
        if s.psnr is not None:
            lines.append(f"real vs learned {s.psnr:4.1f} dB PSNR (F5 re-sync)")
        if self.recording:
            lines.append("REC")
        return lines

    def help_lines(self) -> list[str]:
        keys = self.bindings.help_lines() if self.bindings else []
        return keys + PLAY_HELP + (GHOST_HELP if self.ghost else [])

    def pop_message(self) -> str | None:
        return self.messages.pop(0) if self.messages else None

    def close(self) -> None:
        """Finish queued jobs (a save), save a recording in progress, stop the worker and the real game."""
        try:
            if self.worker.error is None:  # a failed worker has already said why; nothing more can run
                if self.recording:
                    self.recording = False
                    self.worker.submit(self._save)
                self.worker.wait()
        finally:
            self.worker.close()
            if self.ghost is not None:
                self.ghost.close()

    def _pick(self, frame: int) -> None:
        done = self.worker.done
        if done is None or done.seq == self._seen:
            return
        self._seen = done.seq
        self.shown = done.value
        read = self._read_at.pop(done.tag, None)
        self._read_at = {tag: t for tag, t in self._read_at.items() if tag > done.tag}  # steps whose result was overtaken
        if read is not None and self.shown.timing is not None:
            self._fresh = self.shown.timing
            self.latencies.append(Latency(frame - done.tag, (done.finished - read) * 1e3))
            if self.shown.psnr is not None:
                self.psnrs.append(self.shown.psnr)

    def _change_sampling(self, name: str) -> None:
        if name == "greedy":
            self.greedy = not self.greedy
        else:
            factor = TEMPERATURE_FACTOR if name == "hotter" else 1 / TEMPERATURE_FACTOR
            self.temperature = float(np.clip(self.temperature * factor, *TEMPERATURE_RANGE))
            if self.greedy:
                self.messages.append(f"temperature {self.temperature:.2f} (used once sampling: press G)")
        greedy, temperature = self.greedy, self.temperature
        self.worker.submit(lambda: self._set_sampling(greedy, temperature))

    # -- jobs, run on the worker thread --------------------------------------
    def _snapshot(self, action: np.ndarray | None = None, timing: StepTiming | None = None) -> Shown:
        real = self.ghost.frame if self.ghost else None
        score = psnr(to_unit(real), to_unit(self.session.frame)) if real is not None else None
        return Shown(self.session.frame, real, self.session.steps, action, timing, score)

    def _step(self, action: np.ndarray) -> Shown:
        timing = self.session.step(action)
        if self.ghost is not None:
            self.ghost.step(action)
            shown = self._snapshot(action, timing)
            if self.ghost.episode_ended:
                self.session.restart_from(*self.ghost.clip())
                self.messages.append("the real episode ended: a new one started, the world re-synced")
            return shown
        return self._snapshot(action, timing)

    def _restart(self, how: str) -> Shown:
        if self.ghost is not None:
            clip = self.ghost.reset() if how == "reset" else self.ghost.next_episode()
            self.session.restart_from(*clip)
        elif how == "reset":
            self.session.reset()
        else:
            self.session.next_seed()
        return self._snapshot()

    def _set_sampling(self, greedy: bool, temperature: float) -> Shown:
        self.session.set_sampling(greedy, temperature)
        return self._snapshot()

    def _rewind(self) -> Shown:
        if not self.session.rewind():
            self.messages.append("rewind: at the start of the buffer")
        return self._snapshot()

    def _resync(self) -> Shown:
        self.session.restart_from(*self.ghost.clip())
        self.messages.append("re-synced the learned world to the real game")
        return self._snapshot()

    def _save(self) -> Shown:
        log = self.session.log()
        if len(log[2]) == 0:
            self.messages.append("nothing to record: no steps since the last reset")
            return self._snapshot()
        out = new_path(self.record_root, "rec_")
        info = {
            "checkpoint": self.checkpoint,
            "world": self.session.wm.info.get("world"),
            "seed_index": self.session.seed_index,
            "sampling": self.session.wm.sampling,
            "temperature": self.session.wm.temperature,
            "ghost": self.ghost is not None,
        }
        write_recording(out, log, self.fps, info)
        self.messages.append(f"saved recording to {out}")
        return self._snapshot()
