"""Action-conditioned ConvGRU dynamics over token grids.

    state = model.initial_state(batch)
    state, logits = model.step(state, tokens_t, action_t)   # logits for tokens_{t+1}

tokens_t (B, h, w) -> embedding -> stride-2 conv stem (work at h/2 x w/2) ->
FiLM(action) on the input of each ConvGRU cell (so the action enters the hidden
state), cells stacked with residual connections -> optional causal attention
over a buffer of pooled recent hidden states -> transposed conv back to h x w,
concatenated with the input embedding (copying what does not move is easy) ->
per-position logits over the codebook.

With `head_frames: 2` the head also sees the previous step's input embedding, so
small fast objects (Pong's ball moves 1-3 px, under one token cell, per step) can
be carried forward from their last two positions at full token resolution
instead of through the half-resolution hidden state.

Actions are factored: one categorical per component (`action_factors`; a
discrete world has one). With `camera_factors` > 0 the first components (yaw,
pitch bins) get their own embedding and FiLM layers, so camera and movement
learn through separate pathways instead of competing for one.

Camera warp (`camera_shift` given): turning the camera shifts the picture, so
before the cells run, the input embedding and the hidden maps are translated by
the shift that the step's yaw and pitch bins stand for (a learned table, one
entry per bin, in token cells, started from the camera geometry). A learned gate
per token cell (starting near 1) blends the shifted and the unshifted map, so parts
of the screen that do not turn with the view (a weapon, a HUD) can stay in place.
The cells then only have to draw what the turn reveals and correct the shift; the
copy path of the head copies the shifted view.

Movement zoom (`move_zoom` given): walking forward grows the picture about its centre
and walking back shrinks it. Each binary movement control has a learned log scale per
step (started from the config, e.g. +0.02 for forward and -0.02 for back); the held
controls add up to one scale, applied with the camera shift under the same gate.

An inverse-dynamics head (`idm_span` > 0) reads two embedded frames k steps
apart and predicts the actions taken between them (the mean one-hot per
component); the trainer fits it on real frames and uses it to check that
predicted frames show the action that was taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DynamicsConfig:
    codebook_size: int = 1000  # must equal the tokenizer's (checked when training starts)
    token_grid: list[int] = field(default_factory=lambda: [16, 16])  # (h, w) of token grids
    num_actions: int = 15  # discrete worlds: size of the action set
    action_factors: list[int] = field(default_factory=list)  # factored actions: size of each component ([] = [num_actions])
    camera_factors: int = 0  # leading components with their own FiLM pathway (first-person: 2, yaw and pitch)
    embed_dim: int = 64  # token embedding width
    hidden_dim: int = 96  # ConvGRU width (at half the token resolution)
    layers: int = 2  # stacked ConvGRU cells
    action_dim: int = 64  # action embedding width
    memory: int = 0  # temporal buffer: recent pooled hidden states read by causal attention (0 = off)
    memory_pool: int = 2  # each buffered state is pooled to memory_pool x memory_pool positions
    memory_heads: int = 4  # attention heads
    idm_span: int = 0  # inverse-dynamics head for spans of 1..idm_span steps (0 = off)
    head_frames: int = 1  # input embeddings the head sees: 1 = this step's, 2 = also the previous step's
    camera_warp: list[float] = field(default_factory=list)  # pixels of shift per degree of [yaw, pitch] ([] = off)
    camera_shift: list[float] = field(default_factory=list)  # from camera_warp: per yaw bin, then pitch bin, in cells
    move_zoom: list[float] = field(default_factory=list)  # log scale per step of each non-camera control when held ([] = off)
    type: Literal["convgru"] = "convgru"  # model type (train.dynamics dispatches on it; "pixel_film" is the pixel baseline)

    def __post_init__(self) -> None:
        if any(s % 2 for s in self.token_grid):
            raise ValueError(f"token_grid {self.token_grid} must be even (the stem halves it)")
        if self.head_frames not in (1, 2):
            raise ValueError(f"head_frames must be 1 or 2, got {self.head_frames}")
        if self.hidden_dim % self.memory_heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} must be divisible by memory_heads {self.memory_heads}")
        if self.camera_factors < 0 or (self.camera_factors and self.camera_factors >= len(self.factors)):
            raise ValueError(f"camera_factors {self.camera_factors} must leave at least one of {self.factors} for movement")
        if self.camera_shift and (self.camera_factors != 2 or len(self.camera_shift) != sum(self.factors[:2])):
            raise ValueError(
                f"camera_shift needs camera_factors 2 and one value per yaw and pitch bin ({sum(self.factors[:2])}), "
                f"got camera_factors {self.camera_factors} and {len(self.camera_shift)} values"
            )
        movement = self.factors[self.camera_factors :]
        resolved = bool(self.action_factors or self.num_actions)  # a training config learns them from the data later
        if self.move_zoom and resolved and (len(self.move_zoom) != len(movement) or any(f != 2 for f in movement)):
            raise ValueError(
                f"move_zoom needs one value per non-camera control ({len(movement)}), each an on/off button; "
                f"got {len(self.move_zoom)} values for controls with {movement} choices"
            )

    @property
    def warped(self) -> bool:
        """Whether the step warps its input and hidden maps (a camera shift, a movement zoom or both)."""
        return bool(self.camera_shift or self.move_zoom)

    @property
    def factors(self) -> list[int]:
        return list(self.action_factors) or [self.num_actions]


@dataclass
class DynamicsState:
    """Recurrent state: one (B, C, h/2, w/2) hidden map per layer, the temporal buffer, the step count.

    memory: (B, L, P, C) pooled hidden states of the last L steps (oldest first), or None.
    previous: (B, E, h, w) the last step's input embedding (`head_frames: 2`), or None.
    """

    hidden: list[torch.Tensor]
    step: int = 0
    memory: torch.Tensor | None = None
    previous: torch.Tensor | None = None

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> DynamicsState:
        """The same state with `fn` applied to every tensor in it."""

        def maybe(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else fn(x)

        return DynamicsState([fn(h) for h in self.hidden], self.step, maybe(self.memory), maybe(self.previous))

    def clone(self) -> DynamicsState:
        return self.map(torch.Tensor.clone)

    def expand(self, batch: int) -> DynamicsState:
        """`batch` views of a batch-1 state (no copy)."""
        return self.map(lambda x: x.expand(batch, *x.shape[1:]))


class ConvGRUCell(nn.Module):
    """ConvGRU with the update and reset gates computed by one fused convolution."""

    def __init__(self, dim: int):
        super().__init__()
        self.gates = nn.Conv2d(2 * dim, 2 * dim, 3, padding=1)
        self.candidate = nn.Conv2d(2 * dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        n = torch.tanh(self.candidate(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * n


class FiLM(nn.Module):
    """x * (1 + gamma(a)) + beta(a); starts as the identity (zero-initialised projection)."""

    def __init__(self, cond_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(cond)[:, :, None, None].chunk(2, 1)
        return x * (1 + gamma) + beta


class FactoredEmbedding(nn.Embedding):
    """Sum of one embedding per action component, stored as one table (rows offset per component).

    With a single component it is exactly `nn.Embedding(n, dim)`, state dict included.
    """

    def __init__(self, factors: list[int], dim: int):
        super().__init__(sum(factors), dim)
        offsets = torch.tensor([0, *factors[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)

    def forward(self, action: torch.Tensor) -> torch.Tensor:
        """(B,) or (B, F) long -> (B, dim)."""
        a = action.view(action.shape[0], -1)
        return super().forward(a + self.offsets).sum(1)


def action_pathway(factors: list[int], dim: int) -> nn.Sequential:
    return nn.Sequential(FactoredEmbedding(factors, dim), nn.GELU(), nn.Linear(dim, dim))


def translate(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, log_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Shift (B, C, h, w) maps by (dx, dy) cells each, (B,) floats: out[y, x] = x[y - dy, x - dx];
    with `log_scale` (B,) the shifted map is also scaled by e^s about its centre (s > 0 grows it).

    Bilinear between cells, zeros where the warp uncovers the border; differentiable in dx, dy and s.
    """
    b, _, h, w = x.shape
    theta = x.new_zeros(b, 2, 3)
    if log_scale is None:
        theta[:, 0, 0] = theta[:, 1, 1] = 1
    else:
        theta[:, 0, 0] = theta[:, 1, 1] = torch.exp(-log_scale)
    theta[:, 0, 2], theta[:, 1, 2] = -2 * dx / w, -2 * dy / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class TemporalMemory(nn.Module):
    """Causal attention from the current hidden map over pooled hidden states of the last L steps.

    Each step's top hidden map is average-pooled to P = pool x pool positions and
    appended to a buffer of L steps; every position of the current map attends to
    all L x P entries, with a learned bias per head and time offset (relative
    position). The output projection starts at zero, so the model begins as the
    plain ConvGRU.
    """

    def __init__(self, dim: int, length: int, pool: int, heads: int):
        super().__init__()
        self.length, self.pool, self.heads = length, pool, heads
        self.norm_q, self.norm_kv = nn.GroupNorm(1, dim), nn.LayerNorm(dim)
        self.q = nn.Conv2d(dim, dim, 1)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Conv2d(dim, dim, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.time_bias = nn.Parameter(torch.zeros(heads, length))

    def push(self, memory: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
        """Append the pooled (B, C, h, w) map to the (B, L, P, C) buffer, dropping the oldest."""
        pooled = F.adaptive_avg_pool2d(h, self.pool).flatten(2).transpose(1, 2)  # (B, P, C)
        if memory is None:
            memory = pooled.new_zeros(h.shape[0], self.length, *pooled.shape[1:])
        return torch.cat([memory[:, 1:], pooled[:, None]], 1)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, filled: int) -> torch.Tensor:
        """x (B, C, h, w), memory (B, L, P, C) of which the newest `filled` steps are real -> x + attention."""
        b, c, hh, ww = x.shape
        n_head, d = self.heads, c // self.heads
        q = self.q(self.norm_q(x)).view(b, n_head, d, hh * ww).transpose(2, 3)  # (B, H, hw, d)
        k, v = self.kv(self.norm_kv(memory)).chunk(2, -1)  # (B, L, P, C) each
        k = k.reshape(b, -1, n_head, d).transpose(1, 2)  # (B, H, L*P, d)
        v = v.reshape(b, -1, n_head, d).transpose(1, 2)
        p = memory.shape[2]
        bias = self.time_bias.repeat_interleave(p, dim=1)  # (H, L*P): one bias per time offset
        empty = (torch.arange(self.length, device=x.device) < self.length - filled).repeat_interleave(p)
        bias = bias.masked_fill(empty, float("-inf"))
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None, :, None, :].to(q.dtype))
        return x + self.out(att.transpose(2, 3).reshape(b, c, hh, ww))


