"""Finding what the player watches: the avatar, the paddles, the ball.

    finder = PatchAvatar.load("assets/coinrun/avatar.pt")
    where = finder.find(frames)            # (N, H, W, 3) uint8 -> (N, 1, 2) (y, x), nan where absent
    where = PongObjects().find(frames)      # (N, 3, 2): own paddle, other paddle, ball

A finder answers, for every frame, where each of its objects is (sub-pixel `(y, x)`),
or nan when the object is not drawn. Each finder is first scored on real frames
(tests/test_playtest.py and `train.avatar`): the play tests trust it on generated frames
only because it finds the object in the real game.

`PatchAvatar` is a small fully convolutional classifier that scores every 12x12 window of
a frame: "the avatar is centred here". It is trained on real frames of a game whose
camera follows the player (CoinRun draws the agent at the same spot of every frame), with
windows at that spot as positives and every other window, plus the same spot with the
avatar painted over by the background beside it, as negatives. On a generated frame the
best window gives the avatar's position and its score whether one is drawn at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ochre.checkpoint import FORMAT_VERSION, load_checkpoint, load_weights
from ochre.errors import OchreError
from ochre.frames import to_model
from ochre.io import save_torch
from ochre.world_checks import PONG_PADDLES, colour_fit, find_ball, playfield_rows


class Finder(Protocol):
    names: tuple[str, ...]

    def find(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, len(names), 2) float (y, x) pixel positions, nan where not drawn."""
        ...


# --- a learned detector for a small avatar --------------------------------------

PATCH = 12  # the detector's window (its receptive field)
ERASE_SHIFT = 12  # the avatar is painted over with the background this many pixels to its side
SEARCH_PX = 8  # the avatar is looked for this far around its spot: a camera that follows it keeps it near there


class PatchNet(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, H - 11, W - 11) logits, one per 12x12 window (no padding)."""

    def __init__(self, width: int = 24):
        super().__init__()
        self.width = width
        layers: list[nn.Module] = []
        for c_in in (3, width, width, width):
            layers += [nn.Conv2d(c_in, width, 3), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Conv2d(width, 1, PATCH - 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


@dataclass
class PatchAvatar:
    """A trained `PatchNet` and the spot where the real game draws the avatar."""

    net: PatchNet
    anchor: tuple[int, int]  # top-left (y, x) of the window that holds the avatar in real frames
    threshold: float = 0.0  # logit above which a window holds the avatar
    names: tuple[str, ...] = ("avatar",)

    @torch.inference_mode()
    def scores(self, frames: np.ndarray, batch: int = 512) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, H - 11, W - 11) window logits."""
        self.net.eval()
        out = [self.net(to_model(frames[i : i + batch], torch.device("cpu"))) for i in range(0, len(frames), batch)]
        return torch.cat(out).numpy() if out else np.zeros((0, 0, 0), np.float32)

    def find(self, frames: np.ndarray) -> np.ndarray:
        """The best window within `SEARCH_PX` of the anchor; nan where it does not hold the avatar."""
        frames = np.asarray(frames)
        (ay, ax), r = self.anchor, SEARCH_PX
        y0, x0 = max(ay - r, 0), max(ax - r, 0)
        s = self.scores(frames[:, y0 : ay + r + PATCH, x0 : ax + r + PATCH])  # only the windows searched
        n, h, w = s.shape
        flat = s.reshape(n, -1).argmax(1)
        y, x = np.divmod(flat, w)
        where = np.stack([y + y0, x + x0], axis=1).astype(np.float64) + (PATCH - 1) / 2
        where[s.reshape(n, -1).max(1) <= self.threshold] = np.nan
        return where[:, None]

    @property
    def home(self) -> tuple[float, float]:
        """Centre (y, x) of the avatar in the real game's frames."""
        return self.anchor[0] + (PATCH - 1) / 2, self.anchor[1] + (PATCH - 1) / 2

    def save(self, path: str | Path, meta: dict) -> None:
        payload = {"format": "ochre-avatar", "format_version": FORMAT_VERSION, "net": self.net.state_dict()}
        save_torch(path, {**payload, "width": self.net.width, "anchor": list(self.anchor), "meta": meta})

    @classmethod
    def load(cls, path: str | Path) -> PatchAvatar:
        if not Path(path).is_file():
            raise OchreError(f"{path}: avatar detector not found; train one with `python -m train.avatar` (see its --help)")
        payload = load_checkpoint(path, "ochre-avatar")
        for key in ("net", "width", "anchor"):
            if key not in payload:
                raise OchreError(f"{path}: the avatar detector has no '{key}'; train it again with `python -m train.avatar`")
        net = PatchNet(int(payload["width"]))
        load_weights(net, payload["net"], path, "avatar detector")
        return cls(net, tuple(int(v) for v in payload["anchor"]))  # type: ignore[arg-type]


