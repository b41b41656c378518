"""Numbers for judging generators: pure numpy/scipy, no torch.

Fréchet distance (FID when the features are Inception activations; Heusel et
al., NeurIPS 2017). Fit a Gaussian to each feature set; the 2-Wasserstein
distance between N(mu1, S1) and N(mu2, S2) has the closed form (Dowson &
Landau 1982)

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

KL and Jensen-Shannon between discrete histograms, in nats:

    KL(p || q) = sum_i p_i log(p_i / q_i)              (inf where q_i = 0 < p_i)
    JS(p, q)   = KL(p || m) / 2 + KL(q || m) / 2,  m = (p + q) / 2,   0 <= JS <= log 2

Earth mover's (1-Wasserstein) distance: the cheapest plan moving the mass of
p onto q, W(p, q) = min_{T >= 0, T 1 = p, T^T 1 = q} <T, C>, solved here as
a linear programme; in 1-D it equals the area between the CDFs (closed form,
scipy.stats.wasserstein_distance). Arjovsky, Chintala & Bottou (2017) and
Lilian Weng's "From GAN to WGAN" explain why it is the better yardstick: for
distributions with disjoint supports JS is stuck at log 2 however far apart
they are, while W grows with the distance.

Mode coverage on 2-D mixtures (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et
al. 2018): see ``mode_protocol``, the one definition of "modes captured"
that training, ``gan-train eval`` and the zoo report. Class coverage for conditional image
generators (predicted labels from a classifier): see ``class_histogram_stats``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse
import scipy.spatial.distance
import scipy.special
import scipy.stats

__all__ = [
    "class_histogram_stats",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_features",
    "js_divergence",
    "kl_divergence",
    "mode_protocol",
    "wasserstein_1d",
    "wasserstein_discrete",
    "wasserstein_points",
]


def _finite_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _weights(x, name: str) -> np.ndarray:
    """Non-negative finite weights with a positive sum, normalised to sum to 1."""
    arr = _finite_array(x, name)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative")
    total = arr.sum()
    if not total > 0:
        raise ValueError(f"{name} must have a positive sum")
    return arr / total


def _same_shape(p: np.ndarray, q: np.ndarray) -> None:
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got p {p.shape} and q {q.shape}")


# --------------------------------------------------------------------------- Fréchet


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D), float64, N - 1 normalisation."""
    x = _finite_array(features, "features", ndim=2)
    if x.shape[0] < 2:
        raise ValueError(f"features needs at least 2 rows for a covariance, got {x.shape[0]}")
    mu = x.mean(axis=0)
    sigma = np.atleast_2d(np.cov(x, rowvar=False))
    return mu, sigma


