"""GAN variants, keyed by name.

Adding one (e.g. ``lsgan``) is a new module here: subclass ``Variant``,
override what differs (losses, nets, update rule), decorate it with
``@register`` and import it below.
"""

from __future__ import annotations

from . import cgan, dcgan, infogan  # noqa: F401  (importing registers them)
from .base import VARIANTS, Variant, get_variant, register

__all__ = ["VARIANTS", "Variant", "get_variant", "register"]

# The classic variants on variants/common.py's ExtVariant (dataset-aware nets).
from . import bigan, ebgan, fgan, gan, lsgan, sngan, vaegan, wgan, wgan_gp  # noqa: E402, F401
