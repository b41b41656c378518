"""The networks: every generator, discriminator and encoder the variants
train, and the small CNN that judges generated digits. Only nn.Modules and
their configs live here; training lives in trainer.py and variants/.

A checkpoint rebuilds every net from its config alone: generators from a
:class:`GeneratorConfig` (``build_generator``), every other net from a
:class:`NetConfig` (``build_net``: its kind and its constructor's keyword
arguments).

Generator call signatures are the serving contract
(``gan_contract.manifest.expected_inputs``):

    unconditional  G(z)                          z (N, z_dim) float32
    class          G(z, label)                   label (N,) int64
    infogan        G(z, category, continuous)    category (N, K) one-hot float32,
                                                 continuous (N, C) float32

and every generator returns samples (N, *out_shape) float32: images
(N, 1, 28, 28) in [-1, 1], or for point data (ring8, grid25, gaussian1d)
(N, 1, D, 1).

Every image net shares one convolutional topology (two stride-2 4x4
convolutions 28 -> 14 -> 7, :class:`ConvBody`; its mirror image
:class:`DeconvStack`), so ``--width`` means the same everywhere.
Convolutional nets initialise themselves with DCGAN's N(0, 0.02) (before any
spectral normalisation is attached); MLPs keep PyTorch's default
initialisation, which suits the tiny 2-D problems better.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

CONDITIONING_KINDS = ("none", "class", "infogan")
RESIZE_KINDS = ("transposed", "upsample")


@dataclass(frozen=True)
class GeneratorConfig:
    conditioning: str = "none"  # none | class | infogan
    z_dim: int = 100
    width: int = 64  # channels at 14x14; the 7x7 stage has 2 * width
    hidden: int = 0  # > 0: an MLP layer of this size before the 7x7 projection
    # conv: how G doubles 7 -> 14 -> 28: "transposed" (4x4 stride-2 transposed
    # convolutions, DCGAN) or "upsample" (nearest-neighbour x2, then a 3x3
    # convolution; Odena et al. 2016: no checkerboard from uneven overlaps).
    resize: str = "transposed"
    num_classes: int = 10  # class
    embed_dim: int = 10  # class: size of the learned label embedding
    num_categories: int = 10  # infogan
    num_continuous: int = 2  # infogan
    # arch "mlp" (MLPGenerator; the gan variant and every variant on point
    # data): z -> mlp_layers hidden layers of mlp_hidden -> out_shape.
    arch: str = "conv"  # conv (the DCGAN stack below, 1x28x28) | mlp
    out_shape: tuple[int, ...] = (1, 28, 28)  # per-sample output (C, H, W)
    out_activation: str = "tanh"  # mlp: tanh (images in [-1, 1]) | linear (points)
    mlp_hidden: int = 256
    mlp_layers: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NetConfig:
    """What a checkpoint records about a net other than the generator: its
    kind (a key of ``NETS``) and the keyword arguments that rebuild it."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
        }


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, BatchNorm gains N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def has_parametrizations(module: nn.Module) -> bool:
    """Whether any submodule carries a parametrization (e.g. spectral_norm)."""
    return any(parametrize.is_parametrized(m) for m in module.modules())


def _spectral(module: nn.Module, *names: str) -> None:
    """Reparametrise the weights of ``module.<name>`` as W / sigma(W) (Miyato et al. 2018)."""
    for name in names:
        owner, _, attr = name.rpartition(".")
        parent = module.get_submodule(owner) if owner else module
        setattr(parent, attr, spectral_norm(getattr(parent, attr)))


def _mlp(
    in_dim: int,
    hidden: int,
    layers: int,
    act: str,
    norm: str = "none",
    spectral: bool = False,
    dropout: float = 0.0,
) -> nn.Sequential:
    """``layers`` x (Linear, [norm], activation, [Dropout(dropout) if > 0])."""
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
        if dropout > 0:
            mods.append(nn.Dropout(dropout))
        d = hidden
    return nn.Sequential(*mods)


