"""Perceptual and adversarial losses: offline LPIPS wiring, weight loading, PatchGAN shapes, GAN loss helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from ochre.errors import OchreError
from ochre.losses import (
    LPIPSLoss,
    PatchDiscriminator,
    adaptive_weight,
    adversarial_weight,
    default_lpips_weights,
    generator_adv_loss,
    hinge_d_loss,
    load_lpips,
)

torch.manual_seed(0)


@pytest.fixture(scope="module")
def lpips_random() -> LPIPSLoss:
    return LPIPSLoss.random_backbone()


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A file in the format of torchvision's AlexNet ImageNet checkpoint (random values)."""
    state = torchvision.models.alexnet().state_dict()
    path = tmp_path_factory.mktemp("weights") / "alexnet.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture
def empty_hub(tmp_path, monkeypatch) -> Path:
    """Point torch.hub at an empty folder, so the user's real cache never matters."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    return tmp_path / "hub" / "checkpoints"


def frames(n: int = 4, h: int = 64, w: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, h, w) * 2 - 1


def test_lpips_zero_for_identical_and_grows_with_noise(lpips_random):
    x = frames()
    assert lpips_random(x, x).item() == pytest.approx(0.0, abs=1e-6)
    noise = torch.randn_like(x)
    dists = [lpips_random((x + s * noise).clamp(-1, 1), x).item() for s in (0.05, 0.2, 0.6)]
    assert 0 < dists[0] < dists[1] < dists[2]


def test_lpips_gradient_reaches_decoder_not_metric(lpips_random):
    decoder = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.GELU(), nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1), nn.Tanh())
    z, target = torch.randn(2, 4, 32, 32), frames(2)
    lpips_random(decoder(z), target).backward()
    for name, p in decoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None and not p.requires_grad for p in lpips_random.parameters())
    assert not lpips_random.train().training  # a parent's .train() leaves the metric (and its dropout) in eval mode


def test_lpips_under_autocast_is_float32_and_differentiable(lpips_random):
    x, target = frames(2).requires_grad_(), frames(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dist = lpips_random(x, target)
    assert dist.dtype == torch.float32 and dist.ndim == 0
    dist.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_default_weights_path_is_torchvision_hub_cache(empty_hub):
    assert default_lpips_weights("alex") == empty_hub / "alexnet-owt-7be5be79.pth"
    assert default_lpips_weights("vgg") == empty_hub / "vgg16-397923af.pth"


def test_load_lpips_missing_cache_weights_warns_once_and_disables(empty_hub):
    path = default_lpips_weights("alex")
    messages: list[str] = []
    assert load_lpips("alex", "", warn=messages.append) is None
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "LPIPS disabled" in messages[0] and str(path) in messages[0] and "train.lpips_weights=" in messages[0]


def test_load_lpips_missing_configured_file_is_an_error(empty_hub, tmp_path):
    with pytest.raises(OchreError, match=r"nowhere/alex.pth: LPIPS backbone weights file not found \(train.lpips_weights\)"):
        load_lpips("alex", str(tmp_path / "nowhere" / "alex.pth"), warn=print)


@pytest.mark.parametrize("content", ["text", "tensor", "wrong keys"])
def test_load_lpips_unloadable_file_names_it(tmp_path, content):
    path = tmp_path / "bad.pth"
    if content == "text":
        path.write_text("not a checkpoint")
    else:
        torch.save(torch.zeros(3) if content == "tensor" else {"weight": torch.zeros(3)}, path)
    with pytest.raises(OchreError, match=str(path)) as err:
        load_lpips("alex", str(path), warn=pytest.fail)
    assert "\n" not in str(err.value)


def test_load_lpips_from_config_path_and_hub_cache(alexnet_file, empty_hub):
    path, state = alexnet_file
    loss = load_lpips("alex", str(path), warn=pytest.fail)
    assert isinstance(loss, LPIPSLoss)
    assert torch.equal(loss.metric.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(loss.metric.net.slice5[0].bias, state["features.10.bias"])  # lpips keeps torchvision indices
    x = frames(2)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6) and loss(x, frames(2)).item() > 0
    empty_hub.mkdir(parents=True)
    (empty_hub / "alexnet-owt-7be5be79.pth").symlink_to(path)
    assert isinstance(load_lpips("alex", warn=pytest.fail), LPIPSLoss)


@pytest.mark.parametrize("hw, logits_hw", [((64, 64), (6, 6)), ((72, 128), (7, 14))])
def test_patch_discriminator_shapes(hw, logits_hw):
    disc = PatchDiscriminator(ch=16)
    assert disc(frames(2, *hw)).shape == (2, 1, *logits_hw)
    assert PatchDiscriminator(ch=8, layers=2)(frames(1, *hw)).shape[:2] == (1, 1)


def test_hinge_losses_on_hand_made_logits():
    real = torch.tensor([2.0, 0.5, -1.0])  # hinge terms relu(1 - real): 0, 0.5, 2
    fake = torch.tensor([-2.0, 0.0, 1.0])  # hinge terms relu(1 + fake): 0, 1, 2
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * (2.5 / 3 + 3 / 3))
    assert hinge_d_loss(torch.full((4,), 1.5), torch.full((4,), -1.5)).item() == 0.0  # confident and right: no loss
    assert generator_adv_loss(fake).item() == pytest.approx(1 / 3)


def test_adversarial_weight_switches_at_start_step():
    assert [adversarial_weight(s, 3) for s in range(5)] == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert adversarial_weight(0, 0) == 1.0


def test_adaptive_weight_is_gradient_norm_ratio():
    last = nn.Parameter(torch.randn(8, 4))
    rec, adv = (3.0 * last).sum(), last.sum()  # gradients 3 * ones and ones at the last layer
    weight = adaptive_weight(rec, adv, last)
    assert weight.item() == pytest.approx(3.0, rel=1e-3) and not weight.requires_grad
    (rec + weight * adv).backward()  # both graphs survive for the real backward pass
    assert torch.allclose(last.grad, torch.full_like(last, 6.0))
    assert adaptive_weight(last.sum(), 0.0 * last.sum(), last, max_weight=100.0).item() == 100.0


def test_detail_weights_by_hand():
    """A 1x4 frame: three background pixels and one bright pixel; weight 9 -> raw (1, 1, 1, 10), mean 13/4."""
    from ochre.losses import detail_weights

    x = torch.tensor([-1.0, -1.0, -1.0, 1.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    w = detail_weights(x, weight=9.0, tau=0.2)
    assert w.shape == (1, 1, 1, 4)
    assert torch.allclose(w.flatten(), torch.tensor([1.0, 1.0, 1.0, 10.0]) / (13 / 4))
    assert torch.equal(detail_weights(x, weight=0.0, tau=0.2), torch.ones(1, 1, 1, 4))
