"""Least Squares GAN (Mao et al., "Least Squares Generative Adversarial
Networks", ICCV 2017), the 0-1 coding of their Eq. 2 (a = 0, b = c = 1):

    D minimises 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]
    G minimises 1/2 E[(D(G(z)) - 1)^2]

on D's raw (linear) output. DCGAN nets on images, MLPs on point data;
Adam(2e-4, 0.5) as in the paper.
"""

from __future__ import annotations

import torch

from .. import losses
from .base import register
from .common import AdversarialVariant


@register
class LSGAN(AdversarialVariant):
    name = "lsgan"

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        return losses.d_loss_lsgan(real_out, fake_out)

    def g_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return losses.g_loss_lsgan(fake_out)
