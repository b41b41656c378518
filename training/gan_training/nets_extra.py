"""Networks of the variants beyond DCGAN/cGAN/InfoGAN (see variants/).

* MLPs for the ``gan`` variant (Goodfellow et al. 2014 used MLPs) and for
  every variant on point data (ring8, grid25, gaussian1d), whose samples are
  (N, 1, D, 1) tensors;
* a configurable convolutional critic (BatchNorm, LayerNorm or no norm,
  optional spectral normalisation, optional features for VAE-GAN);
* encoders (BiGAN: x -> z; VAE-GAN: x -> (mu, log sigma^2));
* EBGAN's autoencoder discriminator;
* BiGAN's joint discriminator D(x, z).

Every image net here mirrors models.ConvBody's topology (two stride-2 4x4
convolutions 28 -> 14 -> 7) so widths mean the same thing as ``--width``.
Convolutional nets initialise themselves with DCGAN's N(0, 0.02) (before
any spectral normalisation is attached); MLPs keep PyTorch's default
initialisation, which suits the tiny 2-D problems better.

Generators stay in models.py's contract (``build_generator`` dispatches
``arch="mlp"`` here), so export rebuilds them from the checkpoint alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .models import GeneratorConfig, init_weights


@dataclass(frozen=True)
class NetConfig:
    """What a checkpoint records about a non-generator net: its kind and the
    keyword arguments that rebuild it (``build_net``)."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
        }


def _mlp(in_dim: int, hidden: int, layers: int, act: str, norm: str = "none", spectral: bool = False) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        lin = nn.Linear(d, hidden)
        mods.append(spectral_norm(lin) if spectral else lin)
        if norm == "layer":
            mods.append(nn.LayerNorm(hidden))
        elif norm == "batch":
            mods.append(nn.BatchNorm1d(hidden))
        mods.append(nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2))
        d = hidden
    return nn.Sequential(*mods)


# --------------------------------------------------------------------------
# Generators and plain discriminators


class MLPGenerator(nn.Module):
    """G(z): z (N, z_dim) -> ReLU MLP -> (N, *out_shape), tanh for images in
    [-1, 1] or linear for points."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        if cfg.conditioning != "none":
            raise ValueError(f"the MLP generator is unconditional; got conditioning {cfg.conditioning!r}")
        if cfg.out_activation not in ("tanh", "linear"):
            raise ValueError(f"unknown out_activation {cfg.out_activation!r}; known: tanh, linear")
        self.cfg = cfg
        self.out_shape = tuple(int(d) for d in cfg.out_shape)
        self.body = _mlp(cfg.z_dim, cfg.mlp_hidden, cfg.mlp_layers, "relu")
        self.out = nn.Linear(cfg.mlp_hidden, math.prod(self.out_shape))
        self.tanh = cfg.out_activation == "tanh"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.out(self.body(z))
        if self.tanh:
            h = torch.tanh(h)
        return h.view(-1, *self.out_shape)


class MLPDiscriminator(nn.Module):
    """D(x): flattened sample -> LeakyReLU MLP -> logit (N,). ``features``:
    also return the last hidden layer (VAE-GAN's Dis_l)."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        hidden: int,
        layers: int,
        norm: str = "none",
        spectral: bool = False,
        features: bool = False,
    ) -> None:
        super().__init__()
        self.features = features
        self.body = _mlp(math.prod(in_shape), hidden, layers, "lrelu", norm, spectral)
        head = nn.Linear(hidden, 1)
        self.head = spectral_norm(head) if spectral else head

    def forward(self, x: torch.Tensor):
        h = self.body(x.flatten(1))
        logit = self.head(h).squeeze(1)
        return (logit, h) if self.features else logit


class ConvCritic(nn.Module):
    """D(x) for (N, 1, 28, 28): conv 1->w, conv w->2w (+ norm), linear -> (N,).

    norm: "batch" (DCGAN; WGAN with clipping), "layer" (WGAN-GP: the
    penalty is per sample, which BatchNorm's batch coupling breaks) or
    "none" (SNGAN). ``spectral`` wraps every weight in
    torch.nn.utils.parametrizations.spectral_norm (Miyato et al. 2018).
    ``features``: also return the flattened 7x7 activations (VAE-GAN).
    """

    def __init__(self, width: int, norm: str = "batch", spectral: bool = False, features: bool = False) -> None:
        super().__init__()
        if norm not in ("batch", "layer", "none"):
            raise ValueError(f"unknown norm {norm!r}; known: batch, layer, none")
        self.features = features
        self.out_dim = 2 * width * 7 * 7
        self.conv1 = nn.Conv2d(1, width, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=norm != "batch")
        self.norm = {
            "batch": lambda: nn.BatchNorm2d(2 * width),
            "layer": lambda: nn.LayerNorm([2 * width, 7, 7]),
            "none": nn.Identity,
        }[norm]()
        self.head = nn.Linear(self.out_dim, 1)
        init_weights(self)
        if spectral:
            for name in ("conv1", "conv2", "head"):
                setattr(self, name, spectral_norm(getattr(self, name)))

    def forward(self, x: torch.Tensor):
        h = F.leaky_relu(self.conv1(x), 0.2)  # (N, w, 14, 14)
        h = F.leaky_relu(self.norm(self.conv2(h)), 0.2).flatten(1)  # (N, 2w * 49)
        logit = self.head(h).squeeze(1)
        return (logit, h) if self.features else logit


