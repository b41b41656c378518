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

from .base import Variant, register


@register
class GAN(Variant):
    name = "gan"
    mlp_on_images = True
    loss_names = ("nonsaturating", "minimax")
    loss_option = "g_loss"
    manifest_hyperparameters = ("g_loss",)
