"""f-GAN (Nowozin, Cseke & Tomioka, "f-GAN: Training Generative Neural
Samplers using Variational Divergence Minimization", NeurIPS 2016).

D outputs V(x); T(x) = g_f(V(x)). D maximises the variational bound
E_P[g_f(V(x))] - E_Q[f*(g_f(V(G(z))))] of D_f(P||Q) (their Eq. 6), G
maximises E_Q[g_f(V(G(z)))] (Section 3.2). ``--divergence`` picks f from
kl, reverse-kl, pearson, squared-hellinger, js, gan; the activations g_f and
conjugates f* are the paper's Table 2 (see divergences.py). DCGAN nets on
images, MLPs on point data.
"""

from __future__ import annotations

import torch

from .. import losses
from ..config import TrainConfig
from ..divergences import get_divergence
from .base import register
from .common import AdversarialVariant


@register
class FGAN(AdversarialVariant):
    name = "fgan"

    @classmethod
    def resolve(cls, cfg: TrainConfig) -> TrainConfig:
        get_divergence(cfg.divergence)  # unknown name -> ValueError listing the known ones
        return super().resolve(cfg)

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        return losses.d_loss_fgan(real_out, fake_out, self.cfg.divergence)

    def g_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return losses.g_loss_fgan(fake_out, self.cfg.divergence)
