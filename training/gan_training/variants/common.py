"""What the variants beyond DCGAN/cGAN/InfoGAN share (gan, fgan, wgan,
wgan-gp, sngan, lsgan, ebgan, vaegan, bigan).

``ExtVariant`` extends base.Variant with:

* dataset-aware nets: convolutional on 28x28 images, MLPs on point data
  (ring8, grid25, gaussian1d; samples (N, 1, D, 1)); the ``gan`` variant
  uses MLPs on images too;
* any number of nets and optimisers (``self.nets``, ``self.optimizers``),
  all saved in the checkpoint; an ``encoder`` net is also recorded with
  its config so export can ship it as encoder.onnx;
* D/critic steps per G step (``--d-steps``): every trainer step updates D
  on its batch; every d_steps-th step also updates G (WGAN's n_critic);
* evaluation that fits the data: PacGAN's mode coverage on point data, the
  project's digit classifier on MNIST, nothing on Fashion-MNIST (the digit
  classifier cannot judge clothes).

``AdversarialVariant`` is the common two-player step with pluggable losses
(``d_loss``, ``g_loss``, ``d_penalty``, ``after_d_step``); gan, fgan, wgan,
wgan-gp, sngan and lsgan are a few lines each on top of it.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, ClassVar

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data import DatasetInfo, dataset_info
from ..evaluation import mode_coverage
from ..models import GeneratorConfig, NetConfig, build_generator, build_net
from .base import _EVAL_SEED_OFFSET, _GRID_SEED_OFFSET, Codes, Judge, Variant, optimizer_step

POINT_SAMPLES = 2_500  # PacGAN evaluates mode coverage on 2,500 samples
POINT_PLOT_SAMPLES = 2_000

# Defaults every ExtVariant starts from; a subclass's ``defaults`` override
# these, and ``point_defaults`` override both on point data.
_BASE_DEFAULTS: dict[str, Any] = {"z_dim": 100, "lr_g": 2e-4, "lr_d": 2e-4, "d_steps": 1}
_IMAGE_DEFAULTS: dict[str, Any] = {"mlp_hidden": 512}
_POINT_DEFAULTS: dict[str, Any] = {"z_dim": 2, "mlp_hidden": 128}
_CHOICES = {
    "g_loss": ("nonsaturating", "minimax"),
    "sn_loss": ("hinge", "nonsaturating"),
    "recon": ("feature", "pixel"),
}


class ExtVariant(Variant):
    conditioning = "none"
    defaults: ClassVar[dict[str, Any]] = {}
    point_defaults: ClassVar[dict[str, Any]] = {}
    mlp_on_images: ClassVar[bool] = False  # the gan variant: MLP G and D on images too
    # Attributes the DDP wrapper (ddp.py) wraps; "E" only where there is one.
    ddp_modules: ClassVar[tuple[str, ...]] = ("G", "D")

    @classmethod
    def resolve(cls, cfg: TrainConfig) -> TrainConfig:
        info = dataset_info(cfg.dataset)
        values = {**_BASE_DEFAULTS, **(_POINT_DEFAULTS if info.is_points else _IMAGE_DEFAULTS), **cls.defaults}
        if info.is_points:
            values.update(cls.point_defaults)
        cfg = replace(cfg, **{k: v for k, v in values.items() if getattr(cfg, k) is None})
        for name, known in _CHOICES.items():
            if getattr(cfg, name) not in known:
                raise ValueError(f"unknown {name.replace('_', '-')} {getattr(cfg, name)!r}; known: {', '.join(known)}")
        if cfg.d_steps < 1:
            raise ValueError(f"d_steps must be >= 1, got {cfg.d_steps}")
        return cfg

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:  # noqa: D107 - replaces Variant.__init__
        self.cfg = cfg
        self.device = device
        self.info: DatasetInfo = dataset_info(cfg.dataset)
        self.step_count = 0
        self._last: dict[str, float] = {}
        self.g_config = self.generator_config()
        self.G = build_generator(self.g_config).to(device)
        self.d_config = self.discriminator_net_config()
        self.D = build_net(self.d_config).to(device)
        self.nets: dict[str, nn.Module] = {"generator": self.G, "discriminator": self.D}
        self.net_configs: dict[str, NetConfig] = {"discriminator": self.d_config}
        self.build_extra_nets()
        self.optimizers: dict[str, torch.optim.Optimizer] = self.build_optimizers()
        self.opt_g, self.opt_d = self.optimizers["opt_g"], self.optimizers["opt_d"]
        if getattr(cfg, "g_ema", 0):  # base.Variant's weight average (--g-ema), exported instead of G
            self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)

    # ------------------------------------------------------------------
    # Nets

    @property
    def points(self) -> bool:
        return self.info.is_points

    @property
    def mlp(self) -> bool:
        return self.points or self.mlp_on_images

    def generator_config(self) -> GeneratorConfig:
        cfg = self.cfg
        if not self.mlp:
            return GeneratorConfig(conditioning="none", z_dim=cfg.z_dim, width=cfg.width, hidden=cfg.g_hidden)
        return GeneratorConfig(
            conditioning="none",
            z_dim=cfg.z_dim,
            arch="mlp",
            out_shape=tuple(self.info.sample_shape),
            out_activation="linear" if self.points else "tanh",
            mlp_hidden=cfg.mlp_hidden,
            mlp_layers=self.mlp_layers(),
        )

    def mlp_layers(self) -> int:
        return 3 if self.points else 2

    def discriminator_net_config(
        self, norm: str = "batch", spectral: bool = False, features: bool = False
    ) -> NetConfig:
        """D: ConvCritic on images (``norm`` as given), an MLP on points (no
        norm unless LayerNorm is asked for: BatchNorm on 2-D points hurts)."""
        if self.mlp:
            return NetConfig(
                "mlp_discriminator",
                {
                    "in_shape": tuple(self.info.sample_shape),
                    "hidden": self.cfg.mlp_hidden,
                    "layers": self.mlp_layers(),
                    "norm": "layer" if norm == "layer" else "none",
                    "spectral": spectral,
                    "features": features,
                },
            )
        return NetConfig(
            "conv_discriminator", {"width": self.cfg.width, "norm": norm, "spectral": spectral, "features": features}
        )

    def add_net(self, name: str, config: NetConfig) -> nn.Module:
        net = build_net(config).to(self.device)
        self.nets[name] = net
        self.net_configs[name] = config
        return net

    def build_extra_nets(self) -> None:
        """Add nets beyond G and D (``self.add_net``)."""

    def adam(self, params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr, betas=(self.cfg.beta1, self.cfg.beta2))

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "opt_g": self.adam(self.G.parameters(), self.cfg.lr_g),
            "opt_d": self.adam(self.D.parameters(), self.cfg.lr_d),
        }

    def g_turn(self) -> bool:
        """Count a trainer step; True on every d_steps-th one (G updates then)."""
        self.step_count += 1
        return self.step_count % self.cfg.d_steps == 0

    # ------------------------------------------------------------------
    # Trainer hooks

    def grid_codes(self) -> tuple[Codes, int]:
        if not self.points:
            return super().grid_codes()
        gen = torch.Generator().manual_seed(self.cfg.seed + _GRID_SEED_OFFSET)
        return self.sample_codes(POINT_PLOT_SAMPLES, gen), 0

    @torch.no_grad()
    def evaluate(self, judge: Judge) -> dict[str, Any]:
        if self.points:
            gen = torch.Generator().manual_seed(self.cfg.seed + _EVAL_SEED_OFFSET)
            samples = self.generate(self.sample_codes(POINT_SAMPLES, gen)).flatten(1).cpu().numpy()
            return mode_coverage(self.cfg.dataset, samples)
        if self.cfg.dataset in ("mnist", "mnist-idx"):
            return super().evaluate(judge)
        return {"headline": f"no classifier for {self.cfg.dataset}: not judged"}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: net.state_dict() for name, net in self.nets.items()}
        state.update({name: opt.state_dict() for name, opt in self.optimizers.items()})
        state["step_count"] = self.step_count
        state["last_losses"] = dict(self._last)
        if "encoder" in self.nets:
            state["encoder_config"] = self.net_configs["encoder"].to_dict()
            state["encoder_z_dim"] = self.cfg.z_dim
        if self.G_ema is not None:
            state["generator_ema"] = self.G_ema.state_dict()
            state["ema_updates"] = self.ema_updates
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(state[name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])
        self.step_count = int(state.get("step_count", 0))
        self._last = dict(state.get("last_losses", {}))
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["generator_ema"])
            self.ema_updates = int(state["ema_updates"])


class AdversarialVariant(ExtVariant):
    """D (critic) on real vs G(z), then, every d_steps-th step, G."""

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """An extra term of D's loss (WGAN-GP's gradient penalty)."""
        return None

    def after_d_step(self) -> None:
        """Called after each D update (WGAN's weight clipping)."""

    def train_step(self, real: torch.Tensor, label: torch.Tensor) -> dict[str, float]:
        b = real.shape[0]
        g_turn = self.g_turn()
        codes = self.sample_codes(b)
        with torch.set_grad_enabled(g_turn):  # off D-only steps: no graph through G
            fake = self.G(**codes)

        # (1) D: minimise d_loss (+ penalty) on real vs detached fakes
        real_out = self.D(real)
        fake_out = self.D(fake.detach())
        loss_d = self.d_loss(real_out, fake_out)
        metrics: dict[str, float] = {}
        penalty = self.d_penalty(real, fake.detach())
        if penalty is not None:
            metrics["penalty"] = penalty.item()
            loss_d = loss_d + penalty
        optimizer_step(self.opt_d, loss_d)
        self.after_d_step()

        # (2) G: minimise g_loss through the (just updated) D
        if g_turn:
            loss_g = self.g_loss(self.D(fake))
            optimizer_step(self.opt_g, loss_g)
            self._last["loss_g"] = loss_g.item()
        elif "loss_g" not in self._last:
            # Before G's first update, report its objective on this batch.
            with torch.no_grad():
                self._last["loss_g"] = self.g_loss(fake_out).item()
        return {"loss_d": loss_d.item(), "loss_g": self._last["loss_g"], **metrics}
