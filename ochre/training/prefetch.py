"""Training batches drawn ahead on a background thread, so the loop never waits for the sampler.

    batches = Prefetcher(lambda: sampler.sample(32), sampler.rng, depth=2, pin=device.type == "cuda")
    batch = batches.next()          # the next batch, as the sampler would have drawn it
    batches.rewind()                # before saving the sampler's RNG: forget the batches drawn but not used

The thread draws from the sampler's numpy generator, so that generator runs ahead of
the batches the loop has taken. `rewind` stops the thread and puts the generator
back where the loop stands; the next `next` starts the thread again and draws the
same batches. A run that saves (and so rewinds) at step s and resumes from there
therefore sees the batches of the uninterrupted run. depth=0 draws on the caller's
thread, exactly as the sampler alone.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ochre.data.windows import Batch

_STOP = object()


class Prefetcher:
    def __init__(self, draw: Callable[[], Batch], rng: np.random.Generator, depth: int = 2, pin: bool = False):
        self.draw, self.rng, self.depth, self.pin = draw, rng, depth, pin
        self._queue: queue.Queue | None = None  # the thread's batches and the generator state after each
        self._thread: threading.Thread | None = None  # None while nothing is drawn ahead
        self._halt = threading.Event()  # tells the running thread to stop
        self._after_taken: dict[str, Any] = {}  # the generator state right after the last batch `next` returned

    def next(self) -> Batch:
        """The next batch (in pinned memory when pin); a sampler error is raised here, on the caller's thread."""
        if self.depth <= 0:
            return self._drawn()[1]
        if self._thread is None:
            self._start()
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._thread.join()
            self._thread = None
            raise item
        self._after_taken = item[0]
        return item[1]

    def rewind(self) -> None:
        """Stop drawing ahead and reset the sampler's generator to just after the last batch `next` returned."""
        if self._thread is None:
            return
        self._halt.set()
        while self._thread.is_alive():  # unblock a thread waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.01)
        self._thread = None
        self.rng.bit_generator.state = self._after_taken

    close = rewind

    def _start(self) -> None:
        self._after_taken = self.rng.bit_generator.state
        self._queue, self._halt = queue.Queue(maxsize=self.depth), threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(self._queue, self._halt), name="prefetch", daemon=True)
        self._thread.start()

    def _fill(self, out: queue.Queue, halt: threading.Event) -> None:
        while not halt.is_set():
            try:
                item: Any = self._drawn()
            except BaseException as err:  # handed to the loop, which raises it
                out.put(err)
                return
            out.put(item)

    def _drawn(self) -> tuple[dict[str, Any], Batch]:
        """A fresh batch and the generator's state right after drawing it."""
        batch = self.draw()
        if self.pin:
            batch = Batch(batch.rows.pin_memory(), batch.actions.pin_memory())
        return self.rng.bit_generator.state, batch
