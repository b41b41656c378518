"""Latent-space interpolation: the contract's (``gan_contract.interp``), re-exported for the SDK."""

from __future__ import annotations

from gan_contract.interp import METHODS, PARALLEL_EPS, Method, interpolate, lerp, slerp

__all__ = ["METHODS", "PARALLEL_EPS", "Method", "interpolate", "lerp", "slerp"]