class InverseDynamics(nn.Module):
    """Predicts the actions taken between two embedded frames k steps apart (k = 1..max_span).

    Output: logits (B, sum(factors)); the target per component is the mean one-hot
    of the actions over the span (for k = 1, the action itself).
    """

    def __init__(self, embed_dim: int, factors: list[int], max_span: int, width: int = 64):
        super().__init__()
        self.factors = factors
        self.encode = nn.Sequential(
            nn.Conv2d(2 * embed_dim, width, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.span = nn.Embedding(max_span, width)
        self.head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, sum(factors)))

    def forward(self, before: torch.Tensor, after: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
        """before/after (B, E, h, w) embedded frames, span (B,) long in 1..max_span -> logits (B, sum(factors))."""
        return self.head(self.encode(torch.cat([before, after], 1)) + self.span(span - 1))

    def loss(self, logits: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft cross-entropy per component against the span's actions (B, k[, F]); -> (loss, accuracy of the argmax)."""
        acts = actions.view(*actions.shape[:2], -1)
        total, correct = logits.new_zeros(()), logits.new_zeros(())
        for i, (chunk, n) in enumerate(zip(logits.split(self.factors, -1), self.factors, strict=True)):
            target = F.one_hot(acts[..., i], n).float().mean(1)
            total = total + torch.sum(-target * chunk.log_softmax(-1), -1).mean()
            correct = correct + (chunk.argmax(-1) == target.argmax(-1)).float().mean()
        return total / len(self.factors), correct / len(self.factors)


class Dynamics(nn.Module):
    def __init__(self, cfg: DynamicsConfig):
        super().__init__()
        self.cfg = cfg
        e, c, a = cfg.embed_dim, cfg.hidden_dim, cfg.action_dim
        factors, n_cam = cfg.factors, cfg.camera_factors
        self.token_embed = nn.Embedding(cfg.codebook_size, e)
        self.action_embed = action_pathway(factors[n_cam:], a)
        self.films = nn.ModuleList(FiLM(a, c) for _ in range(cfg.layers))
        if n_cam:
            self.camera_embed = action_pathway(factors[:n_cam], a)
            self.camera_films = nn.ModuleList(FiLM(a, c) for _ in range(cfg.layers))
        self.stem = nn.Conv2d(e, c, 4, stride=2, padding=1)
        self.cells = nn.ModuleList(ConvGRUCell(c) for _ in range(cfg.layers))
        if cfg.memory:
            self.memory = TemporalMemory(c, cfg.memory, cfg.memory_pool, cfg.memory_heads)
        if cfg.idm_span:
            self.idm = InverseDynamics(e, factors, cfg.idm_span)
        if cfg.camera_shift:
            self.camera_shift = nn.Parameter(torch.tensor(cfg.camera_shift, dtype=torch.float32))
        if cfg.move_zoom:
            self.move_zoom = nn.Parameter(torch.tensor(cfg.move_zoom, dtype=torch.float32))
        if cfg.warped:
            self.warp_gate = nn.Parameter(torch.full(cfg.token_grid, 4.0))  # logits: sigmoid(4) = 0.98, shift nearly everywhere
        self.up = nn.ConvTranspose2d(c, e, 4, stride=2, padding=1)
        self.head = nn.Sequential(
            nn.Conv2d((1 + cfg.head_frames) * e, e, 3, padding=1), nn.GELU(), nn.Conv2d(e, cfg.codebook_size, 1)
        )

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> DynamicsState:
        h, w = (s // 2 for s in self.cfg.token_grid)
        device = device or self.stem.weight.device
        return DynamicsState([torch.zeros(batch, self.cfg.hidden_dim, h, w, device=device) for _ in self.cells])

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, h, w) long -> (B, E, h, w)."""
        return self.token_embed(tokens).permute(0, 3, 1, 2)

    def embed_soft(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) distribution over codes -> (B, E, h, w); differentiable in probs."""
        return torch.einsum("bkhw,ke->behw", probs, self.token_embed.weight.to(probs.dtype))

    def step(self, state: DynamicsState, tokens: torch.Tensor, action: torch.Tensor) -> tuple[DynamicsState, torch.Tensor]:
        """tokens (B, h, w) long, action (B,) or (B, F) long -> (new state, logits (B, K, h, w) for the next frame)."""
        return self.step_embedded(state, self.embed(tokens), action)

    def condition(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Action -> (movement/other conditioning, camera conditioning or None), each (B, action_dim)."""
        n_cam = self.cfg.camera_factors
        if not n_cam:
            return self.action_embed(action), None
        return self.action_embed(action[:, n_cam:]), self.camera_embed(action[:, :n_cam])

    def warp(
        self, emb: torch.Tensor, hidden: list[torch.Tensor], action: torch.Tensor, previous: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        """Translate (camera bins' shift) and scale (movement zoom) the embeddings (token cells) and hidden maps
        (half resolution), where gated.

        `previous` is the last step's embedding (`head_frames: 2`), already in this step's view; it turns on with this one.
        """
        if not self.cfg.warped:
            return emb, hidden, previous
        a = action.view(action.shape[0], -1)
        dx = dy = emb.new_zeros(a.shape[0])
        if self.cfg.camera_shift:
            dx = self.camera_shift[a[:, 0]].to(emb.dtype)
            dy = self.camera_shift[self.cfg.factors[0] + a[:, 1]].to(emb.dtype)
        zoom = None
        if self.cfg.move_zoom:
            zoom = (a[:, self.cfg.camera_factors :].to(emb.dtype) * self.move_zoom.to(emb.dtype)).sum(-1)
        gate = torch.sigmoid(self.warp_gate).to(emb.dtype)  # (h, w): 1 turns with the view, 0 stays on the screen
        half = F.avg_pool2d(gate[None, None], 2)[0, 0]
        hidden = [half * translate(h, dx / 2, dy / 2, zoom) + (1 - half) * h for h in hidden]

        def turn(x: torch.Tensor) -> torch.Tensor:
            return gate * translate(x, dx, dy, zoom) + (1 - gate) * x

        return turn(emb), hidden, None if previous is None else turn(previous)

    def step_embedded(self, state: DynamicsState, emb: torch.Tensor, action: torch.Tensor) -> tuple[DynamicsState, torch.Tensor]:
        cond, camera = self.condition(action)
        emb, warped, last = self.warp(emb, state.hidden, action, state.previous)
        x = F.gelu(self.stem(emb))
        hidden = []
        for i, (film, cell, h) in enumerate(zip(self.films, self.cells, warped, strict=True)):
            inp = film(x, cond)
            if camera is not None:
                inp = self.camera_films[i](inp, camera)
            h = cell(inp, h)
            hidden.append(h)
            x = x + h
        memory = state.memory
        if self.cfg.memory:
            memory = self.memory.push(memory, x)
            x = self.memory(x, memory, min(state.step + 1, self.cfg.memory))
        two = self.cfg.head_frames == 2
        seen = [F.gelu(self.up(x)), emb]
        if two:
            seen.append(emb if last is None else last)  # the first step sees no motion
        logits = self.token_logits(torch.cat(seen, 1))
        return DynamicsState(hidden, state.step + 1, memory, emb if two else None), logits

    def token_logits(self, seen: torch.Tensor) -> torch.Tensor:
        """The head on (B, C, h, w) features: (B, K, h, w) logits laid out channels-last (a view of (B, h, w, K)).

        The last 1x1 convolution runs as a matmul into rows of K logits, so the softmax, cross-entropy and argmax
        over the codes, which dominate a training step after the convolutions, read contiguous memory.
        """
        conv, act, last = self.head
        features = act(conv(seen)).permute(0, 2, 3, 1)
        return F.linear(features, last.weight.flatten(1), last.bias).permute(0, 3, 1, 2)

    def forward(
        self, tokens: torch.Tensor, actions: torch.Tensor, state: DynamicsState | None = None
    ) -> tuple[DynamicsState, torch.Tensor]:
        """Teacher-forced pass. tokens (B, T, h, w), actions (B, T[, F]) -> (state, logits (B, T, K, h, w)).

        logits[:, t] predicts tokens at t+1 from tokens[:, :t+1] and actions[:, :t+1].
        """
        state = state or self.initial_state(tokens.shape[0], tokens.device)
        out = []
        for t in range(tokens.shape[1]):
            state, logits = self.step(state, tokens[:, t], actions[:, t])
            out.append(logits)
        return state, torch.stack(out, 1)
