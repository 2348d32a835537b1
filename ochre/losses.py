"""Perceptual and adversarial losses for training the frame tokenizer.

Frames are float tensors (B, 3, H, W) in [-1, 1], as inside `ochre.models.tokenizer`.

- `LPIPSLoss` / `load_lpips`: the learned perceptual distance of Zhang et al. 2018,
  "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric". Its
  ImageNet backbone is read from a local file only; nothing is ever downloaded.
- `PatchDiscriminator` with `hinge_d_loss` / `generator_adv_loss`: the PatchGAN
  critic of Isola et al. 2017 ("Image-to-Image Translation with Conditional
  Adversarial Networks") with the hinge loss, as used for VQGAN by Esser et al. 2021
  ("Taming Transformers for High-Resolution Image Synthesis"), together with the
  warm-up switch `adversarial_weight` and VQGAN's `adaptive_weight`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlparse

import lpips
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models

from ochre.errors import ConfigError, OchreError

# LPIPS trunk name -> (the torchvision ImageNet weights lpips uses, the torchvision constructor)
_BACKBONES: dict[str, tuple[models.WeightsEnum, Callable[..., nn.Module]]] = {
    "alex": (models.AlexNet_Weights.IMAGENET1K_V1, models.alexnet),
    "vgg": (models.VGG16_Weights.IMAGENET1K_V1, models.vgg16),
}
WEIGHTS_KEY = "train.lpips_weights"  # the config key that points at a backbone weights file


def _backbone(net: str) -> tuple[models.WeightsEnum, Callable[..., nn.Module]]:
    if net not in _BACKBONES:
        raise ConfigError(f"unknown LPIPS backbone {net!r}; choose one of {', '.join(_BACKBONES)}")
    return _BACKBONES[net]


def default_lpips_weights(net: str = "alex") -> Path:
    """The file torchvision would download the backbone's ImageNet weights to.

    torch.hub caches `<url basename>` under `torch.hub.get_dir()/checkpoints/`
    (`$TORCH_HOME/hub/checkpoints`, by default `~/.cache/torch/hub/checkpoints`),
    e.g. `alexnet-owt-7be5be79.pth` for AlexNet and `vgg16-397923af.pth` for VGG16.
    """
    weights, _ = _backbone(net)
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def _lpips_metric(net: str) -> lpips.LPIPS:
    """lpips.LPIPS with a randomly initialised trunk and the linear weights shipped in the package.

    `pnet_rand=True` builds the torchvision trunk with no weights (no download);
    `pretrained=True` loads the package's calibrated linear layers (`lpips/weights/v0.1`).
    """
    _backbone(net)
    with warnings.catch_warnings():  # lpips still passes torchvision's deprecated `pretrained=` argument
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        return lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, pnet_tune=False, verbose=False)


def _one_line(err: Exception, limit: int = 200) -> str:
    """torch's load errors span many lines; an OchreError is one line."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling raises many types; all mean "not a weights file"
        raise OchreError(
            f"cannot read LPIPS backbone weights {path}: not a torch checkpoint ({type(err).__name__}: {_one_line(err)})"
        ) from err
    if not isinstance(state, Mapping):
        raise OchreError(f"LPIPS backbone weights {path} hold a {type(state).__name__}, not a state dict")
    return state


def _torchvision_features(net: str, state: Mapping[str, torch.Tensor], path: Path) -> Mapping[str, torch.Tensor]:
    """Load `state` into a weightless torchvision model, checking every key; return its `features` state dict."""
    _, build = _backbone(net)
    model = build(weights=None)
    name = f"a torchvision {model.__class__.__name__} state dict"
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of the wrong shape or type
        raise OchreError(f"LPIPS backbone weights {path} are not {name}: {_one_line(err)}") from err
    if result.missing_keys or result.unexpected_keys:
        raise OchreError(
            f"LPIPS backbone weights {path} are not {name}: missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}"
        )
    return model.features.state_dict()


