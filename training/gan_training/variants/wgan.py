"""Wasserstein GAN (Arjovsky, Chintala & Bottou, ICML 2017), Algorithm 1.

The critic D maximises E[D(x)] - E[D(G(z))]; after every critic update each
of its weights is clipped to [-c, c] (``--clip``, c = 0.01) to keep it
K-Lipschitz. n_critic = 5 critic updates per generator update
(``--d-steps``), RMSprop with lr 5e-5 for both. The critic is DCGAN's
discriminator (BatchNorm, as in the paper's experiments), without a sigmoid.

``--critic-warmup`` (on by default here, as in the authors' code,
martinarjovsky/WassersteinGAN main.py: ``Diters = 100 if gen_iterations < 25
or gen_iterations % 500 == 0 else opt.Diters``): 100 critic updates before
each of the first 25 G updates and before every 500th (G update 0, 500,
1000, ... counting from 0), so that G learns from a critic trained close to
optimality, which is what makes the critic's loss an estimate of W1. The
paper reports budgets in such G updates ("generator iterations"):
``--g-steps``.
"""

from __future__ import annotations

import torch

from .base import Variant, register


class CriticWarmup:
    """The reference code's schedule of critic updates per G update
    (``--critic-warmup``); the constants are class attributes so that a
    test can shrink them."""

    WARMUP_CRITIC_STEPS = 100
    WARMUP_G_UPDATES = 25
    WARMUP_EVERY = 500
    supports_critic_warmup = True

    @classmethod
    def warmup_critic_steps(cls, g_update: int, n_critic: int) -> int:
        """Critic updates before G update ``g_update`` (0-based) with the warm-up on."""
        if g_update < cls.WARMUP_G_UPDATES or g_update % cls.WARMUP_EVERY == 0:
            return cls.WARMUP_CRITIC_STEPS
        return n_critic

    def critic_steps(self, g_update: int) -> int:
        if self.cfg.critic_warmup:  # type: ignore[attr-defined]
            return self.warmup_critic_steps(g_update, self.cfg.d_steps)  # type: ignore[attr-defined]
        return self.cfg.d_steps  # type: ignore[attr-defined]


@register
class WGAN(CriticWarmup, Variant):
    name = "wgan"
    defaults = {"lr_g": 5e-5, "lr_d": 5e-5, "d_steps": 5, "clip": 0.01, "critic_warmup": True}
    loss_names = ("wasserstein",)
    manifest_hyperparameters = ("clip", "critic_warmup")

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # The paper: "momentum based methods such as Adam ... perform worse".
        return {
            "opt_g": torch.optim.RMSprop(self.G.parameters(), lr=self.cfg.lr_g),
            "opt_d": torch.optim.RMSprop(self.D.parameters(), lr=self.cfg.lr_d),
        }

    @torch.no_grad()
    def after_d_step(self) -> None:
        c = self.cfg.clip
        for p in self.D.parameters():
            p.clamp_(-c, c)
