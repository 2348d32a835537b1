"""The pixel-space FiLM baseline behind the same batched `rollout` as `ochre.WorldModel`.

    pw = PixelWorld.load("runs/.../checkpoints/pixel_world.pt")
    frames = pw.rollout(seed_frames, seed_actions, future_actions)   # uint8 (B, N, H, W, 3)

It predicts deterministically (no sampling), so the sampling arguments of
`WorldModel.rollout` are accepted and ignored; the evaluator and the IDM scorer call
both kinds of world the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ochre.actions import action_spec_from_dict
from ochre.checkpoint import config_from, load_checkpoint, load_weights
from ochre.device import resolve_device
from ochre.errors import OchreError
from ochre.frames import to_unit
from ochre.models.pixel_film import PixelFiLM, PixelFiLMConfig, rollout_frames
from ochre.seed_contexts import SeedContexts


class PixelWorld:
    def __init__(self, model: PixelFiLM, action_spec, device: torch.device, info: dict[str, Any] | None = None):
        self.model = model.to(device).eval()
        self.action_spec = action_spec
        self.device = device
        self.info = info or {}
        h, w = model.cfg.frame_size
        self.frame_shape = (h, w, 3)
        self.fps = float(self.info.get("fps", 15))
        self.seeds: SeedContexts | None = None  # clips of its data in the checkpoint (older ones have none)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> PixelWorld:
        payload = load_checkpoint(path, "ochre-pixel-world")
        model = PixelFiLM(config_from(PixelFiLMConfig, payload["model"]["config"], path, "model.config"))
        load_weights(model, payload["model"]["state_dict"], path, "model")
        info = {k: payload[k] for k in ("world", "fps", "step", "configs") if k in payload} | {"path": str(path)}
        world = cls(model, action_spec_from_dict(payload["action_schema"]), resolve_device(device), info)
        if payload.get("seeds") is not None:
            world.seeds = SeedContexts.from_payload(payload["seeds"], path, world.frame_shape, world.action_spec)
        return world

    @torch.inference_mode()
    def rollout(self, seed_frames: np.ndarray, seed_actions: np.ndarray, future_actions: np.ndarray, **_: Any) -> np.ndarray:
        """(B, K, H, W, 3) uint8 with K >= past_frames, (B, K-1, ...), (B, N, ...) -> (B, N, H, W, 3) uint8."""
        seed_frames = np.asarray(seed_frames)
        p = self.model.cfg.past_frames
        if seed_frames.dtype != np.uint8 or seed_frames.ndim != 5 or tuple(seed_frames.shape[2:]) != self.frame_shape:
            raise OchreError(
                f"seed frames must be uint8 (B, K, {', '.join(map(str, self.frame_shape))}), got {seed_frames.dtype} {seed_frames.shape}"
            )
        if seed_frames.shape[1] < p:
            raise OchreError(f"the pixel FiLM baseline needs at least {p} seed frames, got {seed_frames.shape[1]}")
        seed_actions = torch.as_tensor(self.action_spec.validate(seed_actions, "seed actions"), device=self.device)
        future = torch.as_tensor(self.action_spec.validate(future_actions, "actions"), device=self.device)
        pred = rollout_frames(self.model, to_unit(seed_frames).to(self.device), seed_actions, future)
        return (pred * 255).round().clamp(0, 255).byte().movedim(-3, -1).cpu().numpy()
