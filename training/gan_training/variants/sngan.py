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

from .base import Variant, register


@register
class SNGAN(Variant):
    name = "sngan"
    loss_names = ("hinge", "nonsaturating")
    loss_option = "sn_loss"
    d_norm = "none"
    d_spectral = True
    manifest_hyperparameters = ("sn_loss",)
