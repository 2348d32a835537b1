"""A background thread that runs model work one job at a time, so a slow step never blocks input.

    worker = Worker()
    ticket = worker.submit(lambda: session.step(action), tag=frame_index)
    worker.wait(timeout=0.01)          # up to the frame's deadline; input handling goes on either way
    worker.finished(ticket)            # has that job run?
    done = worker.done                 # the newest finished job: its value, tag and finish time

The thread owns the session while a job runs: the main thread touches the model
only through jobs (torch releases the GIL inside its ops, so events and drawing
carry on meanwhile). A job that raises stops the worker; the error is raised again
in the main thread by every later `submit`, `wait` or `check`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Done:
    """A finished job."""

    value: Any
    tag: int  # what the submitter passed (the display frame the input was read on)
    seq: int  # the job's ticket: jobs run in the order they were submitted, so this counts finished jobs
    finished: float  # time.perf_counter() when it finished


class Worker:
    def __init__(self, name: str = "ochre-model"):
        self._jobs: deque[tuple[Callable[[], Any], int]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._submitted = 0
        self._finished = 0
        self.done: Done | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing running."""
        with self._cond:
            return not self._jobs and not self._busy

    def submit(self, job: Callable[[], Any], tag: int = -1) -> int:
        """Queue `job`; returns its ticket (1, 2, 3, ... in submission order)."""
        self.check()
        with self._cond:
            self._jobs.append((job, tag))
            self._submitted += 1
            self._cond.notify_all()
            return self._submitted

    def finished(self, ticket: int) -> bool:
        with self._cond:
            return ticket <= self._finished

    def wait(self, timeout: float | None = None) -> bool:
        """Block until idle or `timeout` seconds pass; True if idle."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        with self._cond:
            while (self._jobs or self._busy) and self.error is None:
                left = None if deadline is None else deadline - time.perf_counter()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            idle = not self._jobs and not self._busy
        self.check()
        return idle

    def check(self) -> None:
        """Raise the error of the job that failed (the worker stops at the first one)."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._jobs.clear()
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job, tag = self._jobs.popleft()
                self._busy = True
            try:
                value = job()
            except BaseException as err:  # handed to the main thread, which decides what to show
                with self._cond:
                    self.error, self._busy = err, False
                    self._jobs.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self._finished += 1
                self.done = Done(value, tag, self._finished, time.perf_counter())
                self._busy = False
                self._cond.notify_all()
