"""Vector quantization with an EMA codebook (VQ-VAE, van den Oord et al. 2017, https://arxiv.org/abs/1711.00937).

Each latent vector is replaced by its nearest codebook vector; gradients pass
straight through to the encoder, which is pulled towards its code by the
commitment loss beta * ||z - sg(e)||^2. The codebook gets no gradient: it is
the exponential moving average of the vectors assigned to each code (the
VQ-VAE appendix; Razavi et al. 2019, VQ-VAE-2, https://arxiv.org/abs/1906.00446),
with Laplace-smoothed cluster sizes so a rarely used code never divides by zero.

Codebook collapse (most codes never chosen) is prevented, and made visible:
- the first training batch initialises the codebook by k-means (k-means++
  seeding, Arthur & Vassilvitskii 2007, then Lloyd iterations), so every code
  starts on the data;
- every training step, codes whose EMA cluster size (vectors per batch) falls
  below `dead_threshold` are re-seeded on random vectors of the current batch;
  the count is returned (`Quantized.restarted`) and summed in `total_restarted`.

All state is in buffers and all quantizer math runs in float32 (also under
autocast). Random draws come from torch's global CPU generator (the same draws
whatever the device), so a run resumed from `state_dict()` and the saved RNG
state continues bit-exactly (on CUDA, under torch.use_deterministic_algorithms,
as index_add_ otherwise adds in any order). Codes in use and perplexity:
`ochre.metrics.codebook_usage(ids, codebook_size)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

KMEANS_MAX_POINTS = 32768  # k-means initialisation runs on a random subsample of at most this many vectors
DISTANCE_CHUNK_ELEMENTS = 1 << 24  # rows * codes per distance matrix (64 MiB in float32), bounding memory
INIT_NOISE = 0.01  # init noise, times the data's per-dim std, when a batch has fewer vectors than codes


@dataclass
class Quantized:
    """What a quantizer returns (the same for VQ and FSQ)."""

    codes: torch.Tensor  # (..., d) quantized latents, straight-through gradients to the input
    ids: torch.Tensor  # (...) long, code ids in [0, codebook_size)
    loss: torch.Tensor  # scalar to add to the training loss: the commitment loss for VQ (zero if a quantizer has none)
    restarted: int = 0  # dead codes restarted during this call (training only)


def _cpu_randint(high: int, size: int, device: torch.device) -> torch.Tensor:
    """`size` uniform ints in [0, high) from the global CPU generator, on `device` (the same draws on any device)."""
    return torch.randint(high, (size,)).to(device)


def nearest_code(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """x: (N, d), codebook: (K, d), both float32 -> (N,) ids of the nearest code by squared Euclidean distance.

    ||x||^2 - 2 x e^T + ||e||^2 as one matmul per chunk of rows; ||x||^2 is the same
    for every code of a row, so it is left out of the argmin.
    """
    code_sq = codebook.pow(2).sum(1)
    rows = max(1, DISTANCE_CHUNK_ELEMENTS // codebook.shape[0])
    return torch.cat([torch.addmm(code_sq, chunk, codebook.t(), alpha=-2).argmin(1) for chunk in x.split(rows)])


def cluster_stats(x: torch.Tensor, ids: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-code (counts (k,), summed vectors (k, d)) of x: (N, d) assigned to ids: (N,)."""
    counts = torch.bincount(ids, minlength=k).to(x.dtype)
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, ids, x)
    return counts, sums


def kmeans_plus_plus(x: torch.Tensor, k: int) -> torch.Tensor:
    """k-means++ seeding: k rows of x: (N, d), each drawn with probability proportional to its squared distance to
    the nearest row drawn before. Sampled by inverting the cumulative distances, so no device sync per draw."""
    uniforms = torch.rand(k).to(x.device)
    centers = x.new_empty(k, x.shape[1])
    centers[0] = x[_cpu_randint(x.shape[0], 1, x.device)[0]]
    dist = (x - centers[0]).pow(2).sum(1)
    for i in range(1, k):
        cumulative = dist.cumsum(0)
        pick = torch.searchsorted(cumulative, uniforms[i] * cumulative[-1], right=True).clamp_max(x.shape[0] - 1)
        centers[i] = x[pick]
        dist = torch.minimum(dist, (x - centers[i]).pow(2).sum(1))
    return centers


