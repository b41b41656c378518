"""The base GAN variant: nets, optimisers and the standard two-step update.

A variant is everything that differs between GANs: which networks, which
latent codes, which losses, which update rule. The trainer (trainer.py) owns
everything else (data, epochs, checkpoints, sample grids, metrics) and calls
only the methods defined here, so a new variant is a small file that
overrides what differs (see dcgan.py, cgan.py, infogan.py) and registers
itself with ``@register``.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from .. import losses
from ..config import TrainConfig
from ..data import Dataset
from ..evaluation import confusion_matrix, score_mapping
from ..models import GeneratorConfig, NetConfig, build_generator, build_net
from ..quality import class_histogram_stats

Codes = dict[str, torch.Tensor]  # generator keyword arguments, e.g. {"z": (B, 100)}
Judge = Callable[[torch.Tensor], torch.Tensor]  # images (N,1,28,28) in [-1,1] -> digits (N,)

# Offsets from the run seed for the fixed code batches, so that drawing them
# never consumes the training stream.
_GRID_SEED_OFFSET = 1_000_003
_EVAL_SEED_OFFSET = 2_000_003


class Variant:
    name: ClassVar[str] = ""
    conditioning: ClassVar[str] = "none"  # the manifest's conditioning kind
    # Values for the TrainConfig fields left at None.
    defaults: ClassVar[dict[str, Any]] = {"z_dim": 100, "lr_g": 2e-4, "lr_d": 2e-4}
    # An exponential moving average of G's weights (cfg.g_ema > 0), which is
    # what generate() samples from and what gets exported.
    G_ema: torch.nn.Module | None = None
    ema_updates: int = 0

    @classmethod
    def resolve(cls, cfg: TrainConfig) -> TrainConfig:
        """``cfg`` with this variant's defaults filled in."""
        return replace(cfg, **{k: v for k, v in cls.defaults.items() if getattr(cfg, k) is None})

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.g_config = self.generator_config()
        self.d_config = self.discriminator_config()
        self.G = build_generator(self.g_config).to(device)
        self.D = build_net(self.d_config).to(device)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.d_param_groups(), lr=cfg.lr_d, betas=betas)
        if cfg.g_ema:
            self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)

    # ------------------------------------------------------------------
    # What a variant usually overrides

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(
            conditioning=self.conditioning, z_dim=self.cfg.z_dim, width=self.cfg.width, hidden=self.cfg.g_hidden
        )

    def discriminator_config(self) -> NetConfig:
        kind = {"none": "conv_discriminator", "class": "projection_discriminator", "infogan": "info_discriminator"}
        return NetConfig(kind[self.conditioning], {"width": self.cfg.width})

    def d_param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.D.parameters())}]

    def setup(self, dataset: Dataset) -> None:
        """Called once with the training data before the first step."""

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> Codes:
        """Generator inputs for ``n`` samples, drawn from the prior."""
        return {"z": torch.randn(n, self.cfg.z_dim, generator=generator).to(self.device)}

    def discriminate(self, x: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        """Real/fake logits (B,). ``label`` is the real label or the fake's
        conditioning; unconditional variants ignore it."""
        return self.D(x)

    def fake_label(self, codes: Codes) -> torch.Tensor | None:
        """What the discriminator is told about a fake's class, if anything."""
        return None

    def train_step(self, real: torch.Tensor, label: torch.Tensor) -> dict[str, float]:
        b = real.shape[0]
        codes = self.sample_codes(b)
        fake = self.G(**codes)  # (B, 1, 28, 28)
        fake_label = self.fake_label(codes)

        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        loss_d = losses.d_loss_bce(self.discriminate(real, label), self.discriminate(fake.detach(), fake_label))
        optimizer_step(self.opt_d, loss_d)

        # (2) Update G: maximise log D(G(z))
        loss_g = losses.g_loss_nonsaturating(self.discriminate(fake, fake_label))
        optimizer_step(self.opt_g, loss_g)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    def set_lr_scale(self, scale: float) -> None:
        """Scale every optimiser's learning rates to ``scale`` x their initial values."""
        for opt in vars(self).values():
            if isinstance(opt, torch.optim.Optimizer):
                for group in opt.param_groups:
                    group.setdefault("initial_lr", group["lr"])
                    group["lr"] = group["initial_lr"] * scale

    @torch.no_grad()
    def after_step(self) -> None:
        """Called by the trainer after every train_step.

        Averaging G's weights over the last few hundred steps smooths out the
        oscillation of adversarial training (Yazici et al., 2019), so the
        exported generator does not depend on where in a swing training
        stopped. BatchNorm running statistics are averaged the same way.
        """
        if self.G_ema is None:
            return
        self.ema_updates += 1
        # Short memory at first, so the average does not drag in the
        # untrained initial weights.
        decay = min(self.cfg.g_ema, (1 + self.ema_updates) / (10 + self.ema_updates))
        ema_state = self.G_ema.state_dict()
        for name, value in self.G.state_dict().items():
            if value.is_floating_point():
                ema_state[name].lerp_(value, 1.0 - decay)
            else:
                ema_state[name].copy_(value)

    def grid_codes(self) -> tuple[Codes, int]:
        """The fixed codes of the per-epoch sample grid, and its row length."""
        gen = torch.Generator().manual_seed(self.cfg.seed + _GRID_SEED_OFFSET)
        return self.sample_codes(64, gen), 8

    @torch.no_grad()
    def evaluate(self, judge: Judge) -> dict[str, Any]:
        """Judge samples with the project classifier. Unconditional: how the
        samples spread over the ten digits."""
        gen = torch.Generator().manual_seed(self.cfg.seed + _EVAL_SEED_OFFSET)
        codes = self.sample_codes(10 * self.cfg.eval_samples_per_class, gen)
        return class_histogram_stats(judge(self.generate(codes)).cpu().numpy())

    # ------------------------------------------------------------------
    # Shared machinery

    @torch.no_grad()
    def generate(self, codes: Codes, batch_size: int = 500) -> torch.Tensor:
        """Samples as the exported generator makes them (eval-mode BatchNorm,
        the weight average when there is one)."""
        net = self.G_ema if self.G_ema is not None else self.G
        was_training = net.training
        net.eval()
        try:
            n = next(iter(codes.values())).shape[0]
            parts = [net(**{k: v[i : i + batch_size] for k, v in codes.items()}) for i in range(0, n, batch_size)]
        finally:
            net.train(was_training)
        return torch.cat(parts)

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            **(
                {"generator_ema": self.G_ema.state_dict(), "ema_updates": self.ema_updates}
                if self.G_ema is not None
                else {}
            ),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["generator_ema"])
            self.ema_updates = int(state["ema_updates"])


