"""Latent codes from a counter-based generator evaluated over whole arrays.

This is the ``"philox4x32-vectorised"`` latent scheme (see
:data:`gan_contract.latents.LATENT_SCHEMES`). Every random word is a pure
function of ``(seed, image index, stream, block, word)``, so a request's codes
are computed with a handful of array operations instead of one generator per
image, and image ``i`` is the same whatever ``start``/``count`` it was asked
with. The torch port (:mod:`gan_contract.counter_rng_torch`) runs the same
integer arithmetic and gives the same words bit for bit.

Definition (docs/api.md, "Seeds", says the same)
------------------------------------------------

Generator: Philox4x32-10 (Salmon et al., SC'11; Random123's ``philox4x32_R``
with R = 10), checked against Random123's known-answer vectors.

Key: ``(seed mod 2**32, seed >> 32)``.

Counter, for image ``i`` (its absolute index in the request), stream
``tag`` and block ``j``: ``(i mod 2**32, i >> 32, j, tag)``. One block gives
four 32-bit words ``w[0..3]``; value ``n`` of a stream comes from block
``n // 4``, word ``n % 4``. Streams:

- ``tag 0``, z (``dim`` standard normals): pair ``p`` (0, 1) of block ``j``
  takes ``a = w[2p]``, ``b = w[2p + 1]`` and gives normals ``4j + 2p`` and
  ``4j + 2p + 1`` by Box-Muller, in float64, one rounded IEEE operation per
  step in this order (no fused multiply-add)::

      r = sqrt((log((a + 0.5) * 2**-32)) * -2)      # a + 0.5 > 0: no log(0)
      t = (b + 2**29) mod 2**32
      q = t >> 30                                   # quadrant, 0..3
      phi = ((t mod 2**30) - 2**29) * PHI           # PHI = float64(pi) * 2**-31
      # theta = 2 pi b / 2**32 = q pi / 2 + phi, |phi| <= pi / 4
      x2 = phi * phi
      ps = x2 * S6 + S5;  ps = ps * x2 + S4;  ...;  ps = ps * x2 + S1
      pc = x2 * C6 + C5;  pc = pc * x2 + C4;  ...;  pc = pc * x2 + C1
      sin_phi = ((ps * x2) * phi) + phi             # S_k = float64((-1)**k / (2k+1)!)
      cos_phi = (pc * x2) + 1                       # C_k = float64((-1)**k / (2k)!)
      rc, rs = cos_phi * r, sin_phi * r
      (x, y) = (rc, rs), (-rs, rc), (-rc, -rs), (rs, -rc)  for q = 0, 1, 2, 3
      normal 4j + 2p, 4j + 2p + 1 = float32(x + 0.0), float32(y + 0.0)

  (x, y) is r (cos theta, sin theta); the rotation is exact, and ``+ 0.0``
  only turns -0.0 into +0.0. ``log`` is the one step whose last bit may
  differ between libraries: numpy and torch then agree within one float32
  ulp, and otherwise exactly. The polynomials (Taylor, to phi**13 and
  phi**12) are within 4e-13 of sin and cos. ``|normal| <= r <=
  sqrt(-2 log(2**-33)) = 6.764``: the radius is cut where its tail has
  probability 2**-33.
- ``tag 1``, the categorical index (when ``num_categories = k > 0``): word
  ``w[0]`` of block 0, ``index = (w * k) >> 32`` (multiply-shift, no
  rejection). Each index gets ``floor(2**32 / k)`` or ``ceil(2**32 / k)`` of
  the 2**32 words: a relative bias below ``k / 2**32`` (2.3e-9 for k = 10).
- ``tag 2``, the continuous codes (``num_continuous`` of them): value ``n`` is
  ``float32(((w >> 8) * 2**-24) * (high - low) + low)``, computed in float64
  (``(w >> 8) * 2**-24`` is in [0, 1 - 2**-24]). Codes are in [low, high], and
  in [low, high) when float32 rounding does not reach ``high`` (as for
  (-1, 1)).

The streams are separate counters, so changing ``dim`` does not move the
categorical index or the continuous codes, and vice versa.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from gan_contract.latents import MAX_SEED, Codes

# Philox4x32 constants (Random123 philox.h).
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9  # golden ratio
PHILOX_W1 = 0xBB67AE85  # sqrt(3) - 1
PHILOX_ROUNDS = 10
MASK32 = 0xFFFFFFFF

# Stream tags: the last counter word.
TAG_Z = 0
TAG_CATEGORY = 1
TAG_CONTINUOUS = 2
WORDS_PER_BLOCK = 4
MAX_STREAM_LEN = WORDS_PER_BLOCK * 2**32  # the block index is one 32-bit word
MAX_CATEGORIES = 2**32 - 1

# Box-Muller constants; each is one exactly specified float64.
TWO_POW_M32 = 2.0**-32
PHI_SCALE = math.pi * 2.0**-31  # float64(pi) scaled exactly
SIN_COEFFS = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(1, 7))  # S1..S6
COS_COEFFS = tuple((-1) ** k / math.factorial(2 * k) for k in range(1, 7))  # C1..C6
UNIFORM24_SCALE = 2.0**-24

# i**q by octant o = b >> 29 of the angle word (q = ((o + 1) >> 1) mod 4);
# multiplying r (cos phi + i sin phi) by it is exact: a swap and signs.
_OCTANT_TURNS = np.array([1, 1j, 1j, -1, -1, -1j, -1j, 1], dtype=np.complex128)
# Horner coefficients for sin and cos at once, highest degree first.
_SINCOS = [np.array([s, c]).reshape(2, 1, 1, 1) for s, c in zip(SIN_COEFFS[::-1], COS_COEFFS[::-1])]
# Rows per chunk are chosen so that one chunk has about this many blocks: the
# working set stays near the L2 cache, memory stays bounded, and each array
# operation is long enough for numpy's per-call cost not to matter.
CHUNK_BLOCKS = 1 << 13


def round_keys(key: tuple[int, int], rounds: int = PHILOX_ROUNDS) -> list[tuple[int, int]]:
    """The key of each round: the key, then bumped by (W0, W1) mod 2**32."""
    k0, k1 = int(key[0]) & MASK32, int(key[1]) & MASK32
    keys = []
    for _ in range(rounds):
        keys.append((k0, k1))
        k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    return keys


def _philox_inplace(
    state: np.ndarray,
    key: tuple[int, int],
    rounds: int = PHILOX_ROUNDS,
    skip: int = 0,
    scratch: np.ndarray | None = None,
) -> None:
    """Philox4x32 rounds on ``state`` (contiguous uint64, shape (4, ...),
    word-major, values < 2**32): the counters in, the output words out. With
    ``skip``, the first ``skip`` rounds are taken as done; ``scratch``, if
    given, is uint64 with at least ``state.size`` elements.

    The two multiplied words (0 and 2) and the two xor-ed words (1 and 3) are
    strided views, so each step is one array operation for both halves::

        (hi0, lo0) = M0 * c0;  (hi1, lo1) = M1 * c2
        (c0, c1, c2, c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
    """
    words = state.reshape(4, -1)  # 2-d views iterate faster than n-d ones
    even, odd = words[0::2], words[1::2]  # (c0, c2), (c1, c3)
    if scratch is None:
        scratch = np.empty(words.size, dtype=np.uint64)
    prod, high = scratch[: words.size].reshape(2, 2, -1)
    mult = np.array([[PHILOX_M0], [PHILOX_M1]], dtype=np.uint64)
    keys = [np.array([[k0], [k1]], dtype=np.uint64) for k0, k1 in round_keys(key, rounds)[skip:]]
    shift, mask = np.uint64(32), np.uint64(MASK32)
    for k in keys:
        np.multiply(even, mult, out=prod)
        np.right_shift(prod, shift, out=high)
        np.bitwise_xor(high[::-1], odd, out=even)
        np.bitwise_xor(even, k, out=even)
        np.bitwise_and(prod[::-1], mask, out=odd)


def _philox_start(state: np.ndarray, first: int, j: np.ndarray, tag: np.ndarray, key: tuple[int, int]) -> None:
    """Round 1 of Philox4x32 for the counters ``(i mod 2**32, i >> 32, j, tag)``
    of images ``i = first ..`` (rows of ``state``) and blocks (j, tag)
    (columns), written to ``state`` (4, rows, blocks). The multiplied words
    vary along one axis only, so this round costs four array writes."""
    index = np.arange(state.shape[1], dtype=np.uint64) + np.uint64(first)
    k0, k1 = (np.uint64(k) for k in round_keys(key, 1)[0])
    p0 = (index & np.uint64(MASK32)) * np.uint64(PHILOX_M0)
    p1 = j * np.uint64(PHILOX_M1)
    np.bitwise_xor(((p1 >> np.uint64(32)) ^ k0)[None, :], (index >> np.uint64(32))[:, None], out=state[0])
    state[1] = p1 & np.uint64(MASK32)
    np.bitwise_xor(((p0 >> np.uint64(32)) ^ k1)[:, None], tag[None, :], out=state[2])
    state[3] = (p0 & np.uint64(MASK32))[:, None]


def philox4x32(counter, key: tuple[int, int], rounds: int = PHILOX_ROUNDS) -> tuple[np.ndarray, ...]:
    """Philox4x32-``rounds`` of ``counter`` (four broadcastable arrays of
    32-bit values) under ``key`` (two 32-bit ints): the four output words as
    uint64 arrays (values < 2**32) of the broadcast shape."""
    words = [np.asarray(c, dtype=np.uint64) for c in counter]
    if any(np.any(w > MASK32) for w in words):
        raise ValueError("counter words must be < 2**32")
    state = np.stack(np.broadcast_arrays(*words)).copy()
    _philox_inplace(state, key, rounds)
    return tuple(state)


def _check(seed: int, start: int, count: int, dim: int, num_categories: int, num_continuous: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**64 - 1], got {seed}")
    if start < 0 or count < 0:
        raise ValueError(f"start and count must be >= 0, got {start}, {count}")
    if count and start + count - 1 > MAX_SEED:
        raise ValueError("image indices must stay below 2**64")
    for name, n in (("dim", dim), ("num_continuous", num_continuous)):
        if not 0 <= n <= MAX_STREAM_LEN:
            raise ValueError(f"{name} must be in [0, {MAX_STREAM_LEN}], got {n}")
    if not 0 <= num_categories <= MAX_CATEGORIES:
        raise ValueError(f"num_categories must be in [0, 2**32 - 1], got {num_categories}")


def block_layout(dim: int, num_categories: int, num_continuous: int) -> tuple[np.ndarray, np.ndarray]:
    """Counter words 2 and 3, (block index, stream tag), of the blocks one image
    draws: the z blocks, then the categorical block if any, then the
    continuous blocks. Each is a uint64 array with one entry per block."""
    bz, bc = -(-dim // WORDS_PER_BLOCK), -(-num_continuous // WORDS_PER_BLOCK)
    nk = 1 if num_categories else 0
    j = np.concatenate([np.arange(bz), np.zeros(nk, np.int64), np.arange(bc)]).astype(np.uint64)
    tag = np.repeat(np.array([TAG_Z, TAG_CATEGORY, TAG_CONTINUOUS], np.uint64), [bz, nk, bc])
    return j, tag


def image_words(
    seed: int, start: int, count: int, dim: int, num_categories: int = 0, num_continuous: int = 0
) -> np.ndarray:
    """The raw words of images ``start .. start + count - 1``: uint64 array
    (4, count, blocks), blocks as in :func:`block_layout`."""
    seed, start, count = int(seed), int(start), int(count)  # numpy integers too
    _check(seed, start, count, dim, num_categories, num_continuous)
    j, tag = block_layout(dim, num_categories, num_continuous)
    key = (seed & MASK32, seed >> 32)
    state = np.empty((4, count, j.size), dtype=np.uint64)
    _philox_start(state, start, j, tag, key)
    _philox_inplace(state, key, skip=1)
    return state


class _Workspace:
    """Reusable buffers for chunks of up to ``capacity`` blocks.

    A fresh buffer costs a page fault per 4 KiB on first touch, as much as
    the arithmetic here, so each thread keeps one workspace (192 bytes a
    block: 1.5 MiB at the default chunk size) between calls.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._state = np.empty(4 * capacity, dtype=np.uint64)
        self.scratch = np.empty(4 * capacity, dtype=np.uint64)  # Philox products
        self._f64 = np.empty((5, 2 * capacity))  # r, phi, x2, sin poly, cos poly
        self._octant = np.empty(2 * capacity, dtype=np.intp)
        self._zc = np.empty(2 * capacity, dtype=np.complex128)  # x + iy

    def state(self, rows: int, blocks: int) -> np.ndarray:
        return self._state[: 4 * rows * blocks].reshape(4, rows, blocks)

    def normals(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Box-Muller (module docstring) of radius words ``a`` and angle words
        ``b``: int64 views (pair, row, block) of the z blocks' words 0, 2 and
        1, 3; ``b`` is overwritten. Returns float64 (rows, 4 * blocks),
        normal ``n`` of an image in column ``n``."""
        _, rows, bz = a.shape
        size = 2 * rows * bz
        r, phi, x2 = (f[:size].reshape(a.shape) for f in self._f64[:3])
        poly = self._f64[3:, :size].reshape(2, *a.shape)  # sin, cos
        octant = self._octant[:size].reshape(rows, bz, 2)
        zc = self._zc[:size].reshape(rows, bz, 2)
        rot = self._f64[3:, :size].reshape(-1).view(np.complex128).reshape(rows, bz, 2)  # poly's, once used
        # r = sqrt(-2 log((a + 0.5) 2**-32))
        np.add(a, 0.5, out=r)
        r *= TWO_POW_M32
        np.log(r, out=r)
        r *= -2.0
        np.sqrt(r, out=r)
        # phi = (((b + 2**29) mod 2**30) - 2**29) pi 2**-31; the quadrant, from the octant
        np.right_shift(b, 29, out=octant.transpose(2, 0, 1))
        b += 1 << 29
        b &= (1 << 30) - 1
        np.subtract(b, 1 << 29, out=phi)
        phi *= PHI_SCALE
        np.multiply(phi, phi, out=x2)
        # Horner in x2: sin phi = phi + phi (x2 ps(x2)); cos phi = 1 + x2 pc(x2)
        np.multiply(x2, _SINCOS[0], out=poly)
        poly += _SINCOS[1]
        for coef in _SINCOS[2:]:
            poly *= x2
            poly += coef
        poly *= x2
        sin_phi, cos_phi = poly
        sin_phi *= phi
        sin_phi += phi
        cos_phi += 1.0
        # (x + iy) = r (cos phi + i sin phi) i**q
        zt = zc.transpose(2, 0, 1)
        np.multiply(cos_phi, r, out=zt.real)
        np.multiply(sin_phi, r, out=zt.imag)
        np.take(_OCTANT_TURNS, octant, out=rot, mode="wrap")
        zc *= rot
        return zc.view(np.float64).reshape(rows, -1)


_local = threading.local()


def _workspace(blocks: int) -> _Workspace:
    if blocks > CHUNK_BLOCKS:  # one image is more than a chunk: not kept
        return _Workspace(blocks)
    ws = getattr(_local, "workspace", None)
    if ws is None or ws.capacity != CHUNK_BLOCKS:
        ws = _local.workspace = _Workspace(CHUNK_BLOCKS)
    return ws


def categories(words: np.ndarray, num_categories: int) -> np.ndarray:
    """int64 indices in [0, num_categories) from 32-bit words: ``(w * k) >> 32``."""
    prod = np.multiply(words.astype(np.uint64), np.uint64(num_categories))
    return (prod >> np.uint64(32)).astype(np.int64)


def uniforms(words: np.ndarray, low: float, high: float) -> np.ndarray:
    """float32 ``low + (high - low) * ((w >> 8) * 2**-24)``, computed in float64."""
    u = (words.astype(np.uint64) >> np.uint64(8)).astype(np.float64)
    u *= UNIFORM24_SCALE
    u *= float(high) - float(low)
    u += float(low)
    return u.astype(np.float32)


def draw_codes_v2(
    seed: int,
    start: int,
    count: int,
    dim: int,
    num_categories: int = 0,
    num_continuous: int = 0,
    continuous_range: tuple[float, float] = (-1.0, 1.0),
) -> Codes:
    """Codes for images ``start .. start + count - 1`` of the request ``seed``
    under the ``"philox4x32-vectorised"`` scheme (module docstring)."""
    seed, start, count = int(seed), int(start), int(count)  # numpy integers too
    _check(seed, start, count, dim, num_categories, num_continuous)
    j, tag = block_layout(dim, num_categories, num_continuous)
    bz = -(-dim // WORDS_PER_BLOCK)
    nk = 1 if num_categories else 0
    low, high = continuous_range
    key = (seed & MASK32, seed >> 32)

    z = np.empty((count, dim), dtype=np.float32)
    cat = np.zeros((count,), dtype=np.int64)
    cont = np.empty((count, num_continuous), dtype=np.float32)
    rows = max(1, min(count, CHUNK_BLOCKS // max(1, j.size)))
    ws = _workspace(j.size)
    for first in range(0, count, rows):
        n = min(rows, count - first)
        st = ws.state(n, j.size)
        _philox_start(st, start + first, j, tag, key)
        _philox_inplace(st, key, skip=1, scratch=ws.scratch)
        if bz:
            sti = st.view(np.int64)
            # + 0.0 makes every zero +0.0 (i**q can give -0.0); the add casts to float32
            np.add(ws.normals(sti[0::2, :, :bz], sti[1::2, :, :bz])[:, :dim], 0.0, out=z[first : first + n])
        if nk:
            cat[first : first + n] = categories(st[0, :, bz], num_categories)
        if num_continuous:
            words = st[:, :, bz + nk :].transpose(1, 2, 0).reshape(n, -1)[:, :num_continuous]
            cont[first : first + n] = uniforms(words, low, high)
    return Codes(z=z, category=cat, continuous=cont)
