"""The "philox4x32-vectorised" latent scheme (gan_contract.counter_rng): its
generator against published answers, its layout, its independence of
batching, numpy against torch, its statistics, and the old scheme left as it
was."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from gan_contract import counter_rng as cr
from gan_contract import latents

try:
    import torch
    from gan_contract import counter_rng_torch as crt
except ImportError:  # the SDK installs without torch
    torch = crt = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
NEW = "philox4x32-vectorised"

# Random123 tests/kat_vectors (DEShawResearch/random123), the philox4x32
# lines: rounds, counter[4], key[2] -> result[4].
KAT = [
    (7, (0, 0, 0, 0), (0, 0), (0x5F6FB709, 0x0D893F64, 0x4F121F81, 0x4F730A48)),
    (7, (0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x5207DDC2, 0x45165E59, 0x4D8EE751, 0x8C52F662)),
    (
        7,
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0x4DFCCABA, 0x190A87F0, 0xC47362BA, 0xB6B5242A),
    ),
    (10, (0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (10, (0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        10,
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def reference_philox(ctr, key, rounds=10):
    """Philox4x32 one counter at a time, in Python integers, from the paper."""
    m = 0xFFFFFFFF
    c, k = list(ctr), list(key)
    for r in range(rounds):
        if r:
            k = [(k[0] + 0x9E3779B9) & m, (k[1] + 0xBB67AE85) & m]
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & m, (p0 >> 32) ^ c[3] ^ k[1], p0 & m]
    return tuple(c)


def codes_digest(codes) -> str:
    h = hashlib.sha256()
    for a in (codes.z, codes.category, codes.continuous):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# -- the generator --------------------------------------------------------------


@pytest.mark.parametrize("rounds, ctr, key, want", KAT)
def test_philox_matches_random123_known_answers(rounds, ctr, key, want) -> None:
    assert tuple(int(w) for w in cr.philox4x32(ctr, key, rounds)) == want
    assert reference_philox(ctr, key, rounds) == want


@needs_torch
@pytest.mark.parametrize("rounds, ctr, key, want", KAT)
def test_torch_philox_matches_random123_known_answers(rounds, ctr, key, want) -> None:
    out = crt.philox4x32(tuple(torch.tensor(c, dtype=torch.int64) for c in ctr), key, rounds)
    assert tuple(int(w) for w in out) == want


def test_words_follow_the_documented_counter_layout() -> None:
    """image_words (with its shortcut first round) = Philox of
    (i mod 2**32, i >> 32, block, tag) under (seed mod 2**32, seed >> 32)."""
    seed, start = 0x0123456789ABCDEF, 2**32 - 3  # the image index crosses into the high word
    words = cr.image_words(seed, start, 6, dim=10, num_categories=10, num_continuous=5)
    blocks = [(0, 0), (1, 0), (2, 0), (0, 1), (0, 2), (1, 2)]  # z x3, category, continuous x2
    assert words.shape == (4, 6, len(blocks)) and words.dtype == np.uint64
    key = (seed & 0xFFFFFFFF, seed >> 32)
    for row in range(6):
        i = start + row
        for col, (j, tag) in enumerate(blocks):
            want = reference_philox((i & 0xFFFFFFFF, i >> 32, j, tag), key)
            assert tuple(int(w) for w in words[:, row, col]) == want, (row, col)


def test_codes_are_the_documented_functions_of_the_words() -> None:
    seed, k, low, high = 99, 7, -2.0, 3.0
    codes = cr.draw_codes_v2(seed, 5, 40, dim=9, num_categories=k, num_continuous=6, continuous_range=(low, high))
    words = cr.image_words(seed, 5, 40, dim=9, num_categories=k, num_continuous=6)  # blocks: z 3, cat 1, cont 2
    w = [[int(x) for x in words[:, row].T.ravel()] for row in range(40)]  # stream value n at block n // 4, word n % 4
    for row in range(40):
        assert codes.category[row] == (w[row][12] * k) >> 32
        for n in range(6):
            u = (w[row][16 + n] >> 8) * 2.0**-24
            assert codes.continuous[row, n] == np.float32(u * (high - low) + low)
        for n in range(9):
            a, b = w[row][4 * (n // 4) + 2 * ((n % 4) // 2)], w[row][4 * (n // 4) + 2 * ((n % 4) // 2) + 1]
            r = math.sqrt(-2 * math.log((a + 0.5) * 2.0**-32))
            theta = 2 * math.pi * b / 2**32
            want = r * (math.cos(theta) if n % 2 == 0 else math.sin(theta))
            assert abs(float(codes.z[row, n]) - want) <= 2.0**-23 * max(abs(want), 2.0**-10)


def test_normals_are_box_muller_within_one_ulp_of_libm() -> None:
    n = 20_000
    words = cr.image_words(7, 0, n, 100).astype(np.float64)
    z = cr.draw_codes_v2(7, 0, n, 100).z
    ref = np.empty((n, 25, 4))
    for p in range(2):
        a, b = words[2 * p], words[2 * p + 1]
        r = np.sqrt(-2 * np.log((a + 0.5) * 2.0**-32))
        theta = 2 * np.pi * (b / 2.0**32)
        ref[:, :, 2 * p], ref[:, :, 2 * p + 1] = r * np.cos(theta), r * np.sin(theta)
    np.testing.assert_array_max_ulp(z, ref.reshape(n, 100).astype(np.float32), maxulp=1)


def test_the_scheme_is_pinned() -> None:
    """Any change to the definition (or a bug in a rewrite) moves these bytes."""
    codes = cr.draw_codes_v2(20240917, 3, 64, dim=62, num_categories=10, num_continuous=2)
    assert codes_digest(codes) == PINNED_DIGEST
    assert float(codes.z[0, 0]) == PINNED_FIRST_NORMAL


# -- independence of how a request is split -------------------------------------


def test_image_i_does_not_depend_on_start_or_count(monkeypatch: pytest.MonkeyPatch) -> None:
    args = dict(dim=100, num_categories=10, num_continuous=3)
    whole = cr.draw_codes_v2(5, 0, 100, **args)
    part = cr.draw_codes_v2(5, 37, 20, **args)
    monkeypatch.setattr(cr, "CHUNK_BLOCKS", 64)  # 2 images a chunk
    chunked = cr.draw_codes_v2(5, 0, 100, **args)
    for got in (part, chunked):
        rows = slice(37, 57) if got is part else slice(None)
        assert got.z.tobytes() == whole.z[rows].tobytes()
        assert got.category.tobytes() == whole.category[rows].tobytes()
        assert got.continuous.tobytes() == whole.continuous[rows].tobytes()


def test_streams_are_independent_of_the_other_sizes() -> None:
    small = cr.draw_codes_v2(11, 0, 50, dim=62, num_categories=10, num_continuous=2)
    big = cr.draw_codes_v2(11, 0, 50, dim=100, num_categories=10, num_continuous=5)
    plain = cr.draw_codes_v2(11, 0, 50, dim=62)
    assert small.z.tobytes() == big.z[:, :62].tobytes() == plain.z.tobytes()
    assert small.category.tobytes() == big.category.tobytes()
    assert small.continuous.tobytes() == big.continuous[:, :2].tobytes()
    assert not plain.category.any() and plain.continuous.shape == (50, 0)


def test_edge_seeds_and_indices() -> None:
    top = cr.draw_codes_v2(2**64 - 1, 2**64 - 4, 4, dim=8, num_categories=3)
    zero = cr.draw_codes_v2(0, 0, 4, dim=8, num_categories=3)
    for c in (top, zero):
        assert c.z.shape == (4, 8) and np.isfinite(c.z).all() and c.z.std() > 0.1
    assert top.z.tobytes() != zero.z.tobytes()
    assert cr.draw_codes_v2(1, 0, 0, dim=8).z.shape == (0, 8)
    assert cr.draw_codes_v2(1, 0, 3, dim=0, num_categories=4).z.shape == (3, 0)
    as_numpy = cr.draw_codes_v2(np.uint64(2**64 - 1), np.uint64(2**64 - 4), np.int64(4), dim=8, num_categories=3)
    assert codes_digest(as_numpy) == codes_digest(top)
    for bad in (dict(seed=-1), dict(seed=2**64), dict(start=-1), dict(start=2**64 - 2, count=3)):
        kwargs = dict(seed=1, start=0, count=2, dim=4) | bad
        with pytest.raises(ValueError):
            cr.draw_codes_v2(**kwargs)


# -- numpy and torch --------------------------------------------------------------


def _compare_with_torch(device: str) -> None:
    cases = [
        (1, 0, 1000, 100, 0, 0),
        (2**64 - 1, 2**64 - 700, 700, 62, 10, 2),
        (0, 2**32 - 100, 300, 7, 3, 5),
    ]
    for seed, start, count, dim, k, c in cases:
        want_words = cr.image_words(seed, start, count, dim, k, c)
        got_words = crt.image_words(seed, start, count, dim, k, c, device=device).cpu().numpy()
        assert got_words.dtype == np.int64 and (got_words.astype(np.uint64) == want_words).all()
        want = cr.draw_codes_v2(seed, start, count, dim, k, c, continuous_range=(-1.5, 0.5))
        got = crt.draw_codes_torch(seed, start, count, dim, k, c, continuous_range=(-1.5, 0.5), device=device)
        assert got.z.dtype == torch.float32 and got.z.device.type == torch.device(device).type
        assert got.category.cpu().numpy().tobytes() == want.category.tobytes()
        assert got.continuous.cpu().numpy().tobytes() == want.continuous.tobytes()
        np.testing.assert_array_max_ulp(got.z.cpu().numpy(), want.z, maxulp=1)


@needs_torch
def test_torch_cpu_agrees_with_numpy() -> None:
    _compare_with_torch("cpu")


@needs_torch
@pytest.mark.gpu
@pytest.mark.skipif(torch is None or not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_cuda_agrees_with_numpy() -> None:
    _compare_with_torch("cuda")


# -- statistics (tolerances: 5 standard errors, or chi-square p < 1e-6) --------


def test_normals_have_mean_0_and_variance_1() -> None:
    z = cr.draw_codes_v2(2024, 0, 10_000, 100).z.astype(np.float64)  # 10**6 normals
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs((z**4).mean() - 3) < 5 * math.sqrt(96 / n)  # kurtosis; Var(z**4) = 105 - 9
    assert abs(np.mean(z[:, :-1] * z[:, 1:])) < 5 / math.sqrt(n)  # neighbours in an image
    assert abs(np.mean(z[:-1] * z[1:])) < 5 / math.sqrt(n)  # neighbouring images
    # the tails: P(|z| > 3) = 0.0026998, binomial standard error
    p = math.erfc(3 / math.sqrt(2))
    assert abs(np.mean(np.abs(z) > 3) - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_categories_are_uniform() -> None:
    cat = cr.draw_codes_v2(3, 0, 100_000, 1, num_categories=10).category
    assert cat.dtype == np.int64 and cat.min() == 0 and cat.max() == 9
    counts = np.bincount(cat, minlength=10)
    expected = len(cat) / 10
    assert ((counts - expected) ** 2 / expected).sum() < 44.81  # chi-square, 9 dof, p = 1e-6


def test_continuous_codes_are_uniform_in_range() -> None:
    cont = cr.draw_codes_v2(4, 0, 100_000, 1, num_continuous=3, continuous_range=(-1.0, 1.0)).continuous
    assert cont.dtype == np.float32 and cont.min() >= -1.0 and cont.max() < 1.0
    n = cont.size
    assert abs(cont.mean()) < 5 * math.sqrt(1 / 3 / n)
    counts = np.histogram(cont, bins=100, range=(-1, 1))[0]
    assert ((counts - n / 100) ** 2 / (n / 100)).sum() < 180.8  # chi-square, 99 dof, p = 1e-6


# -- the dispatcher and the old scheme ------------------------------------------


def test_old_scheme_is_numpy_philox_per_image() -> None:
    codes = latents.draw_codes(12345, 3, 5, 62, 10, 2, (-1.0, 1.0))
    assert codes_digest(latents.draw(latents.DEFAULT_LATENT_SCHEME, 12345, 3, 5, 62, 10, 2)) == codes_digest(codes)
    for row in range(5):
        rng = np.random.Generator(np.random.Philox(key=12345, counter=[0, 0, 3 + row, 0]))
        assert codes.z[row].tobytes() == rng.standard_normal(62).astype(np.float32).tobytes()
        assert codes.category[row] == rng.integers(10)
        assert codes.continuous[row].tobytes() == rng.uniform(-1.0, 1.0, 2).astype(np.float32).tobytes()


def test_dispatcher() -> None:
    assert latents.LATENT_SCHEMES[0] == latents.DEFAULT_LATENT_SCHEME and NEW in latents.LATENT_SCHEMES
    want = codes_digest(cr.draw_codes_v2(8, 2, 30, 62, 10, 2))
    assert codes_digest(latents.draw(NEW, 8, 2, 30, 62, 10, 2)) == want
    assert codes_digest(latents.draw_codes(8, 2, 30, 62, 10, 2, scheme=NEW)) == want
    assert codes_digest(latents.draw_codes(8, 2, 30, 62, 10, 2)) != want
    with pytest.raises(ValueError, match="unknown latent scheme"):
        latents.draw("mt19937", 8, 2, 30, 62)


PINNED_DIGEST = "b4a99365d874dd7fea2723076f3a740587b5514d3726f13ae6e78279032c8d0b"
PINNED_FIRST_NORMAL = -1.2516816854476929
