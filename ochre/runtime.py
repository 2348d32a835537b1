"""`WorldModel`: the learned world behind the runtime contract of DESIGN.md.

    wm = WorldModel.load("checkpoints/coinrun.pt", device="auto")
    state = wm.reset(seed_frames)                  # (K, H, W, 3) uint8, optional (K-1,) actions
    frame, state = wm.step(state, action)          # (H, W, 3) uint8
    video = wm.rollout(seed_b, seed_actions_b, future_actions_b)   # (B, N, H, W, 3) uint8

State is an immutable value on the model's device: keep an old one to rewind or branch.
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
from ochre.models.tokenizer import Tokenizer
from ochre.sampling import Sampling, rollout_tokens, sample_tokens, warm_up


@dataclass(frozen=True)
class WorldState:
    """Dynamics state (hidden maps + step count) and the latest frame's tokens (B, h, w), on device."""

    dynamics: DynamicsState
    tokens: torch.Tensor

    @property
    def step_count(self) -> int:
        return self.dynamics.step

    def clone(self) -> WorldState:
        return WorldState(self.dynamics.clone(), self.tokens.clone())


class WorldModel:
    def __init__(
        self,
        tokenizer: Tokenizer,
        dynamics: Dynamics,
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
        self.generator = torch.Generator(device=device)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> WorldModel:
        payload = load_checkpoint(path, "ochre-world")
        tokenizer = build_tokenizer(payload["tokenizer"], path)
        dynamics = Dynamics(config_from(DynamicsConfig, payload["dynamics"]["config"], path, "dynamics.config"))
        load_weights(dynamics, payload["dynamics"]["state_dict"], path, "dynamics")
        sizes = {"dynamics": dynamics.cfg.codebook_size, "tokenizer": tokenizer.codebook_size, "world": payload["codebook_size"]}
        if len(set(sizes.values())) > 1:
            raise OchreError(f"{path}: codebook sizes disagree ({', '.join(f'{k} {v}' for k, v in sizes.items())})")
        spec = action_spec_from_dict(payload["action_schema"])
        factors = list(spec.factors) if spec.kind != "discrete" else [spec.n]
        if dynamics.cfg.factors != factors:
            raise OchreError(
                f"{path}: the dynamics model takes actions {dynamics.cfg.factors} but the action schema "
                f"'{spec.name}' gives {factors}"
            )
        info = {k: payload[k] for k in ("world", "fps", "step", "configs") if k in payload}
        return cls(tokenizer, dynamics, spec, resolve_device(device), info)

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
        tokens = self.encode(seed_frames)[None]
        actions = torch.as_tensor(seed_actions, device=self.device)[None]
        return WorldState(warm_up(self.dynamics, tokens, actions), tokens[:, -1])

    @torch.inference_mode()
    def step(self, state: WorldState, action: int) -> tuple[np.ndarray, WorldState]:
        """Apply one action to the latest frame; returns the predicted frame (H, W, 3) uint8."""
        state = self.advance(state, action)
        return self.decode(state.tokens)[0], state

    @torch.inference_mode()
    def advance(self, state: WorldState, action: int) -> WorldState:
        """`step` without decoding: the next state, whose tokens are the predicted frame."""
        action_t = torch.as_tensor(self.action_spec.validate([action], "action"), device=self.device)
        dyn, logits = self.dynamics.step(state.dynamics, state.tokens, action_t)
        tokens = sample_tokens(logits, self.sampling, self.temperature, self.top_k, self.generator)
        return WorldState(dyn, tokens)

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
        tokens = rollout_tokens(
            self.dynamics,
            self.encode(seed_frames),
            torch.as_tensor(seed_actions, device=self.device),
            torch.as_tensor(future_actions, device=self.device),
            sampling,
            temperature,
            top_k,
            generator,
        )
        return self.decode(tokens)

    def _check_frames(self, frames: np.ndarray, what: str) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8:
            raise OchreError(f"{what} must be uint8 RGB, got dtype {frames.dtype}")
        if frames.ndim < 3 or tuple(frames.shape[-3:]) != self.frame_shape:
            raise OchreError(f"{what} must end in {self.frame_shape} (H, W, 3) for this world, got shape {frames.shape}")
        return frames
