"""The original GAN (Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014).

    min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

Multilayer perceptrons for G and D, as in the paper (ReLU G with a tanh
output on images, LeakyReLU D where the paper used maxout), on images and
point data alike. On images D has dropout after every hidden layer
(``--d-dropout``, p = 0.5), as the paper's MNIST discriminator had (its
code, goodfeli/adversarial mnist.yaml, trains the maxout D with dropout:
include probability 0.5 for each hidden layer, 0.8 for the pixels, which we
do not drop); not on point data, where D is small and the data plentiful. Algorithm 1: k D updates (``--d-steps K``,
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
    defaults = {"d_dropout": 0.5}
    point_defaults = {"d_dropout": 0.0}
