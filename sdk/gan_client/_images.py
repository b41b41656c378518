"""Image files in and out: grids, PNGs with their provenance in text chunks,
.npy arrays, atomic writes, and reading the images to encode.

``SampleResult.save*``/``write``, ``gan-client`` and the batch shards all read
and write through this module. Mistakes in a path (a missing directory, a
file that is not an image) raise ValueError naming the path, before any work
where the caller checks first (:func:`output_kind`, :func:`check_parent`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from gan_contract.files import write_bytes_atomic

# The encoders and the grid are the contract's (so the server's image URLs give
# the same bytes); encode_png, to_pil and make_grid are re-exported from here.
from gan_contract.images import encode_npy, make_grid
from gan_contract.png import encode_png, to_pil  # noqa: F401
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    from ._types import ModelInfo

Text = Mapping[str, str]


def write_png(image: np.ndarray, path: str | os.PathLike[str], text: Text | None = None) -> Path:
    """Write atomically (temp file, then rename) with ``text`` as PNG tEXt chunks."""
    return write_bytes_atomic(path, encode_png(image, text))


def write_npy(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write ``array`` as a .npy file, atomically."""
    return write_bytes_atomic(path, encode_npy(array))


def write_grid(images: np.ndarray, path: str | os.PathLike[str], cols: int | None, text: Text | None) -> Path:
    """All images tiled into one PNG (see :func:`make_grid`)."""
    return write_png(make_grid(images, cols=cols), path, text)


def write_dir(
    images: np.ndarray, directory: str | os.PathLike[str], stem: str, start: int, text: Callable[[int], Text]
) -> list[Path]:
    """One PNG per image, ``<directory>/<stem>-<start + i>.png`` (at least 5 digits),
    with ``text(i)`` as its text chunks; the directory is created if need be."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(start + len(images) - 1)))
    return [write_png(img, directory / f"{stem}-{start + i:0{width}d}.png", text(i)) for i, img in enumerate(images)]


OutputKind = Literal["grid", "npy", "dir"]


def check_parent(path: str | os.PathLike[str]) -> None:
    """ValueError unless the directory a file is to be written in exists."""
    parent = Path(path).parent
    if not parent.is_dir():
        raise ValueError(f"directory {parent} does not exist")


def output_kind(out: str | os.PathLike[str]) -> OutputKind:
    """What an output path means: ``X.png`` one grid, ``X.npy`` the uint8 array
    (N, H, W, C), anything else a directory of PNGs (an existing directory
    named ``X.png`` too). ValueError for a path that cannot be written."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix in (".png", ".npy") and not out.is_dir():
        check_parent(out)
        return "grid" if suffix == ".png" else "npy"
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a directory; use a .png or .npy name")
    return "dir"


def read_images(paths: Sequence[str | os.PathLike[str]], info: ModelInfo) -> np.ndarray:
    """uint8 (N, H, W, C) images for ``info``'s model, from files in order.

    A ``.npy`` file holds uint8 images (H, W[, C]) or (N, H, W[, C]); any other
    file is an image Pillow reads (PNG, ...), converted to the model's channels.
    Sizes must match the model's; ValueError names the file.
    """
    shape = (info.height, info.width, info.channels)
    mode = {1: "L", 3: "RGB"}.get(info.channels)
    batches = []
    for path in map(Path, paths):
        if path.suffix.lower() == ".npy":
            batches.append(_read_npy_images(path, shape))
            continue
        if mode is None:
            raise ValueError(f"model {info.name!r} takes {info.channels}-channel images; only 1 or 3 can be read")
        try:
            with Image.open(path) as img:
                arr = np.asarray(img.convert(mode), dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        if arr.shape[:2] != shape[:2]:
            raise ValueError(
                f"{path} is {arr.shape[1]}x{arr.shape[0]}; model {info.name!r} takes {info.width}x{info.height}"
            )
        batches.append(arr.reshape(1, *shape))
    if not batches:
        raise ValueError("no images given")
    return np.concatenate(batches)


def read_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """The array in a .npy file (no pickles); ValueError names the file."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None


def _read_npy_images(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    arr = read_npy(path)
    h, w, c = shape
    if arr.dtype == np.uint8 and arr.ndim in (3, 4) and arr.shape[-3:] == shape:
        return arr.reshape(-1, h, w, c)
    if arr.dtype == np.uint8 and c == 1 and arr.ndim in (2, 3) and arr.shape[-2:] == (h, w):
        return arr.reshape(-1, h, w, 1)
    raise ValueError(f"{path} holds {arr.dtype} {arr.shape}; the model takes uint8 images ([N,] {h}, {w}, {c})")
