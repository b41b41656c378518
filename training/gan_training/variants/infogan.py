"""InfoGAN (Chen et al., 2016), optionally semi-supervised (Spurr et al., 2017).

G(z, c) takes noise z plus structured codes c: a one-hot category (10) and
two continuous codes U(-1, 1). Q, a head on D's shared body, predicts c back
from G(z, c): categorical logits, and a Gaussian (mean, log-variance) per
continuous code. Maximising log Q(c | G(z, c)), a lower bound on the mutual
information I(c; G(z, c)), makes G use c in ways Q can read off the image.

Unsupervised, nothing ties category k to any particular digit; the trainer
finds the category -> digit map afterwards by Hungarian matching with the
project classifier. Semi-supervised (``labelled_fraction > 0``), Q's
categorical head also learns to name the true digit of the few labelled real
images, so category k comes to mean digit k and the map is the identity.
The continuous codes stay unsupervised either way.

Knobs beyond the paper (config.py), found while tuning on the 5,000-digit set:

* ``q_fake_cat_weight``: with the usual weight 1, Q also learns "category k"
  from G's own samples, so whatever G draws for k is confirmed as k and G's
  mistakes persist (~80-90% digit accuracy). At 0 (semi-supervised), Q's
  categorical head is a classifier of labelled real digits only and G must
  draw what it recognises.
* ``q_trains_body``: whether Q's losses on fakes also train D's shared body.
* ``q_fixed_variance`` / ``lambda_cont``: a learned variance lets the
  continuous term grow as Q gets sure of the codes; late in training a code
  can then take over features that decide the digit (e.g. morph 7 into 3).
* ``augment_labelled``: small random shifts/rotations of the labelled digits.

``--infogan-paper`` is Chen et al.'s unsupervised MNIST setup (their Table 1
and the official code): G with FC 1024 (``--g-hidden 1024``) and 128/64
channels (``--width 64``), D with 64/128 channels and a shared FC 1024 layer
(``--d-hidden 1024``) under D's output and Q, Q's losses training the shared
body (``--q-trains-body``), a unit-variance Gaussian for the continuous
codes (``--q-fixed-variance``) and lambda = 1 for both kinds of code. Adam
at 1e-3 for G and 2e-4 for D are already the defaults.

Evaluation also judges Q as a classifier of real digits: its categorical
head on the classifier's 1,000 held-out digits (``data.stratified_split``;
semi-supervised runs leave out the ones whose labels Q was given), each
category read as its digit by the same map as the generated samples
(``q_held_out_accuracy``, beside ``matched_accuracy``). G and Q train on
all 5,000 images without labels, so "held out" means from the labels (and
from the judge), not from the GAN.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import losses
from ..config import TrainConfig
from ..data import Dataset, labelled_subset, random_affine, stratified_split
from ..evaluation import match_categories, score_mapping
from ..models import GeneratorConfig, InfoOutput, NetConfig
from .base import Codes, ConditionalMixin, Logged, Variant, register


@register
class InfoGAN(ConditionalMixin, Variant):
    name = "infogan"
    conditioning = "infogan"
    supports_points = False  # the codes are read off images
    supports_pack = False
    pack_refusal = "Q reads each sample's own codes off its image, and shares D's body"
    average_pinned_by = "the category->digit map was measured on the weight average during training"
    num_categories = 10
    num_continuous = 2
    continuous_range = (-1.0, 1.0)
    defaults = {
        "z_dim": 62,
        "lr_g": 1e-3,
        "lr_d": 2e-4,
        "lr_q": 2e-4,
        "lambda_cat": 1.0,
        "lambda_cont": 0.1,
    }
    supports_d_hidden = True
    paper_settings = {
        "width": 64,
        "g_hidden": 1024,
        "d_hidden": 1024,
        "q_trains_body": True,
        "q_fixed_variance": True,
        "lambda_cat": 1.0,
        "lambda_cont": 1.0,
    }

    @classmethod
    def resolve(cls, cfg: TrainConfig) -> TrainConfig:
        if cfg.infogan_paper:
            cfg = cls.apply_paper_settings(cfg)
        return super().resolve(cfg)

    @classmethod
    def apply_paper_settings(cls, cfg: TrainConfig) -> TrainConfig:
        """``cfg`` with ``paper_settings`` in. A field left at its default (or
        None) takes the paper's value; one set to anything else is refused,
        naming its flag, rather than silently overridden or kept."""
        if cfg.labelled_fraction:
            raise ValueError(
                f"{cls.name}: --infogan-paper is the paper's unsupervised setup; "
                f"got --labelled-fraction {cfg.labelled_fraction}"
            )
        defaults = {f.name: f.default for f in fields(TrainConfig)}
        for key, value in cls.paper_settings.items():
            got = getattr(cfg, key)
            if got not in (defaults[key], value):
                raise ValueError(f"{cls.name}: --infogan-paper sets --{key.replace('_', '-')} {value}; got {got}")
        return replace(cfg, **cls.paper_settings)

    @property
    def semi_supervised(self) -> bool:
        return self.cfg.labelled_fraction > 0

    def discriminator_config(self) -> NetConfig:
        params = {"width": self.cfg.width, "num_categories": self.num_categories, "num_continuous": self.num_continuous}
        if self.cfg.d_hidden:  # left out at 0: the config (and checkpoint) as before the layer existed
            params["hidden"] = self.cfg.d_hidden
        return NetConfig("info_discriminator", params)

    def d_param_groups(self) -> list[dict[str, Any]]:
        # Q gets its own learning rate; D's body learns from both objectives.
        q = list(self.D.q_head.parameters())
        q_ids = {id(p) for p in q}
        rest = [p for p in self.D.parameters() if id(p) not in q_ids]
        return [{"params": rest}, {"params": q, "lr": self.cfg.lr_q}]

    def setup(self, dataset: Dataset) -> None:
        super().setup(dataset)
        self.labelled_x = self.labelled_y = None
        labelled = None
        if self.semi_supervised:
            labelled = labelled_subset(dataset.labels, self.cfg.labelled_fraction, self.cfg.seed)
            self.labelled_x = dataset.images[labelled].to(self.device)
            self.labelled_y = dataset.labels[labelled].to(self.device)
        # Q's test set: the classifier's held-out digits, less those Q saw labelled
        self.held_out_x = self.held_out_y = None
        try:
            _, held = stratified_split(dataset.labels)
        except ValueError:  # too few examples of some class (--limit): nothing to hold out
            return
        if labelled is not None:
            held = held[~torch.isin(held, labelled)]
        self.held_out_x, self.held_out_y = dataset.images[held], dataset.labels[held]

    @torch.no_grad()
    def evaluate(self, judge) -> dict[str, Any]:
        """The generated samples judged by the classifier (``ConditionalMixin``)
        and Q's accuracy on held-out real digits through the same category map."""
        result = super().evaluate(judge)
        if getattr(self, "held_out_x", None) is None:
            return result
        was_training = self.D.training
        self.D.eval()
        try:
            category = torch.cat(
                [self.D(self.held_out_x[i : i + 500].to(self.device)).cat_logits.argmax(1).cpu()
                 for i in range(0, len(self.held_out_x), 500)]
            )  # fmt: skip
        finally:
            self.D.train(was_training)
        digit = torch.as_tensor(result["category_to_digit"])[category]
        result["q_held_out_accuracy"] = float((digit == self.held_out_y).float().mean())
        result["q_held_out_size"] = len(self.held_out_y)
        return result

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> Codes:
        z = torch.randn(n, self.cfg.z_dim, generator=generator)
        category = torch.randint(self.num_categories, (n,), generator=generator)
        low, high = self.continuous_range
        continuous = low + (high - low) * torch.rand(n, self.num_continuous, generator=generator)
        return {
            "z": z.to(self.device),  # (B, 62)
            "category": F.one_hot(category, self.num_categories).float().to(self.device),  # (B, 10)
            "continuous": continuous.to(self.device),  # (B, 2)
        }

    def info_loss(self, out: InfoOutput, codes: Codes) -> tuple[torch.Tensor, torch.Tensor]:
        """-log Q(c | G(z, c)) for the categorical and the continuous codes."""
        cat = losses.categorical_nll(out.cat_logits, codes["category"].argmax(1))
        # A fixed unit variance (Chen et al.'s MNIST setting) keeps the weight
        # of the continuous term constant; a learned one grows it as Q gets
        # sure of the codes, which late in training lets them take over
        # features that decide the digit.
        logvar = torch.zeros_like(out.cont_logvar) if self.cfg.q_fixed_variance else out.cont_logvar
        cont = losses.gaussian_nll(out.cont_mean, logvar, codes["continuous"])
        return cat, cont

    def d_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        # D and Q: maximise log D(x) + log(1 - D(G(z, c))) and log Q(c | G(z, c));
        # semi-supervised also log Q(y | x) on the labelled real digits. The
        # labelled batch rides along in the real forward pass only for Q:
        # letting D see those few images as extra reals would make it memorise them.
        cfg = self.cfg
        b = real.shape[0]
        x = real
        if self.semi_supervised:
            pick = torch.randint(len(self.labelled_y), (max(1, b // 2),), device=self.device)
            x_lab = self.labelled_x[pick]
            if cfg.augment_labelled:
                x_lab = random_affine(x_lab)
            x = torch.cat([real, x_lab])  # (B + B/2, 1, 28, 28)
        out_real = self.D(x)
        out_fake = self.D(fake, q_detached=not cfg.q_trains_body)
        errD = self.objective.d(out_real.logit[:b], out_fake.logit)
        q_cat, q_cont = self.info_loss(out_fake, codes)
        total = errD + cfg.q_fake_cat_weight * cfg.lambda_cat * q_cat + cfg.lambda_cont * q_cont
        logged = {"loss_d": errD.item()}
        if self.semi_supervised:
            loss_sup = losses.categorical_nll(out_real.cat_logits[b:], self.labelled_y[pick])
            total = total + cfg.lambda_sup * loss_sup
            logged["loss_sup"] = loss_sup.item()
        return total, logged

    def g_loss(
        self, real: torch.Tensor, label: torch.Tensor, fake: torch.Tensor, codes: Codes
    ) -> tuple[torch.Tensor, Logged]:
        # G: maximise log D(G(z, c)) + lambda * log Q(c | G(z, c))
        out = self.D(fake)
        errG = self.objective.g(out.logit)
        g_cat, g_cont = self.info_loss(out, codes)
        logged = {"loss_g": errG.item(), "loss_info_cat": g_cat.item(), "loss_info_cont": g_cont.item()}
        return errG + self.cfg.lambda_cat * g_cat + self.cfg.lambda_cont * g_cont, logged

    def codes_for_digits(self, codes: Codes, num_digits: int) -> Codes:
        # Here "digit" r means category r; evaluate() maps categories to digits.
        n = codes["z"].shape[0]
        category = torch.arange(num_digits, device=self.device).repeat_interleave(n)
        return {
            "z": codes["z"].repeat(num_digits, 1),
            "category": F.one_hot(category, self.num_categories).float(),
            "continuous": codes["continuous"].repeat(num_digits, 1),
        }

    def score(self, confusion: np.ndarray) -> dict[str, Any]:
        """Hungarian category -> digit matching; semi-supervised runs are
        also scored with the identity map they are trained towards, and use
        it as their map."""
        matched = match_categories(confusion).to_dict()
        result: dict[str, Any] = {
            "training": "semi-supervised" if self.semi_supervised else "unsupervised",
            "labelled_fraction": self.cfg.labelled_fraction,
            "hungarian": matched,
        }
        chosen = matched
        if self.semi_supervised:
            chosen = score_mapping(confusion, list(range(self.num_categories))).to_dict()
        result.update(chosen)
        result["confusion"] = np.asarray(confusion).tolist()
        return result

    # ------------------------------------------------------------------
    # What export asks

    @classmethod
    def manifest_conditioning(
        cls, cfg: TrainConfig, g_config: GeneratorConfig, evaluation: dict[str, Any], class_names: tuple[str, ...]
    ) -> dict[str, Any]:
        """The category -> digit map that the last evaluation found, and how well it holds."""
        if "category_to_digit" not in evaluation:
            raise ValueError("the checkpoint has no category->digit evaluation; train with eval enabled")
        return {
            "kind": "infogan",
            "class_names": class_names,
            "num_categories": g_config.num_categories,
            "num_continuous": g_config.num_continuous,
            "continuous_range": cls.continuous_range,
            "category_to_digit": tuple(evaluation["category_to_digit"]),
            "details": {
                "training": evaluation.get("training", "unsupervised"),
                "labelled_fraction": cfg.labelled_fraction,
                "matched_accuracy": evaluation["matched_accuracy"],
                "per_digit_accuracy": evaluation["per_digit_accuracy"],
                "worst_digit": evaluation["worst_digit"],
                "worst_digit_accuracy": evaluation["worst_digit_accuracy"],
                "hungarian_matched_accuracy": evaluation["hungarian"]["matched_accuracy"],
                **{k: evaluation[k] for k in ("q_held_out_accuracy", "q_held_out_size") if k in evaluation},
                "judged_by": "gan_training mnist_classifier",
                "samples_per_category": cfg.eval_samples_per_class,
            },
        }

    @classmethod
    def manifest_training(cls, cfg: TrainConfig) -> dict[str, Any]:
        semi = ("labelled_fraction", "lambda_sup", "augment_labelled") if cfg.labelled_fraction else ()
        keys = ("lr_q", "lambda_cat", "lambda_cont", *semi, "q_fake_cat_weight", "q_trains_body", "q_fixed_variance")
        keys += tuple(k for k in ("g_hidden", "d_hidden", "infogan_paper") if getattr(cfg, k))
        return {**super().manifest_training(cfg), **{k: getattr(cfg, k) for k in keys}}