def _sqrtm_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, bool]:
    """sqrtm(a @ b) and whether it looks trustworthy (finite, accurate, ~real)."""
    prod = a @ b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular-matrix warnings: judged below instead
        root = scipy.linalg.sqrtm(prod)
    if not np.all(np.isfinite(root)):
        return root, False
    scale = max(float(np.abs(prod).max()), 1e-300)
    residual = float(np.abs(root @ root - prod).max()) / scale
    imag = float(np.abs(np.imag(root)).max()) / math.sqrt(scale)
    return root, residual < 1e-6 and imag < 1e-6


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):

        ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))

    (Dowson & Landau 1982, the closed-form 2-Wasserstein distance squared
    between Gaussians; with Inception features it is FID, Heusel et al. 2017).
    The matrix square root comes from ``scipy.linalg.sqrtm``. If it is
    non-finite or inaccurate (singular product, e.g. fewer samples than
    dimensions), ``eps`` is added to both diagonals and it is taken again.
    Imaginary parts left by round-off are dropped; an imaginary part that is
    not tiny even after the retry raises ValueError, as in Heusel et al.'s
    reference code. Round-off negatives are clamped to 0.
    """
    m1 = _finite_array(mu1, "mu1", ndim=1)
    m2 = _finite_array(mu2, "mu2", ndim=1)
    s1 = _finite_array(sigma1, "sigma1", ndim=2)
    s2 = _finite_array(sigma2, "sigma2", ndim=2)
    d = m1.shape[0]
    if m2.shape != (d,):
        raise ValueError(f"mu2 must have shape {(d,)} like mu1, got {m2.shape}")
    if s1.shape != (d, d):
        raise ValueError(f"sigma1 must have shape {(d, d)}, got {s1.shape}")
    if s2.shape != (d, d):
        raise ValueError(f"sigma2 must have shape {(d, d)}, got {s2.shape}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")

    root, ok = _sqrtm_product(s1, s2)
    if not ok:
        offset = eps * np.eye(d)
        root, _ = _sqrtm_product(s1 + offset, s2 + offset)
        if not np.all(np.isfinite(root)):
            raise ValueError("sqrtm(sigma1 @ sigma2) is not finite even with eps added to the diagonals")
    if np.iscomplexobj(root):
        scale = math.sqrt(max(float(np.abs(s1).max() * np.abs(s2).max()), 1e-300))
        if float(np.abs(np.imag(np.diag(root))).max()) > 1e-3 * scale:
            raise ValueError("sqrtm(sigma1 @ sigma2) has a large imaginary part; are sigma1, sigma2 covariances?")
        root = np.real(root)

    diff = m1 - m2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(root))
    return max(value, 0.0)


def frechet_distance_features(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, D) and b (M, D)."""
    mu1, s1 = feature_stats(a)
    mu2, s2 = feature_stats(b)
    if mu1.shape != mu2.shape:
        raise ValueError(f"a and b must have the same feature dimension, got {mu1.shape[0]} and {mu2.shape[0]}")
    return frechet_distance(mu1, s1, mu2, s2)


# --------------------------------------------------------------------------- KL / JS


def kl_divergence(p, q) -> float:
    """KL(p || q) in nats between histograms (weights normalised here).

    Terms with p_i = 0 contribute 0; returns ``math.inf`` if some q_i = 0 < p_i.
    """
    pw = _weights(p, "p")
    qw = _weights(q, "q")
    _same_shape(pw, qw)
    if np.any((qw == 0) & (pw > 0)):
        return math.inf
    return max(float(scipy.special.rel_entr(pw, qw).sum()), 0.0)


def js_divergence(p, q) -> float:
    """Jensen-Shannon divergence (weights 1/2) in nats, in [0, log 2]."""
    pw = _weights(p, "p")
    qw = _weights(q, "q")
    _same_shape(pw, qw)
    m = 0.5 * (pw + qw)
    value = 0.5 * scipy.special.rel_entr(pw, m).sum() + 0.5 * scipy.special.rel_entr(qw, m).sum()
    return min(max(float(value), 0.0), math.log(2.0))


# --------------------------------------------------------------------------- Wasserstein


def wasserstein_discrete(p, q, cost) -> float:
    """Earth mover's distance between histograms p (n,) and q (m,) under cost (n, m).

    Solves min <T, cost> over T >= 0 with row sums p and column sums q (both
    normalised to 1) with ``scipy.optimize.linprog(method="highs")``. Bins with
    zero weight are dropped first (they carry no mass), so the LP has
    nnz(p) * nnz(q) variables: fine for a few hundred bins a side.
    """
    pw = _weights(p, "p")
    qw = _weights(q, "q")
    if pw.ndim != 1:
        raise ValueError(f"p must be 1-D, got shape {pw.shape}")
    if qw.ndim != 1:
        raise ValueError(f"q must be 1-D, got shape {qw.shape}")
    c = _finite_array(cost, "cost", ndim=2)
    if c.shape != (pw.size, qw.size):
        raise ValueError(f"cost must have shape {(pw.size, qw.size)}, got {c.shape}")

    rows = np.flatnonzero(pw)
    cols = np.flatnonzero(qw)
    pw, qw, c = pw[rows], qw[cols], c[np.ix_(rows, cols)]
    n, m = c.shape
    if n == 1 or m == 1:  # one source or one sink: the plan is forced
        return float((c * (pw[:, None] * qw[None, :])).sum())

    # Plan T flattened row-major: T[i, j] is variable i * m + j.
    row_sums = scipy.sparse.kron(scipy.sparse.eye(n), np.ones((1, m)))
    col_sums = scipy.sparse.kron(np.ones((1, n)), scipy.sparse.eye(m))
    a_eq = scipy.sparse.vstack([row_sums, col_sums]).tocsr()
    b_eq = np.concatenate([pw, qw])
    res = scipy.optimize.linprog(c.ravel(), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"transport LP failed: {res.message}")
    return float(res.fun)


