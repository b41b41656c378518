"""Wasserstein GAN (Arjovsky, Chintala & Bottou, ICML 2017), Algorithm 1.

The critic D maximises E[D(x)] - E[D(G(z))]; after every critic update each
of its weights is clipped to [-c, c] (``--clip``, c = 0.01) to keep it
K-Lipschitz. n_critic = 5 critic updates per generator update
(``--d-steps``), RMSprop with lr 5e-5 for both. The critic is DCGAN's
discriminator (BatchNorm, as in the paper's experiments), without a sigmoid.
"""

from __future__ import annotations

import torch

from .base import Variant, register


@register
class WGAN(Variant):
    name = "wgan"
    defaults = {"lr_g": 5e-5, "lr_d": 5e-5, "d_steps": 5, "clip": 0.01}
    loss_names = ("wasserstein",)
    manifest_hyperparameters = ("clip",)

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
