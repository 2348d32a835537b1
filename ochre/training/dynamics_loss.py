"""The dynamics training loss on one batch of token windows (`sequence_loss`), and its parts.

    loss, logs = sequence_loss(model, batch, cfg, p_ar=ar_probability(step, cfg), ctx=LossContext(tokenizer))

Causal teacher forcing: the input at step t is frame t (the real one, or the
model's own prediction of it), the target is frame t+1 — never the target itself.
After `context` teacher-forced warm-up steps, each later input is replaced by
the model's own prediction with probability p_ar (scheduled sampling), which
ramps from 0 to `ar_max` linearly or along an inverse sigmoid; the last `ar_len`
steps of a window become fully autoregressive on the same schedule. Fed-back
predictions are greedy tokens, or Gumbel-softmax samples whose straight-through
gradient crosses the fed-back step (`feedback=gumbel`).

Per step the loss is cross-entropy, plus optional terms: pixel L1 (and LPIPS)
between the frozen tokenizer's decoding of the predicted distribution and of the
target tokens, so perceptual errors train the dynamics; inverse dynamics on
real frame pairs; and the same (frozen) inverse-dynamics head on predicted frames,
which rewards predictions that show the action that was taken.

The logs stay detached tensors on the device: reading them (`common.to_floats`) waits
for the device, so the trainer does it on log steps only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ochre.data.windows import Batch
from ochre.losses import LPIPSLoss
from ochre.models.dynamics import Dynamics
from ochre.models.tokenizer import Tokenizer
from ochre.training.dynamics_config import DynamicsLoopConfig


def ramp(step: int, cfg: DynamicsLoopConfig) -> float:
    """0 -> 1 between ar_start and ar_end: linear, or an inverse sigmoid centred on ar_end's midpoint."""
    if cfg.ar_schedule == "linear":
        return float(np.clip((step - cfg.ar_start) / max(1, cfg.ar_end - cfg.ar_start), 0.0, 1.0))
    if step < cfg.ar_start:
        return 0.0
    mid, width = (cfg.ar_start + cfg.ar_end) / 2, max(1.0, (cfg.ar_end - cfg.ar_start) / 10)
    return 1.0 / (1.0 + math.exp(-(step - mid) / width))


def ar_probability(step: int, cfg: DynamicsLoopConfig) -> float:
    return cfg.ar_max * ramp(step, cfg)


def corrupt(tokens: torch.Tensor, fraction: float, codebook_size: int) -> torch.Tensor:
    if fraction <= 0:
        return tokens
    mask = torch.rand(tokens.shape, device=tokens.device) < fraction
    return torch.where(mask, torch.randint_like(tokens, codebook_size), tokens)


@dataclass
class LossContext:
    """What the optional loss terms need besides the model: the frozen tokenizer and LPIPS."""

    tokenizer: Tokenizer | None = None
    lpips: LPIPSLoss | None = None


