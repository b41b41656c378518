"""The base GAN variant: nets, optimisers and the standard adversarial step.

A variant is everything that differs between GANs: which networks, which
latent codes, which losses, which update rule. The trainer (trainer.py) owns
everything else (data, epochs, checkpoints, sample grids, metrics) and calls
only the methods defined here.

``Variant`` itself is a whole GAN: DCGAN's convolutional nets on images (MLPs
on point data), the non-saturating loss, Adam, and Goodfellow et al.'s
Algorithm 1 with k = ``cfg.d_steps`` D updates per G update. A variant is a
small file that overrides only what differs and registers itself with
``@register``:

* the loss: ``loss_names`` (names in ``losses.LOSSES``; ``loss_option``
  names the config field that picks one), or ``adversarial_loss``;
* D's loss and G's loss on a batch: ``d_penalty`` (an extra term of D's
  loss), ``d_loss`` and ``g_loss`` (the whole objectives), ``after_d_step``
  (e.g. weight clipping);
* the nets: ``d_norm``, ``d_spectral``, ``d_features``,
  ``discriminator_config``, ``generator_config``; more nets and optimisers:
  ``build_extra_nets``, ``build_optimizers``, ``d_param_groups``;
* the codes: ``sample_codes``, and what D is told about a sample's class:
  ``discriminate``, ``fake_label``;
* the generator side of the step when it is more than one update:
  ``update_g``; how many D updates precede each G update: ``critic_steps``
  (WGAN's warm-up);
* what export asks of a variant: ``conditioning``, ``has_encoder``,
  ``manifest_hyperparameters``, ``manifest_conditioning``,
  ``average_pinned_by``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, ClassVar

import numpy as np
import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel

from .. import losses
from ..config import TrainConfig
from ..data import Dataset, DatasetInfo, dataset_info
from ..evaluation import confusion_matrix, mode_coverage, score_mapping
from ..models import GeneratorConfig, NetConfig, build_generator, build_net, init_output_level
from ..quality import class_histogram_stats

Codes = dict[str, torch.Tensor]  # generator keyword arguments, e.g. {"z": (B, 100)}
Judge = Callable[[torch.Tensor], torch.Tensor]  # images (N,1,28,28) in [-1,1] -> digits (N,)
Logged = dict[str, float]  # what a step reports: losses and other numbers, by name

# Offsets from the run seed for the fixed code batches, so that drawing them
# never consumes the training stream.
_GRID_SEED_OFFSET = 1_000_003
_EVAL_SEED_OFFSET = 2_000_003
POINT_SAMPLES = 2_500  # PacGAN evaluates mode coverage on 2,500 samples
POINT_PLOT_SAMPLES = 2_000

# Values for the TrainConfig fields left at None. A variant's ``defaults``
# override them, and on point data its ``point_defaults`` override both.
_DEFAULTS: dict[str, Any] = {
    "z_dim": 100,
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "d_steps": 1,
    "critic_warmup": False,
    "d_dropout": 0.0,
}
_POINT_DEFAULTS: dict[str, Any] = {"z_dim": 2, "mlp_hidden": 128}  # as in PacGAN
_IMAGE_MLP_DEFAULTS: dict[str, Any] = {"mlp_hidden": 512}


class Variant:
    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    point_defaults: ClassVar[dict[str, Any]] = {}

    # The adversarial loss: the first of loss_names, or the one that the
    # TrainConfig field loss_option (e.g. "g_loss") names among them.
    loss_names: ClassVar[tuple[str, ...]] = ("nonsaturating",)
    loss_option: ClassVar[str] = ""

    # The nets: convolutional on 28x28 images; MLPs on point data (ring8,
    # grid25, gaussian1d; samples (N, 1, D, 1)) unless supports_points is off,
    # and on images too with mlp_on_images (the gan variant).
    supports_points: ClassVar[bool] = True
    mlp_on_images: ClassVar[bool] = False
    d_norm: ClassVar[str] = "batch"  # the convolutional D's normalisation: batch | layer | none
    d_spectral: ClassVar[bool] = False  # spectral normalisation on every weight of D
    d_features: ClassVar[bool] = False  # D also returns its last hidden layer
    # The nets the DDP wrapper wraps (ddp.py), and whether some of their
    # parameters may get no gradient in a backward.
    ddp_modules: ClassVar[tuple[str, ...]] = ("G", "D")
    ddp_find_unused: ClassVar[bool] = False

    # Whether --critic-warmup (WGAN's schedule of critic steps) applies.
    supports_critic_warmup: ClassVar[bool] = False
    # Whether D can judge PacGAN's packs of --pack samples (the base step's
    # discriminate, d_loss and g_loss); if not, why not (the error says it).
    supports_pack: ClassVar[bool] = True
    pack_refusal: ClassVar[str] = ""
    # The paper's setup that --infogan-paper applies ({} : the flag is refused),
    # and whether --d-hidden (a fully connected layer in D) applies.
    paper_settings: ClassVar[dict[str, Any]] = {}
    supports_d_hidden: ClassVar[bool] = False

    # What export asks: the manifest's conditioning kind, whether there is an
    # encoder to ship (encoder.onnx), and the config fields to record.
    conditioning: ClassVar[str] = "none"
    has_encoder: ClassVar[bool] = False
    manifest_hyperparameters: ClassVar[tuple[str, ...]] = ()
    # Why export must ship the weight average rather than pick by FLD
    # (``--weights auto``), when the manifest holds facts measured on it.
    average_pinned_by: ClassVar[str] = ""

    # An exponential moving average of G's weights (cfg.g_ema > 0), which is
    # what generate() samples from; export ships it or the raw G, whichever
    # has the lower FLD (export.choose_weights).
    G_ema: AveragedModel | None = None

    @classmethod
    def resolve(cls, cfg: TrainConfig) -> TrainConfig:
        """``cfg`` with this variant's defaults filled in, checked."""
        points = dataset_info(cfg.dataset).is_points and cls.supports_points
        values = {**_DEFAULTS, **(_POINT_DEFAULTS if points else _IMAGE_MLP_DEFAULTS if cls.mlp_on_images else {})}
        values.update(cls.defaults)
        if points:
            values.update(cls.point_defaults)
        if cfg.infogan_paper and not cls.paper_settings:
            raise ValueError(f"{cls.name}: --infogan-paper is InfoGAN's setup (--variant infogan)")
        if cfg.d_hidden and not cls.supports_d_hidden:
            raise ValueError(f"{cls.name}: --d-hidden adds a layer to InfoGAN's D (--variant infogan)")
        if cfg.g_resize != "transposed" and (points or cls.mlp_on_images):
            raise ValueError(
                f"{cls.name}: --g-resize {cfg.g_resize} applies to the convolutional generator; this one is an MLP"
            )
        if cfg.critic_warmup and not cls.supports_critic_warmup:
            raise ValueError(f"{cls.name}: --critic-warmup is WGAN's schedule of critic steps (wgan, wgan-gp)")
        if cfg.pack > 1:
            if not cls.supports_pack:
                raise ValueError(f"{cls.name}: --pack {cfg.pack} is not available: {cls.pack_refusal}")
            if cfg.batch_size % cfg.pack:
                raise ValueError(
                    f"--batch-size {cfg.batch_size} is not a multiple of --pack {cfg.pack}: "
                    "D judges whole packs, so every batch must split into them"
                )
        cfg = replace(cfg, **{k: v for k, v in values.items() if getattr(cfg, k) is None})
        if cfg.d_steps < 1:
            raise ValueError(f"d_steps must be >= 1, got {cfg.d_steps}")
        try:
            cls.adversarial_loss(cfg)
        except ValueError as exc:  # an unknown loss name: say which variant, and which names it knows
            option = f" (--{cls.loss_option.replace('_', '-')})" if cls.loss_option else ""
            raise ValueError(f"{cls.name}{option}: {exc}") from None
        return cfg

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.info: DatasetInfo = dataset_info(cfg.dataset)
        self.objective = self.adversarial_loss(cfg)
        self.step_count = 0  # D updates so far
        self.g_updates = 0  # G updates so far
        self.d_since_g = 0  # D updates since the last G update
        self.g_stepped = False  # whether the last train_step updated G
        self.g_config = self.generator_config()
        self.d_config = self.discriminator_config()
        self.G = build_generator(self.g_config).to(device)
        self.D = build_net(self.d_config).to(device)
        if cfg.d_dropout and not any(isinstance(m, (nn.Dropout, nn.Dropout2d)) for m in self.D.modules()):
            raise ValueError(
                f"{self.name}: --d-dropout applies to the MLP, convolutional and joint (bigan) discriminators; "
                f"this one's D is a {self.d_config.kind}"
            )
        self.nets: dict[str, nn.Module] = {"generator": self.G, "discriminator": self.D}
        self.net_configs: dict[str, NetConfig] = {"discriminator": self.d_config}
        self.build_extra_nets()
        self.optimizers: dict[str, torch.optim.Optimizer] = self.build_optimizers()
        self.opt_g, self.opt_d = self.optimizers["opt_g"], self.optimizers["opt_d"]
        if cfg.g_ema:
            self.G_ema = AveragedModel(self.G, multi_avg_fn=ema_with_warmup(cfg.g_ema), use_buffers=True)
            self.G_ema.eval().requires_grad_(False)
            self.G_ema.update_parameters(self.G)  # the average starts as G's initial weights

    # ------------------------------------------------------------------
    # The loss

    @classmethod
    def loss_name(cls, cfg: TrainConfig) -> str:
        return getattr(cfg, cls.loss_option) if cls.loss_option else cls.loss_names[0]

    @classmethod
    def adversarial_loss(cls, cfg: TrainConfig) -> losses.AdversarialLoss:
        """What D and G minimise, as functions of D's outputs."""
        return losses.get_loss(cls.loss_name(cfg), known=cls.loss_names)

    # ------------------------------------------------------------------
    # The nets

    @property
    def points(self) -> bool:
        return self.info.is_points

    @property
    def mlp(self) -> bool:
        return (self.points and self.supports_points) or self.mlp_on_images

    def mlp_layers(self) -> int:
        return 3 if self.points else 2

    def generator_config(self) -> GeneratorConfig:
        cfg = self.cfg
        if not self.mlp:
            return GeneratorConfig(
                conditioning=self.conditioning,
                z_dim=cfg.z_dim,
                width=cfg.width,
                hidden=cfg.g_hidden,
                resize=cfg.g_resize,
            )
        return GeneratorConfig(
            conditioning=self.conditioning,
            z_dim=cfg.z_dim,
            arch="mlp",
            out_shape=tuple(self.info.sample_shape),
            out_activation="linear" if self.points else "tanh",
            mlp_hidden=cfg.mlp_hidden,
            mlp_layers=self.mlp_layers(),
        )

    def discriminator_config(self) -> NetConfig:
        """A convolutional D on images; an MLP on points, without
        normalisation (BatchNorm on 2-D points hurts). With --pack m, D
        takes m samples at once: m x the channels or the features."""
        m = self.cfg.pack
        if self.mlp:
            c, *rest = self.info.sample_shape
            params = {
                "in_shape": (m * c, *rest),  # a pack: its samples side by side
                "hidden": self.cfg.mlp_hidden,
                "layers": self.mlp_layers(),
                "spectral": self.d_spectral,
                "features": self.d_features,
            }
            return NetConfig("mlp_discriminator", self.with_d_dropout(params))
        params = {
            "width": self.cfg.width,
            "norm": self.d_norm,
            "spectral": self.d_spectral,
            "features": self.d_features,
        }
        if m > 1:  # left out at 1, as for dropout
            params["in_channels"] = m
        return NetConfig("conv_discriminator", self.with_d_dropout(params))

    def with_d_dropout(self, params: dict) -> dict:
        """D's net params with --d-dropout added; left out at 0, so the
        config (and checkpoint) are as before dropout existed."""
        if self.cfg.d_dropout:
            params["dropout"] = self.cfg.d_dropout
        return params

    def encoder_config(self, out_dim: int) -> NetConfig:
        """An encoder x -> (N, out_dim) for this data."""
        if self.mlp:
            params = {
                "in_shape": tuple(self.info.sample_shape),
                "hidden": self.cfg.mlp_hidden,
                "layers": self.mlp_layers(),
                "out_dim": out_dim,
            }
            return NetConfig("mlp_encoder", params)
        return NetConfig("conv_encoder", {"width": self.cfg.width, "out_dim": out_dim})

    def add_net(self, name: str, config: NetConfig) -> nn.Module:
        """Build a net that the checkpoint saves under ``name`` with its config."""
        net = build_net(config).to(self.device)
        self.nets[name] = net
        self.net_configs[name] = config
        return net

    def build_extra_nets(self) -> None:
        """Add nets beyond G and D (``self.add_net``)."""

    def adam(self, params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr, betas=(self.cfg.beta1, self.cfg.beta2))

    def d_param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.D.parameters())}]

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimisers by name; "opt_g" and "opt_d" are the ones train_step steps."""
        return {
            "opt_g": self.adam(self.G.parameters(), self.cfg.lr_g),
            "opt_d": self.adam(self.d_param_groups(), self.cfg.lr_d),
        }

    def setup(self, dataset: Dataset) -> None:
        """Called once with the training data before the first step (a
        variant that overrides it calls this one too): G's tanh output
        starts at the images' mean pixel (``models.init_output_level``), so
        that what G's features leave undrawn is dark, not mid-grey."""
        if not self.points and init_output_level(self.G, float(dataset.images.mean())):
            if self.G_ema is not None:  # the average starts as G's initial weights
                self.G_ema.module.load_state_dict(self.G.state_dict())

    def end_epoch(self, mean_losses: Logged) -> dict[str, Any]:
        """Called after each epoch's steps with their mean logged values (the
        same on every rank); returns what to add to the epoch's metrics line."""
        return {}

    # ------------------------------------------------------------------
    # Codes and what D is told about them

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> Codes:
        """Generator inputs for ``n`` samples, drawn from the prior."""
        return {"z": torch.randn(n, self.cfg.z_dim, generator=generator).to(self.device)}

    def discriminate(self, x: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        """Real/fake logits (B,), or (B / m,) for packs of m = --pack samples.
        ``label`` is the real label or the fake's conditioning; unconditional
        variants ignore it."""
        return self.D(self.pack(x))

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """PacGAN's packs of ``cfg.pack`` consecutive samples (``pack_samples``).
        A batch's samples are independent draws (a shuffled real batch, fresh
        noise for fakes), so its packs are too; real and fake packs are never mixed."""
        return pack_samples(x, self.cfg.pack)

    def fake_label(self, codes: Codes) -> torch.Tensor | None:
        """What the discriminator is told about a fake's class, if anything."""
        return None

    # ------------------------------------------------------------------
    # The update (Goodfellow et al. 2014, Algorithm 1)

    def train_step(self, real: torch.Tensor, label: torch.Tensor) -> Logged:
        """One D update on the loop's batch ``real`` (B, *sample_shape) and,
        once ``critic_steps`` D updates have been made since the last one, a
        G update: k = d_steps D updates per G update, each on a fresh real
        batch and fresh noise."""
        logged = self.update_d(real, label)
        self.step_count += 1
        self.d_since_g += 1
        self.g_stepped = self.d_since_g >= self.critic_steps(self.g_updates)
        if self.g_stepped:
            logged.update(self.update_g(real, label))
            self.g_updates += 1
            self.d_since_g = 0
        return logged

    def critic_steps(self, g_update: int) -> int:
        """D updates before G update number ``g_update`` (0-based): k = d_steps."""
        return self.cfg.d_steps

    def update_d(self, real: torch.Tensor, label: torch.Tensor) -> Logged:
        # (1) Update D: maximize log D(x) + log(1 - D(G(z))), z fresh noise
        #     (for the BCE loss; in general, minimise d_loss)
        codes = self.sample_codes(real.shape[0])
        with torch.no_grad():  # D's update needs no graph through G
            fake = self.G(**codes)  # (B, *sample_shape)
        errD, logged = self.d_loss(real, label, fake, codes)
        optimizer_step(self.opt_d, errD)
        self.after_d_step()
        return {"loss_d": errD.item(), **logged}

    def update_g(self, real: torch.Tensor, label: torch.Tensor) -> Logged:
        # (2) Update G: maximize log D(G(z)), z fresh noise
        #     (for the non-saturating loss; in general, minimise g_loss)
        codes = self.sample_codes(real.shape[0])
        errG, logged = self.g_loss(real, label, self.G(**codes), codes)
        optimizer_step(self.opt_g, errG)
        return {"loss_g": errG.item(), **logged}

    def d_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        """What D minimises on a real batch and a batch of fakes made from
        ``codes``, and anything else to log."""
        output_real = self.discriminate(real, label)  # (B,)
        output_fake = self.discriminate(fake, self.fake_label(codes))  # (B,)
        errD = self.objective.d(output_real, output_fake)
        penalty = self.d_penalty(self.pack(real), self.pack(fake))
        if penalty is None:
            return errD, {}
        return errD + penalty, {"penalty": penalty.item()}

    def d_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """An extra term of D's loss (WGAN-GP's gradient penalty), on what D
        takes: with --pack m, packs of m samples."""
        return None

    def after_d_step(self) -> None:
        """Called after each D update (WGAN's weight clipping)."""

    def g_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        """What G minimises on fakes made from ``codes`` (``real``: the
        step's real batch, for variants whose G loss needs it)."""
        return self.objective.g(self.discriminate(fake, self.fake_label(codes))), {}

    # ------------------------------------------------------------------
    # Trainer hooks

    def set_lr_scale(self, scale: float) -> None:
        """Scale every optimiser's learning rates to ``scale`` x their initial values."""
        for opt in self.optimizers.values():  # all of them, however a variant names them (VAE-GAN's opt_e)
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * scale

    @torch.no_grad()
    def after_step(self) -> None:
        """Called by the trainer after every train_step.

        Averaging G's weights over its last few hundred updates smooths out
        the oscillation of adversarial training (Yazici et al., 2019), so the
        exported generator does not depend on where in a swing training
        stopped. BatchNorm running statistics are averaged the same way. The
        average takes G in once per G update, not per step: with
        ``d_steps`` = 5 only every fifth step changes G.
        """
        if self.G_ema is None or not self.g_stepped:
            return
        self.G_ema.update_parameters(self.G)

    @torch.no_grad()
    def discriminator_probability(self, x: torch.Tensor) -> torch.Tensor | None:
        """D(x) as a probability, sigmoid(logit) (N,), in eval mode, where D is
        the classifier of Goodfellow et al.'s game (the BCE losses with the
        base step's D loss), whose optimum for a fixed G is D* = p_data /
        (p_data + p_g); None for other Ds (critics, energies, pair or
        multi-sample judges)."""
        if self.objective.d is not losses.d_loss_bce or type(self).d_loss is not Variant.d_loss or self.cfg.pack > 1:
            return None
        was_training = self.D.training
        self.D.eval()
        try:
            out = self.D(x.to(self.device))
        finally:
            self.D.train(was_training)
        logit = out[0] if isinstance(out, tuple) else out
        return torch.sigmoid(logit).cpu()

    @property
    def ema_updates(self) -> int:
        """G updates the weight average has taken in."""
        return int(self.G_ema.n_averaged) - 1 if self.G_ema is not None else 0

    def grid_codes(self) -> tuple[Codes, int]:
        """The fixed codes of the per-epoch sample grid, and its row length
        (0 for point data: a scatter plot of that many samples)."""
        gen = torch.Generator().manual_seed(self.cfg.seed + _GRID_SEED_OFFSET)
        if self.points:
            return self.sample_codes(POINT_PLOT_SAMPLES, gen), 0
        return self.sample_codes(64, gen), 8

    @torch.no_grad()
    def evaluate(self, judge: Judge) -> dict[str, Any]:
        """Unconditional: how the samples spread over the classes (judged by
        the project classifier); on point data, PacGAN's mode coverage."""
        gen = torch.Generator().manual_seed(self.cfg.seed + _EVAL_SEED_OFFSET)
        if self.points:
            samples = self.generate(self.sample_codes(POINT_SAMPLES, gen)).flatten(1).cpu().numpy()
            return mode_coverage(self.cfg.dataset, samples)
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
        state: dict[str, Any] = {name: net.state_dict() for name, net in self.nets.items()}
        state.update({name: opt.state_dict() for name, opt in self.optimizers.items()})
        state["step_count"] = self.step_count
        state["g_updates"] = self.g_updates
        state["d_since_g"] = self.d_since_g
        if self.has_encoder:  # what export rebuilds encoder.onnx from
            state["encoder_config"] = self.net_configs["encoder"].to_dict()
            state["encoder_z_dim"] = self.cfg.z_dim
        if self.G_ema is not None:
            state["generator_ema"] = self.G_ema.module.state_dict()  # a generator's own keys: export loads it as G
            state["ema_updates"] = self.ema_updates
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(state[name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])
        self.step_count = int(state.get("step_count", 0))
        # Checkpoints from before G updates were counted: k D updates per G update
        self.g_updates = int(state.get("g_updates", self.step_count // self.cfg.d_steps))
        self.d_since_g = int(state.get("d_since_g", self.step_count % self.cfg.d_steps))
        if self.G_ema is not None:
            self.G_ema.module.load_state_dict(state["generator_ema"])
            self.G_ema.n_averaged.fill_(int(state["ema_updates"]) + 1)

    # ------------------------------------------------------------------
    # What export asks (from the checkpoint alone: class methods)

    @classmethod
    def manifest_conditioning(
        cls, cfg: TrainConfig, g_config: GeneratorConfig, evaluation: dict[str, Any], class_names: tuple[str, ...]
    ) -> dict[str, Any]:
        """Keyword arguments of the manifest's ``gan_contract.manifest.Conditioning``.
        ``evaluation``: the checkpoint's last evaluation; ``class_names``: the dataset's."""
        return {"kind": cls.conditioning}

    @classmethod
    def manifest_training(cls, cfg: TrainConfig) -> dict[str, Any]:
        """This variant's entries in the manifest's training record."""
        record = {"d_steps": cfg.d_steps, **{k: getattr(cfg, k) for k in cls.manifest_hyperparameters}}
        if cfg.d_dropout:
            record["d_dropout"] = cfg.d_dropout
        if cfg.pack > 1:
            record["pack"] = cfg.pack
        if cfg.g_resize != "transposed":
            record["g_resize"] = cfg.g_resize
        return record

    @classmethod
    def manifest_progress(cls, state: dict[str, Any]) -> dict[str, Any]:
        """How far training went, from a checkpoint's ``state``: G and D
        updates made (export records the loop's epochs beside them)."""
        facts: dict[str, Any] = {}
        if "g_updates" in state:  # checkpoints from before G updates were counted lack it
            facts["g_updates"] = int(state["g_updates"])
        facts["d_updates"] = int(state.get("step_count", 0))
        return facts


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


def ema_with_warmup(decay: float):
    """AveragedModel's ``multi_avg_fn``: torch's ``get_ema_multi_avg_fn(decay)``
    with a short memory at first, min(decay, (1 + n) / (10 + n)) at the n-th
    update, so the average does not drag in the untrained initial weights.
    Integer buffers (BatchNorm's counters) are copied."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = int(num_averaged)  # the initial copy counts as one
        d = min(decay, (1 + n) / (10 + n))
        for a, c in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(c, 1.0 - d)
            else:
                a.copy_(c)

    return update


def pack_samples(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN's packs (Lin et al. 2018): samples (B, C, H, W) -> (B / m, m * C,
    H, W), samples m*j .. m*j + m - 1 side by side as pack j's channels, which
    an MLP D sees as their features one after the other. ``x`` itself when m = 1."""
    if m == 1:
        return x
    b, c, *rest = x.shape
    if b % m:
        raise ValueError(f"a batch of {b} samples does not split into packs of {m}")
    return x.reshape(b // m, m * c, *rest)


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
