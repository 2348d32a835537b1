"""Action schemas: what each control is, how it is encoded, how to validate it.

A schema travels inside every dataset manifest and world checkpoint
(`to_dict` / `action_spec_from_dict`), so the app and `inference.py` always know
how to encode input for the world they load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ochre.errors import OchreError


@dataclass(frozen=True)
class DiscreteActionSpec:
    """One categorical action per step, ids 0..n-1 (Procgen, Atari)."""

    name: str
    labels: tuple[str, ...]
    noop: int = 0
    version: int = 1

    kind = "discrete"

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one encoded action (a scalar id)."""
        return ()

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...] | None = None) -> np.ndarray:
        return rng.integers(0, self.n, size=size)

    def validate(self, actions: Any, source: str = "actions") -> np.ndarray:
        """Return actions as int64, or raise naming `source` and the bad value."""
        arr = np.asarray(actions)
        if arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise OchreError(f"{source}: actions must be integer ids for the '{self.name}' schema, got dtype {arr.dtype}")
        bad = (arr < 0) | (arr >= self.n)
        if bad.any():
            raise OchreError(
                f"{source}: action id {int(arr[bad].flat[0])} is outside 0-{self.n - 1} "
                f"(the '{self.name}' schema has {self.n} actions)"
            )
        return arr.astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "labels": list(self.labels), "noop": self.noop, "version": self.version}


def action_spec_from_dict(data: dict[str, Any]) -> DiscreteActionSpec:
    kind = data.get("kind")
    if kind == "discrete":
        return DiscreteActionSpec(data["name"], tuple(data["labels"]), data.get("noop", 0), data.get("version", 1))
    raise OchreError(f"unknown action schema kind {kind!r} (known: discrete)")


# Procgen's 15 ids, in the order the `procgen` package defines its combos.
PROCGEN_ACTIONS = DiscreteActionSpec(
    name="procgen",
    labels=(
        "left+down",
        "left",
        "left+up",
        "down",
        "noop",
        "up",
        "right+down",
        "right",
        "right+up",
        "d",
        "a",
        "w",
        "s",
        "q",
        "e",
    ),  # fmt: skip
    noop=4,
)
