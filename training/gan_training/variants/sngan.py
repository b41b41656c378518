"""Spectral normalisation (Miyato et al., "Spectral Normalization for
Generative Adversarial Networks", ICLR 2018).

Every weight of D is reparametrised as W / sigma(W) with
torch.nn.utils.parametrizations.spectral_norm (one power iteration per
forward), which bounds D's Lipschitz constant; D has no BatchNorm. Loss:
hinge (``--sn-loss hinge``, their Eq. 16; G minimises -E[D(G(z))]) or the
non-saturating BCE loss. Adam(2e-4, beta = (0.5, 0.999)), one D step per G
step (their setting B). G carries no spectral norm, so the exported
generator needs no parametrization removed.
"""

from __future__ import annotations

import torch

from .. import losses
from ..models import NetConfig
from .base import register
from .common import AdversarialVariant


@register
class SNGAN(AdversarialVariant):
    name = "sngan"

    def discriminator_net_config(self, **_) -> NetConfig:
        return super().discriminator_net_config(norm="none", spectral=True)

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        if self.cfg.sn_loss == "hinge":
            return losses.d_loss_hinge(real_out, fake_out)
        return losses.d_loss_bce(real_out, fake_out)

    def g_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        if self.cfg.sn_loss == "hinge":
            return losses.g_loss_wgan(fake_out)
        return losses.g_loss_nonsaturating(fake_out)
