"""The original GAN (Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014).

    min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

Multilayer perceptrons for G and D, as in the paper (ReLU G with a tanh
output on images, LeakyReLU D; the paper's maxout and dropout are left out),
on images and point data alike. Algorithm 1: k D updates (``--d-steps K``,
the paper used k = 1) for each G update. ``--g-loss minimax`` makes G
minimise log(1 - D(G(z))) as in the game; the default ``nonsaturating``
maximises log D(G(z)) instead, the paper's own recommendation (Section 3)
because the minimax loss saturates early in training. Adam(2e-4, 0.5)
rather than the paper's SGD with momentum.
"""

from __future__ import annotations

import torch

from .. import losses
from .base import register
from .common import AdversarialVariant


@register
class GAN(AdversarialVariant):
    name = "gan"
    mlp_on_images = True

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        return losses.d_loss_bce(real_out, fake_out)

    def g_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        if self.cfg.g_loss == "minimax":
            return losses.g_loss_minimax(fake_out)
        return losses.g_loss_nonsaturating(fake_out)