def kmeans(x: torch.Tensor, k: int, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, d) float32 -> (centers (k, d), counts (k,) of x nearest to each center).

    k-means++ seeding, then `iters` Lloyd iterations; an empty cluster keeps its center.
    With fewer vectors than centers the seeds are drawn with replacement plus a little noise.
    """
    if x.shape[0] >= k:
        centers = kmeans_plus_plus(x, k)
    else:
        noise = torch.randn(k, x.shape[1]).to(x.device) * (INIT_NOISE * x.std(0, correction=0))
        centers = x[_cpu_randint(x.shape[0], k, x.device)] + noise
    for _ in range(iters):
        counts, sums = cluster_stats(x, nearest_code(x, centers), k)
        centers = torch.where(counts.unsqueeze(1) > 0, sums / counts.clamp_min(1).unsqueeze(1), centers)
    counts, _ = cluster_stats(x, nearest_code(x, centers), k)
    return centers, counts


class EMAVectorQuantizer(nn.Module):
    """Nearest-neighbour vector quantizer with an EMA codebook, k-means initialisation and dead-code restarts.

    forward(z: (..., dim)) -> Quantized. In training mode it also initialises (first call only), updates the
    codebook and restarts dead codes, all without autograd; in eval mode it is a pure lookup.
    `dead_threshold` is in vectors per batch: keep it well below the mean use, batch vectors / codebook_size.
    """

    def __init__(
        self,
        codebook_size: int = 1024,
        dim: int = 32,
        decay: float = 0.99,
        commitment: float = 0.25,
        eps: float = 1e-5,
        kmeans_iters: int = 10,
        dead_threshold: float = 1.0,
    ):
        super().__init__()
        self.codebook_size = codebook_size
        self.dim = dim
        self.decay = decay
        self.commitment = commitment
        self.eps = eps
        self.kmeans_iters = kmeans_iters
        self.dead_threshold = dead_threshold
        embed = torch.randn(codebook_size, dim)
        self.register_buffer("embed", embed)  # (K, d) the codebook, embed_sum / smoothed cluster_size
        self.register_buffer("cluster_size", torch.ones(codebook_size))  # (K,) EMA of vectors per batch per code
        self.register_buffer("embed_sum", embed.clone())  # (K, d) EMA of the summed vectors per code
        self.register_buffer("initialised", torch.tensor(False))  # set by the k-means initialisation
        self.register_buffer("total_restarted", torch.tensor(0))  # dead codes restarted so far

    def forward(self, z: torch.Tensor) -> Quantized:
        """z: (..., dim) float (any dtype; the math runs in float32) -> Quantized with float32 codes."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"expected latents with last dimension {self.dim}, got shape {tuple(z.shape)}")
        with torch.autocast(z.device.type, enabled=False):
            flat = z.reshape(-1, self.dim).float()
            if self.training and not bool(self.initialised):
                self._initialise(flat.detach())
            ids = nearest_code(flat.detach(), self.embed)
            quantized = F.embedding(ids, self.embed)
            loss = self.commitment * F.mse_loss(flat, quantized)
            codes = quantized + (flat - flat.detach())  # value exactly the code, gradient the identity to z
            restarted = self._update(flat.detach(), ids) if self.training else 0
        return Quantized(codes.view(*z.shape), ids.view(z.shape[:-1]), loss, restarted)

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """(...) long ids -> (..., dim) float32 codes."""
        return F.embedding(ids, self.embed)

    def codebook(self) -> torch.Tensor:
        """(codebook_size, dim): row i is code i. A copy, so a graph built on it survives later training steps."""
        return self.embed.clone()

    @torch.no_grad()
    def _initialise(self, x: torch.Tensor) -> None:
        """k-means on (a subsample of) the first training batch; EMA stats scaled to a full batch's counts."""
        sample = x[torch.randperm(x.shape[0])[:KMEANS_MAX_POINTS].to(x.device)] if x.shape[0] > KMEANS_MAX_POINTS else x
        centers, counts = kmeans(sample, self.codebook_size, self.kmeans_iters)
        self.embed.copy_(centers)
        self.cluster_size.copy_(counts * (x.shape[0] / sample.shape[0]))
        self.embed_sum.copy_(centers * self.cluster_size.unsqueeze(1))
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, x: torch.Tensor, ids: torch.Tensor) -> int:
        """EMA step on the batch's assignments, then restart dead codes; returns how many were restarted."""
        counts, sums = cluster_stats(x, ids, self.codebook_size)
        self.cluster_size.lerp_(counts, 1 - self.decay)
        self.embed_sum.lerp_(sums, 1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total
        self.embed.copy_(self.embed_sum / smoothed.unsqueeze(1))
        return self._restart_dead(x)

    @torch.no_grad()
    def _restart_dead(self, x: torch.Tensor) -> int:
        """Re-seed codes used by fewer than `dead_threshold` vectors per batch (EMA) on random batch vectors.

        A restarted code gets cluster size `dead_threshold` (and the matching vector sum), so it survives the
        next step only if at least `dead_threshold` vectors pick it. A candidate is drawn for every code each step, so the RNG
        stream does not depend on the data.
        """
        dead = self.cluster_size < self.dead_threshold
        fresh = x[_cpu_randint(x.shape[0], self.codebook_size, x.device)]
        self.embed.copy_(torch.where(dead.unsqueeze(1), fresh, self.embed))
        self.cluster_size.masked_fill_(dead, self.dead_threshold)
        self.embed_sum.copy_(torch.where(dead.unsqueeze(1), fresh * self.dead_threshold, self.embed_sum))
        restarted = dead.sum()
        self.total_restarted += restarted
        return int(restarted)