# --------------------------------------------------------------------------
# The convolutional stacks every image net is made of


class DeconvStack(nn.Module):
    """A flat code (B, in_dim) -> image (B, 1, 28, 28) in [-1, 1].

    ``resize``: "transposed" (4x4 stride-2 transposed convolutions) or
    "upsample" (nearest x2, then a 3x3 convolution). Both keep the layer
    names up1 and up2, and the upsampling itself has no weights.
    """

    def __init__(self, in_dim: int, width: int, hidden: int = 0, resize: str = "transposed") -> None:
        super().__init__()
        if resize not in RESIZE_KINDS:
            raise ValueError(f"unknown generator resize {resize!r}; known: {', '.join(RESIZE_KINDS)}")
        self.width = width
        # The InfoGAN paper's generator starts with a fully connected layer:
        # it lets a code change the whole layout, not just add a template.
        # No biases before BatchNorm: its shift makes them redundant.
        self.mlp = (
            nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU())
            if hidden
            else nn.Identity()
        )
        self.fc = nn.Linear(hidden or in_dim, 2 * width * 7 * 7, bias=False)
        self.bn0 = nn.BatchNorm2d(2 * width)
        if resize == "upsample":
            self.grow = nn.Upsample(scale_factor=2, mode="nearest")
            self.up1 = nn.Conv2d(2 * width, width, 3, padding=1, bias=False)
            self.up2 = nn.Conv2d(width, 1, 3, padding=1)
        else:
            self.grow = nn.Identity()
            self.up1 = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False)
            self.up2 = nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.mlp(code)).view(-1, 2 * self.width, 7, 7)  # (B, 2w, 7, 7)
        h = F.relu(self.bn0(h))
        h = F.relu(self.bn1(self.up1(self.grow(h))))  # (B, w, 14, 14)
        return torch.tanh(self.up2(self.grow(h)))  # (B, 1, 28, 28)


class ConvBody(nn.Module):
    """Image (B, 1, 28, 28) -> features (B, 2w * 7 * 7).

    norm after the second convolution: "batch" (DCGAN; WGAN with clipping),
    "layer" (WGAN-GP: the penalty is per sample, which BatchNorm's batch
    coupling breaks) or "none" (SNGAN). DCGAN leaves the first layer
    unnormalised so D sees raw pixel statistics. ``dropout`` > 0:
    Dropout2d(p) after each convolution's activation (whole feature maps
    dropped, as in the common DCGAN examples' discriminators).
    """

    def __init__(self, width: int, norm: str = "batch", in_channels: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if norm not in ("batch", "layer", "none"):
            raise ValueError(f"unknown norm {norm!r}; known: batch, layer, none")
        self.out_dim = 2 * width * 7 * 7
        self.conv1 = nn.Conv2d(in_channels, width, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=norm != "batch")
        self.norm = {
            "batch": lambda: nn.BatchNorm2d(2 * width),
            "layer": lambda: nn.LayerNorm([2 * width, 7, 7]),
            "none": nn.Identity,
        }[norm]()
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.leaky_relu(self.conv1(x), 0.2))  # (B, w, 14, 14)
        h = self.drop(F.leaky_relu(self.norm(self.conv2(h)), 0.2))  # (B, 2w, 7, 7)
        return h.flatten(1)


# --------------------------------------------------------------------------
# Generators


class Generator(nn.Module):
    """Unconditional DCGAN generator: G(z)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = DeconvStack(cfg.z_dim, cfg.width, cfg.hidden, cfg.resize)
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConditionalGenerator(nn.Module):
    """Class-conditional generator: G(z, label), the label embedded and
    concatenated with z."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed_dim)
        self.net = DeconvStack(cfg.z_dim + cfg.embed_dim, cfg.width, cfg.hidden, cfg.resize)
        init_weights(self)

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, self.embed(label)], dim=1))  # (B, z + e)


