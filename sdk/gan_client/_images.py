"""Image helpers: grids and PNG files with their provenance in text chunks."""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin


def make_grid(images: np.ndarray, cols: int | None = None, pad: int = 2, background: int = 0) -> np.ndarray:
    """Tile (N, H, W, C) uint8 images into one (rows*(H+pad)+pad, ..., C) array."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
    n, h, w, c = images.shape
    if n == 0:
        raise ValueError("no images to tile")
    cols = cols or math.ceil(math.sqrt(n))
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), background, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def to_pil(image: np.ndarray) -> Image.Image:
    """(H, W, 1|3) uint8 → a PIL image (L or RGB)."""
    if image.shape[-1] == 1:
        return Image.fromarray(image[..., 0], mode="L")
    return Image.fromarray(image, mode="RGB")


def encode_png(image: np.ndarray, text: Mapping[str, str] | None = None) -> bytes:
    """PNG bytes of one (H, W, 1|3) uint8 image, with ``text`` as PNG text chunks.

    Pillow's encoder at zlib level 1: batch generation writes thousands of
    small files, where the default level costs several times more for a few
    percent of size. Deterministic for the same input.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"expected a uint8 (H, W, 1|3) image, got {image.dtype} {image.shape}")
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG", pnginfo=info, compress_level=1)
    return buf.getvalue()


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask() can only be read by setting it, which is not
# safe while other threads create files.
_UMASK = _read_umask()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``.

    Readers never see a partial file, and a killed writer leaves at most a
    ``.<name>.*.tmp`` file behind (random name, so concurrent writers never clash).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp creates 0600; give the file the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_png(image: np.ndarray, path: str | os.PathLike[str], text: Mapping[str, str] | None = None) -> Path:
    """Write atomically (temp file, then rename) with ``text`` as PNG tEXt chunks."""
    return write_bytes_atomic(path, encode_png(image, text))