class LPIPSLoss(nn.Module):
    """Mean LPIPS distance between two batches of frames in [-1, 1] (Zhang et al. 2018).

    The trunk and the linear layers are frozen (no parameter takes a gradient, and the
    module stays in eval mode so the linear layers' dropout is off), but the distance is
    differentiable in its inputs, so gradients reach whatever produced `pred`. The
    distance is computed in float32 even under `torch.autocast`.
    """

    def __init__(self, net: str, backbone: Mapping[str, torch.Tensor] | None):
        """net: "alex" or "vgg"; backbone: the torchvision `features` state dict, or None for a random trunk (tests only)."""
        super().__init__()
        self.metric = _lpips_metric(net)
        if backbone is not None:
            # lpips splits torchvision's `features` into slices that keep the original indices: sliceK.<i>.* = <i>.*
            self.metric.net.load_state_dict({key: backbone[key.split(".", 1)[1]] for key in self.metric.net.state_dict()})
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def random_backbone(cls, net: str = "alex") -> LPIPSLoss:
        """A random trunk with the shipped linear weights: the full wiring, offline, for tests."""
        return cls(net, None)

    def train(self, mode: bool = True) -> LPIPSLoss:
        """Stay in eval mode whatever a parent module asks: the metric is fixed."""
        return super().train(False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: (B, 3, H, W) in [-1, 1], H and W >= 32 -> scalar mean distance."""
        with torch.autocast(device_type=pred.device.type, enabled=False):
            return self.metric(pred.float(), target.float()).mean()


def load_lpips(net: str = "alex", weights: str = "", warn: Callable[[str], object] = print) -> LPIPSLoss | None:
    """The LPIPS loss with ImageNet trunk weights read from a local file, or None when there is none.

    weights: the file given in config (`train.lpips_weights`); empty means torchvision's
    hub cache file (`default_lpips_weights(net)`). A missing cache file calls `warn` with
    one line saying how to enable LPIPS and returns None, so training goes on without it;
    a configured file that is missing, or a file that is not the right state dict, raises
    `OchreError` (an explicit setting never fails silently).
    """
    path = Path(weights).expanduser() if weights else default_lpips_weights(net)
    if weights and not path.is_file():
        raise OchreError(f"{path}: LPIPS backbone weights file not found ({WEIGHTS_KEY}); fix the path or leave it empty")
    if not path.is_file():
        url = _backbone(net)[0].url
        warn(
            f"LPIPS disabled: backbone weights not found at {path}; to enable it, download {url} to that path or set {WEIGHTS_KEY}=/path/to/file"
        )
        return None
    return LPIPSLoss(net, _torchvision_features(net, _read_state_dict(path), path))


class PatchDiscriminator(nn.Module):
    """PatchGAN critic (Isola et al. 2017), the VQGAN variant (Esser et al. 2021): one logit per patch.

    4x4 convolutions: `layers` of stride 2 (width ch, 2ch, 4ch, ... capped at 8ch), one of
    stride 1 and a 1-channel stride-1 output; LeakyReLU(0.2) in between. With layers=3
    each logit sees a 70x70 receptive field; a 64x64 frame gives 6x6 logits, 72x128 gives 7x14.

    Normalisation: GroupNorm after every inner convolution, where pix2pix and VQGAN use
    BatchNorm. GroupNorm is per sample, so it behaves the same for any batch size, in
    train and eval mode, and when real and fake frames go through in separate calls;
    BatchNorm's batch statistics are noisy for small batches and let the critic tell a
    real batch from a fake one by its statistics rather than by its patches. Spectral
    norm would also work but adds power-iteration state to every layer.
    """

    def __init__(self, in_ch: int = 3, ch: int = 64, layers: int = 3):
        super().__init__()
        widths = [ch * min(2**i, 8) for i in range(layers + 1)]
        blocks: list[nn.Module] = [nn.Conv2d(in_ch, widths[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            blocks += [
                nn.Conv2d(widths[i - 1], widths[i], 4, stride=stride, padding=1, bias=False),
                nn.GroupNorm(math.gcd(32, widths[i]), widths[i]),
                nn.LeakyReLU(0.2),
            ]
        blocks.append(nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*blocks)
        for module in self.net:
            if isinstance(module, nn.Conv2d):  # the DCGAN/pix2pix initialisation
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_ch, H, W) in [-1, 1] -> logits (B, 1, h, w), one per patch; higher means real."""
        return self.net(x)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Critic hinge loss: 0.5 * (mean relu(1 - real) + mean relu(1 + fake)), as in VQGAN."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def generator_adv_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge GAN: -mean(fake logits), i.e. make the critic score fakes as real."""
    return -fake_logits.mean()


def adversarial_weight(step: int, start_step: int) -> float:
    """0 before `start_step`, 1 from it on: the tokenizer first learns to reconstruct, then the GAN joins."""
    return 1.0 if step >= start_step else 0.0


def adaptive_weight(
    rec_loss: torch.Tensor, adv_loss: torch.Tensor, last_layer_weight: torch.Tensor, max_weight: float = 1e4
) -> torch.Tensor:
    """VQGAN's balance (Esser et al. 2021, eq. 7): |grad rec| / (|grad adv| + 1e-4) at the decoder's last layer.

    Scales the adversarial term so its gradient at `last_layer_weight` is as large as the
    reconstruction (plus perceptual) term's. Clamped to [0, max_weight] and detached; both
    graphs are kept, so the caller can still backpropagate the combined loss.
    """
    rec_grad = torch.autograd.grad(rec_loss, last_layer_weight, retain_graph=True)[0]
    adv_grad = torch.autograd.grad(adv_loss, last_layer_weight, retain_graph=True)[0]
    weight = rec_grad.norm() / (adv_grad.norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()


def detail_weights(x: torch.Tensor, weight: float, tau: float) -> torch.Tensor:
    """Per-pixel loss weights (B, 1, H, W) with mean 1 per frame: 1 + weight where a pixel's colour differs from its
    frame's median colour by more than tau in some channel (x in [-1, 1]), 1 elsewhere.

    Small sprites on a plain background (Pong's ball is about one pixel at 64x64) add almost nothing to a mean
    reconstruction loss and vanish from the codes; this weighting makes them count. weight = 0 gives all ones.
    """
    median = x.flatten(2).median(-1).values[:, :, None, None]
    detail = ((x - median).abs().amax(1, keepdim=True) > tau).float()
    w = 1 + weight * detail
    return w / w.mean((2, 3), keepdim=True)
