"""Validation of a dynamics model during training, on rank 0's fixed held-out windows.

    row = validate(model, tokenizer, val_batch, cfg.train, logger, step, data.action_spec)
    row |= validate_ball(model, tokenizer, ball_windows, cfg.train.val_context)  # Pong only

`validate` compares teacher-forced and autoregressive loss, scores an open-loop rollout in
decoded-frame space and checks that the actions matter; `validate_ball` is Pong's ball
target. The play check (`val/play_*`) lives in `play_validation.py`.
"""

from __future__ import annotations

import numpy as np
import torch

from ochre.actions import ActionSpec
from ochre.data.windows import Batch
from ochre.diagnostics import action_response_grid, action_sensitivity, prediction_stats, rollout_strips, teacher_forced_tokens
from ochre.frames import to_uint8
from ochre.images import image_grid
from ochre.metrics import psnr
from ochre.models.dynamics import Dynamics
from ochre.models.tokenizer import Tokenizer
from ochre.sampling import rollout_tokens, warm_up
from ochre.training.common import to_floats
from ochre.training.dynamics_config import DynamicsLoopConfig
from ochre.training.dynamics_loss import idm_real_loss, sequence_loss
from ochre.training.logger import RunLogger
from ochre.training.play_validation import decoded_frames
from ochre.world_checks import BALL_HORIZON, BALL_TOL_PX, ball_errors


@torch.no_grad()
def validate(
    model: Dynamics, tokenizer: Tokenizer, batch: Batch, cfg: DynamicsLoopConfig, logger: RunLogger, step: int, spec: ActionSpec
) -> dict[str, float]:
    """Held-out episodes: teacher-forced vs autoregressive loss, an open-loop rollout scored in decoded-frame space,
    and whether the actions matter (action sensitivity, action-response grid, IDM accuracy)."""
    k = cfg.val_context
    seed_tokens, seed_actions = batch.rows[:8, :k], batch.actions[:8, : k - 1]
    sensitivity = action_sensitivity(model, tokenizer, seed_tokens, seed_actions, spec)
    grid, _ = action_response_grid(model, tokenizer, seed_tokens, seed_actions, spec)
    logger.image("action_response", step, grid)
    tf = teacher_forced_tokens(model, batch.rows[:4], batch.actions[:4])
    model.eval()
    clean = DynamicsLoopConfig(token_noise=0.0, context=cfg.val_context - 1)
    logs = to_floats(sequence_loss(model, batch, clean, 0.0)[1])
    ar_logs = to_floats(sequence_loss(model, batch, clean, 1.0)[1])  # every input after the context is the model's own
    pred = rollout_tokens(model, batch.rows[:, :k], batch.actions[:, : k - 1], batch.actions[:, k - 1 : -1])
    stats = prediction_stats(
        model.step(warm_up(model, batch.rows[:, :k], batch.actions[:, : k - 1]), batch.rows[:, k - 1], batch.actions[:, k - 1])[1]
    )
    model.train()
    ar = torch.cat([batch.rows[:4, 1:k], pred[:4]], 1)  # real context frames, then the model's own
    logger.image("strips", step, rollout_strips(tokenizer, batch.rows[:4, 1:], tf, ar))

    def decode(tokens: torch.Tensor) -> torch.Tensor:  # (B, N, h, w) -> (B, N, 3, H, W) in [0, 1]
        frames = tokenizer.decode_tokens(tokens.flatten(0, 1)).clamp(-1, 1)
        return ((frames + 1) / 2).unflatten(0, tokens.shape[:2])

    target, frames = decode(batch.rows[:, k:]), decode(pred)
    copy = decode(batch.rows[:, k - 1 : k].expand_as(batch.rows[:, k:]))
    per_h = [psnr(frames[:, h], target[:, h]) for h in range(frames.shape[1])]
    gt_u8, pred_u8 = to_uint8(target[0] * 2 - 1), to_uint8(frames[0] * 2 - 1)
    logger.image("val_rollout", step, image_grid([gt_u8, pred_u8]))
    logger.video("val_rollout", step, np.concatenate([gt_u8, pred_u8], axis=2), fps=8)
    idm = {}
    if model.cfg.idm_span:
        _, idm_acc = idm_real_loss(model, batch.rows, batch.actions)
        idm = {"val/idm_acc": float(idm_acc)}
    return (
        idm
        | {f"val/{name}": v for name, v in sensitivity.items()}
        | {
            "val/entropy": stats["entropy"],
            "val/codes_in_use": stats["codes_in_use"],
            "val/loss": logs["loss"],
            "val/loss_ar": ar_logs["loss"],
            "val/ar_gap": ar_logs["loss"] - logs["loss"],
            "val/acc": logs["acc"],
            "val/copy_acc": logs["copy_acc"],
            "val/rollout_psnr": psnr(frames, target),
            "val/copy_psnr": psnr(copy, target),
            "val/rollout_psnr@1": per_h[0],
            f"val/rollout_psnr@{len(per_h)}": per_h[-1],
        }
    )


@torch.no_grad()
def validate_ball(model: Dynamics, tokenizer: Tokenizer, windows: Batch, context: int, batch: int = 64) -> dict[str, float]:
    """Pong's target on validation episodes: open-loop rollouts of the windows' actions, is the ball within
    BALL_TOL_PX of the true one at step BALL_HORIZON (of the cases where the true ball is on screen)?
    Step 1 is scored too: what is lost there is the one-step prediction, the rest is drift.

    The truth is the true tokens decoded, so a frame whose ball the tokenizer loses is not a case;
    `python -m train.evaluate` scores held-out games against the real frames.
    """
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    steps = [0, BALL_HORIZON - 1]  # rollout indices of steps 1 and BALL_HORIZON

    pred_frames, true_frames = [], []
    for i in range(0, len(windows.rows), batch):
        rows, actions = windows.rows[i : i + batch].to(device), windows.actions[i : i + batch].to(device)
        pred = rollout_tokens(model, rows[:, :context], actions[:, : context - 1], actions[:, context - 1 : -1])
        pred_frames.append(decoded_frames(tokenizer, pred[:, steps]))
        true_frames.append(decoded_frames(tokenizer, rows[:, context:][:, steps]))
    model.train(was_training)
    on_screen, error = ball_errors(np.concatenate(pred_frames), np.concatenate(true_frames))
    logs = {}
    for j, step in enumerate(s + 1 for s in steps):
        cases = int(on_screen[:, j].sum())
        seen = error[on_screen[:, j], j]
        logs[f"val/ball@{step}"] = float((seen <= BALL_TOL_PX).sum() / cases) if cases else float("nan")
        logs[f"val/ball_missing@{step}"] = float(np.isinf(seen).sum() / cases) if cases else float("nan")
    return logs | {"val/ball_cases": float(on_screen[:, -1].sum())}
