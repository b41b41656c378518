"""Latent-space interpolation: pure numpy, no I/O.

Shared by the SDK (``GanClient.interpolate``, ``gan-client interpolate``)
and the server's ``/v1/models/{name}/interpolate.png``, so both walk the
same path through latent space and give the same frames.

``slerp`` follows the angle between the two vectors (White, "Sampling
Generative Networks", 2016): for Gaussian latents it keeps intermediate points
at a typical norm, where ``lerp`` passes through the low-norm middle that the
generator rarely saw in training. For vectors that are nearly parallel (or
nearly opposite, where the great circle is undefined) it falls back to lerp.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .errors import InvalidArgument

Method = Literal["lerp", "slerp"]
METHODS: tuple[str, ...] = ("lerp", "slerp")
# Below this sin(angle) the vectors count as parallel and slerp uses lerp.
PARALLEL_EPS = 1e-4


def _as_vector(name: str, v: np.ndarray | list[float]) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _ts(t: float | np.ndarray) -> np.ndarray:
    return np.asarray(t, dtype=np.float64).reshape(-1, 1)


def lerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """(1 - t)·a + t·b for each t: shape (len(t), D) float64."""
    a64, b64 = _as_vector("a", a), _as_vector("b", b)
    ts = _ts(t)
    return (1.0 - ts) * a64 + ts * b64


def slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray, eps: float = PARALLEL_EPS) -> np.ndarray:
    """Spherical interpolation from a to b for each t: shape (len(t), D) float64.

    Unit vectors stay unit vectors. Falls back to :func:`lerp` when either
    vector is zero or sin(angle between them) < ``eps``.
    """
    a64, b64 = _as_vector("a", a), _as_vector("b", b)
    if a64.shape != b64.shape:
        raise ValueError(f"a and b must have the same shape, got {a64.shape} and {b64.shape}")
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na == 0.0 or nb == 0.0:
        return lerp(a64, b64, t)
    cos = float(np.clip(np.dot(a64 / na, b64 / nb), -1.0, 1.0))
    omega = float(np.arccos(cos))
    sin_omega = float(np.sin(omega))
    if sin_omega < eps:
        return lerp(a64, b64, t)
    ts = _ts(t)
    return (np.sin((1.0 - ts) * omega) / sin_omega) * a64 + (np.sin(ts * omega) / sin_omega) * b64


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, method: str = "lerp") -> np.ndarray:
    """``steps`` float32 vectors from a to b, evenly spaced in t: shape (steps, D).

    The first row is exactly ``a`` and the last exactly ``b`` (as float32), so a
    strip's ends reproduce the endpoint images bit for bit.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    a32 = np.asarray(a, dtype=np.float32)
    b32 = np.asarray(b, dtype=np.float32)
    if a32.shape != b32.shape:
        raise ValueError(f"start and end latents must have the same shape, got {a32.shape} and {b32.shape}")
    ts = np.linspace(0.0, 1.0, int(steps))
    fn = slerp if method == "slerp" else lerp
    out = fn(a32, b32, ts).astype(np.float32)
    out[0], out[-1] = a32, b32
    return out


def strip_conditioning(
    model: str,
    cond,
    digit: int | None,
    label: str | None,
    category: int | None,
    continuous: Sequence[float] | None,
) -> dict[str, Any]:
    """The conditioning every frame of a strip shares: only ``z`` may vary.

    ``cond`` is a model's conditioning (``kind``, ``num_continuous``,
    ``continuous_range``: the manifest's or the SDK's ModelInfo's).
    Class-conditional and InfoGAN models need a class (else each frame would
    draw its own): InvalidArgument("digit") otherwise. InfoGAN continuous
    codes default to the middle of their range (else each frame would draw its own).
    """
    if cond.kind != "none" and digit is None and label is None and category is None:
        options = "digit= or label=" if cond.kind == "class" else "digit=, label= or category="
        raise InvalidArgument(
            "digit",
            f"model {model!r} is conditional ({cond.kind}): pass {options} so every frame draws the same class",
        )
    if cond.kind == "infogan" and continuous is None and cond.num_continuous:
        mid = (cond.continuous_range[0] + cond.continuous_range[1]) / 2.0
        continuous = [mid] * cond.num_continuous
    return {"digit": digit, "label": label, "category": category, "continuous": continuous}
