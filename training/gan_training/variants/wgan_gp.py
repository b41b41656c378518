"""WGAN with gradient penalty (Gulrajani et al., "Improved Training of
Wasserstein GANs", NeurIPS 2017), Algorithm 1.

Critic loss E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)||_2 - 1)^2] on
random interpolates x_hat = eps x + (1 - eps) G(z) (``--gp-weight``,
lambda = 10). No BatchNorm in the critic (the penalty is per sample): LayerNorm
on images, no norm on point data. n_critic = 5 (``--d-steps``),
Adam(1e-4, beta = (0.5, 0.9)) as in the authors' MNIST code (their paper's
default is beta1 = 0). ``--critic-warmup`` (off by default: neither the
paper's Algorithm 1 nor its code uses it) adds WGAN's schedule of 100 critic
steps before the first 25 G updates and every 500th.
"""

from __future__ import annotations

import torch

from .. import losses
from .base import Variant, register
from .wgan import CriticWarmup


@register
class WGANGP(CriticWarmup, Variant):
    name = "wgan-gp"
    defaults = {
        "lr_g": 1e-4,
        "lr_d": 1e-4,
        "beta1": 0.5,
        "beta2": 0.9,
        "d_steps": 5,
        "gp_weight": 10.0,
        "critic_warmup": False,
    }
    loss_names = ("wasserstein",)
    d_norm = "layer"
    manifest_hyperparameters = ("gp_weight", "critic_warmup")

    def d_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return losses.gradient_penalty(self.D, real, fake, weight=self.cfg.gp_weight)
