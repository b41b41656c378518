"""DCGAN (Radford et al., 2016): the base variant as is.

Convolutional G and D with BatchNorm (models.py), the non-saturating BCE
losses and Adam(2e-4, beta1 = 0.5). Images only.
"""

from __future__ import annotations

from .base import Variant, register


@register
class DCGAN(Variant):
    name = "dcgan"
    supports_points = False  # deep *convolutional*: on point data, use gan
