"""The project's MNIST classifier: trains it, ships it, and judges digits with it.

The shipped weights live in ``gan_training/assets/mnist_classifier.pt``
(config + state_dict + held-out accuracy; loads with ``weights_only=True``).
Retrain them reproducibly with::

    gan-train classifier --out training/gan_training/assets/mnist_classifier.pt

It trains on 4,000 of the 5,000 embedded digits (``data.stratified_split``)
with small random shifts, rotations and scalings, and reports accuracy on the
1,000 held out. Use it through :func:`classify`::

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
from tqdm import tqdm

from .data import load_dataset, random_affine, stratified_split
from .models import ClassifierConfig, MnistClassifier

ASSET_FORMAT = "gan_training.mnist_classifier/1"


@dataclass(frozen=True)
class ClassifierTrainConfig:
    out: str = "training/gan_training/assets/mnist_classifier.pt"
    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_rotation_deg: float = 12.0
    max_shift_px: float = 2.5
    max_scale: float = 0.1  # zoom in [1 - s, 1 + s]
    device: str = "cpu"


def default_asset_path() -> Path:
    return Path(str(resources.files("gan_training") / "assets" / "mnist_classifier.pt"))


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
    ds = load_dataset("mnist")
    train_idx, held_idx = stratified_split(ds.labels)
    x_tr, y_tr = ds.images[train_idx].to(device), ds.labels[train_idx].to(device)
    x_ho, y_ho = ds.images[held_idx].to(device), ds.labels[held_idx].to(device)

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
        "config": model_cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "held_out_accuracy": accuracy,
        "held_out_per_digit_accuracy": per_digit,
        "held_out_size": int(len(held_idx)),
        "train_size": int(len(train_idx)),
        "train_config": asdict(cfg),
        "train_seconds": time.time() - start,
    }
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(asset, tmp)
    tmp.replace(out)
    return asset


def load_classifier(path: Path | str | None = None, device: str | torch.device = "cpu") -> MnistClassifier:
    """The shipped classifier (or the one at ``path``), in eval mode."""
    return _load_cached(str(path or default_asset_path()), str(device))


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
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
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
    model = model or load_classifier()
    device = next(model.parameters()).device
    x = to_model_range(images)
    preds = [model(x[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64)
