"""A learned world as a Gymnasium environment, so an RL agent can train or plan inside it.

    import gymnasium, ochre
    env = gymnasium.make("ochre/World-v0", checkpoint="checkpoints/coinrun.pt", render_mode="rgb_array")
    frame, info = env.reset(seed=0)                  # the last seed frame, {"seed_index": i}
    frame, reward, terminated, truncated, info = env.step(env.action_space.sample())
    futures = env.unwrapped.imagine(plans)           # (B, N) actions -> (B, N, H, W, 3), env untouched

Each episode starts from one seed clip: of `seed_frames` (a .npz, video or PNG folder, as
`ochre.inputs.load_seed` reads it) when given, else of the clips the checkpoint carries
(`ochre.seed_contexts`); the world then predicts every frame after it.

Reward is always 0.0 and `terminated` always False: a world checkpoint predicts frames
only, it has no reward or game-over head. Score frames in a wrapper to train an agent on
a task. Episodes end by truncation: `gymnasium.make(..., max_episode_steps=N)` (default
1,000, the registered limit) wraps the env in Gymnasium's TimeLimit, the only limit; the env
itself truncates only when built directly as `WorldEnv(..., max_episode_steps=N)`.

With `sampling="sample"` the tokens are drawn with a torch generator seeded from the
env's `np_random`, so `reset(seed=s)` and the same actions give the same frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

from ochre.actions import ActionSpec, DiscreteActionSpec
from ochre.errors import OchreError
from ochre.inputs import load_seed
from ochre.runtime import WorldModel, WorldState
from ochre.sampling import Sampling

CLOSED = "this WorldEnv is closed; make a new one"


class WorldEnv(gymnasium.Env[np.ndarray, Any]):
    """One learned world behind `reset` / `step` / `render`, plus `imagine` for planners.

    Observations are (H, W, 3) uint8 frames; actions are `Discrete(n)` for discrete
    schemas (Procgen, Atari) and `MultiDiscrete(factors)` for first-person ones.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        checkpoint: str | Path,
        seed_frames: str | Path | None = None,
        device: str = "auto",
        sampling: Sampling = "greedy",
        temperature: float = 1.0,
        top_k: int | None = None,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ):
        if sampling not in ("greedy", "sample"):
            raise OchreError(f"sampling must be 'greedy' or 'sample', got {sampling!r}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise OchreError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise OchreError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        world = WorldModel.load(checkpoint, device)
        world.sampling, world.temperature, world.top_k = sampling, temperature, top_k
        self._world: WorldModel | None = world
        self._seeds, self._seed_actions = _seed_batch(checkpoint, seed_frames, world)
        self.max_episode_steps = max_episode_steps  # None: no limit of its own (gymnasium.make adds TimeLimit)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": world.fps}
        self.observation_space = gymnasium.spaces.Box(0, 255, world.frame_shape, dtype=np.uint8)
        self.action_space = _action_space(world.action_spec)
        self._state: WorldState | None = None
        self._frame: np.ndarray | None = None
        self._steps = 0

    @property
    def world(self) -> WorldModel:
        """The loaded world model; an error once the env is closed."""
        if self._world is None:
            raise OchreError(CLOSED)
        return self._world

    @property
    def num_seeds(self) -> int:
        """How many seed clips `reset` chooses from."""
        return len(self._seeds)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start from a seed clip (`options={"seed_index": i}`, else one drawn with `np_random`)."""
        super().reset(seed=seed)
        world = self.world
        index = self._seed_index((options or {}).get("seed_index"))
        world.generator = torch.Generator(device=world.device).manual_seed(int(self.np_random.integers(2**63 - 1)))
        actions = None if self._seed_actions is None else self._seed_actions[index]
        self._state = world.reset(self._seeds[index], actions)
        self._frame = self._seeds[index, -1].copy()
        self._steps = 0
        return self._frame.copy(), {"seed_index": index}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Predict the next frame; reward 0.0, never terminated, truncated at the env's own `max_episode_steps` if set."""
        state = self._current_state()
        frame, self._state = self.world.step(state, self._check_action(action))
        self._frame = frame
        self._steps += 1
        truncated = self.max_episode_steps is not None and self._steps >= self.max_episode_steps
        return frame, 0.0, False, truncated, {"step": self._steps}

    def render(self) -> np.ndarray | None:
        """The latest frame (None before the first reset)."""
        return None if self._frame is None else self._frame.copy()

    def close(self) -> None:
        """Drop the model and state so their memory (GPU memory too) can be freed; safe to call twice."""
        cuda = self._world is not None and self._world.device.type == "cuda"
        self._world, self._state = None, None
        if cuda:
            torch.cuda.empty_cache()

    @torch.inference_mode()
    def imagine(self, actions: Any, seed: int | None = None) -> np.ndarray:
        """Roll B action sequences (B, N[, F]) out from B copies of the current state -> (B, N, H, W, 3) uint8.

        The env is left as it was: sampling draws from a copy of the env's generator
        (or one seeded with `seed`), so imagining is reproducible and the next `step`
        gives the same frame as it would have without it. Ignores `max_episode_steps`.
        """
        world = self.world
        plans = self._check_action_batch(actions)
        state = _repeat_state(self._current_state(), len(plans))
        generator = self._fork_generator(seed)
        plans_t = torch.as_tensor(plans, device=world.device)
        out = []
        for j in range(plans_t.shape[1]):  # next_state steps a token or a latent world alike
            state = world.next_state(state, plans_t[:, j], world.sampling, world.temperature, world.top_k, generator)
            out.append(state.tokens)
        return world.decode(torch.stack(out, 1))

    # -- helpers -------------------------------------------------------------
    def _current_state(self) -> WorldState:
        """The state to go on from; an error if the env is closed or was never reset."""
        if self._world is None:
            raise OchreError(CLOSED)
        if self._state is None:
            raise OchreError("call reset() before step() or imagine()")
        return self._state

    def _seed_index(self, index: Any) -> int:
        """A valid seed clip index: `index` checked, or a draw from `np_random` when None."""
        if index is None:
            return int(self.np_random.integers(self.num_seeds))
        if not isinstance(index, int | np.integer) or not 0 <= index < self.num_seeds:
            raise OchreError(f"options['seed_index'] must be an int in 0-{self.num_seeds - 1}, got {index!r}")
        return int(index)

    def _check_action(self, action: Any) -> np.ndarray:
        """One action as int64 of the schema's shape, or an OchreError naming the bad value."""
        spec = self.world.action_spec
        arr = spec.validate(action, "action")
        if arr.shape != spec.shape:
            raise OchreError(
                f"action must have shape {spec.shape} for the '{spec.name}' schema (space {self.action_space}), got {arr.shape}"
            )
        return arr

    def _check_action_batch(self, actions: Any) -> np.ndarray:
        """(B, N[, F]) int64 action sequences with B, N >= 1."""
        spec = self.world.action_spec
        arr = spec.validate(actions, "imagine actions")
        if arr.ndim != 2 + len(spec.shape) or arr.shape[2:] != spec.shape or 0 in arr.shape[:2]:
            raise OchreError(f"imagine actions must have shape {('B', 'N', *spec.shape)} with B, N >= 1, got {arr.shape}")
        return arr

    def _fork_generator(self, seed: int | None) -> torch.Generator:
        """A generator for imagining: seeded with `seed`, else a copy of the env's (which stays untouched)."""
        world = self.world
        generator = torch.Generator(device=world.device)
        if seed is not None:
            return generator.manual_seed(seed)
        generator.set_state(world.generator.get_state())
        return generator


def _seed_batch(
    checkpoint: str | Path, seed_frames: str | Path | None, world: WorldModel
) -> tuple[np.ndarray, np.ndarray | None]:
    """The seed clips of `seed_frames` when given, else those the checkpoint carries."""
    if seed_frames is not None:
        return _load_seed_batch(seed_frames, world)
    if world.seeds is None:
        raise OchreError(
            f"{checkpoint}: this checkpoint carries no seed contexts; pass seed_frames=FILE (.npz, .mp4 or a PNG folder) "
            f"or add them with python -m train.seeds --checkpoint {checkpoint} --data DATASET"
        )
    return world.seeds.frames, world.seeds.actions


def _load_seed_batch(path: str | Path, world: WorldModel) -> tuple[np.ndarray, np.ndarray | None]:
    """Seed clips as (B, K, H, W, 3) uint8 and their actions (B, K-1[, F]) or None, checked against the world."""
    frames, actions = load_seed(path)
    if frames.ndim == 4:
        frames, actions = frames[None], None if actions is None else np.asarray(actions)[None]
    if frames.shape[-3:] != world.frame_shape or 0 in frames.shape[:2]:
        raise OchreError(
            f"{path}: seed frames have shape {frames.shape}; this world needs (B, K, *{world.frame_shape}) with B, K >= 1"
        )
    if actions is None:
        return frames, None
    spec = world.action_spec
    actions = spec.validate(actions, f"{path}: seed actions")
    b, k = frames.shape[:2]
    want = (b, k - 1, *spec.shape)
    if actions.shape != want:
        raise OchreError(f"{path}: seed actions must have shape {want} for seed frames {frames.shape}, got {actions.shape}")
    return frames, actions


def _action_space(spec: ActionSpec) -> gymnasium.spaces.Space:
    """Discrete(n) for one categorical id per step, MultiDiscrete(factors) for first-person vectors."""
    if isinstance(spec, DiscreteActionSpec):
        return gymnasium.spaces.Discrete(spec.n)
    return gymnasium.spaces.MultiDiscrete(np.asarray(spec.factors, dtype=np.int64))


def _repeat_state(state: WorldState, batch: int) -> WorldState:
    """`batch` copies of a batch-1 state, for rolling several plans out at once."""
    return WorldState(state.dynamics.expand(batch), state.tokens.expand(batch, *state.tokens.shape[1:]))
