"""Typed results returned by the clients."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gan_contract.provenance import grid_text, image_text
from PIL import Image

from ._images import make_grid, output_kind, to_pil, write_dir, write_grid, write_npy


@dataclass(frozen=True)
class Conditioning:
    kind: str  # "none" | "class" | "infogan"
    class_names: tuple[str, ...] = ()
    num_categories: int = 0
    num_continuous: int = 0
    category_to_digit: tuple[int, ...] = ()
    continuous_range: tuple[float, float] = (-1.0, 1.0)

    @property
    def takes_digit(self) -> bool:
        if self.kind == "class":
            return any(name.isdigit() for name in self.class_names)
        return self.kind == "infogan" and bool(self.category_to_digit)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    variant: str
    dataset: str
    height: int
    width: int
    channels: int
    latent_dim: int
    latent_prior: str
    conditioning: Conditioning
    versions: tuple[str, ...]
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class SampleResult:
    """Images from one sample call (or one chunk of a stream).

    ``images`` is uint8 (N, H, W, C). ``seeds[i]``/``indices[i]`` say which
    random stream image i came from: (seed, start + i). ``latents`` is the
    (N, latent_dim) float32 ``z`` when asked for (``return_latents=True``).
    ``request`` holds the conditioning that was asked for (digit, label,
    category, continuous codes), which goes into saved PNGs.
    """

    model: str
    version: str
    seed: int
    images: np.ndarray
    classes: np.ndarray  # (N,) int32: class index / InfoGAN category, -1 if none
    latents: np.ndarray | None = None  # (N, latent_dim) float32 when asked for
    request: dict[str, Any] = field(default_factory=dict)
    start: int = 0  # index of images[0] in the seed's sequence

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def seeds(self) -> np.ndarray:
        return np.full(len(self), self.seed, dtype=np.uint64)

    @property
    def indices(self) -> np.ndarray:
        return np.arange(self.start, self.start + len(self), dtype=np.uint64)

    @classmethod
    def concatenate(cls, parts: Sequence[SampleResult]) -> SampleResult:
        """Join consecutive chunks (e.g. from ``sample_stream``) into one result."""
        if not parts:
            raise ValueError("no results to concatenate")
        first = parts[0]
        expected = first.start
        for p in parts:
            if (p.model, p.version, p.seed) != (first.model, first.version, first.seed) or p.start != expected:
                raise ValueError("results must be consecutive chunks of one request (same model, version, seed)")
            expected += len(p)
        latent_parts = [p.latents for p in parts if p.latents is not None]
        latents = np.concatenate(latent_parts) if len(latent_parts) == len(parts) else None
        return cls(
            model=first.model,
            version=first.version,
            seed=first.seed,
            images=np.concatenate([p.images for p in parts]),
            classes=np.concatenate([p.classes for p in parts]),
            latents=latents,
            request=dict(first.request),
            start=first.start,
        )

    def grid(self, cols: int | None = None, pad: int = 2) -> np.ndarray:
        """All images tiled into one uint8 (H', W', C) array."""
        return make_grid(self.images, cols=cols, pad=pad)

    def to_pil(self) -> list[Image.Image]:
        return [to_pil(img) for img in self.images]

    def metadata(self, index: int | None = None) -> dict[str, str]:
        """PNG text chunks: provenance of the whole result, or of image ``index``.

        Per-image chunks depend only on the image (model, version, seed, its
        global index, its class, the conditioning codes and its latent when
        known), never on how the request was split, so the same image saved by
        differently-chunked runs gives the same bytes.
        """
        if index is None:
            return grid_text(self.model, self.version, self.seed, self.request, self.start, len(self))
        latent = None if self.latents is None else self.latents[index]
        return image_text(
            self.model, self.version, self.seed, self.request, self.start + index, int(self.classes[index]), latent
        )

    def save_grid(self, path: str | os.PathLike[str], cols: int | None = None) -> Path:
        """All images as one PNG grid, with the result's provenance; written atomically."""
        return write_grid(self.images, path, cols, self.metadata())

    def save(self, directory: str | os.PathLike[str], prefix: str | None = None) -> list[Path]:
        """One PNG per image, named by its index in the seed's sequence:
        ``<dir>/<model>-s<seed>-<index>.png``. Each file is written atomically."""
        return write_dir(self.images, directory, prefix or f"{self.model}-s{self.seed}", self.start, self.metadata)

    def save_npy(self, path: str | os.PathLike[str]) -> Path:
        """The images as one uint8 (N, H, W, C) .npy array, written atomically."""
        return write_npy(self.images, path)

    def write(self, out: str | os.PathLike[str], cols: int | None = None) -> list[Path]:
        """Save by the name of ``out``: ``X.png`` a grid (:meth:`save_grid`),
        ``X.npy`` the array (:meth:`save_npy`), anything else a directory
        (:meth:`save`). Returns the files written."""
        kind = output_kind(out)
        if kind == "grid":
            return [self.save_grid(out, cols)]
        if kind == "npy":
            return [self.save_npy(out)]
        return self.save(out)