def wasserstein_1d(x, y, x_weights=None, y_weights=None) -> float:
    """1-D earth mover's distance between samples (or support points) x and y, optionally weighted."""
    xs = _finite_array(x, "x", ndim=1)
    ys = _finite_array(y, "y", ndim=1)
    if xs.size == 0:
        raise ValueError("x must not be empty")
    if ys.size == 0:
        raise ValueError("y must not be empty")
    xw = None if x_weights is None else _weights(x_weights, "x_weights")
    yw = None if y_weights is None else _weights(y_weights, "y_weights")
    if xw is not None and xw.shape != xs.shape:
        raise ValueError(f"x_weights must have shape {xs.shape} like x, got {xw.shape}")
    if yw is not None and yw.shape != ys.shape:
        raise ValueError(f"y_weights must have shape {ys.shape} like y, got {yw.shape}")
    return float(scipy.stats.wasserstein_distance(xs, ys, xw, yw))


def wasserstein_points(x_points, p, y_points, q, metric: str = "euclidean") -> float:
    """Earth mover's distance between weighted point sets, ground cost ``cdist(x_points, y_points, metric)``.

    Points are (n, d) arrays, or (n,) for points on a line.
    """
    xs = _finite_array(x_points, "x_points")
    ys = _finite_array(y_points, "y_points")
    xs = xs[:, None] if xs.ndim == 1 else xs
    ys = ys[:, None] if ys.ndim == 1 else ys
    if xs.ndim != 2:
        raise ValueError(f"x_points must be (n, d) or (n,), got shape {xs.shape}")
    if ys.ndim != 2:
        raise ValueError(f"y_points must be (m, d) or (m,), got shape {ys.shape}")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x_points and y_points must have the same dimension, got {xs.shape[1]} and {ys.shape[1]}")
    cost = scipy.spatial.distance.cdist(xs, ys, metric=metric)
    return wasserstein_discrete(p, q, cost)


# --------------------------------------------------------------------------- coverage


