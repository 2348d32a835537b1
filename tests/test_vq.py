"""EMA vector quantizer: straight-through gradients, lookups, k-means init, EMA updates, dead-code restarts, resume."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

import ochre.models.vq as vq_module
from ochre.metrics import codebook_usage
from ochre.models.vq import EMAVectorQuantizer, kmeans, nearest_code


def clustered(n: int, centers: torch.Tensor, std: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """n vectors around uniformly chosen rows of centers: (C, d)."""
    which = torch.randint(centers.shape[0], (n,), generator=generator)
    return centers[which] + std * torch.randn(n, centers.shape[1], generator=generator)


def separated_centers(count: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, dim, generator=torch.Generator().manual_seed(seed)) * 10


def buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_straight_through_gradient_and_commitment_loss():
    torch.manual_seed(0)
    vq = EMAVectorQuantizer(codebook_size=32, dim=8)
    assert list(vq.parameters()) == []  # the codebook is learned by EMA, never by gradient
    z = torch.randn(4, 5, 8, requires_grad=True)
    out = vq(z)
    weight = torch.randn_like(z)
    (out.codes * weight).sum().backward()
    assert torch.equal(z.grad, weight)
    z.grad = None
    vq.eval()
    out = vq(z)
    out.loss.backward()
    expected = 2 * vq.commitment * (z - out.codes).detach() / z.numel()
    assert torch.allclose(z.grad, expected, atol=1e-7)
    assert torch.isclose(out.loss, vq.commitment * (z - out.codes).pow(2).mean())


def test_ids_index_the_codes():
    torch.manual_seed(0)
    vq = EMAVectorQuantizer(codebook_size=64, dim=6)
    vq(torch.randn(512, 6))  # initialise
    z = torch.randn(3, 7, 9, 6)
    before = vq.codebook()
    out = vq(z)  # training step: the codes are those of the codebook before its update
    assert out.ids.shape == (3, 7, 9) and out.ids.dtype == torch.long
    assert torch.equal(before[out.ids], out.codes)
    vq.eval()
    out = vq(z)
    assert out.ids.min() >= 0 and out.ids.max() < vq.codebook_size
    assert torch.equal(vq.ids_to_codes(out.ids), out.codes)
    assert torch.equal(vq.codebook()[out.ids], out.codes)
    assert torch.equal(out.ids, nearest_code(z.reshape(-1, 6), vq.codebook()).view(3, 7, 9))


def test_nearest_code_chunked_matches_brute_force(monkeypatch):
    monkeypatch.setattr(vq_module, "DISTANCE_CHUNK_ELEMENTS", 64 * 7)  # 7 rows per chunk
    x, codebook = torch.randn(100, 5), torch.randn(64, 5)
    assert torch.equal(nearest_code(x, codebook), torch.cdist(x, codebook).argmin(1))


def test_eval_mode_changes_no_state():
    torch.manual_seed(0)
    fresh = EMAVectorQuantizer(codebook_size=16, dim=4).eval()
    state = buffers(fresh)
    fresh(torch.randn(256, 4))
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in state.items())  # no k-means init in eval
    trained = EMAVectorQuantizer(codebook_size=16, dim=4)
    trained(torch.randn(256, 4))
    trained.eval()
    state = buffers(trained)
    out = trained(torch.randn(256, 4) + 100)  # far data: would restart every code in training
    assert out.restarted == 0
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in state.items())


def test_kmeans_initialises_once_on_the_data(monkeypatch):
    calls = []
    kmeans = vq_module.kmeans
    monkeypatch.setattr(vq_module, "kmeans", lambda *args: calls.append(1) or kmeans(*args))
    torch.manual_seed(0)
    centers = separated_centers(16, 8)
    vq = EMAVectorQuantizer(codebook_size=16, dim=8)
    assert not vq.initialised
    vq(clustered(4096, centers))
    assert vq.initialised and len(calls) == 1
    vq(clustered(4096, centers))
    assert len(calls) == 1
    reloaded = EMAVectorQuantizer(codebook_size=16, dim=8)
    reloaded.load_state_dict(vq.state_dict())
    reloaded(clustered(4096, centers))
    assert len(calls) == 1  # the persistent flag survives a checkpoint
    vq.eval()
    x = clustered(4096, centers)
    out = vq(x)
    assert codebook_usage(out.ids, 16)[0] == 16
    assert (out.codes - x).pow(2).mean() < 0.02  # the within-cluster variance is 0.01


def test_kmeans_with_fewer_vectors_than_codes_draws_distinct_codes_on_the_data():
    torch.manual_seed(0)
    x = torch.randn(10, 4)
    centers, counts = kmeans(x, 64, 10)
    assert torch.unique(centers, dim=0).shape[0] == 64
    assert torch.cdist(centers, x).min(1).values.max() < 0.2
    assert counts.sum() == 10


def test_ema_update_moves_codes_toward_assigned_data():
    torch.manual_seed(0)
    centers = torch.tensor([[10.0, 10.0], [10.0, -10.0], [-10.0, 10.0], [-10.0, -10.0]])
    vq = EMAVectorQuantizer(codebook_size=4, dim=2, decay=0.9)
    vq(clustered(1024, centers))
    size, total, before = vq.cluster_size.clone(), vq.embed_sum.clone(), vq.codebook()
    x = clustered(1024, centers) + torch.tensor([1.0, 0.5])
    out = vq(x)
    assert out.restarted == 0
    counts = torch.bincount(out.ids, minlength=4).float()
    sums = torch.zeros(4, 2).index_add_(0, out.ids, x)
    expected = (0.9 * total + 0.1 * sums) / (0.9 * size + 0.1 * counts).unsqueeze(1)
    assert torch.allclose(vq.codebook(), expected, atol=1e-4)
    means = sums / counts.unsqueeze(1)
    assert ((vq.codebook() - means).norm(dim=1) < (before - means).norm(dim=1)).all()


def test_dead_code_is_restarted_and_then_used():
    torch.manual_seed(0)
    centers = separated_centers(16, 8)
    vq = EMAVectorQuantizer(codebook_size=16, dim=8, decay=0.8)
    vq(clustered(4096, centers))
    with torch.no_grad():  # move code 3 far from the data, its EMA stats consistent with the move
        vq.embed[3] = 1000.0
        vq.embed_sum[3] = 1000.0 * vq.cluster_size[3]
    restarted = []
    while not restarted or restarted[-1] == 0:
        restarted.append(vq(clustered(4096, centers)).restarted)
        assert len(restarted) < 100
    assert restarted[-1] == 1 and int(vq.total_restarted) == 1
    assert vq.codebook()[3].abs().max() < 100  # re-seeded on the data
    for _ in range(5):
        vq(clustered(4096, centers))
    vq.eval()
    assert 3 in vq(clustered(4096, centers)).ids


def toy_training_usage(dead_threshold: float) -> int:
    """Codes in use after a small linear autoencoder trains through the quantizer (codebook 256) on clustered data.

    The encoder starts at a small scale and grows, as fresh networks do, so the k-means codes of the first batch
    are left behind: the classic route to codebook collapse.
    """
    torch.manual_seed(0)
    centers = torch.randn(1024, 16)
    encoder, decoder = nn.Linear(16, 8), nn.Linear(8, 16)
    with torch.no_grad():
        encoder.weight.mul_(0.05)
        encoder.bias.mul_(0.05)
    vq = EMAVectorQuantizer(codebook_size=256, dim=8, dead_threshold=dead_threshold)
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-2)
    for _ in range(300):
        x = clustered(2048, centers, std=0.05)
        out = vq(encoder(x))
        loss = F.mse_loss(decoder(out.codes), x) + out.loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    vq.eval()
    with torch.no_grad():
        ids = vq(encoder(clustered(8192, centers, std=0.05))).ids
    return codebook_usage(ids, 256)[0]


def test_dead_code_restarts_prevent_collapse_in_training():
    assert toy_training_usage(dead_threshold=1.0) >= 0.9 * 256
    assert toy_training_usage(dead_threshold=0.0) < 0.5 * 256  # the same run without restarts collapses


def test_state_dict_round_trip_resumes_bit_exactly():
    data = torch.Generator().manual_seed(1)
    batches = [clustered(512, separated_centers(8, 4), std=1.0, generator=data) for _ in range(8)]
    torch.manual_seed(0)
    a = EMAVectorQuantizer(codebook_size=64, dim=4, decay=0.9, dead_threshold=5.0)
    for x in batches[:3]:
        a(x)
    state, rng = copy.deepcopy(a.state_dict()), torch.get_rng_state()
    assert set(state) == {"embed", "cluster_size", "embed_sum", "initialised", "total_restarted"}
    outs_a = [a(x) for x in batches[3:]]
    b = EMAVectorQuantizer(codebook_size=64, dim=4, decay=0.9, dead_threshold=5.0)
    b.load_state_dict(state)
    torch.set_rng_state(rng)
    outs_b = [b(x) for x in batches[3:]]
    assert sum(o.restarted for o in outs_a) > 0  # the resumed steps exercise restarts too
    for oa, ob in zip(outs_a, outs_b, strict=True):
        assert torch.equal(oa.codes, ob.codes) and torch.equal(oa.ids, ob.ids)
        assert torch.equal(oa.loss, ob.loss) and oa.restarted == ob.restarted
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    a.eval(), b.eval()
    assert torch.equal(a(batches[0]).codes, b(batches[0]).codes)


def test_autocast_bf16_quantizes_in_float32():
    torch.manual_seed(0)
    encoder = nn.Linear(16, 8)
    vq = EMAVectorQuantizer(codebook_size=32, dim=8)
    x = torch.randn(256, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        vq(encoder(x))  # k-means init under autocast
        before = vq.codebook()
        z = encoder(x)
        out = vq(z)
    assert z.dtype == torch.bfloat16
    assert out.codes.dtype == torch.float32 and out.loss.dtype == torch.float32
    assert all(v.dtype in (torch.float32, torch.bool, torch.long) for v in vq.state_dict().values())
    assert torch.equal(out.ids, nearest_code(z.detach().float(), before))
    out.codes.sum().backward()
    assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0
    assert torch.isfinite(vq.codebook()).all()
