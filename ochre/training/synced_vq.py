"""The EMA VQ codebook kept identical on every rank of a torchrun launch, for the tokenizer trained with DDP.

    tokenizer.quantizer = synced_quantizer(tokenizer.quantizer)   # before DDP wraps the tokenizer

`EMAVectorQuantizer` updates its codebook inside forward, from the batch it sees. Under
DDP every rank sees its own batch, so the codebooks would drift apart. Here every update
sees the whole step's batch instead: the latents (and their code ids) of all ranks are
gathered in rank order, so the EMA statistics are the ones one process would compute on
batch_size x world size vectors, the same on every rank (`dead_threshold` counts vectors
of that whole batch). The k-means start and the dead-code restarts draw from each rank's
own random stream, so rank 0's codebook is then given to every rank.

It overrides `EMAVectorQuantizer._initialise` and `_update`, the two places that write the codebook.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ochre.models.vq import EMAVectorQuantizer


class SyncedVectorQuantizer(EMAVectorQuantizer):
    """`EMAVectorQuantizer` whose codebook updates use every rank's batch (see the module docstring)."""

    @torch.no_grad()
    def _initialise(self, x: torch.Tensor) -> None:
        super()._initialise(gather_rows(x))
        self._share_codebook()

    @torch.no_grad()
    def _update(self, x: torch.Tensor, ids: torch.Tensor) -> int:
        restarted = super()._update(gather_rows(x), gather_rows(ids))  # the same count on every rank
        self._share_codebook()
        return restarted

    def _share_codebook(self) -> None:
        """Rank 0's codebook state on every rank (the ranks differ only where they drew random restarts)."""
        for buf in (self.embed, self.cluster_size, self.embed_sum, self.total_restarted):
            dist.broadcast(buf, src=0)


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """(N, ...) on every rank -> (world_size * N, ...), rank 0's rows first; every rank passes the same shape."""
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def synced_quantizer(quantizer: EMAVectorQuantizer) -> SyncedVectorQuantizer:
    """The same quantizer, settings and state, with its codebook updates synced over the launch's ranks."""
    q = quantizer
    synced = SyncedVectorQuantizer(q.codebook_size, q.dim, q.decay, q.commitment, q.eps, q.kmeans_iters, q.dead_threshold)
    synced.load_state_dict(q.state_dict())
    return synced.to(q.embed.device)