def class_histogram_stats(predicted: np.ndarray, num_classes: int = 10, min_share: float = 0.2) -> dict:
    """Class histogram of predicted labels and how evenly it covers the classes.

    Returns {"histogram": {"0": count, ...}, "classes_covered", "kl_to_uniform",
    "min_share", "max_share"}. A class counts as covered when its share of the
    samples is at least ``min_share / num_classes`` (with the defaults: 2%,
    a fifth of the uniform share). ``kl_to_uniform`` is KL(histogram ||
    uniform) in nats: 0 for a uniform histogram, log(num_classes) when all
    samples fall in one class. The returned "min_share"/"max_share" are the
    smallest and largest class shares (fractions of the samples).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not (math.isfinite(min_share) and min_share >= 0):
        raise ValueError(f"min_share must be finite and non-negative, got {min_share!r}")
    labels = np.asarray(predicted)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"predicted must be a non-empty 1-D array of labels, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        as_float = _finite_array(labels, "predicted")
        if np.any(as_float != np.round(as_float)):
            raise ValueError("predicted must hold integer class labels")
        labels = as_float.astype(np.int64)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"predicted labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")

    counts = np.bincount(labels, minlength=num_classes)
    shares = counts / labels.size
    return {
        "histogram": {str(k): int(n) for k, n in enumerate(counts)},
        "classes_covered": int(np.count_nonzero(shares >= min_share / num_classes)),
        "kl_to_uniform": kl_divergence(counts, np.ones(num_classes)),
        "min_share": float(shares.min()),
        "max_share": float(shares.max()),
    }


STRICT_MIN_SAMPLES = 20  # high-quality samples a mode needs to count in "modes_captured_20"


def mode_protocol(samples: np.ndarray, means: np.ndarray, std: float, hq_sigmas: float = 3.0) -> dict:
    """The mixture protocol of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018).

    Samples (N, D) and mode means (K, D), D = 2 for the 2-D mixtures (any D
    works). Each sample is assigned to its nearest mode (Euclidean). It is
    *high quality* when that distance is strictly less than
    ``hq_sigmas * std`` (3 standard deviations by default): a sample exactly
    at 3 sigma is not. A mode is *captured* (``modes_captured``) when it is
    the nearest mode of at least one high-quality sample; the stricter
    ``modes_captured_20`` counts the modes with at least
    ``STRICT_MIN_SAMPLES`` = 20 of them.

    Reverse KL is KL(generated mode histogram || true mode histogram), the
    true one uniform over the modes. The generated histogram counts
    high-quality samples only, per nearest mode; samples that are not high
    quality are left out of it (they lower ``high_quality_fraction``
    instead). Empty bins add 0 (the p_i = 0 terms of the KL sum), so a
    generator stuck on one of K modes scores log K. This follows the PacGAN
    reference code (github.com/fjxmlzn/PacGAN): ``MetricLogger`` in
    synthetic_data_experiments/PacGAN/pacgan/extensions.py fills its per-mode
    histogram only with samples whose std-normalised distance to the nearest
    mode is < 3 (``dis_thre``), and its ``KLD`` (used for the stacked-MNIST
    reverse KL against a uniform histogram) skips p_i = 0 terms. With no
    high-quality sample at all the histogram is empty and ``reverse_kl`` is
    ``math.inf``.

    Returns {"samples", "modes_total", "modes_captured", "modes_captured_20",
    "high_quality_fraction", "reverse_kl", "mode_histogram"}.
    """
    x = _finite_array(samples, "samples", ndim=2)
    mu = _finite_array(means, "means", ndim=2)
    if mu.shape[0] == 0 or mu.shape[1] == 0:
        raise ValueError(f"means must have shape (K, D) with K, D >= 1, got {mu.shape}")
    if x.shape[0] == 0 or x.shape[1] != mu.shape[1]:
        raise ValueError(f"samples must have shape (N, {mu.shape[1]}) like the means, with N >= 1, got {x.shape}")
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"std must be finite and positive, got {std!r}")
    if not (math.isfinite(hq_sigmas) and hq_sigmas > 0):
        raise ValueError(f"hq_sigmas must be finite and positive, got {hq_sigmas!r}")

    dist = scipy.spatial.distance.cdist(x, mu)
    nearest = dist.argmin(axis=1)
    high_quality = dist[np.arange(x.shape[0]), nearest] < hq_sigmas * std
    histogram = np.bincount(nearest[high_quality], minlength=mu.shape[0])
    reverse_kl = kl_divergence(histogram, np.ones(mu.shape[0])) if histogram.sum() > 0 else math.inf
    return {
        "samples": int(x.shape[0]),
        "modes_total": int(mu.shape[0]),
        "modes_captured": int(np.count_nonzero(histogram)),
        "modes_captured_20": int(np.count_nonzero(histogram >= STRICT_MIN_SAMPLES)),
        "high_quality_fraction": float(high_quality.mean()),
        "reverse_kl": reverse_kl,
        "mode_histogram": [int(n) for n in histogram],
    }
