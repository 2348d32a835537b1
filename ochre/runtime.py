"""`WorldModel`: the learned world behind the runtime contract of DESIGN.md.

    wm = WorldModel.load("checkpoints/coinrun.pt", device="auto")
    state = wm.reset(seed_frames)                  # (K, H, W, 3) uint8, optional (K-1,) actions
    frame, state = wm.step(state, action)          # (H, W, 3) uint8
    video = wm.rollout(seed_b, seed_actions_b, future_actions_b)   # (B, N, H, W, 3) uint8

State is an immutable value on the model's device: keep an old one to rewind or branch.

One world checkpoint (`ochre-world`) holds a token world (the ConvGRU/FiLM token
dynamics, `model.type: convgru`) or a latent world (`latent_gru`, the deterministic
latent predictor, or `latent_flow`, the rectified-flow world, over a continuous
tokenizer's latents); `load` reads the type from the dynamics config and returns a
`WorldModel` or a `LatentWorldModel`, which keep the same contract. `wm.seeds` holds the
clips of its data the checkpoint carries (`ochre.seed_contexts`; None in older ones). A flow world samples
with `wm.flow_steps` Euler steps and guidance `wm.guidance` (None in other worlds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ochre.actions import ActionSpec, action_spec_from_dict
from ochre.checkpoint import build_tokenizer, config_from, load_checkpoint, load_weights
from ochre.device import resolve_device
from ochre.errors import OchreError
from ochre.frames import to_model, to_uint8
from ochre.models.dynamics import Dynamics, DynamicsConfig, DynamicsState
from ochre.models.flow import FlowSampling
from ochre.models.latent_flow import LatentFlow, LatentFlowConfig
from ochre.models.latent_gru import LatentGRU, LatentGRUConfig
from ochre.models.latent_space import warm_up as warm_up_latents
from ochre.models.tokenizer import Tokenizer
from ochre.sampling import Sampling, sample_tokens, warm_up
from ochre.seed_contexts import SeedContexts

LATENT_MODELS = {"latent_gru": (LatentGRUConfig, LatentGRU), "latent_flow": (LatentFlowConfig, LatentFlow)}


@dataclass(frozen=True)
class WorldState:
    """Dynamics state (hidden maps + step count) and the latest frame's codes, on device: its tokens (B, h, w) in
    a token world, its normalised latent (B, C, h, w) in a latent world."""

    dynamics: DynamicsState
    tokens: torch.Tensor

    @property
    def step_count(self) -> int:
        return self.dynamics.step

    def clone(self) -> WorldState:
        return WorldState(self.dynamics.clone(), self.tokens.clone())


class WorldModel:
    """A token world; `WorldModel.load` returns a `LatentWorldModel` for a latent world's checkpoint."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        dynamics: Dynamics | LatentGRU | LatentFlow,
        action_spec: ActionSpec,
        device: torch.device,
        info: dict[str, Any] | None = None,
    ):
        self.tokenizer = tokenizer.to(device).eval()
        self.dynamics = dynamics.to(device).eval()
        self.action_spec = action_spec
        self.device = device
        self.info = info or {}
        h, w = tokenizer.cfg.frame_size
        self.frame_shape = (h, w, 3)
        self.fps = float(self.info.get("fps", 15))
        self.sampling: Sampling = "greedy"
        self.temperature = 1.0
        self.top_k: int | None = None
        self.flow_steps: int | None = None  # flow worlds: Euler steps per frame
        self.guidance: float | None = None  # flow worlds: classifier-free guidance scale on the action
        self.generator = torch.Generator(device=device)
        self.seeds: SeedContexts | None = None  # clips of the world's data in its checkpoint (older ones have none)

    def set_flow_sampling(self, steps: int | None = None, guidance: float | None = None) -> str:
        """Set a flow world's Euler steps and guidance (None keeps the world's own); in another world, return the one
        line that says it ignores them (empty when neither is given or the world is a flow world)."""
        given = [flag for flag, value in (("--flow-steps", steps), ("--guidance", guidance)) if value is not None]
        if given and self.flow_steps is None:
            return f"note: {' and '.join(given)} apply to flow worlds only; this world has no flow sampler and ignores them"
        self.flow_steps = steps if steps is not None else self.flow_steps
        self.guidance = guidance if guidance is not None else self.guidance
        return ""

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> WorldModel:
        payload = load_checkpoint(path, "ochre-world")
        config = payload["dynamics"]["config"]
        latent = isinstance(config, dict) and config.get("type") in LATENT_MODELS
        world = (LatentWorldModel if latent else cls).from_payload(payload, path, device)
        world.info["path"] = str(path)
        if payload.get("seeds") is not None:
            world.seeds = SeedContexts.from_payload(payload["seeds"], path, world.frame_shape, world.action_spec)
        return world

    @classmethod
    def from_payload(cls, payload: dict[str, Any], path: str | Path, device: str = "auto") -> WorldModel:
        """The token world in a loaded `ochre-world` checkpoint."""
        config = payload["dynamics"]["config"]
        tokenizer = build_tokenizer(payload["tokenizer"], path)
        dynamics = Dynamics(config_from(DynamicsConfig, config, path, "dynamics.config"))
        load_weights(dynamics, payload["dynamics"]["state_dict"], path, "dynamics")
        sizes = {"dynamics": dynamics.cfg.codebook_size, "tokenizer": tokenizer.codebook_size, "world": payload["codebook_size"]}
        if len(set(sizes.values())) > 1:
            raise OchreError(f"{path}: codebook sizes disagree ({', '.join(f'{k} {v}' for k, v in sizes.items())})")
        spec = checked_action_spec(payload, dynamics.cfg.factors, path)
        return cls(tokenizer, dynamics, spec, resolve_device(device), world_info(payload))

    # -- frames <-> tokens -------------------------------------------------
    @torch.inference_mode()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """(..., H, W, 3) uint8 -> (..., h, w) long tokens on the model's device."""
        frames = self._check_frames(frames, "frames")
        lead = frames.shape[:-3]
        tokens, _ = self.tokenizer.encode(to_model(frames.reshape(-1, *self.frame_shape), self.device))
        return tokens.view(*lead, *tokens.shape[1:])

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> np.ndarray:
        """(..., h, w) tokens -> (..., H, W, 3) uint8."""
        tokens = torch.as_tensor(tokens, device=self.device).long()
        lead = tokens.shape[:-2]
        frames = self.tokenizer.decode_tokens(tokens.reshape(-1, *tokens.shape[-2:]))
        return to_uint8(frames).reshape(*lead, *self.frame_shape)

    # -- interactive use ---------------------------------------------------
    @torch.inference_mode()
    def reset(self, seed_frames: np.ndarray, seed_actions: np.ndarray | None = None) -> WorldState:
        """Seed with K real frames (K, H, W, 3) and the K-1 actions between them (noop if omitted)."""
        seed_frames = self._check_frames(seed_frames, "seed frames")
        if seed_frames.ndim != 4:
            raise OchreError(f"seed frames must be (K, H, W, 3), got shape {seed_frames.shape}")
        k = len(seed_frames)
        if seed_actions is None:
            seed_actions = self.action_spec.neutral(k - 1)
        seed_actions = self.action_spec.validate(seed_actions, "seed actions")
        want = (k - 1, *self.action_spec.shape)
        if seed_actions.shape != want:
            raise OchreError(f"seed actions must have shape {want} for {k} seed frames, got {seed_actions.shape}")
        codes = self.encode(seed_frames)[None]
        actions = torch.as_tensor(seed_actions, device=self.device)[None]
        return WorldState(self._warm_up(codes, actions), codes[:, -1])

    @torch.inference_mode()
    def step(self, state: WorldState, action: int) -> tuple[np.ndarray, WorldState]:
        """Apply one action to the latest frame; returns the predicted frame (H, W, 3) uint8."""
        state = self.advance(state, action)
        return self.decode(state.tokens)[0], state

    @torch.inference_mode()
    def advance(self, state: WorldState, action: int) -> WorldState:
        """`step` without decoding: the next state, whose codes are the predicted frame."""
        action_t = torch.as_tensor(self.action_spec.validate([action], "action"), device=self.device)
        return self.next_state(state, action_t, self.sampling, self.temperature, self.top_k, self.generator)

    # -- batched open-loop generation --------------------------------------
    @torch.inference_mode()
    def rollout(
        self,
        seed_frames: np.ndarray,
        seed_actions: np.ndarray,
        future_actions: np.ndarray,
        sampling: Sampling = "greedy",
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        """(B, K, H, W, 3), (B, K-1, ...), (B, N, ...) -> predicted frames (B, N, H, W, 3) uint8; "..." is one action's shape."""
        seed_frames = self._check_frames(seed_frames, "seed frames")
        if seed_frames.ndim != 5:
            raise OchreError(f"seed frames must be (B, K, H, W, 3), got shape {seed_frames.shape}")
        b, k = seed_frames.shape[:2]
        seed_actions = self.action_spec.validate(seed_actions, "seed actions")
        future_actions = self.action_spec.validate(future_actions, "actions")
        one = self.action_spec.shape
        if seed_actions.shape != (b, k - 1, *one):
            raise OchreError(f"seed actions must have shape {(b, k - 1, *one)}, got {seed_actions.shape}")
        if future_actions.ndim != 2 + len(one) or future_actions.shape[0] != b or future_actions.shape[2:] != one:
            raise OchreError(f"actions must have shape {(b, 'N', *one)} to match {b} seed sequences, got {future_actions.shape}")
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        codes = self.encode(seed_frames)
        state = WorldState(self._warm_up(codes, torch.as_tensor(seed_actions, device=self.device)), codes[:, -1])
        future = torch.as_tensor(future_actions, device=self.device)
        out = []
        for j in range(future.shape[1]):
            state = self.next_state(state, future[:, j], sampling, temperature, top_k, generator)
            out.append(state.tokens)
        return self.decode(torch.stack(out, 1))

    # -- what a kind of world does -----------------------------------------
    def _warm_up(self, codes: torch.Tensor, actions: torch.Tensor) -> DynamicsState:
        """Seed codes (B, K, ...) and their actions (B, K-1, ...) -> the state after seed frames 0..K-2."""
        return warm_up(self.dynamics, codes, actions)

    def next_state(
        self,
        state: WorldState,
        action: torch.Tensor,
        sampling: Sampling,
        temperature: float,
        top_k: int | None,
        generator: torch.Generator | None,
    ) -> WorldState:
        """One predicted frame for a batch: the state after applying `action` (B,) or (B, F) long, on the device, to
        the latest frame, with these sampling settings (what `advance` and `rollout` do each step; no checks)."""
        dynamics, logits = self.dynamics.step(state.dynamics, state.tokens, action)
        return WorldState(dynamics, sample_tokens(logits, sampling, temperature, top_k, generator))

    def _check_frames(self, frames: np.ndarray, what: str) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8:
            raise OchreError(f"{what} must be uint8 RGB, got dtype {frames.dtype}")
        if frames.ndim < 3 or tuple(frames.shape[-3:]) != self.frame_shape:
            raise OchreError(f"{what} must end in {self.frame_shape} (H, W, 3) for this world, got shape {frames.shape}")
        return frames


class LatentWorldModel(WorldModel):
    """A latent world: frames <-> the continuous tokenizer's latents (normalised as the model takes them), a latent
    model between them. The codes in `WorldState.tokens` and from `encode` are (..., C, h, w) float latents.

    Sampling: "greedy" starts each flow sample from zero noise (deterministic), "sample" from Gaussian noise of
    std `temperature`, with `flow_steps` Euler steps and classifier-free guidance `guidance` (the model config's
    unless changed). top_k does not apply. The bridge (latent_gru) predicts deterministically and ignores them all.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        dynamics: LatentGRU | LatentFlow,
        action_spec: ActionSpec,
        device: torch.device,
        info: dict[str, Any] | None = None,
    ):
        super().__init__(tokenizer, dynamics, action_spec, device, info)
        if isinstance(dynamics, LatentFlow):
            self.flow_steps, self.guidance = dynamics.cfg.flow_steps, dynamics.cfg.guidance

    @classmethod
    def from_payload(cls, payload: dict[str, Any], path: str | Path, device: str = "auto") -> LatentWorldModel:
        """The latent world in a loaded `ochre-world` checkpoint whose dynamics config names a latent model type."""
        tokenizer = build_tokenizer(payload["tokenizer"], path)
        config_cls, model_cls = LATENT_MODELS[payload["dynamics"]["config"]["type"]]
        model = model_cls(config_from(config_cls, payload["dynamics"]["config"], path, "dynamics.config"))
        load_weights(model, payload["dynamics"]["state_dict"], path, "dynamics")
        shape = [model.cfg.latent_channels, *model.cfg.latent_grid]
        if not tokenizer.cfg.continuous or shape != [tokenizer.cfg.latent_channels, *tokenizer.cfg.token_grid]:
            made = f"{tokenizer.cfg.quantizer} codes" if not tokenizer.cfg.continuous else "other latents"
            raise OchreError(f"{path}: the {model.cfg.type} model takes latents {shape} but its tokenizer makes {made}")
        spec = checked_action_spec(payload, model.cfg.factors, path)
        return cls(tokenizer, model, spec, resolve_device(device), world_info(payload))

    @torch.inference_mode()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """(..., H, W, 3) uint8 -> (..., C, h, w) normalised float latents on the model's device."""
        frames = self._check_frames(frames, "frames")
        lead = frames.shape[:-3]
        z = self.tokenizer.encode_latents(to_model(frames.reshape(-1, *self.frame_shape), self.device))
        return self.dynamics.norm.normalize(z).view(*lead, *z.shape[1:])

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """(..., C, h, w) normalised latents -> (..., H, W, 3) uint8."""
        z = torch.as_tensor(latents, device=self.device, dtype=torch.float32)
        lead = z.shape[:-3]
        frames = self.tokenizer.decode_codes(self.dynamics.norm.denormalize(z.reshape(-1, *z.shape[-3:])))
        return to_uint8(frames).reshape(*lead, *self.frame_shape)

    def _warm_up(self, codes: torch.Tensor, actions: torch.Tensor) -> DynamicsState:
        return warm_up_latents(self.dynamics, codes, actions)

    def next_state(
        self,
        state: WorldState,
        action: torch.Tensor,
        sampling: Sampling,
        temperature: float,
        top_k: int | None,
        generator: torch.Generator | None,
    ) -> WorldState:
        dynamics, z = self.dynamics.step(
            state.dynamics, state.tokens, action, self._flow_sampling(sampling, temperature), generator
        )
        return WorldState(dynamics, z)

    def _flow_sampling(self, sampling: Sampling, temperature: float) -> FlowSampling | None:
        """The flow sampler's settings (None for the bridge); noise std `temperature` when sampling, else 0."""
        if self.flow_steps is None:
            return None
        guidance = 1.0 if self.guidance is None else self.guidance
        try:
            return FlowSampling(self.flow_steps, guidance, temperature if sampling == "sample" else 0.0)
        except ValueError as err:
            raise OchreError(f"flow sampling: {err}") from None


def checked_action_spec(payload: dict[str, Any], factors: list[int], path: str | Path) -> ActionSpec:
    """The checkpoint's action schema, once known to give the actions (`factors`) its dynamics model takes."""
    spec = action_spec_from_dict(payload["action_schema"])
    given = list(spec.factors) if spec.kind != "discrete" else [spec.n]
    if factors != given:
        raise OchreError(f"{path}: the dynamics model takes actions {factors} but the action schema '{spec.name}' gives {given}")
    return spec


def world_info(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: payload[k] for k in ("world", "fps", "step", "configs", "source") if k in payload}