# --------------------------------------------------------------------------
# Encoders


class ConvEncoder(nn.Module):
    """x (N, 1, 28, 28) -> (N, out_dim): ConvBody's two convolutions, BatchNorm, linear."""

    def __init__(self, width: int, out_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.fc = nn.Linear(2 * width * 7 * 7, out_dim)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.bn2(self.conv2(h)), 0.2)
        return self.fc(h.flatten(1))


class MLPEncoder(nn.Module):
    """x (N, *in_shape) -> (N, out_dim)."""

    def __init__(self, in_shape: tuple[int, ...], hidden: int, layers: int, out_dim: int) -> None:
        super().__init__()
        self.body = _mlp(math.prod(in_shape), hidden, layers, "lrelu")
        self.fc = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x.flatten(1)))


class LatentMean(nn.Module):
    """The exported encoder graph: images -> z. A stochastic (VAE) encoder
    outputs [mu, log sigma^2]; serving uses mu."""

    def __init__(self, encoder: nn.Module, z_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.z_dim = z_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)[:, : self.z_dim]


# --------------------------------------------------------------------------
# EBGAN's autoencoder discriminator


class ConvAutoencoder(nn.Module):
    """x (N, 1, 28, 28) -> (reconstruction in [-1, 1], code (N, code_dim))."""

    def __init__(self, width: int, code_dim: int) -> None:
        super().__init__()
        self.width = width
        self.enc = ConvEncoder(width, code_dim)
        self.fc = nn.Linear(code_dim, 2 * width * 7 * 7, bias=False)
        self.bn0 = nn.BatchNorm2d(2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.up2 = nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.enc(x)
        h = F.relu(self.bn0(self.fc(code).view(-1, 2 * self.width, 7, 7)))
        h = F.relu(self.bn1(self.up1(h)))
        return torch.tanh(self.up2(h)), code


class MLPAutoencoder(nn.Module):
    """x (N, *in_shape) -> (reconstruction (N, *in_shape), code (N, code_dim))."""

    def __init__(self, in_shape: tuple[int, ...], hidden: int, layers: int, code_dim: int) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.enc = MLPEncoder(in_shape, hidden, layers, code_dim)
        self.dec = nn.Sequential(_mlp(code_dim, hidden, layers, "lrelu"), nn.Linear(hidden, math.prod(in_shape)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.enc(x)
        return self.dec(code).view(-1, *self.in_shape), code


# --------------------------------------------------------------------------
# BiGAN's joint discriminator


class JointDiscriminator(nn.Module):
    """D(x, z) -> logit (N,) (Donahue et al. 2017; Dumoulin et al. 2017).

    Images: x through ConvBody-like convolutions, z through a linear layer,
    the two joined by an MLP. Points: one MLP on [x, z].
    """

    def __init__(self, in_shape: tuple[int, ...], z_dim: int, width: int, hidden: int, conv: bool) -> None:
        super().__init__()
        self.conv = conv
        if conv:
            self.conv1 = nn.Conv2d(1, width, 4, stride=2, padding=1)
            self.conv2 = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(2 * width)
            x_dim = 2 * width * 7 * 7
            self.z_path = nn.Linear(z_dim, hidden)
            self.joint = nn.Sequential(nn.Linear(x_dim + hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
            init_weights(self)
        else:
            self.joint = nn.Sequential(_mlp(math.prod(in_shape) + z_dim, hidden, 3, "lrelu"), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.conv:
            h = F.leaky_relu(self.conv1(x), 0.2)
            h = F.leaky_relu(self.bn2(self.conv2(h)), 0.2).flatten(1)
            joined = torch.cat([h, F.leaky_relu(self.z_path(z), 0.2)], dim=1)
        else:
            joined = torch.cat([x.flatten(1), z], dim=1)
        return self.joint(joined).squeeze(1)


# --------------------------------------------------------------------------
# Rebuilding from a checkpoint's NetConfig

_KINDS = {
    "mlp_discriminator": MLPDiscriminator,
    "conv_critic": ConvCritic,
    "conv_encoder": ConvEncoder,
    "mlp_encoder": MLPEncoder,
    "conv_autoencoder": ConvAutoencoder,
    "mlp_autoencoder": MLPAutoencoder,
    "joint_discriminator": JointDiscriminator,
}


def build_net(cfg: NetConfig | dict[str, Any]) -> nn.Module:
    if isinstance(cfg, dict):
        cfg = NetConfig(cfg["kind"], dict(cfg.get("params", {})))
    if cfg.kind not in _KINDS:
        raise ValueError(f"unknown net kind {cfg.kind!r}; known: {', '.join(_KINDS)}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.params.items()}
    return _KINDS[cfg.kind](**params)


def has_parametrizations(module: nn.Module) -> bool:
    """Whether any submodule carries a parametrization (e.g. spectral_norm)."""
    from torch.nn.utils import parametrize

    return any(parametrize.is_parametrized(m) for m in module.modules())
