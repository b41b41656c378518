"""Judging generators with the project classifiers.

Pure helpers (confusion matrices, Hungarian category->digit matching) plus
``evaluate_model_dir``, the engine of ``gan-train eval MODEL_DIR``: it runs
the exported ONNX file through onnxruntime with inputs built by
``gan_contract.request``, i.e. exactly as the server would, and
reports (metric definitions in quality.py):

* image models: FLD (Frechet distance between classifier features of 10,000
  generated and the real images), the predicted-class histogram, classes
  covered, KL(histogram || uniform); conditional models also the share of
  images that are the class asked for, per class, over ``samples_per_digit``
  codes per class;
* 2-D mixtures (ring8, grid25): the VEEGAN/PacGAN mode protocol over 2,500
  samples;
* the manifest's facts: variant, dataset, epochs, training time, generator
  parameters, size on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from gan_contract.manifest import Manifest, load_manifest
from gan_contract.request import class_for_digit, draw, inputs_from_codes
from scipy.optimize import linear_sum_assignment

from .classifier import JUDGE_DATASET, asset_info, classify, embed, judge, load_classifier
from .data import dataset_info, load_dataset, load_idx_dataset, make_toy, toy_modes
from .quality import class_histogram_stats, feature_stats, frechet_distance, mode_protocol, wasserstein_1d

NUM_DIGITS = 10


def confusion_matrix(requested: np.ndarray, predicted: np.ndarray, rows: int, cols: int = NUM_DIGITS) -> np.ndarray:
    """counts[r, d] = how many samples asked for r were classified as d."""
    counts = np.zeros((rows, cols), dtype=np.int64)
    np.add.at(counts, (np.asarray(requested, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return counts


@dataclass(frozen=True)
class Matching:
    category_to_digit: list[int]  # [c] -> digit
    matched_accuracy: float  # share of samples whose category's digit was drawn
    per_digit_accuracy: dict[str, float]  # digit -> accuracy of its category

    @property
    def worst_digit(self) -> tuple[str, float]:
        return min(self.per_digit_accuracy.items(), key=lambda kv: kv[1])

    def to_dict(self) -> dict[str, Any]:
        digit, acc = self.worst_digit
        return {
            "category_to_digit": list(self.category_to_digit),
            "matched_accuracy": self.matched_accuracy,
            "per_digit_accuracy": dict(self.per_digit_accuracy),
            "worst_digit": int(digit),
            "worst_digit_accuracy": acc,
        }


def score_mapping(confusion: np.ndarray, category_to_digit: list[int]) -> Matching:
    """Accuracy of a given category->digit map on a (K, 10) confusion matrix."""
    confusion = np.asarray(confusion)
    totals = confusion.sum(1)
    hits = np.array([confusion[c, d] for c, d in enumerate(category_to_digit)])
    per_digit = {}
    for c, d in enumerate(category_to_digit):
        per_digit[str(d)] = float(hits[c] / totals[c]) if totals[c] else 0.0
    matched = float(hits.sum() / max(1, totals.sum()))
    return Matching(list(map(int, category_to_digit)), matched, dict(sorted(per_digit.items())))


def match_categories(confusion: np.ndarray) -> Matching:
    """Assign each category one distinct digit, maximising agreement.

    An unsupervised InfoGAN numbers its categories arbitrarily; the
    Hungarian algorithm finds the one-to-one relabelling that makes the most
    samples land on their category's digit (argmax per row could give two
    categories the same digit and leave another digit unreachable).
    """
    confusion = np.asarray(confusion)
    if confusion.shape[0] > confusion.shape[1]:
        raise ValueError(f"{confusion.shape[0]} categories cannot be matched one-to-one to {confusion.shape[1]} digits")
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    mapping = [0] * confusion.shape[0]
    for r, c in zip(rows, cols):
        mapping[int(r)] = int(c)
    return score_mapping(confusion, mapping)


# --------------------------------------------------------------------------
# Evaluating an exported model directory

FLD_SAMPLES = 10_000
TOY_SAMPLES = 2_500
TOY_FLOOR_SEED = 1  # the fresh draw of the data that W1's floor is measured on (the data itself: seed 0)
CHUNK = 500


@lru_cache(maxsize=4)
def real_reference(dataset: str) -> tuple[str, int, np.ndarray, np.ndarray]:
    """What generated images are compared with: (description, count, feature
    mean, feature covariance). MNIST: the 5,000 embedded digits (all there
    are here); Fashion-MNIST: the 10,000 test images."""
    judge_name = JUDGE_DATASET[dataset]
    if judge_name == "mnist":
        ds = load_dataset("mnist")
        what = "the 5,000 embedded MNIST digits"
    else:
        ds = load_idx_dataset("fashion-mnist", split="test")
        what = "the 10,000 Fashion-MNIST test images"
    mu, sigma = feature_stats(embed(ds.images, load_classifier(dataset=judge_name)))
    return what, len(ds), mu, sigma


def model_facts(model_dir: Path, manifest: Manifest) -> dict[str, Any]:
    """Variant, dataset, training length/time, size: from the manifest and disk."""
    training = manifest.training or {}
    files = sorted(p for p in model_dir.iterdir() if p.is_file())
    return {
        "model": f"{manifest.name}/{manifest.version}",
        "name": manifest.name,
        "variant": manifest.variant,
        "dataset": manifest.dataset,
        "conditioning": manifest.conditioning.kind,
        "epochs": training.get("epochs"),
        "g_updates": training.get("g_updates"),
        "training_seconds": training.get("duration_seconds"),
        "generator_parameters": training.get("generator_parameters"),
        "width": training.get("width"),
        "size_bytes": int(sum(p.stat().st_size for p in files)),
        "files": [p.name for p in files],
    }


def evaluate_model_dir(
    model_dir: Path | str, samples_per_digit: int = 100, seed: int = 0, fld_samples: int = FLD_SAMPLES
) -> dict[str, Any]:
    """Judge the ONNX generator in ``model_dir`` (see the module docstring).

    Codes come from ``draw_codes(seed, ...)``. For conditional models the
    FLD/coverage set asks for the classes in turn (image i asks for class
    i mod 10), and the accuracy set asks for each class with the same
    ``samples_per_digit`` styles, as the server does for ``--digit``.
    """
    import onnxruntime as ort  # only `gan-train eval` needs the ONNX runtime: imported here, not by training

    model_dir = Path(model_dir)
    manifest = load_manifest(model_dir)
    session = ort.InferenceSession(str(model_dir / manifest.files["onnx"].path), providers=["CPUExecutionProvider"])
    result = model_facts(model_dir, manifest)
    result["seed"] = seed
    info = dataset_info(manifest.dataset)
    if info.kind == "points":
        result.update(_evaluate_points(session, manifest, seed))
        return result
    result.update(_evaluate_images(session, manifest, seed, fld_samples, model_dir))
    if manifest.conditioning.kind != "none":
        result.update(_conditional_accuracy(session, manifest, seed, samples_per_digit, model_dir))
    return result


def _run(session: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
    n = len(next(iter(feeds.values())))
    return np.concatenate(
        [session.run(["images"], {k: v[i : i + CHUNK] for k, v in feeds.items()})[0] for i in range(0, n, CHUNK)]
    )


def _feeds(manifest: Manifest, seed: int, n: int, classes: np.ndarray | None) -> dict[str, np.ndarray]:
    """Inputs for images 0..n-1 of ``seed``; ``classes`` (n,) = the class asked of each
    (class models: the class index; InfoGAN: the digit, through its category map)."""
    if classes is not None and manifest.conditioning.kind == "infogan":
        classes = np.array([class_for_digit(manifest, int(d)) for d in classes], np.int64)
    feeds, _ = inputs_from_codes(manifest, draw(manifest, seed, 0, n), classes)
    return feeds


def _evaluate_images(session: Any, manifest: Manifest, seed: int, n: int, model_dir: Path) -> dict[str, Any]:
    if manifest.dataset not in JUDGE_DATASET:
        raise ValueError(f"{model_dir}: no classifier judges dataset {manifest.dataset!r}")
    judge_name = JUDGE_DATASET[manifest.dataset]
    classifier = load_classifier(dataset=judge_name)
    classes = np.arange(n) % NUM_DIGITS
    images = _run(session, _feeds(manifest, seed, n, classes))
    predicted, features = judge(images, classifier)
    mu, sigma = feature_stats(features)
    real_what, real_n, real_mu, real_sigma = real_reference(manifest.dataset)
    clf = asset_info(dataset=judge_name)
    return {
        "samples": n,
        "fld": frechet_distance(mu, sigma, real_mu, real_sigma),
        "fld_reference": real_what,
        "classifier": {
            "dataset": judge_name,
            "held_out_accuracy": clf.get("held_out_accuracy"),
            "held_out_size": clf.get("held_out_size"),
        },
        **class_histogram_stats(predicted, NUM_DIGITS),
    }


def _conditional_accuracy(session: Any, manifest: Manifest, seed: int, n: int, model_dir: Path) -> dict[str, Any]:
    cond = manifest.conditioning
    classifier = load_classifier(dataset=JUDGE_DATASET[manifest.dataset])
    names = list(cond.class_names) or [str(d) for d in range(NUM_DIGITS)]
    if cond.kind == "infogan":
        missing = sorted(set(range(len(names))) - {int(d) for d in cond.category_to_digit})
        if missing:
            raise ValueError(
                f"{model_dir}: no category draws digit(s) {missing} (category_to_digit {cond.category_to_digit})"
            )
    requested, predicted = [], []
    for digit in range(len(names)):
        asked = np.full(n, digit)
        # The same styles for every class: images 0..n-1 of the seed, as the server draws --digit d.
        requested.append(asked)
        predicted.append(classify(_run(session, _feeds(manifest, seed, n, asked)), classifier).numpy())
    conf = confusion_matrix(np.concatenate(requested), np.concatenate(predicted), len(names))
    scored = score_mapping(conf, list(range(len(names))))
    worst, worst_acc = scored.worst_digit
    return {
        "samples_per_digit": n,
        "class_names": names,
        "overall_accuracy": scored.matched_accuracy,
        "per_digit_accuracy": scored.per_digit_accuracy,
        "worst_digit": int(worst),
        "worst_digit_accuracy": worst_acc,
        "confusion": conf.tolist(),
    }


def _evaluate_points(session: Any, manifest: Manifest, seed: int) -> dict[str, Any]:
    means, std = toy_modes(manifest.dataset)
    samples = _run(session, _feeds(manifest, seed, TOY_SAMPLES, None)).reshape(TOY_SAMPLES, -1).astype(np.float64)
    if means.shape[1] == 1:  # gaussian1d: no modes to count; the earth-mover distance to the data
        return point_scores(manifest.dataset, samples[:, 0])
    return {"modes": mode_protocol(samples, means, std)}


@lru_cache(maxsize=4)
def _toy_reference(name: str) -> np.ndarray:
    """The 1-D toy dataset's training points (all 100,000 of them)."""
    return make_toy(name)[0][:, 0]


