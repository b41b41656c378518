"""The project's classifiers: train them, ship them, judge images with them.

Two assets live in ``gan_training/assets/`` (config + state_dict + held-out
accuracy; they load with ``weights_only=True``):

* ``mnist_classifier.pt`` trains on 4,000 of the 5,000 embedded digits
  (``data.stratified_split``) and is scored on the 1,000 held out;
* ``fashion-mnist_classifier.pt`` trains on the 60,000 Fashion-MNIST
  training images and is scored on the 10,000 test images.

Both see small random shifts, rotations and scalings while training.
Retrain them reproducibly with ``gan-train classifier [--dataset D]``. Use
them through :func:`classify` (class indices) and :func:`embed` (the
penultimate features that the Frechet distance compares)::

    from gan_training.classifier import classify
    labels = classify(images)  # uint8 0..255 or float in [-1, 1]
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gan_contract.files import atomic_path
from tqdm import tqdm

from .data import load_dataset, load_idx_dataset, random_affine, stratified_split
from .models import ClassifierConfig, MnistClassifier

ASSET_FORMAT = "gan_training.mnist_classifier/1"


@dataclass(frozen=True)
class ClassifierTrainConfig:
    out: str = "training/gan_training/assets/mnist_classifier.pt"
    dataset: str = "mnist"  # or "fashion-mnist"
    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_rotation_deg: float = 12.0
    max_shift_px: float = 2.5
    max_scale: float = 0.1  # zoom in [1 - s, 1 + s]
    device: str = "cpu"


# Datasets whose images the judges know, and which judge: IDX MNIST is MNIST.
JUDGE_DATASET = {"mnist": "mnist", "mnist-idx": "mnist", "fashion-mnist": "fashion-mnist"}


def default_asset_path(dataset: str = "mnist") -> Path:
    """The shipped classifier for ``dataset`` (mnist, mnist-idx, fashion-mnist)."""
    if dataset not in JUDGE_DATASET:
        raise ValueError(f"no classifier for dataset {dataset!r}; known: {', '.join(JUDGE_DATASET)}")
    return Path(str(resources.files("gan_training") / "assets" / f"{JUDGE_DATASET[dataset]}_classifier.pt"))


def _train_and_held_out(dataset: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if dataset == "mnist":
        ds = load_dataset("mnist")
        train_idx, held_idx = stratified_split(ds.labels)
        return ds.images[train_idx], ds.labels[train_idx], ds.images[held_idx], ds.labels[held_idx]
    if dataset == "fashion-mnist":
        train = load_idx_dataset("fashion-mnist", split="train")
        test = load_idx_dataset("fashion-mnist", split="test")
        return train.images, train.labels, test.images, test.labels
    raise ValueError(f"classifiers train on mnist or fashion-mnist, not {dataset!r}")


def augment(x: torch.Tensor, cfg: ClassifierTrainConfig) -> torch.Tensor:
    return random_affine(x, cfg.max_rotation_deg, cfg.max_shift_px, cfg.max_scale)


def _accuracy(model: MnistClassifier, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, dict[str, float]]:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(images[i : i + 500]).argmax(1) for i in range(0, len(images), 500)])
    per_digit = {str(d): (pred[labels == d] == d).float().mean().item() for d in range(10)}
    return (pred == labels).float().mean().item(), per_digit


def train_classifier(cfg: ClassifierTrainConfig, model_cfg: ClassifierConfig = ClassifierConfig()) -> dict[str, Any]:
    """Train on the 4,000-digit split, save the asset to ``cfg.out``, return it."""
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    x_tr, y_tr, x_ho, y_ho = (t.to(device) for t in _train_and_held_out(cfg.dataset))

    model = MnistClassifier(model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(x_tr) // cfg.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    start = time.time()
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc="classifier", unit="step")
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(x_tr), device=device)
        for i in range(steps_per_epoch):
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            loss = F.cross_entropy(model(augment(x_tr[idx], cfg)), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
        acc, _ = _accuracy(model, x_ho, y_ho)
        bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}", held_out=f"{acc:.4f}")
    bar.close()
    accuracy, per_digit = _accuracy(model, x_ho, y_ho)
    asset = {
        "format": ASSET_FORMAT,
        "dataset": cfg.dataset,
        "config": model_cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "held_out_accuracy": accuracy,
        "held_out_per_digit_accuracy": per_digit,
        "held_out_size": int(len(y_ho)),
        "train_size": int(len(y_tr)),
        "train_config": asdict(cfg),
        "train_seconds": time.time() - start,
    }
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(asset, tmp)
    return asset


def load_classifier(
    path: Path | str | None = None, device: str | torch.device = "cpu", dataset: str = "mnist"
) -> MnistClassifier:
    """The shipped classifier for ``dataset`` (or the one at ``path``), in eval mode."""
    return _load_cached(str(path or default_asset_path(dataset)), str(device))


def asset_info(path: Path | str | None = None, dataset: str = "mnist") -> dict[str, Any]:
    """The asset's held-out accuracy and sizes (no weights)."""
    asset = torch.load(str(path or default_asset_path(dataset)), map_location="cpu", weights_only=True)
    keys = ("dataset", "held_out_accuracy", "held_out_per_digit_accuracy", "held_out_size", "train_size")
    return {"dataset": "mnist", **{k: asset[k] for k in keys if k in asset}}


