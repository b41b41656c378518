"""PNG bytes of uint8 images with text chunks: the one encoder of saved and served PNGs.

``gan-client`` writes its files through :func:`encode_png` and the server's
image URLs answer with it, so the same images and text give the same bytes.
Pillow (a base dependency of the platform) is imported on first use: the rest
of the contract stays standard library and numpy only.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image


def to_pil(image: np.ndarray) -> Image.Image:
    """(H, W, 1|3) uint8 → a PIL image (L or RGB)."""
    from PIL import Image

    if image.shape[-1] == 1:
        return Image.fromarray(image[..., 0], mode="L")
    return Image.fromarray(image, mode="RGB")


def encode_png(image: np.ndarray, text: Mapping[str, str] | None = None) -> bytes:
    """PNG bytes of one (H, W, 1|3) uint8 image, with ``text`` as PNG text chunks.

    Pillow's encoder at zlib level 1: batch generation writes thousands of
    small files, where the default level costs several times more for a few
    percent of size. Deterministic for the same input.
    """
    from PIL import PngImagePlugin

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"expected a uint8 (H, W, 1|3) image, got {image.dtype} {image.shape}")
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG", pnginfo=info, compress_level=1)
    return buf.getvalue()
