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
- `run`: what a player does most: hold one direction (a run) and jump now and
  then, at once when the picture stops moving (the player is stuck at a wall), in
  first-person worlds often turning while walking. Which directions a run takes,
  and how often, is looked up by action schema (`RUN_DIRECTIONS`). In a factored
  schema (a Gymnasium Box, MultiDiscrete or MultiBinary space) a run holds one
  control at one of its extremes.
- `mixture`: each span draws one of the above with the configured weights.
- `play`: a mixture shaped like a person's play (`PLAY_PRESET`): mostly runs and
  held keys of 4-60 steps, a little uniform noise.

Span lengths are uniform in [hold_min, hold_max] steps, or geometric when
`repeat_prob` > 0 (each step continues the span with that probability).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ochre.actions import ActionSpec, DiscreteActionSpec, FactoredActionSpec, FirstPersonActionSpec
from ochre.errors import ConfigError

POLICIES = ("uniform", "sticky", "isolated", "run")
MOVEMENT = ("forward", "left", "back", "right")
DIRECTIONS = ("left", "right", "up", "down")  # single-key labels of a discrete schema that move the player
JUMP = {"discrete": "up", "first_person": "jump"}  # the control a run adds to jump, by schema kind
# Which way a run goes, by action schema name: CoinRun's levels are won by running right.
RUN_DIRECTIONS: dict[str, dict[str, float]] = {
    "procgen": {"right": 0.8, "left": 0.2},
    "first_person": {"forward": 0.6, "back": 0.1, "left": 0.15, "right": 0.15},
}
STUCK_CHANGE = 1.5  # mean |frame difference| (0-255) below which a running player is taken to be stuck
PLAY_PRESET = {
    "kind": "play",
    "weights": {"uniform": 0.1, "sticky": 0.3, "isolated": 0.1, "run": 0.5},
    "hold_min": 4,
    "hold_max": 60,
}


