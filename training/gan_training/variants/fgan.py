"""f-GAN (Nowozin, Cseke & Tomioka, "f-GAN: Training Generative Neural
Samplers using Variational Divergence Minimization", NeurIPS 2016).

D outputs V(x); T(x) = g_f(V(x)). D maximises the variational bound
E_P[g_f(V(x))] - E_Q[f*(g_f(V(G(z))))] of D_f(P||Q) (their Eq. 6), G
maximises E_Q[g_f(V(G(z)))] (Section 3.2). ``--divergence`` picks f from
divergences.DIVERGENCES; the activations g_f and conjugates f* are the
paper's Table 2. DCGAN nets on images, MLPs on point data.
"""

from __future__ import annotations

from .. import losses
from ..config import TrainConfig
from .base import Variant, register


@register
class FGAN(Variant):
    name = "fgan"
    manifest_hyperparameters = ("divergence",)

    @classmethod
    def adversarial_loss(cls, cfg: TrainConfig) -> losses.AdversarialLoss:
        return losses.fgan_loss(cfg.divergence)  # unknown name -> ValueError listing the known ones
