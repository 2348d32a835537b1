"""Exploration policies: what actions to record so the data teaches every control.

A policy acts for `num` envs at once. Each env plays *spans*: a span picks one
behaviour and a duration, and the env follows it until the span runs out or its
episode ends.

- `uniform`: a fresh random action every step.
- `sticky`: one random action held for the span (a player holding keys down).
- `isolated`: one control at a time, everything else released: a yaw-only turn,
  a pitch-only look, a movement-only walk, a single button, or nothing at all.
  Without these spans, camera and movement almost always move together and a
  model cannot tell which one moved the picture.
- `mixture`: each span draws one of the above with the configured weights.

Span lengths are uniform in [hold_min, hold_max] steps, or geometric when
`repeat_prob` > 0 (each step continues the span with that probability).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ochre.actions import ActionSpec, DiscreteActionSpec, FirstPersonActionSpec
from ochre.errors import ConfigError

POLICIES = ("uniform", "sticky", "isolated")
MOVEMENT = ("forward", "left", "back", "right")


@dataclass
class PolicyConfig:
    kind: str = "mixture"  # uniform | sticky | isolated | mixture
    weights: dict[str, float] = field(default_factory=lambda: {"uniform": 0.1, "sticky": 0.3, "isolated": 0.6})
    hold_min: int = 2
    hold_max: int = 12
    repeat_prob: float = 0.0
    noop_prob: float = 0.05  # share of isolated spans that press nothing

    def span_weights(self) -> np.ndarray:
        """Probability of each of POLICIES for a new span."""
        if self.kind in POLICIES:
            return np.array([float(p == self.kind) for p in POLICIES])
        if self.kind != "mixture":
            raise ConfigError(f"policy.kind '{self.kind}' is unknown (choose one of {', '.join(POLICIES)}, mixture)")
        unknown = set(self.weights) - set(POLICIES)
        if unknown:
            raise ConfigError(f"policy.weights has unknown policies {sorted(unknown)} (known: {', '.join(POLICIES)})")
        w = np.array([float(self.weights.get(p, 0.0)) for p in POLICIES])
        if (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"policy.weights {self.weights} must be non-negative and not all zero")
        return w / w.sum()

    def check(self) -> None:
        self.span_weights()
        if not 1 <= self.hold_min <= self.hold_max:
            raise ConfigError(f"policy.hold_min/hold_max must satisfy 1 <= {self.hold_min} <= {self.hold_max}")
        if not 0 <= self.repeat_prob < 1:
            raise ConfigError(f"policy.repeat_prob must be in [0, 1), got {self.repeat_prob}")
        if not 0 <= self.noop_prob <= 1:
            raise ConfigError(f"policy.noop_prob must be in [0, 1], got {self.noop_prob}")


def isolated_groups(spec: ActionSpec) -> dict[str, np.ndarray]:
    """Per control group, the actions that press only that group: {name: (k, *spec.shape)}."""
    if isinstance(spec, DiscreteActionSpec):
        groups: dict[str, list[int]] = {}
        for i, label in enumerate(spec.labels):
            if i != spec.noop and "+" not in label:
                groups.setdefault(label, []).append(i)
        return {name: np.array(ids, dtype=np.int64) for name, ids in groups.items()}
    if isinstance(spec, FirstPersonActionSpec):
        return _first_person_groups(spec)
    raise TypeError(f"no isolated groups for {type(spec).__name__}")


def _first_person_groups(spec: FirstPersonActionSpec) -> dict[str, np.ndarray]:
    moving = [b for b in range(spec.camera_bins) if b != spec.still_bin]
    groups: dict[str, list[np.ndarray]] = {"yaw": [], "pitch": [], "camera": [], "movement": []}
    for b in moving:
        for name, col in (("yaw", 0), ("pitch", 1)):
            a = spec.neutral()
            a[col] = b
            groups[name].append(a)
        for b2 in moving:  # both axes at once, still camera-only
            a = spec.neutral()
            a[:2] = b, b2
            groups["camera"].append(a)
    keys = [k for k in MOVEMENT if k in spec.buttons]
    for i, k in enumerate(keys):  # one key, or two perpendicular keys (diagonal walking)
        for k2 in [None, *keys[i + 1 :]]:
            if k2 is not None and {k, k2} in ({"forward", "back"}, {"left", "right"}):
                continue
            a = spec.neutral()
            a[spec.index(k)] = 1
            if k2 is not None:
                a[spec.index(k2)] = 1
            groups["movement"].append(a)
    for button in spec.buttons:
        if button not in MOVEMENT:
            a = spec.neutral()
            a[spec.index(button)] = 1
            groups[button] = [a]
    return {name: np.stack(acts) for name, acts in groups.items() if acts}


class ExplorationPolicy:
    """Actions for `num` envs; call `act()` every step and `episode_started(i)` when env i resets."""

    def __init__(self, cfg: PolicyConfig, spec: ActionSpec, num: int, rng: np.random.Generator):
        cfg.check()
        self.cfg, self.spec, self.num, self.rng = cfg, spec, num, rng
        self.cumulative = np.cumsum(cfg.span_weights())
        self.groups = list(isolated_groups(spec).values())
        self.mode = np.zeros(num, dtype=np.int64)  # index into POLICIES
        self.left = np.zeros(num, dtype=np.int64)  # steps left in the current span
        self.held = spec.neutral(num)

    def episode_started(self, i: int) -> None:
        self.left[i] = 0

    def act(self) -> np.ndarray:
        """(num, *spec.shape) int64 encoded actions for this step."""
        for i in np.flatnonzero(self.left <= 0):
            self._new_span(int(i))
        actions = self.held.copy()
        uniform = self.mode == POLICIES.index("uniform")
        if uniform.any():
            actions[uniform] = self.spec.sample(self.rng, size=int(uniform.sum()))
        self.left -= 1
        return actions

    def _new_span(self, i: int) -> None:
        mode = min(int(np.searchsorted(self.cumulative, self.rng.random(), side="right")), len(POLICIES) - 1)
        self.mode[i] = mode
        self.left[i] = self._duration()
        if POLICIES[mode] == "sticky":
            self.held[i] = self.spec.sample(self.rng)
        elif POLICIES[mode] == "isolated":
            self.held[i] = self._isolated_action()

    def _isolated_action(self) -> np.ndarray:
        if self.rng.random() < self.cfg.noop_prob or not self.groups:
            return self.spec.neutral()
        group = self.groups[int(self.rng.integers(len(self.groups)))]
        return group[int(self.rng.integers(len(group)))]

    def _duration(self) -> int:
        if self.cfg.repeat_prob > 0:
            return int(self.rng.geometric(1.0 - self.cfg.repeat_prob))
        return int(self.rng.integers(self.cfg.hold_min, self.cfg.hold_max + 1))
