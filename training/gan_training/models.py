"""The networks: DCGAN-style generators and discriminators for 28x28x1 images,
and the small CNN that judges generated digits. Only nn.Modules and their
config dataclasses live here; training lives in trainer.py and variants/.

Generator call signatures are the serving contract
(``gan_contract.manifest.expected_inputs``):

    unconditional  G(z)                          z (N, z_dim) float32
    class          G(z, label)                   label (N,) int64
    infogan        G(z, category, continuous)    category (N, K) one-hot float32,
                                                 continuous (N, C) float32

and every generator returns images (N, 1, 28, 28) float32 in [-1, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

CONDITIONING_KINDS = ("none", "class", "infogan")


@dataclass(frozen=True)
class GeneratorConfig:
    conditioning: str = "none"  # none | class | infogan
    z_dim: int = 100
    width: int = 64  # channels at 14x14; the 7x7 stage has 2 * width
    hidden: int = 0  # > 0: an MLP layer of this size before the 7x7 projection
    num_classes: int = 10  # class
    embed_dim: int = 10  # class: size of the learned label embedding
    num_categories: int = 10  # infogan
    num_continuous: int = 2  # infogan
    # arch "mlp" (nets_extra.MLPGenerator; the gan variant and every variant
    # on point data): z -> mlp_layers hidden layers of mlp_hidden -> out_shape.
    arch: str = "conv"  # conv (the DCGAN stack above, 1x28x28) | mlp
    out_shape: tuple[int, ...] = (1, 28, 28)  # per-sample output (C, H, W)
    out_activation: str = "tanh"  # mlp: tanh (images in [-1, 1]) | linear (points)
    mlp_hidden: int = 256
    mlp_layers: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DiscriminatorConfig:
    conditioning: str = "none"
    width: int = 64  # channels at 14x14; the 7x7 stage has 2 * width
    num_classes: int = 10  # class: projection embedding rows
    num_categories: int = 10  # infogan Q head
    num_continuous: int = 2  # infogan Q head
    q_hidden: int = 128  # infogan Q head hidden units

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------
# Generators


class DeconvStack(nn.Module):
    """A flat code (B, in_dim) -> image (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, in_dim: int, width: int, hidden: int = 0) -> None:
        super().__init__()
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
        self.up1 = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.up2 = nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.mlp(code)).view(-1, 2 * self.width, 7, 7)  # (B, 2w, 7, 7)
        h = F.relu(self.bn0(h))
        h = F.relu(self.bn1(self.up1(h)))  # (B, w, 14, 14)
        return torch.tanh(self.up2(h))  # (B, 1, 28, 28)


class Generator(nn.Module):
    """Unconditional DCGAN generator: G(z)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = DeconvStack(cfg.z_dim, cfg.width, cfg.hidden)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConditionalGenerator(nn.Module):
    """Class-conditional generator: G(z, label), the label embedded and
    concatenated with z."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed_dim)
        self.net = DeconvStack(cfg.z_dim + cfg.embed_dim, cfg.width, cfg.hidden)

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, self.embed(label)], dim=1))  # (B, z + e)


class InfoGenerator(nn.Module):
    """InfoGAN generator: G(z, c_cat one-hot, c_cont)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = DeconvStack(cfg.z_dim + cfg.num_categories + cfg.num_continuous, cfg.width, cfg.hidden)

    def forward(self, z: torch.Tensor, category: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, category, continuous], dim=1))  # (B, z + K + C)


def build_generator(cfg: GeneratorConfig) -> nn.Module:
    if cfg.arch == "mlp":
        from .nets_extra import MLPGenerator

        return MLPGenerator(cfg)
    if cfg.arch != "conv":
        raise ValueError(f"unknown generator arch {cfg.arch!r}; known: conv, mlp")
    kinds = {"none": Generator, "class": ConditionalGenerator, "infogan": InfoGenerator}
    if cfg.conditioning not in kinds:
        raise ValueError(f"unknown conditioning {cfg.conditioning!r}; known: {', '.join(kinds)}")
    return kinds[cfg.conditioning](cfg)


# --------------------------------------------------------------------------
# Discriminators


class ConvBody(nn.Module):
    """Image (B, 1, 28, 28) -> features (B, 2w * 7 * 7)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.out_dim = 2 * width * 7 * 7
        # DCGAN leaves BatchNorm off the first layer so D sees raw pixel stats.
        self.conv1 = nn.Conv2d(1, width, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2)  # (B, w, 14, 14)
        h = F.leaky_relu(self.bn2(self.conv2(h)), 0.2)  # (B, 2w, 7, 7)
        return h.flatten(1)


class Discriminator(nn.Module):
    """Unconditional DCGAN discriminator: D(x) -> logit (B,)."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.body = ConvBody(cfg.width)
        self.head = nn.Linear(self.body.out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)


class ProjectionDiscriminator(nn.Module):
    """Class-conditional D(x, y) = psi(h) + <embed(y), h> (Miyato & Koyama, 2018).

    The projection term lets D judge "is this a plausible y" without the
    label having to pass through the convolutions.
    """

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.body = ConvBody(cfg.width)
        self.head = nn.Linear(self.body.out_dim, 1)
        self.embed = nn.Embedding(cfg.num_classes, self.body.out_dim)
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
    almost nothing extra, as in Chen et al. (2016).
    """

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.body = ConvBody(cfg.width)
        self.head = nn.Linear(self.body.out_dim, 1)
        self.q_head = nn.Sequential(
            nn.Linear(self.body.out_dim, cfg.q_hidden, bias=False),
            nn.BatchNorm1d(cfg.q_hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.q_hidden, cfg.num_categories + 2 * cfg.num_continuous),
        )

    def forward(self, x: torch.Tensor, q_detached: bool = False) -> InfoOutput:
        """``q_detached``: Q's losses train only the Q head, not the shared body."""
        h = self.body(x)
        q = self.q_head(h.detach() if q_detached else h)  # (B, K + 2C)
        k, c = self.cfg.num_categories, self.cfg.num_continuous
        return InfoOutput(
            logit=self.head(h).squeeze(1),
            cat_logits=q[:, :k],
            cont_mean=q[:, k : k + c],
            # Bounded so one confident wrong guess cannot blow up the NLL.
            cont_logvar=q[:, k + c :].clamp(-6.0, 4.0),
        )


def build_discriminator(cfg: DiscriminatorConfig) -> nn.Module:
    kinds = {"none": Discriminator, "class": ProjectionDiscriminator, "infogan": InfoDiscriminator}
    if cfg.conditioning not in kinds:
        raise ValueError(f"unknown conditioning {cfg.conditioning!r}; known: {', '.join(kinds)}")
    return kinds[cfg.conditioning](cfg)


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
