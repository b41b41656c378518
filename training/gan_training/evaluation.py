"""Judging generators with the project classifier.

Pure helpers (confusion matrices, Hungarian category->digit matching) plus
``evaluate_model_dir``, the engine of ``gan-train eval MODEL_DIR``: it runs
the exported ONNX file through onnxruntime with codes drawn by
``gan_server.latents.draw_codes``, i.e. exactly as the server would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

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


def class_histogram(predicted: np.ndarray) -> dict[str, Any]:
    """For unconditional models: how the samples spread over the digits."""
    counts = np.bincount(np.asarray(predicted, dtype=np.int64), minlength=NUM_DIGITS)
    share = counts / max(1, counts.sum())
    return {
        "histogram": {str(d): int(n) for d, n in enumerate(counts)},
        # A digit counts as covered when it gets at least a fifth of a fair share.
        "classes_covered": int((share >= 0.2 / NUM_DIGITS).sum()),
        "min_share": float(share.min()),
        "max_share": float(share.max()),
    }


# --------------------------------------------------------------------------
# Evaluating an exported model directory


def evaluate_model_dir(model_dir: Path | str, samples_per_digit: int = 100, seed: int = 0) -> dict[str, Any]:
    """Judge the ONNX generator in ``model_dir`` with the project classifier.

    Codes come from ``draw_codes(seed, ...)``; for conditional models the
    requested digit then replaces the drawn label/category, as the server
    does, so each digit is drawn with the same 100 styles.
    """
    import onnxruntime as ort
    from gan_server.latents import draw_codes
    from gan_server.manifest import load_manifest

    from .classifier import classify

    model_dir = Path(model_dir)
    manifest = load_manifest(model_dir)
    cond = manifest.conditioning
    session = ort.InferenceSession(str(model_dir / manifest.files["onnx"].path), providers=["CPUExecutionProvider"])

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return session.run(["images"], feeds)[0]

    result: dict[str, Any] = {
        "model": f"{manifest.name}/{manifest.version}",
        "variant": manifest.variant,
        "conditioning": cond.kind,
        "seed": seed,
    }
    if cond.kind == "none":
        n = samples_per_digit * NUM_DIGITS
        codes = draw_codes(seed, 0, n, manifest.latent.dim)
        images = np.concatenate([run({"z": codes.z[i : i + 500]}) for i in range(0, n, 500)])
        result.update(samples=n, **class_histogram(classify(images).numpy()))
        return result

    n = samples_per_digit
    codes = draw_codes(
        seed, 0, n, manifest.latent.dim, cond.num_categories, cond.num_continuous, cond.continuous_range
    )
    digit_names = list(cond.class_names) or [str(d) for d in range(NUM_DIGITS)]
    requested, predicted = [], []
    for digit in range(len(digit_names)):
        if cond.kind == "class":
            feeds = {"z": codes.z, "label": np.full((n,), digit, dtype=np.int64)}
        else:
            if digit not in cond.category_to_digit:
                raise ValueError(f"{model_dir}: no category draws digit {digit} (category_to_digit {cond.category_to_digit})")
            category = np.zeros((n, cond.num_categories), dtype=np.float32)
            category[:, list(cond.category_to_digit).index(digit)] = 1.0
            feeds = {"z": codes.z, "category": category, "continuous": codes.continuous}
        requested.append(np.full(n, digit))
        predicted.append(classify(run(feeds)).numpy())
    conf = confusion_matrix(np.concatenate(requested), np.concatenate(predicted), len(digit_names))
    scored = score_mapping(conf, list(range(len(digit_names))))
    worst, worst_acc = scored.worst_digit
    result.update(
        samples_per_digit=n,
        overall_accuracy=scored.matched_accuracy,
        per_digit_accuracy=scored.per_digit_accuracy,
        worst_digit=int(worst),
        worst_digit_accuracy=worst_acc,
        confusion=conf.tolist(),
    )
    return result
