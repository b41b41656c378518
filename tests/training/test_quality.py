"""gan_training.quality on cases with known answers.

Tolerances: where the answer is exact arithmetic on exact inputs (closed forms
fed exact statistics, KL of fixed histograms) the tolerance only absorbs
float64 round-off and sqrtm's accuracy (~1e-12 relative), so 1e-8 relative is
loose yet would catch any wrong term. Where inputs are sampled the tolerance is
derived from the sampling error at that size and stated at the assertion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gan_training.quality import (
    class_histogram_stats,
    feature_stats,
    frechet_distance,
    frechet_distance_features,
    js_divergence,
    kl_divergence,
    mode_protocol,
    wasserstein_1d,
    wasserstein_discrete,
    wasserstein_points,
)
from scipy import integrate, stats

LOG2 = math.log(2.0)


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# --------------------------------------------------------------------------- Fréchet


def test_feature_stats_matches_definition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)) * [1.0, 2.0, 3.0]
    mu, sigma = feature_stats(x)
    centred = x - x.mean(axis=0)
    assert mu.dtype == np.float64 and sigma.shape == (3, 3)
    np.testing.assert_allclose(mu, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, centred.T @ centred / 49, rtol=1e-12)
    _, s1 = feature_stats(x[:, :1])
    assert s1.shape == (1, 1)


def test_identical_features_give_zero():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16)) * 5.0 + 3.0
    scale = np.trace(np.cov(a, rowvar=False))
    # round-off in sqrtm(S @ S) is ~1e-12 of the trace; 1e-6 relative is the brief's bound
    assert abs(frechet_distance_features(a, a)) < 1e-6 * scale


def test_diagonal_gaussians_closed_form_from_exact_stats():
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, -1.0, 0.0, 0.5])
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 1.0, 1.0, 9.0])
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-8)  # exact inputs: round-off only


def test_general_gaussians_match_symmetric_formula():
    # Tr sqrt(S1 S2) = sum sqrt(eig(S1^1/2 S2 S1^1/2)): an independent route via eigh.
    rng = np.random.default_rng(2)
    d = 6
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    cross = np.sum(np.sqrt(np.linalg.eigvalsh(root1 @ s2 @ root1)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-8)


def test_diagonal_gaussians_from_samples():
    rng = np.random.default_rng(3)
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, -1.0, 0.0])
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, 1.0, 9.0])
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)  # = 9 + 2.06
    n = 20000
    x = mu1 + rng.normal(size=(n, 3)) * np.sqrt(a)
    y = mu2 + rng.normal(size=(n, 3)) * np.sqrt(b)
    # Means are off by ~sqrt(var/n) <= 0.02 per coordinate and variances by ~sqrt(2/n) = 1%
    # relative, moving d by ~0.1 at most (a few standard errors); 0.25 absolute (~2%) keeps
    # the seeded test stable while a missing or doubled term (>= 0.6) would still fail.
    assert frechet_distance_features(x, y) == pytest.approx(expected, abs=0.25)


def test_shift_adds_squared_norm():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(300, 5)) * [1.0, 0.5, 2.0, 1.5, 3.0]
    v = np.array([0.3, -1.0, 2.0, 0.0, 0.7])
    # identical covariances, so only ||v||^2 is left (round-off of trace terms ~1e-12)
    assert frechet_distance_features(a, a + v) == pytest.approx(v @ v, rel=1e-6)


def test_singular_covariances_are_handled():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(5, 20))  # fewer samples than dimensions: rank-deficient covariance
    b = rng.normal(size=(5, 20)) + 1.0
    d = frechet_distance_features(a, b)
    assert math.isfinite(d) and d > 0
    const = np.zeros((30, 3))
    assert frechet_distance_features(const, const) == pytest.approx(0.0, abs=1e-5)  # eps-retry scale


def test_non_finite_sqrtm_retries_with_eps(monkeypatch):
    import scipy.linalg

    real_sqrtm = scipy.linalg.sqrtm
    calls = []

    def flaky_sqrtm(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(scipy.linalg, "sqrtm", flaky_sqrtm)
    a, b = np.array([1.0, 4.0]), np.array([4.0, 9.0])
    got = frechet_distance(np.zeros(2), np.diag(a), np.zeros(2), np.diag(b), eps=1e-6)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], np.diag((a + 1e-6) * (b + 1e-6)), rtol=1e-12)  # eps on both diagonals
    # with eps = 1e-6 the answer moves by O(eps) = O(1e-6): 1e-5 absolute
    assert got == pytest.approx(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), abs=1e-5)


def test_frechet_validation():
    with pytest.raises(ValueError, match="mu2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="features"):
        feature_stats(np.zeros(5))
    with pytest.raises(ValueError, match="features"):
        feature_stats(np.array([[0.0, np.nan], [1.0, 2.0]]))


# --------------------------------------------------------------------------- 2-D modes

RING_RADIUS, RING_STD = 2.0, 0.02  # eight modes on a circle, as in the PacGAN/VEEGAN ring


def _ring8() -> np.ndarray:
    angles = 2 * np.pi * np.arange(8) / 8
    return RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def test_single_mode_generator():
    rng = np.random.default_rng(6)
    means = _ring8()
    # noise std 0.005: P(distance > 3 * 0.02) = exp(-72) per sample, so every sample is HQ
    samples = means[3] + 0.005 * rng.normal(size=(1000, 2))
    out = mode_protocol(samples, means, RING_STD)
    assert out["modes_total"] == 8 and out["modes_captured"] == 1
    assert out["high_quality_fraction"] == 1.0
    assert out["reverse_kl"] == pytest.approx(math.log(8), rel=1e-12)
    assert out["mode_histogram"] == [0, 0, 0, 1000, 0, 0, 0, 0]
    assert out["samples"] == 1000


def test_all_modes_generator():
    rng = np.random.default_rng(7)
    means = _ring8()
    n = 8000
    samples = means[rng.integers(0, 8, size=n)] + RING_STD * rng.normal(size=(n, 2))
    out = mode_protocol(samples, means, RING_STD)
    assert out["modes_captured"] == 8
    # multinomial noise: E[KL] ~ (K - 1) / (2 n) = 4.4e-4; 5e-3 is ~10x that
    assert 0.0 <= out["reverse_kl"] < 5e-3
    # the radius of 2-D standard normal noise exceeds 3 with probability exp(-9/2) = 1.11%;
    # binomial sd at n = 8000 is 0.12%, so allow 0.5%
    assert out["high_quality_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=5e-3)


def test_far_samples_are_not_high_quality():
    means = _ring8()
    far = np.array([[0.0, 0.0], [4.0, 4.0], [0.0, -3.0]])  # >= 1 from every mode = 50 std
    out = mode_protocol(far, means, RING_STD)
    assert out["high_quality_fraction"] == 0.0
    assert out["modes_captured"] == 0
    assert out["mode_histogram"] == [0] * 8
    assert out["reverse_kl"] == math.inf


def test_threshold_and_histogram_use_high_quality_samples_only():
    means = _ring8()
    direction = np.array([0.0, 1.0])  # tangent at mode 0 = (2, 0)
    inside = means[0] + 2.9 * RING_STD * direction
    outside = means[1] + 3.1 * RING_STD * direction  # nearest to mode 1 but not HQ
    samples = np.array([inside] * 10 + [outside] * 10)
    out = mode_protocol(samples, means, RING_STD)
    assert out["high_quality_fraction"] == pytest.approx(0.5)
    # PacGAN reference: only HQ samples enter the histogram, so mode 1 is not captured
    assert out["mode_histogram"] == [10, 0, 0, 0, 0, 0, 0, 0]
    assert out["modes_captured"] == 1
    assert out["reverse_kl"] == pytest.approx(math.log(8), rel=1e-12)
    assert mode_protocol(samples, means, RING_STD, hq_sigmas=3.2)["modes_captured"] == 2


def test_high_quality_is_strictly_within_three_sigma():
    # std 0.5: 3 sigma = 1.5 exactly in binary floating point, as are the distances below
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    at_boundary = np.array([[1.5, 0.0], [0.0, -1.5]])
    just_inside = np.array([[1.5 - 2**-20, 0.0]])
    out = mode_protocol(np.concatenate([at_boundary, just_inside]), means, 0.5)
    assert out["high_quality_fraction"] == pytest.approx(1 / 3)
    assert out["mode_histogram"] == [1, 0] and out["modes_captured"] == 1


def test_strict_count_needs_twenty_high_quality_samples():
    means = _ring8()
    counts = [25, 20, 19, 1, 0, 0, 0, 0]  # per mode, all high quality
    samples = np.concatenate([np.repeat(means[k : k + 1], n, axis=0) for k, n in enumerate(counts) if n])
    out = mode_protocol(samples, means, RING_STD)
    assert out["mode_histogram"] == counts
    assert out["modes_captured"] == 4  # >= 1: what `gan-train eval` and the zoo report
    assert out["modes_captured_20"] == 2  # >= 20


def test_mode_protocol_in_one_dimension():
    out = mode_protocol(np.array([[4.0], [4.5], [9.0]]), np.array([[4.0]]), 1.25)
    assert out["modes_total"] == 1 and out["modes_captured"] == 1 and out["mode_histogram"] == [2]
    assert out["high_quality_fraction"] == pytest.approx(2 / 3)


def test_mode_protocol_validation():
    means = _ring8()
    with pytest.raises(ValueError, match="samples"):
        mode_protocol(np.zeros((5, 3)), means, RING_STD)
    with pytest.raises(ValueError, match="samples"):
        mode_protocol(np.array([[0.0, np.inf]]), means, RING_STD)
    with pytest.raises(ValueError, match="means"):
        mode_protocol(np.zeros((5, 2)), np.zeros(2), RING_STD)
    with pytest.raises(ValueError, match="std"):
        mode_protocol(np.zeros((5, 2)), means, 0.0)


# --------------------------------------------------------------------------- classes


def test_uniform_class_histogram():
    out = class_histogram_stats(np.repeat(np.arange(10), 50))
    assert out["histogram"] == {str(k): 50 for k in range(10)}
    assert out["classes_covered"] == 10
    assert out["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert out["min_share"] == pytest.approx(0.1) and out["max_share"] == pytest.approx(0.1)


def test_single_class_histogram():
    out = class_histogram_stats(np.full(200, 3))
    assert out["classes_covered"] == 1
    assert out["kl_to_uniform"] == pytest.approx(math.log(10), rel=1e-12)
    assert out["histogram"]["3"] == 200 and sum(out["histogram"].values()) == 200
    assert out["min_share"] == 0.0 and out["max_share"] == 1.0


def test_coverage_threshold():
    # threshold is min_share / num_classes = 0.02 of 1000 samples = 20
    labels = np.concatenate([np.full(19, 0), np.full(21, 1), np.full(960, 2)])
    assert class_histogram_stats(labels)["classes_covered"] == 2


def test_class_histogram_validation():
    with pytest.raises(ValueError, match="predicted"):
        class_histogram_stats(np.array([0, 10]))
    with pytest.raises(ValueError, match="predicted"):
        class_histogram_stats(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="predicted"):
        class_histogram_stats(np.zeros((2, 2), dtype=int))


# --------------------------------------------------------------------------- KL / JS / W


def test_kl_known_values():
    p = np.array([0.2, 0.3, 0.5])
    assert kl_divergence(p, p) == pytest.approx(0.0, abs=1e-15)
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected, rel=1e-12)
    assert kl_divergence([1, 1], [1, 3]) == pytest.approx(expected, rel=1e-12)  # normalised inside
    assert kl_divergence([0.0, 1.0], [0.5, 0.5]) == pytest.approx(math.log(2), rel=1e-12)  # p=0 adds 0
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf


@pytest.mark.parametrize(
    ("p", "q", "name"),
    [
        ([1.0, 2.0], [1.0, 2.0, 3.0], "same shape"),
        ([-1.0, 2.0], [1.0, 2.0], r"\bp\b"),
        ([1.0, 2.0], [0.0, 0.0], r"\bq\b"),
        ([1.0, np.nan], [1.0, 1.0], r"\bp\b"),
    ],
)
def test_kl_validation(p, q, name):
    with pytest.raises(ValueError, match=name):
        kl_divergence(p, q)
    with pytest.raises(ValueError, match=name):
        js_divergence(p, q)


def test_disjoint_point_masses_js_is_log2_wasserstein_is_distance():
    # Weng, "From GAN to WGAN": disjoint supports pin JS at log 2 whatever the distance
    for far in (1.0, 5.0):
        support = np.array([0.0, far])
        p, q = np.array([1.0, 0.0]), np.array([0.0, 1.0])
        assert js_divergence(p, q) == pytest.approx(LOG2, rel=1e-12)
        assert kl_divergence(p, q) == math.inf
        assert wasserstein_points(support, p, support, q) == pytest.approx(far, rel=1e-9)
        assert wasserstein_1d([0.0], [far]) == pytest.approx(far, rel=1e-12)
    assert js_divergence([1, 2, 3], [1, 2, 3]) == pytest.approx(0.0, abs=1e-15)


def _gauss_on(grid: np.ndarray, mean: float) -> np.ndarray:
    w = stats.norm.pdf(grid, loc=mean)
    return w / w.sum()


def test_gaussians_js_saturates_wasserstein_does_not():
    grid = np.linspace(-10, 25, 3501)  # step 0.01; the shifts 6 and 12 are whole grid steps
    n0, n6, n12 = (_gauss_on(grid, m) for m in (0.0, 6.0, 12.0))
    js6, js12 = js_divergence(n0, n6), js_divergence(n0, n12)

    # Check the discretised JS against a quadrature of the continuous one; the grid step 0.01
    # makes the Riemann sum exact to ~1e-8, and 1e-6 would catch a wrong weight or log base.
    def js_density(x, mu):
        a, b = stats.norm.pdf(x), stats.norm.pdf(x, loc=mu)
        m = 0.5 * (a + b)
        return 0.5 * (a * np.log(a / m) + b * np.log(b / m))

    for mu, js in ((6.0, js6), (12.0, js12)):
        exact, _ = integrate.quad(js_density, -10, mu + 10, args=(mu,), points=[mu / 2], limit=200)
        assert js == pytest.approx(exact, abs=1e-6)

    # The true gap log 2 - JS(N0, N6) is 3.85e-3 (quadrature above), not below 1e-3; for
    # N12 it is 3e-9. JS tells the two apart by under 0.6% while W doubles.
    assert 0 < LOG2 - js6 < 5e-3
    assert 0 < LOG2 - js12 < 1e-6
    assert js12 / js6 < 1.006

    # Truncating N(mu, 1) to [-10, 25] loses < 1e-20 of the mass: W is the shift to ~1e-9.
    assert wasserstein_1d(grid, grid, n0, n6) == pytest.approx(6.0, abs=1e-6)
    assert wasserstein_1d(grid, grid, n0, n12) == pytest.approx(12.0, abs=1e-6)

    # The LP on a coarser grid (step 0.25, 141 bins: 20k variables) must give the same
    # transport cost as the closed form on that grid; HiGHS's feasibility tolerance is
    # 1e-7 on each constraint, so 1e-5 absolute on costs of 6-12 is ample.
    coarse = np.linspace(-10, 25, 141)
    c0, c6, c12 = (_gauss_on(coarse, m) for m in (0.0, 6.0, 12.0))
    cost = np.abs(coarse[:, None] - coarse[None, :])
    for target, mu in ((c6, 6.0), (c12, 12.0)):
        closed = wasserstein_1d(coarse, coarse, c0, target)
        assert closed == pytest.approx(mu, abs=1e-6)
        assert wasserstein_discrete(c0, target, cost) == pytest.approx(closed, abs=1e-5)


def test_moving_mass_between_two_points_costs_mass_times_distance():
    # Weng's three-point example: arbitrary spacing on a line, move 0.1 from x2 to x3
    x = np.array([0.0, 1.7, 5.2])  # D(x2, x3) = 3.5
    p = np.array([0.3, 0.5, 0.2])
    q = np.array([0.3, 0.4, 0.3])
    expected = 0.1 * 3.5
    assert wasserstein_points(x, p, x, q) == pytest.approx(expected, rel=1e-7)
    assert wasserstein_discrete(p, q, np.abs(x[:, None] - x[None, :])) == pytest.approx(expected, rel=1e-7)
    assert wasserstein_1d(x, x, p, q) == pytest.approx(expected, rel=1e-12)
    # the same points in 2-D off the axis: Euclidean distances, cost unchanged
    pts = np.stack([x * 0.6, x * 0.8], axis=1)
    assert wasserstein_points(pts, p, pts, q) == pytest.approx(expected, rel=1e-7)
    assert wasserstein_points(pts, p, pts, q, metric="cityblock") == pytest.approx(0.1 * 3.5 * 1.4, rel=1e-7)


def test_wasserstein_discrete_nontrivial_plan():
    # p at {0, 1}, q at {0.5, 3}: the cheapest plan is 0->0.5, 1->3, cost (0.5 + 2) / 2
    cost = np.abs(np.array([0.0, 1.0])[:, None] - np.array([0.5, 3.0])[None, :])
    assert wasserstein_discrete([1, 1], [1, 1], cost) == pytest.approx(1.25, rel=1e-7)
    with pytest.raises(ValueError, match="cost"):
        wasserstein_discrete([1, 1], [1, 1], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="x_weights"):
        wasserstein_1d([0.0, 1.0], [0.0], x_weights=[1.0])