def point_scores(name: str, samples: np.ndarray) -> dict[str, Any]:
    """A 1-D model's samples (N,) against toy dataset ``name``: the earth-mover
    distance W1 to the dataset's 100,000 points (``quality.wasserstein_1d``;
    in the data's units: for gaussian1d, a shift of 0.5 costs 0.5), its
    floor (W1 of N fresh draws from the data distribution itself: what
    sampling error alone costs), and the samples' mean and std."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if not np.isfinite(x).all():
        return {"samples": len(x), "finite": False}
    reference = _toy_reference(name)
    floor_draw = make_toy(name, n=len(x), seed=TOY_FLOOR_SEED)[0][:, 0]
    return {
        "samples": len(x),
        "wasserstein_1d": wasserstein_1d(x, reference),
        "wasserstein_1d_floor": wasserstein_1d(floor_draw, reference),
        "mean": float(x.mean()),
        "std": float(x.std()),
    }


# --------------------------------------------------------------------------
# Toy data during training (VEEGAN / PacGAN's metrics)


def mode_coverage(name: str, samples: np.ndarray) -> dict[str, Any]:
    """Samples (N, D) of a model of toy dataset ``name`` judged against its
    modes with ``quality.mode_protocol`` (PacGAN evaluates 2,500 samples).

    Non-finite samples (a diverged run) are reported as ``finite: false``
    instead of judged; 1-D data also gets the samples' mean and std and the
    earth-mover distance to the data (``point_scores``).
    """
    means, std = toy_modes(name)
    x = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    result: dict[str, Any] = {"samples": len(x), "modes_total": len(means), "finite": bool(np.isfinite(x).all())}
    if result["finite"] and len(x):
        result.update(mode_protocol(x, means, std))
    if means.shape[1] == 1:
        result["sample_mean"] = float(x.mean())
        result["sample_std"] = float(x.std())
        if result["finite"] and len(x):
            scores = point_scores(name, x[:, 0])
            result["wasserstein_1d"] = scores["wasserstein_1d"]
            result["wasserstein_1d_floor"] = scores["wasserstein_1d_floor"]
    return result