def frozen_idm_logits(model: Dynamics, before: torch.Tensor, after: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """The IDM head with its weights detached: gradients reach only the frames it reads."""
    params = {k: v.detach() for k, v in model.idm.named_parameters()}
    return functional_call(model.idm, params, (before, after, span))


def idm_real_loss(model: Dynamics, tokens: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse dynamics on real frames: one random (end, span) per batch; -> (loss, accuracy)."""
    t_len, max_span = tokens.shape[1], model.cfg.idm_span
    k = int(torch.randint(1, min(max_span, t_len - 1) + 1, ()))
    end = int(torch.randint(k, t_len, ()))
    span = torch.full((tokens.shape[0],), k, device=tokens.device)
    logits = model.idm(model.embed(tokens[:, end - k]), model.embed(tokens[:, end]), span)
    return model.idm.loss(logits, actions[:, end - k : end])


def change_weighted_mean(loss: torch.Tensor, changed: torch.Tensor, weight: float) -> torch.Tensor:
    """Mean of a per-position loss with positions where `changed` is true weighted 1 + `weight`, normalised to mean 1."""
    w = 1.0 + weight * changed.float()
    return (loss * w).sum() / w.sum()


def changed_weighted_ce(logits: torch.Tensor, target: torch.Tensor, previous: torch.Tensor, weight: float) -> torch.Tensor:
    """Cross-entropy over (B, K, h, w) logits, cells whose true token differs from the previous frame's weighted
    1 + `weight` and the weights normalised to mean 1: a small moving object (Pong's ball, a few of 256 cells)
    counts as much as the still field it moves over. weight 0: plain cross-entropy."""
    rows = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])  # no copy for the model's channels-last logits
    if weight <= 0:
        return F.cross_entropy(rows, target.reshape(-1))
    per_cell = F.cross_entropy(rows, target.reshape(-1), reduction="none").view_as(target)
    return change_weighted_mean(per_cell, target != previous, weight)


def changed_weighted_l1(pred: torch.Tensor, target: torch.Tensor, previous: torch.Tensor, weight: float) -> torch.Tensor:
    """L1 over (B, 3, H, W) frames, pixels whose target differs from the previous frame (by more than 0.05 in
    any channel, frames in [-1, 1]) weighted 1 + `weight`, the weights normalised to mean 1: a one-pixel ball
    counts as much as the field around it. weight 0: plain L1."""
    if weight <= 0:
        return F.l1_loss(pred, target)
    changed = (target - previous).abs().amax(1) > 0.05
    return change_weighted_mean((pred - target).abs().mean(1), changed, weight)


def sequence_loss(
    model: Dynamics, batch: Batch, cfg: DynamicsLoopConfig, p_ar: float, ctx: LossContext | None = None, ar_tail: int = 0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """batch.rows (B, T, h, w) tokens, batch.actions (B, T[, F]). Returns (mean loss over T-1 steps, logs).

    The per-step losses are summed as they are computed (no stack of all logits). The logs are detached
    scalar tensors (means over the steps, summed in float64), so computing them never waits on the device.
    ar_tail: the last `ar_tail` inputs are the model's own predictions for every window.
    """
    ctx = ctx or LossContext()
    tokens, actions = batch.rows, batch.actions
    b, t_len = tokens.shape[:2]
    k_size = model.cfg.codebook_size
    state = model.initial_state(b, tokens.device)
    emb = model.embed(corrupt(tokens[:, 0], cfg.token_noise, k_size))
    n_pix = min(cfg.pixel_samples, b)
    use_pixels = ctx.tokenizer is not None and (cfg.pixel_weight > 0 or (cfg.lpips_weight > 0 and ctx.lpips is not None))
    if use_pixels:
        with torch.no_grad():
            target_frames = ctx.tokenizer.decode_tokens(tokens[:n_pix].flatten(0, 1)).unflatten(0, (n_pix, t_len))
    use_idm_pred = cfg.idm_pred_weight > 0 and model.cfg.idm_span > 0
    total = tokens.new_zeros((), dtype=torch.float32)
    parts = ("ce", "pixel", "lpips", "idm_pred", "acc", "copy_acc", "fed_back")
    sums = {k: tokens.new_zeros((), dtype=torch.float64) for k in parts}
    for t in range(t_len - 1):
        target = tokens[:, t + 1]  # frame t+1: what action t does to frame t
        state, logits = model.step_embedded(state, emb, actions[:, t])
        logits = logits.float()
        ce = changed_weighted_ce(logits, target, tokens[:, t], cfg.change_weight)
        step_loss = ce
        sums["ce"] += ce.detach()
        probs = None  # the pixel terms read the first n_pix windows only; idm_pred reads all of them
        if use_pixels or use_idm_pred:
            probs = (logits if use_idm_pred else logits[:n_pix]).softmax(1)
        if use_pixels:
            pred_frames = ctx.tokenizer.decode_embeddings(probs[:n_pix])
            if cfg.pixel_weight > 0:
                pix = changed_weighted_l1(pred_frames, target_frames[:, t + 1], target_frames[:, t], cfg.pixel_change_weight)
                step_loss = step_loss + cfg.pixel_weight * pix
                sums["pixel"] += pix.detach()
            if cfg.lpips_weight > 0 and ctx.lpips is not None:
                perceptual = ctx.lpips(pred_frames, target_frames[:, t + 1])
                step_loss = step_loss + cfg.lpips_weight * perceptual
                sums["lpips"] += perceptual.detach()
        if use_idm_pred:
            span = torch.ones(b, dtype=torch.long, device=tokens.device)
            idm_logits = frozen_idm_logits(model, emb.detach(), model.embed_soft(probs), span)
            idm_loss, _ = model.idm.loss(idm_logits, actions[:, t : t + 1])
            step_loss = step_loss + cfg.idm_pred_weight * idm_loss
            sums["idm_pred"] += idm_loss.detach()
        total = total + step_loss
        pred = logits.detach().argmax(1)
        sums["acc"] += (pred == target).float().mean()
        sums["copy_acc"] += (tokens[:, t] == target).float().mean()
        emb = model.embed(corrupt(target, cfg.token_noise, k_size))
        if t + 1 >= cfg.context and (p_ar > 0 or t + 1 >= t_len - 1 - ar_tail):
            own = torch.rand(b, device=tokens.device) < p_ar
            if t + 1 >= t_len - 1 - ar_tail:
                own[:] = True
            if cfg.feedback == "gumbel" and not cfg.detach_feedback:
                soft = F.gumbel_softmax(logits, tau=cfg.gumbel_tau, hard=True, dim=1)
                own_emb = model.embed_soft(soft)
            else:
                own_emb = model.embed(corrupt(pred, cfg.token_noise, k_size))
            emb = torch.where(own[:, None, None, None], own_emb, emb)
            sums["fed_back"] += own.float().mean()
    n = t_len - 1
    loss = total / n
    logs = {"loss": loss.detach()} | {k: sums[k] / n for k in ("ce", "acc", "copy_acc")}
    logs |= {"p_ar": torch.full_like(sums["ce"], p_ar), "fed_back": sums["fed_back"] / n}
    enabled = {
        "pixel": use_pixels and cfg.pixel_weight > 0,
        "lpips": use_pixels and ctx.lpips is not None and cfg.lpips_weight > 0,
    }
    enabled["idm_pred"] = use_idm_pred
    logs |= {k: sums[k] / n for k, on in enabled.items() if on}  # same keys on every rank, whatever the values
    if cfg.idm_weight > 0 and model.cfg.idm_span > 0:
        idm_loss, idm_acc = idm_real_loss(model, tokens, actions)
        loss = loss + cfg.idm_weight * idm_loss
        logs |= {"idm": idm_loss.detach(), "idm_acc": idm_acc.detach()}
    logs["loss"] = loss.detach()
    return loss, logs


class WindowLoss(nn.Module):
    """`sequence_loss` as a module's forward, so that DistributedDataParallel can wrap it.

    DDP averages gradients over ranks only for work done inside its own forward: that
    call opens the iteration whose backward then all-reduces each gradient bucket as it
    fills. The loss drives the model through initial_state / embed / step_embedded /
    idm, never Dynamics.forward, so the whole per-window loss runs here and DDP wraps
    this module. Its only submodule is the dynamics model: DDP syncs exactly those
    weights, while the frozen tokenizer and LPIPS in `ctx` stay plain attributes. The
    IDM head gets no gradient unless idm_weight > 0 (idm_pred reads it detached), which
    `distributed.data_parallel` allows for.
    """

    def __init__(self, model: Dynamics, cfg: DynamicsLoopConfig, ctx: LossContext):
        super().__init__()
        self.model, self.cfg, self.ctx = model, cfg, ctx

    def forward(self, batch: Batch, p_ar: float, ar_tail: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return sequence_loss(self.model, batch, self.cfg, p_ar, self.ctx, ar_tail)
