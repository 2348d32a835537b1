"""Action schemas: what each control is, how it is encoded, how to validate it.

A schema travels inside every dataset manifest and world checkpoint
(`to_dict` / `action_spec_from_dict`), so the app, `inference.py` and the
importers always know how to encode input for the world they load.

Three kinds:

- `DiscreteActionSpec`: one categorical id per step (Procgen, Atari). Labels are
  `+`-joined control names ("left+up"), which is how the data tools know which
  controls an id presses.
- `FirstPersonActionSpec`: ViZDoom and Minecraft-style recordings. A player's
  input is continuous: yaw and pitch deltas (degrees, or normalised to [-1, 1]
  by `max_deg`) and a set of buttons held. The model sees the encoded form, one
  int64 vector per step: `[yaw_bin, pitch_bin, forward, left, back, right, jump,
  attack, sprint, sneak]`, with the camera binned by `camera_edges`.
- `FactoredActionSpec`: several independent controls, each one of a few values
  (Gymnasium MultiDiscrete, MultiBinary and binned Box spaces). The encoded form
  is one int64 vector per step, an index into each control's `values`.

Every spec offers the same surface: `shape` (of one encoded action), `factors`
(the cardinality of each encoded component), `neutral()`, `sample()`,
`validate()`, `control_names` and `active_controls()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ochre.errors import OchreError


def _integers(actions: Any, problem: str) -> np.ndarray:
    """`actions` as an integer array (whole-number floats are accepted), or raise `problem` with the dtype."""
    arr = np.asarray(actions)
    if arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise OchreError(f"{problem}, got dtype {arr.dtype}")
    return arr


def _sample_factors(factors: tuple[int, ...], rng: np.random.Generator, size: int | tuple[int, ...] | None) -> np.ndarray:
    """Uniform encoded actions of a factored schema: one independent draw per control."""
    size = () if size is None else (size,) if isinstance(size, int) else tuple(size)
    return np.stack([rng.integers(0, f, size=size) for f in factors], axis=-1)


def _validate_factors(actions: Any, schema: str, names: tuple[str, ...], factors: tuple[int, ...], source: str) -> np.ndarray:
    """Encoded actions of a factored schema (..., C) as int64, with one error line naming the first bad control."""
    arr = _integers(actions, f"{source}: encoded actions must be integers for the '{schema}' schema")
    if arr.shape[-1:] != (len(names),):
        raise OchreError(f"{source}: each action needs {len(names)} columns ({', '.join(names)}), got shape {arr.shape}")
    for col, (name, f) in enumerate(zip(names, factors, strict=True)):
        bad = (arr[..., col] < 0) | (arr[..., col] >= f)
        if bad.any():
            raise OchreError(f"{source}: '{name}' value {int(arr[..., col][bad].flat[0])} is outside 0-{f - 1}")
    return arr.astype(np.int64)


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

    @property
    def factors(self) -> tuple[int, ...]:
        return (self.n,)

    def neutral(self, size: int | tuple[int, ...] = ()) -> np.ndarray:
        """The do-nothing action, repeated to `size`."""
        return np.full(size, self.noop, dtype=np.int64)

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...] | None = None) -> np.ndarray:
        return rng.integers(0, self.n, size=size)

    def validate(self, actions: Any, source: str = "actions") -> np.ndarray:
        """Return actions as int64, or raise naming `source` and the bad value."""
        arr = _integers(actions, f"{source}: actions must be integer ids for the '{self.name}' schema")
        bad = (arr < 0) | (arr >= self.n)
        if bad.any():
            raise OchreError(
                f"{source}: action id {int(arr[bad].flat[0])} is outside 0-{self.n - 1} "
                f"(the '{self.name}' schema has {self.n} actions)"
            )
        return arr.astype(np.int64)

    @property
    def control_names(self) -> tuple[str, ...]:
        """Every control any label presses, in first-seen order (the noop label presses none)."""
        names: list[str] = []
        for i, label in enumerate(self.labels):
            if i != self.noop:
                names += [c for c in label.split("+") if c not in names]
        return tuple(names)

    def active_controls(self, actions: np.ndarray) -> np.ndarray:
        """(..., C) bool: which of `control_names` each action presses."""
        names = self.control_names
        table = np.zeros((self.n, len(names)), dtype=bool)
        for i, label in enumerate(self.labels):
            if i != self.noop:
                for c in label.split("+"):
                    table[i, names.index(c)] = True
        return table[np.asarray(actions, dtype=np.int64)]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "labels": list(self.labels), "noop": self.noop, "version": self.version}


FIRST_PERSON_BUTTONS = ("forward", "left", "back", "right", "jump", "attack", "sprint", "sneak")
FIRST_PERSON_KEYS = {  # what a player presses for each button, for help texts and importers
    "forward": "W",
    "left": "A",
    "back": "S",
    "right": "D",
    "jump": "Space",
    "attack": "left mouse",
    "sprint": "Ctrl",
    "sneak": "Shift",
}
DEFAULT_CAMERA_EDGES = (-0.6, -0.25, -0.08, 0.08, 0.25, 0.6)


@dataclass(frozen=True)
class FirstPersonActionSpec:
    """Mouse-look camera plus held buttons, shared by ViZDoom and imported recordings.

    Continuous form (what a player or a recording gives), float (..., 2 + B):
        [yaw, pitch, *buttons]; yaw/pitch normalised to [-1, 1] (1 = `max_deg` degrees,
        yaw > 0 turns right, pitch > 0 looks up), buttons in [0, 1] (fraction held).
    Encoded form (what datasets store and the model sees), int64 (..., 2 + B):
        [yaw_bin, pitch_bin, *buttons]; bins index the intervals cut by `camera_edges`,
        buttons are 0/1 (held at least half the step).
    """

    name: str = "first_person"
    camera_edges: tuple[float, ...] = DEFAULT_CAMERA_EDGES
    max_deg: float = 15.0
    buttons: tuple[str, ...] = FIRST_PERSON_BUTTONS
    version: int = 1

    kind = "first_person"

    def __post_init__(self) -> None:
        edges = np.asarray(self.camera_edges, dtype=np.float64)
        if len(edges) < 2 or np.any(np.diff(edges) <= 0) or edges[0] <= -1 or edges[-1] >= 1:
            raise OchreError(
                f"action schema '{self.name}': camera_edges {list(self.camera_edges)} must be at least two "
                "strictly increasing values inside (-1, 1)"
            )
        if not (edges[0] < 0 < edges[-1]) or np.any(edges == 0):
            raise OchreError(f"action schema '{self.name}': camera_edges must put 0 strictly inside one bin (a still camera)")
        if self.max_deg <= 0:
            raise OchreError(f"action schema '{self.name}': max_deg must be positive, got {self.max_deg}")
        if len(set(self.buttons)) != len(self.buttons):
            raise OchreError(f"action schema '{self.name}': duplicate button names in {list(self.buttons)}")

    # --- layout -------------------------------------------------------------

    @property
    def camera_bins(self) -> int:
        return len(self.camera_edges) + 1

    @property
    def still_bin(self) -> int:
        """The bin that holds a zero delta."""
        return int(np.searchsorted(self.camera_edges, 0.0))

    @property
    def bin_centers(self) -> np.ndarray:
        """Representative normalised delta of each bin (0 for the still bin)."""
        bounds = np.r_[-1.0, self.camera_edges, 1.0]
        centers = (bounds[:-1] + bounds[1:]) / 2
        centers[self.still_bin] = 0.0
        return centers

    @property
    def shape(self) -> tuple[int, ...]:
        return (2 + len(self.buttons),)

    @property
    def factors(self) -> tuple[int, ...]:
        return (self.camera_bins, self.camera_bins) + (2,) * len(self.buttons)

    @property
    def control_names(self) -> tuple[str, ...]:
        return ("yaw", "pitch", *self.buttons)

    def index(self, control: str) -> int:
        """Column of `control` in the encoded and continuous forms."""
        try:
            return self.control_names.index(control)
        except ValueError:
            raise OchreError(
                f"action schema '{self.name}' has no control '{control}' (known: {', '.join(self.control_names)})"
            ) from None

    # --- conversions --------------------------------------------------------

    def normalise_degrees(self, degrees: np.ndarray) -> np.ndarray:
        """Camera deltas in degrees -> [-1, 1], clipped at ±max_deg."""
        return np.clip(np.asarray(degrees, dtype=np.float64) / self.max_deg, -1.0, 1.0)

    def encode(self, continuous: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """(..., 2+B) continuous -> (..., 2+B) int64 encoded; buttons held >= threshold count as pressed."""
        x = np.asarray(continuous, dtype=np.float64)
        if x.shape[-1:] != self.shape:
            raise OchreError(f"action schema '{self.name}': continuous actions need {self.shape[0]} columns, got shape {x.shape}")
        out = np.empty(x.shape, dtype=np.int64)
        out[..., :2] = np.searchsorted(self.camera_edges, np.clip(x[..., :2], -1.0, 1.0), side="right")
        out[..., 2:] = x[..., 2:] >= threshold
        return out

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        """(..., 2+B) int64 encoded -> (..., 2+B) float: bin centres and 0/1 buttons."""
        e = self.validate(encoded, "encoded actions")
        out = e.astype(np.float64)
        out[..., :2] = self.bin_centers[e[..., :2]]
        return out

    def degrees(self, encoded: np.ndarray) -> np.ndarray:
        """(..., 2) yaw/pitch deltas in degrees that the encoded actions stand for."""
        return self.decode(encoded)[..., :2] * self.max_deg

    # --- the common surface ---------------------------------------------------

    def neutral(self, size: int | tuple[int, ...] = ()) -> np.ndarray:
        """Still camera, no buttons, repeated to `size`."""
        size = (size,) if isinstance(size, int) else tuple(size)
        out = np.zeros((*size, *self.shape), dtype=np.int64)
        out[..., :2] = self.still_bin
        return out

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...] | None = None) -> np.ndarray:
        return _sample_factors(self.factors, rng, size)

    def validate(self, actions: Any, source: str = "actions") -> np.ndarray:
        return _validate_factors(actions, self.name, tuple(self.control_names), self.factors, source)

    def active_controls(self, actions: np.ndarray) -> np.ndarray:
        """(..., C) bool: camera moved off the still bin, buttons pressed."""
        a = np.asarray(actions, dtype=np.int64)
        return np.concatenate([a[..., :2] != self.still_bin, a[..., 2:] > 0], axis=-1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "camera_edges": list(self.camera_edges),
            "max_deg": self.max_deg,
            "buttons": list(self.buttons),
            "controls": list(self.control_names),
        }


@dataclass(frozen=True)
class FactoredActionSpec:
    """Independent controls, each taking one of a few values, e.g. the binned axes of a Gymnasium Box.

    Encoded form (what datasets store and the model sees), int64 (..., C): per control c an
    index into `values[c]`, the game's value that index stands for (an integer of a
    MultiDiscrete space, 0/1 of a MultiBinary one, a bin of a Box axis). `rest[c]` is the
    index of the control's do-nothing value.
    """

    name: str
    controls: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    rest: tuple[int, ...]
    version: int = 1

    kind = "factored"

    def __post_init__(self) -> None:
        where = f"action schema '{self.name}'"
        if not self.controls or len(set(self.controls)) != len(self.controls):
            raise OchreError(f"{where}: controls must be distinct names, at least one, got {list(self.controls)}")
        if not len(self.values) == len(self.rest) == len(self.controls):
            raise OchreError(f"{where}: needs one values list and one rest index per control ({len(self.controls)})")
        for name, values, rest in zip(self.controls, self.values, self.rest, strict=True):
            if not values or not 0 <= rest < len(values):
                raise OchreError(f"{where}: control '{name}' has rest index {rest} outside its {len(values)} values")

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.controls),)

    @property
    def factors(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    @property
    def control_names(self) -> tuple[str, ...]:
        return self.controls

    def index(self, control: str) -> int:
        """Column of `control` in the encoded form."""
        try:
            return self.controls.index(control)
        except ValueError:
            raise OchreError(
                f"action schema '{self.name}' has no control '{control}' (known: {', '.join(self.controls)})"
            ) from None

    def nearest(self, control: str, value: float) -> int:
        """The index of `control`'s value closest to `value` (ties take the lower index)."""
        return int(np.argmin(np.abs(np.asarray(self.values[self.index(control)]) - value)))

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        """(..., C) int64 encoded -> (..., C) float64: the game's value of every control."""
        e = self.validate(encoded, "encoded actions")
        out = np.empty(e.shape, dtype=np.float64)
        for col, values in enumerate(self.values):
            out[..., col] = np.asarray(values, dtype=np.float64)[e[..., col]]
        return out

    def neutral(self, size: int | tuple[int, ...] = ()) -> np.ndarray:
        """Every control at rest, repeated to `size`."""
        size = (size,) if isinstance(size, int) else tuple(size)
        return np.broadcast_to(np.asarray(self.rest, dtype=np.int64), (*size, *self.shape)).copy()

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...] | None = None) -> np.ndarray:
        return _sample_factors(self.factors, rng, size)

    def validate(self, actions: Any, source: str = "actions") -> np.ndarray:
        return _validate_factors(actions, self.name, tuple(self.controls), self.factors, source)

    def active_controls(self, actions: np.ndarray) -> np.ndarray:
        """(..., C) bool: which controls are off their rest value."""
        return np.asarray(actions, dtype=np.int64) != np.asarray(self.rest, dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "controls": list(self.controls),
            "values": [list(v) for v in self.values],
            "rest": list(self.rest),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FactoredActionSpec:
        return cls(
            name=data["name"],
            controls=tuple(data["controls"]),
            values=tuple(tuple(float(x) for x in v) for v in data["values"]),
            rest=tuple(int(r) for r in data["rest"]),
            version=data.get("version", 1),
        )


ActionSpec = DiscreteActionSpec | FirstPersonActionSpec | FactoredActionSpec
SCHEMA_VERSIONS = {"discrete": 1, "first_person": 1, "factored": 1}


def action_spec_from_dict(data: dict[str, Any]) -> ActionSpec:
    kind = data.get("kind")
    if kind not in SCHEMA_VERSIONS:
        raise OchreError(f"unknown action schema kind {kind!r} (known: {', '.join(SCHEMA_VERSIONS)})")
    version = data.get("version", 1)
    if version > SCHEMA_VERSIONS[kind]:
        raise OchreError(
            f"action schema '{data.get('name')}' has version {version}; this Ochre reads up to {SCHEMA_VERSIONS[kind]}"
        )
    if kind == "discrete":
        return DiscreteActionSpec(data["name"], tuple(data["labels"]), data.get("noop", 0), version)
    if kind == "factored":
        return FactoredActionSpec.from_dict(data)
    return FirstPersonActionSpec(
        name=data.get("name", "first_person"),
        camera_edges=tuple(float(e) for e in data["camera_edges"]),
        max_deg=float(data["max_deg"]),
        buttons=tuple(data["buttons"]),
        version=version,
    )


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