def erase(frames: np.ndarray, anchor: tuple[int, int]) -> np.ndarray:
    """Frames with the avatar's window painted over by the background beside it (a world that lost it)."""
    y, x = anchor
    out = np.array(frames, copy=True)
    src = x - ERASE_SHIFT if x - ERASE_SHIFT >= 0 else x + ERASE_SHIFT
    out[..., y : y + PATCH, x : x + PATCH, :] = frames[..., y : y + PATCH, src : src + PATCH, :]
    return out


def training_patches(frames: np.ndarray, anchor: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) real frames -> (2N, 12, 12, 3) patches and (2N,) labels: half at the anchor (within a pixel), half not.

    Negatives are windows at least 4 pixels from the anchor, and in half of them the
    avatar was painted over first (`erase`), those taken within `SEARCH_PX` of the anchor,
    so a lost or blurred-out avatar does not count as drawn.
    """
    n, h, w = frames.shape[:3]
    ay, ax = anchor
    pos_y, pos_x = ay + rng.integers(-1, 2, n), ax + rng.integers(-1, 2, n)
    erased = rng.random(n) < 0.5
    neg_y, neg_x = rng.integers(0, h - PATCH + 1, n), rng.integers(0, w - PATCH + 1, n)
    near_y = np.clip(ay + rng.integers(-SEARCH_PX, SEARCH_PX + 1, n), 0, h - PATCH)
    near_x = np.clip(ax + rng.integers(-SEARCH_PX, SEARCH_PX + 1, n), 0, w - PATCH)
    neg_y, neg_x = np.where(erased, near_y, neg_y), np.where(erased, near_x, neg_x)
    close = ~erased & (np.maximum(np.abs(neg_y - ay), np.abs(neg_x - ax)) < 4)
    neg_y[close] = (neg_y[close] + h // 2) % (h - PATCH + 1)
    source = np.where(erased[:, None, None, None], erase(frames, anchor), frames)
    patches = [frames[i, pos_y[i] : pos_y[i] + PATCH, pos_x[i] : pos_x[i] + PATCH] for i in range(n)]
    patches += [source[i, neg_y[i] : neg_y[i] + PATCH, neg_x[i] : neg_x[i] + PATCH] for i in range(n)]
    return np.stack(patches), np.r_[np.ones(n), np.zeros(n)].astype(np.float32)


def train_patch_avatar(
    sample: Callable[[np.random.Generator, int], np.ndarray],
    anchor: tuple[int, int],
    steps: int = 1500,
    batch: int = 256,
    seed: int = 0,
    log=print,
) -> PatchAvatar:
    """Train a `PatchAvatar` on real frames; `sample(rng, n)` -> (n, H, W, 3) uint8 frames of the real game."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = PatchNet()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for step in range(steps):
        patches, labels = training_patches(sample(rng, batch // 2), anchor, rng)
        logits = net(to_model(patches, torch.device("cpu")))[:, 0, 0]
        loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(labels))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps - 1:
            log(f"step {step}: loss {loss.item():.4f}")
    return PatchAvatar(net, anchor)


# --- Pong: paddles and ball by colour -------------------------------------------

PADDLE_COLUMNS = {"left": (0.0, 0.5), "right": (0.5, 1.0)}  # share of the frame's width each paddle lives in
PADDLE_COLOURS = {"left": PONG_PADDLES[0], "right": PONG_PADDLES[1]}
MIN_PADDLE_MASS = 1.5  # paddle-coloured pixel coverage summed over the frame; a real paddle covers ~3-6


def paddle_weight(frame: np.ndarray, side: str) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) coverage of each pixel by the `side` paddle (0 outside its half and the playfield)."""
    amount, residual = colour_fit(frame, PADDLE_COLOURS[side])
    weight = np.where(residual < 40.0, amount, 0.0)
    weight[weight < 0.3] = 0.0
    h, w = weight.shape
    rows, (c0, c1) = playfield_rows(h), PADDLE_COLUMNS[side]
    mask = np.zeros_like(weight)
    mask[rows, int(c0 * w) : int(c1 * w)] = 1.0
    return weight * mask


def find_paddle(frame: np.ndarray, side: str) -> tuple[float, float] | None:
    """(y, x) coverage-weighted centre of the `side` ("left" or "right") Pong paddle, or None when not drawn."""
    weight = paddle_weight(frame, side)
    mass = weight.sum()
    if mass < MIN_PADDLE_MASS:
        return None
    ys, xs = np.mgrid[: weight.shape[0], : weight.shape[1]]
    return float((ys * weight).sum() / mass), float((xs * weight).sum() / mass)


class PongObjects:
    """The player's (right) paddle, the other paddle and the ball, found by colour."""

    names = ("own_paddle", "other_paddle", "ball")

    def find(self, frames: np.ndarray) -> np.ndarray:
        out = np.full((len(frames), 3, 2), np.nan)
        for i, frame in enumerate(frames):
            for j, found in enumerate((find_paddle(frame, "right"), find_paddle(frame, "left"), find_ball(frame))):
                if found is not None:
                    out[i, j] = found
        return out
