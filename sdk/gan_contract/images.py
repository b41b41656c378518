"""Pixels: the generator's float output ↔ uint8 NHWC, and image grids.

numpy, and :func:`to_uint8_torch`, the same conversion on a torch tensor on its
device (this module does not import torch).
"""

from __future__ import annotations

import io
import math

import numpy as np


def to_uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """(N, C, H, W) floats in ``value_range`` → (N, H, W, C) uint8, rounded half to even.

    The one definition of served pixels: the server, the TorchServe handler,
    the trainer's grids and the evaluation all call it, so the same floats give
    the same bytes everywhere.
    """
    low, high = value_range
    scaled = (np.asarray(images).astype(np.float32) - low) * (255.0 / (high - low))
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return np.ascontiguousarray(scaled.astype(np.uint8).transpose(0, 2, 3, 1))


def to_uint8_torch(images, value_range: tuple[float, float]):
    """:func:`to_uint8` on a torch tensor, on its device: the same bytes for the same floats.

    The same float32 steps in the same order (``(x - low) * (255 / (high - low))``,
    each rounded to float32; half-precision output is widened first), rounded half
    to even (``torch.round``), clamped, cast and permuted to a contiguous
    (N, H, W, C) uint8 tensor.
    """
    low, high = value_range
    scaled = images.float().sub(low).mul_(255.0 / (high - low))
    scaled.round_().clamp_(0, 255)
    return scaled.byte().permute(0, 2, 3, 1).contiguous()


def from_uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """(N, H, W, C) uint8 → (N, C, H, W) float32 in ``value_range`` (an encoder's input)."""
    low, high = value_range
    x = images.astype(np.float32).transpose(0, 3, 1, 2) * ((high - low) / 255.0) + low
    return np.ascontiguousarray(x)


def make_grid(images: np.ndarray, cols: int | None = None, pad: int = 2, background: int = 0) -> np.ndarray:
    """Tile (N, H, W, C) uint8 images row-major into ``cols`` columns (default ceil(sqrt(N))).

    Returns a (rows·(H+pad)+pad, cols·(W+pad)+pad, C) uint8 array with ``pad``
    pixels of ``background`` around and between the images.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
    n, h, w, c = images.shape
    if n == 0:
        raise ValueError("no images to tile")
    if cols is None:
        cols = math.ceil(math.sqrt(n))
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), background, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def encode_npy(array: np.ndarray) -> bytes:
    """``array`` as the bytes of a .npy file (no pickles): what ``gan-client --out X.npy`` writes."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()