class ConditionalMixin:
    """Evaluation and grids for variants whose samples should be a given digit."""

    cfg: TrainConfig

    def grid_codes(self) -> tuple[Codes, int]:
        # Row r asks for digit r; each column keeps one style across the rows.
        gen = torch.Generator().manual_seed(self.cfg.seed + _GRID_SEED_OFFSET)
        codes = self.sample_codes(10, gen)
        return self.codes_for_digits(codes, 10), 10

    def codes_for_digits(self, codes: Codes, num_digits: int) -> Codes:
        """Repeat ``codes`` (n samples) once per digit, digit-major, with the
        digit's conditioning put in."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, judge: Judge) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(self.cfg.seed + _EVAL_SEED_OFFSET)
        n = self.cfg.eval_samples_per_class
        codes = self.codes_for_digits(self.sample_codes(n, gen), 10)
        predicted = judge(self.generate(codes)).cpu().numpy()  # type: ignore[attr-defined]
        conf = confusion_matrix(np.repeat(np.arange(10), n), predicted, 10)
        return self.score(conf)

    def score(self, confusion: np.ndarray) -> dict[str, Any]:
        result = score_mapping(confusion, list(range(10))).to_dict()
        result.pop("category_to_digit")
        result["accuracy"] = result.pop("matched_accuracy")
        return result


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """zero_grad, backward, step: one line per update in train_step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


# --------------------------------------------------------------------------
# The registry

VARIANTS: dict[str, type[Variant]] = {}


def register(cls: type[Variant]) -> type[Variant]:
    if not cls.name or cls.name in VARIANTS:
        raise ValueError(f"variant name {cls.name!r} is empty or already registered")
    VARIANTS[cls.name] = cls
    return cls


def get_variant(name: str) -> type[Variant]:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(sorted(VARIANTS))}") from None

