"""GAN variants, keyed by name.

Adding one (e.g. ``lsgan``) is a new module here: subclass ``Variant``,
override what differs (loss, nets, codes, update rule; see base.py), decorate
it with ``@register`` and import it below.
"""

from __future__ import annotations

from . import bigan, cgan, dcgan, ebgan, fgan, gan, infogan, lsgan, sngan, vaegan, wgan, wgan_gp  # noqa: F401
from .base import VARIANTS, Variant, get_variant, register

__all__ = ["VARIANTS", "Variant", "get_variant", "register"]