class InfoGenerator(nn.Module):
    """InfoGAN generator: G(z, c_cat one-hot, c_cont)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = DeconvStack(cfg.z_dim + cfg.num_categories + cfg.num_continuous, cfg.width, cfg.hidden, cfg.resize)
        init_weights(self)

    def forward(self, z: torch.Tensor, category: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, category, continuous], dim=1))  # (B, z + K + C)


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


def output_layer(generator: nn.Module) -> nn.Module | None:
    """The layer whose output a generator squashes with tanh into [-1, 1]
    (the last transposed convolution, or the MLP's output layer); None for
    a linear output (point data)."""
    if isinstance(generator, MLPGenerator):
        return generator.out if generator.tanh else None
    net = getattr(generator, "net", None)
    return net.up2 if isinstance(net, DeconvStack) else None


@torch.no_grad()
def init_output_level(generator: nn.Module, level: float) -> bool:
    """Start the output layer's bias at atanh(``level``), so that where the
    layer's inputs are silent G draws ``level`` (the trainer passes the
    training images' mean pixel) instead of tanh(0) = 0, mid-grey. With a
    zero bias and tanh, every region G's features leave weak falls back to
    mid-grey, and nothing moves the bias later: the background's saturated
    pixels pass tanh' ~ 0 back to it. False where there is no tanh output."""
    layer = output_layer(generator)
    if layer is None or layer.bias is None:
        return False
    layer.bias.fill_(math.atanh(min(max(level, -0.999), 0.999)))
    return True


def build_generator(cfg: GeneratorConfig) -> nn.Module:
    if cfg.arch == "mlp":
        return MLPGenerator(cfg)
    if cfg.arch != "conv":
        raise ValueError(f"unknown generator arch {cfg.arch!r}; known: conv, mlp")
    kinds = {"none": Generator, "class": ConditionalGenerator, "infogan": InfoGenerator}
    if cfg.conditioning not in kinds:
        raise ValueError(f"unknown conditioning {cfg.conditioning!r}; known: {', '.join(kinds)}")
    return kinds[cfg.conditioning](cfg)


# --------------------------------------------------------------------------
# Discriminators


class ConvDiscriminator(nn.Module):
    """D(x) for (N, 1, 28, 28): ConvBody (``norm``), linear -> logit (N,).

    ``spectral`` wraps every weight in
    torch.nn.utils.parametrizations.spectral_norm (Miyato et al. 2018).
    ``features``: also return the flattened 7x7 activations (VAE-GAN's Dis_l).
    ``in_channels`` > 1: PacGAN's packs, that many images side by side as channels.
    ``dropout`` > 0: Dropout2d(p) in the body (:class:`ConvBody`).
    """

    def __init__(
        self,
        width: int,
        norm: str = "batch",
        spectral: bool = False,
        features: bool = False,
        in_channels: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = features
        self.body = ConvBody(width, norm, in_channels, dropout)
        self.head = nn.Linear(self.body.out_dim, 1)
        init_weights(self)
        if spectral:
            _spectral(self, "body.conv1", "body.conv2", "head")

    def forward(self, x: torch.Tensor):
        h = self.body(x)  # (N, 2w * 49)
        logit = self.head(h).squeeze(1)
        return (logit, h) if self.features else logit


class ProjectionDiscriminator(nn.Module):
    """Class-conditional D(x, y) = psi(h) + <embed(y), h> (Miyato & Koyama, 2018).

    The projection term lets D judge "is this a plausible y" without the
    label having to pass through the convolutions.
    """

    def __init__(self, width: int, num_classes: int = 10) -> None:
        super().__init__()
        self.body = ConvBody(width)
        self.head = nn.Linear(self.body.out_dim, 1)
        self.embed = nn.Embedding(num_classes, self.body.out_dim)
        init_weights(self)
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.body(x)  # (B, F)
        return self.head(h).squeeze(1) + (self.embed(label) * h).sum(1)


@dataclass
class InfoOutput:
    logit: torch.Tensor  # (B,) real/fake
    cat_logits: torch.Tensor  # (B, K)
    cont_mean: torch.Tensor  # (B, C)
    cont_logvar: torch.Tensor  # (B, C)


class InfoDiscriminator(nn.Module):
    """InfoGAN D and Q sharing one conv body.

    The Q head reads the same features as D, so recovering the codes costs
    almost nothing extra, as in Chen et al. (2016). ``hidden`` > 0: a fully
    connected layer of that size (BatchNorm, LeakyReLU) after the body,
    also shared: the paper's MNIST D has one of 1024.
    """

    def __init__(
        self, width: int, num_categories: int = 10, num_continuous: int = 2, q_hidden: int = 128, hidden: int = 0
    ) -> None:
        super().__init__()
        self.num_categories, self.num_continuous = num_categories, num_continuous
        self.body = ConvBody(width)
        # No bias before BatchNorm: its shift makes one redundant.
        self.fc = (
            nn.Sequential(nn.Linear(self.body.out_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2))
            if hidden
            else nn.Identity()
        )
        features = hidden or self.body.out_dim
        self.head = nn.Linear(features, 1)
        self.q_head = nn.Sequential(
            nn.Linear(features, q_hidden, bias=False),
            nn.BatchNorm1d(q_hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(q_hidden, num_categories + 2 * num_continuous),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor, q_detached: bool = False) -> InfoOutput:
        """``q_detached``: Q's losses train only the Q head, not the shared body."""
        h = self.fc(self.body(x))
        q = self.q_head(h.detach() if q_detached else h)  # (B, K + 2C)
        k, c = self.num_categories, self.num_continuous
        return InfoOutput(
            logit=self.head(h).squeeze(1),
            cat_logits=q[:, :k],
            cont_mean=q[:, k : k + c],
            # Bounded so one confident wrong guess cannot blow up the NLL.
            cont_logvar=q[:, k + c :].clamp(-6.0, 4.0),
        )


class MLPDiscriminator(nn.Module):
    """D(x): flattened sample -> LeakyReLU MLP -> logit (N,). ``features``:
    also return the last hidden layer (VAE-GAN's Dis_l). ``dropout`` > 0:
    Dropout(p) after every hidden layer's activation, as in the original
    GAN's MNIST discriminator (Goodfellow et al. 2014); active in train
    mode only."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        hidden: int,
        layers: int,
        norm: str = "none",
        spectral: bool = False,
        features: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = features
        self.body = _mlp(math.prod(in_shape), hidden, layers, "lrelu", norm, spectral, dropout)
        head = nn.Linear(hidden, 1)
        self.head = spectral_norm(head) if spectral else head

    def forward(self, x: torch.Tensor):
        h = self.body(x.flatten(1))
        logit = self.head(h).squeeze(1)
        return (logit, h) if self.features else logit


class JointDiscriminator(nn.Module):
    """BiGAN's D(x, z) -> logit (N,) (Donahue et al. 2017; Dumoulin et al. 2017).

    Images: x through ConvBody, z through a linear layer, the two joined by
    an MLP. Points: one MLP on [x, z]. ``dropout`` > 0: ALI's dropout in
    every layer of D (Dumoulin et al. use 0.2): Dropout2d(p) in the image
    body, Dropout(p) after the z layer and after each hidden layer.
    """

    def __init__(
        self, in_shape: tuple[int, ...], z_dim: int, width: int, hidden: int, conv: bool, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.conv = conv
        if conv:
            self.body = ConvBody(width, dropout=dropout)
            self.z_path = nn.Linear(z_dim, hidden)
            # Dropout modules only when asked, so a checkpoint from before
            # keeps its state-dict keys (joint.2 is the output layer).
            self.z_drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
            drop = [nn.Dropout(dropout)] if dropout > 0 else []
            self.joint = nn.Sequential(
                nn.Linear(self.body.out_dim + hidden, hidden), nn.LeakyReLU(0.2), *drop, nn.Linear(hidden, 1)
            )
            init_weights(self)
        else:
            self.joint = nn.Sequential(
                _mlp(math.prod(in_shape) + z_dim, hidden, 3, "lrelu", dropout=dropout), nn.Linear(hidden, 1)
            )

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.conv:
            joined = torch.cat([self.body(x), self.z_drop(F.leaky_relu(self.z_path(z), 0.2))], dim=1)
        else:
            joined = torch.cat([x.flatten(1), z], dim=1)
        return self.joint(joined).squeeze(1)


# --------------------------------------------------------------------------
# Encoders and autoencoders


class ConvEncoder(nn.Module):
    """x (N, 1, 28, 28) -> (N, out_dim): ConvBody, linear."""

    def __init__(self, width: int, out_dim: int) -> None:
        super().__init__()
        self.body = ConvBody(width)
        self.fc = nn.Linear(self.body.out_dim, out_dim)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


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


class ConvAutoencoder(nn.Module):
    """EBGAN's D: x (N, 1, 28, 28) -> (reconstruction in [-1, 1], code (N, code_dim))."""

    def __init__(self, width: int, code_dim: int) -> None:
        super().__init__()
        self.enc = ConvEncoder(width, code_dim)
        self.dec = DeconvStack(code_dim, width)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.enc(x)
        return self.dec(code), code


class MLPAutoencoder(nn.Module):
    """EBGAN's D on points: x (N, *in_shape) -> (reconstruction (N, *in_shape), code (N, code_dim))."""

    def __init__(self, in_shape: tuple[int, ...], hidden: int, layers: int, code_dim: int) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.enc = MLPEncoder(in_shape, hidden, layers, code_dim)
        self.dec = nn.Sequential(_mlp(code_dim, hidden, layers, "lrelu"), nn.Linear(hidden, math.prod(in_shape)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.enc(x)
        return self.dec(code).view(-1, *self.in_shape), code


NETS: dict[str, type[nn.Module]] = {
    "conv_discriminator": ConvDiscriminator,
    "projection_discriminator": ProjectionDiscriminator,
    "info_discriminator": InfoDiscriminator,
    "mlp_discriminator": MLPDiscriminator,
    "joint_discriminator": JointDiscriminator,
    "conv_encoder": ConvEncoder,
    "mlp_encoder": MLPEncoder,
    "conv_autoencoder": ConvAutoencoder,
    "mlp_autoencoder": MLPAutoencoder,
}


def build_net(cfg: NetConfig | dict[str, Any]) -> nn.Module:
    """The net a NetConfig (or a checkpoint's dict of one) describes."""
    if isinstance(cfg, dict):
        cfg = NetConfig(cfg["kind"], dict(cfg.get("params", {})))
    if cfg.kind not in NETS:
        raise ValueError(f"unknown net kind {cfg.kind!r}; known: {', '.join(NETS)}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.params.items()}
    return NETS[cfg.kind](**params)


# --------------------------------------------------------------------------
# The digit classifier that judges generated samples


@dataclass(frozen=True)
class ClassifierConfig:
    width: int = 32
    hidden: int = 64
    dropout: float = 0.3

    def to_dict(self) -> dict:
        return asdict(self)


class MnistClassifier(nn.Module):
    """Image (B, 1, 28, 28) in [-1, 1] -> digit logits (B, 10)."""

    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, w, 14, 14)
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            nn.Conv2d(2 * w, 4 * w, 3), nn.BatchNorm2d(4 * w), nn.ReLU(),  # (B, 4w, 5, 5)
            nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        self.classify = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(cfg.dropout),
            nn.Linear(4 * w, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))
