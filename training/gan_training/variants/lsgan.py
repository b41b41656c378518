"""Least Squares GAN (Mao et al., "Least Squares Generative Adversarial
Networks", ICCV 2017), the 0-1 coding of their Eq. 2 (a = 0, b = c = 1):

    D minimises 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]
    G minimises 1/2 E[(D(G(z)) - 1)^2]

on D's raw (linear) output. DCGAN nets on images, MLPs on point data;
Adam(2e-4, 0.5) as in the paper.
"""

from __future__ import annotations

from .base import Variant, register


@register
class LSGAN(Variant):
    name = "lsgan"
    loss_names = ("least-squares",)