@lru_cache(maxsize=4)
def _load_cached(path: str, device: str) -> MnistClassifier:
    try:
        asset = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: classifier weights not found; train them with `gan-train classifier --out {path}`"
        ) from None
    if not isinstance(asset, dict) or asset.get("format") != ASSET_FORMAT:
        raise ValueError(f"{path}: not a gan_training classifier asset (format {ASSET_FORMAT})")
    model = MnistClassifier(ClassifierConfig(**asset["config"]))
    model.load_state_dict(asset["state_dict"])
    return model.to(device).eval()


def to_model_range(images: Any) -> torch.Tensor:
    """uint8 0..255 or float [-1, 1] images, (N, 28, 28), (N, 1, 28, 28) or (N, 28, 28, 1),
    numpy or torch -> float32 (N, 1, 28, 28) in [-1, 1].

    Floats are taken to be in the generators' [-1, 1] range; pass uint8 for
    pixel values.
    """
    x = images if isinstance(images, torch.Tensor) else torch.tensor(np.asarray(images))  # a copy: inputs may be read-only
    if x.dtype == torch.uint8:
        x = x.float() / 127.5 - 1.0
    elif x.is_floating_point():
        x = x.float()
    else:
        raise TypeError(f"images must be uint8 or floating point, got {x.dtype}")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    elif x.dim() == 4 and tuple(x.shape[1:]) == (28, 28, 1):
        x = x.permute(0, 3, 1, 2)  # NHWC, as gan-client saves images
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"images must have shape (N, 28, 28), (N, 1, 28, 28) or (N, 28, 28, 1), got {tuple(x.shape)}")
    return x


@torch.no_grad()
def classify(images: Any, model: MnistClassifier | None = None, batch_size: int = 500) -> torch.Tensor:
    """Predicted digits (N,) int64 for uint8 or [-1, 1] float images."""
    return torch.from_numpy(judge(images, model, batch_size)[0])


@torch.no_grad()
def embed(images: Any, model: MnistClassifier | None = None, batch_size: int = 500) -> np.ndarray:
    """The classifier's pooled convolutional features (N, 4 * width) float64:
    what the Frechet distance (FLD) compares."""
    return judge(images, model, batch_size)[1]


@torch.no_grad()
def judge(images: Any, model: MnistClassifier | None = None, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Class indices (N,) int64 and pooled features (N, 4 * width) float64, in one pass."""
    model = model or load_classifier()
    device = next(model.parameters()).device
    x = to_model_range(images)
    preds, feats = [], []
    for i in range(0, len(x), batch_size):
        f = model.features(x[i : i + batch_size].to(device))
        preds.append(model.classify(f).argmax(1).cpu())
        feats.append(f.flatten(1).cpu())
    if not preds:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4 * model.cfg.width))
    return torch.cat(preds).numpy(), torch.cat(feats).double().numpy()