@dataclass
class PolicyConfig:
    kind: str = "mixture"  # uniform | sticky | isolated | run | mixture | play
    weights: dict[str, float] = field(default_factory=lambda: {"uniform": 0.1, "sticky": 0.3, "isolated": 0.6})
    hold_min: int = 2
    hold_max: int = 12
    repeat_prob: float = 0.0
    noop_prob: float = 0.05  # share of isolated spans that press nothing
    jump_prob: float = 0.08  # per step of a run: chance to start a jump
    jump_hold: int = 4  # steps a run's jump is held
    turn_prob: float = 0.4  # share of first-person runs that also turn the camera (walk and turn)

    def span_weights(self) -> np.ndarray:
        """Probability of each of POLICIES for a new span."""
        if self.kind in POLICIES:
            return np.array([float(p == self.kind) for p in POLICIES])
        if self.kind not in ("mixture", "play"):
            raise ConfigError(f"policy.kind '{self.kind}' is unknown (choose one of {', '.join(POLICIES)}, mixture, play)")
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
        for name in ("noop_prob", "jump_prob", "turn_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"policy.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.jump_hold < 1:
            raise ConfigError(f"policy.jump_hold must be >= 1, got {self.jump_hold}")


def isolated_groups(spec: ActionSpec) -> dict[str, np.ndarray]:
    """Per control group, the actions that press only that group: {name: (k, *spec.shape)}."""
    if isinstance(spec, DiscreteActionSpec):
        groups: dict[str, list[int]] = {}
        for i, label in enumerate(spec.labels):  # a neutral id that is not a "noop" (CartPole's push left) is an action too
            if (i != spec.noop or label != "noop") and "+" not in label:
                groups.setdefault(label, []).append(i)
        return {name: np.array(ids, dtype=np.int64) for name, ids in groups.items()}
    if isinstance(spec, FirstPersonActionSpec):
        return _first_person_groups(spec)
    if isinstance(spec, FactoredActionSpec):
        return {
            name: np.stack([_only(spec, col, i) for i in range(f) if i != spec.rest[col]])
            for col, (name, f) in enumerate(zip(spec.controls, spec.factors, strict=True))
            if f > 1
        }
    raise TypeError(f"no isolated groups for {type(spec).__name__}")


def _only(spec: FactoredActionSpec, col: int, index: int) -> np.ndarray:
    """The neutral action with control `col` at value `index`."""
    a = spec.neutral()
    a[col] = index
    return a


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


def run_moves(spec: ActionSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per direction a run can take: (the action that walks that way, the same with jump held)."""
    moves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if isinstance(spec, DiscreteActionSpec):
        labels = [label.lower() for label in spec.labels]
        jump = JUMP["discrete"]
        for d in DIRECTIONS:
            if d in labels and d != jump:
                walk = labels.index(d)
                combo = next((labels.index(c) for c in (f"{d}+{jump}", f"{jump}+{d}") if c in labels), walk)
                moves[d] = np.array(walk, dtype=np.int64), np.array(combo, dtype=np.int64)
    elif isinstance(spec, FirstPersonActionSpec):
        for d in MOVEMENT:
            if d in spec.buttons:
                walk = spec.neutral()
                walk[spec.index(d)] = 1
                jump = walk.copy()
                if JUMP["first_person"] in spec.buttons:
                    jump[spec.index(JUMP["first_person"])] = 1
                moves[d] = walk, jump
    elif isinstance(spec, FactoredActionSpec):  # no jump control: a run holds one control at an extreme
        for col, (name, f) in enumerate(zip(spec.controls, spec.factors, strict=True)):
            for end, index in (("min", 0), ("max", f - 1)):
                if index != spec.rest[col]:
                    moves[f"{name}_{end}"] = _only(spec, col, index), _only(spec, col, index)
    return moves


def run_weights(spec: ActionSpec, moves: dict[str, np.ndarray]) -> np.ndarray:
    """Probability of each of `moves`' directions: `RUN_DIRECTIONS` for the schema, else all alike."""
    table = RUN_DIRECTIONS.get(spec.name, {})
    w = np.array([table.get(d, 0.0) if table else 1.0 for d in moves], dtype=np.float64)
    return w / w.sum() if w.sum() > 0 else np.full(len(moves), 1.0 / max(len(moves), 1))


class ExplorationPolicy:
    """Actions for `num` envs; call `act(frames)` every step and `episode_started(i)` when env i resets.

    `frames` (num, H, W, 3), the envs' current pictures, let a run jump when it is stuck;
    without them runs jump at random only.
    """

    def __init__(self, cfg: PolicyConfig, spec: ActionSpec, num: int, rng: np.random.Generator):
        cfg.check()
        self.cfg, self.spec, self.num, self.rng = cfg, spec, num, rng
        weights = cfg.span_weights()
        self.cumulative = np.cumsum(weights)
        self.last_mode = int(np.flatnonzero(weights)[-1])
        self.groups = list(isolated_groups(spec).values())
        self.moves = list(run_moves(spec).values())
        self.move_p = run_weights(spec, run_moves(spec))
        if weights[POLICIES.index("run")] > 0 and not self.moves:
            raise ConfigError(f"policy: runs need movement controls, and the '{spec.name}' schema has none (set weights.run=0)")
        self.mode = np.zeros(num, dtype=np.int64)  # index into POLICIES
        self.left = np.zeros(num, dtype=np.int64)  # steps left in the current span
        self.held = spec.neutral(num)
        self.jump = spec.neutral(num)  # a run's action with jump held
        self.jump_left = np.zeros(num, dtype=np.int64)
        self.previous: np.ndarray | None = None  # last step's frames

    def episode_started(self, i: int) -> None:
        self.left[i] = 0

    def act(self, frames: np.ndarray | None = None) -> np.ndarray:
        """(num, *spec.shape) int64 encoded actions for this step."""
        for i in np.flatnonzero(self.left <= 0):
            self._new_span(int(i))
        actions = self.held.copy()
        uniform = self.mode == POLICIES.index("uniform")
        if uniform.any():
            actions[uniform] = self.spec.sample(self.rng, size=int(uniform.sum()))
        running = self.mode == POLICIES.index("run")
        if running.any():
            self._run(actions, running, self._stuck(frames))
        self.left -= 1
        return actions

    def _run(self, actions: np.ndarray, running: np.ndarray, stuck: np.ndarray) -> None:
        start = running & (self.jump_left <= 0) & (stuck | (self.rng.random(self.num) < self.cfg.jump_prob))
        self.jump_left[start] = self.cfg.jump_hold
        jumping = running & (self.jump_left > 0)
        actions[jumping] = self.jump[jumping]
        self.jump_left[jumping] -= 1

    def _stuck(self, frames: np.ndarray | None) -> np.ndarray:
        """(num,) bool: the picture barely changed since the last step."""
        stuck = np.zeros(self.num, dtype=bool)
        if frames is not None:
            frames = np.asarray(frames, dtype=np.int16)
            if self.previous is not None and self.previous.shape == frames.shape:
                change = np.abs(frames - self.previous).reshape(self.num, -1).mean(1)
                stuck = change < STUCK_CHANGE
            self.previous = frames
        return stuck

    def _new_span(self, i: int) -> None:
        mode = min(int(np.searchsorted(self.cumulative, self.rng.random(), side="right")), self.last_mode)
        self.mode[i] = mode
        self.left[i] = self._duration()
        if POLICIES[mode] == "sticky":
            self.held[i] = self.spec.sample(self.rng)
        elif POLICIES[mode] == "isolated":
            self.held[i] = self._isolated_action()
        elif POLICIES[mode] == "run":
            self.held[i], self.jump[i] = self._run_actions()
            self.jump_left[i] = 0

    def _run_actions(self) -> tuple[np.ndarray, np.ndarray]:
        walk, jump = self.moves[int(self.rng.choice(len(self.moves), p=self.move_p))]
        walk, jump = walk.copy(), jump.copy()
        if isinstance(self.spec, FirstPersonActionSpec) and self.rng.random() < self.cfg.turn_prob:
            turns = [b for b in range(self.spec.camera_bins) if b != self.spec.still_bin]
            walk[0] = jump[0] = turns[int(self.rng.integers(len(turns)))]
        return walk, jump

    def _isolated_action(self) -> np.ndarray:
        if self.rng.random() < self.cfg.noop_prob or not self.groups:
            return self.spec.neutral()
        group = self.groups[int(self.rng.integers(len(self.groups)))]
        return group[int(self.rng.integers(len(group)))]

    def _duration(self) -> int:
        if self.cfg.repeat_prob > 0:
            return int(self.rng.geometric(1.0 - self.cfg.repeat_prob))
        return int(self.rng.integers(self.cfg.hold_min, self.cfg.hold_max + 1))
