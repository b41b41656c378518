"""The ``"philox4x32-vectorised"`` latent scheme in torch, on any device with
int64 and float64 (CPU, CUDA; not MPS, which has no float64).

Same definition as :mod:`gan_contract.counter_rng` (its docstring, and
docs/api.md): the Philox words, categorical indices and continuous codes
equal numpy's bit for bit, the normals agree within one float32 ulp (only
``log`` may differ in its last float64 bit between libraries).

torch has no unsigned 32 x 32 -> 64-bit multiply on every device, and its
int64 is signed, so words are held in int64 (values < 2**32, never
negative) and the Philox product is formed from 16-bit halves of the
multiplier, each partial product below 2**48.

Imports torch at module level: import it only where torch is installed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from gan_contract.counter_rng import (
    COS_COEFFS,
    MASK32,
    PHI_SCALE,
    PHILOX_M0,
    PHILOX_M1,
    PHILOX_ROUNDS,
    PHILOX_W0,
    PHILOX_W1,
    SIN_COEFFS,
    TWO_POW_M32,
    UNIFORM24_SCALE,
    WORDS_PER_BLOCK,
    _check,
    block_layout,
    round_keys,
)

# Rows per chunk hold about this many blocks (bounds the temporaries, about 200
# bytes a block). On CUDA each chunk costs a few hundred kernel launches, so
# chunks are larger there: 4096 images of 100-d z are one chunk.
CHUNK_BLOCKS = 1 << 16
CHUNK_BLOCKS_CUDA = 1 << 20


@dataclass(frozen=True)
class TorchCodes:
    z: torch.Tensor  # (N, dim) float32
    category: torch.Tensor  # (N,) int64, zeros when unused
    continuous: torch.Tensor  # (N, C) float32


def mulhilo32(c: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 32-bit words of ``c * m`` for int64 ``c`` in [0, 2**32)
    and an int ``m`` in [0, 2**32), without overflowing int64."""
    a = c * (m >> 16)  # < 2**48
    t = c * (m & 0xFFFF)  # < 2**48
    t += (a & 0xFFFF) << 16  # < 2**49
    a >>= 16
    a += t >> 32
    return a, t.bitwise_and_(MASK32)


def _round_keys(key: tuple, rounds: int) -> list[tuple]:
    """:func:`gan_contract.counter_rng.round_keys`, also for keys given as
    int64 tensors (one key per row: each word a tensor of 32-bit values)."""
    k0, k1 = key
    if not isinstance(k0, torch.Tensor) and not isinstance(k1, torch.Tensor):
        return round_keys(key, rounds)
    k0, k1 = torch.as_tensor(k0), torch.as_tensor(k1)
    bump = torch.arange(rounds, dtype=torch.int64, device=k0.device).reshape(-1, *([1] * k0.dim()))
    # (k + r W) mod 2**32 is r bumps of (k + W) mod 2**32; r W < 2**36
    keys0 = (k0 + bump * PHILOX_W0).bitwise_and_(MASK32)
    keys1 = (k1 + bump * PHILOX_W1).bitwise_and_(MASK32)
    return list(zip(keys0.unbind(0), keys1.unbind(0)))


def philox4x32(counter: tuple[torch.Tensor, ...], key: tuple, rounds: int = PHILOX_ROUNDS) -> tuple[torch.Tensor, ...]:
    """Philox4x32-``rounds`` of four broadcastable int64 tensors of 32-bit
    values under ``key``: the four output words, int64 in [0, 2**32).

    ``key`` is two 32-bit ints, or two int64 tensors that broadcast with the
    counter (a key per row)."""
    c0, c1, c2, c3 = counter
    for k0, k1 in _round_keys(key, rounds):
        hi0, lo0 = mulhilo32(c0, PHILOX_M0)
        hi1, lo1 = mulhilo32(c2, PHILOX_M1)
        c0, c1, c2, c3 = (hi1 ^ c1).bitwise_xor_(k0), lo1, (hi0 ^ c3).bitwise_xor_(k1), lo0
    return torch.broadcast_tensors(c0, c1, c2, c3)


def image_words(
    seed: int,
    start: int,
    count: int,
    dim: int,
    num_categories: int = 0,
    num_continuous: int = 0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The raw words, int64 (4, count, blocks), as
    :func:`gan_contract.counter_rng.image_words`."""
    seed, start, count = int(seed), int(start), int(count)  # numpy integers too
    _check(seed, start, count, dim, num_categories, num_continuous)
    j, tag = block_layout(dim, num_categories, num_continuous)
    return _words(
        seed, start, count, torch.from_numpy(j.astype("int64")), torch.from_numpy(tag.astype("int64")), device
    )


def _words(seed: int, start: int, count: int, j: torch.Tensor, tag: torch.Tensor, device) -> torch.Tensor:
    # start may be up to 2**64 - 1: split it before it meets int64.
    lo = (start & MASK32) + torch.arange(count, dtype=torch.int64, device=device)
    hi = ((start >> 32) + (lo >> 32)) & MASK32
    lo = lo & MASK32
    j, tag = j.to(device)[None, :], tag.to(device)[None, :]
    return torch.stack(philox4x32((lo[:, None], hi[:, None], j, tag), (seed & MASK32, seed >> 32)))


def _horner(x2: torch.Tensor, coeffs: tuple[float, ...]) -> torch.Tensor:
    p = (x2 * coeffs[-1]).add_(coeffs[-2])
    for coef in coeffs[-3::-1]:
        p.mul_(x2).add_(coef)
    return p.mul_(x2)


# i**q by octant o = b >> 29 of the angle word, q = ((o + 1) >> 1) mod 4
_OCTANT_TURNS = (1, 1j, 1j, -1, -1, -1j, -1j, 1)


@functools.lru_cache(maxsize=16)
def _turns(device: torch.device) -> torch.Tensor:
    turns = torch.tensor(_OCTANT_TURNS, dtype=torch.complex128, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # copied before any other stream reads it
    return turns


def normals(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Box-Muller of radius words ``a`` and angle words ``b`` (int64, same
    shape S): float64 (*S, 2), the pairs (r cos theta, r sin theta), zeros as
    +0.0. Each step is one rounded float64 operation, in the order of the
    definition (and of the numpy code)."""
    r = (a.to(torch.float64) + 0.5).mul_(TWO_POW_M32).log_().mul_(-2.0).sqrt_()
    t = (b + (1 << 29)).bitwise_and_((1 << 30) - 1).sub_(1 << 29)
    phi = t.to(torch.float64).mul_(PHI_SCALE)
    x2 = phi * phi
    sin_phi = _horner(x2, SIN_COEFFS).mul_(phi).add_(phi)
    cos_phi = _horner(x2, COS_COEFFS).add_(1.0)
    # (x + iy) = r (cos phi + i sin phi) i**q: exact, a swap and signs
    turns = _turns(b.device)
    xy = torch.complex(cos_phi.mul_(r), sin_phi.mul_(r)).mul_(turns[b >> 29])
    return torch.view_as_real(xy).add(0.0)


def draw_codes_torch(
    seed: int,
    start: int,
    count: int,
    dim: int,
    num_categories: int = 0,
    num_continuous: int = 0,
    continuous_range: tuple[float, float] = (-1.0, 1.0),
    device: torch.device | str = "cpu",
) -> TorchCodes:
    """:func:`gan_contract.counter_rng.draw_codes_v2`, as tensors on ``device``."""
    seed, start, count = int(seed), int(start), int(count)  # numpy integers too
    _check(seed, start, count, dim, num_categories, num_continuous)

    def words(j: torch.Tensor, tag: torch.Tensor, first: int, n: int) -> torch.Tensor:
        return _words(seed, start + first, n, j, tag, device)

    return _codes(words, count, dim, num_categories, num_continuous, continuous_range, device)


def draw_rows_torch(
    seeds,
    indices,
    dim: int,
    num_categories: int = 0,
    num_continuous: int = 0,
    continuous_range: tuple[float, float] = (-1.0, 1.0),
    device: torch.device | str = "cpu",
) -> TorchCodes:
    """The codes of image ``indices[r]`` of seed ``seeds[r]`` in row ``r``, for
    rows of any mix of requests, in one pass (the rows of several requests
    batched together): row ``r`` equals row 0 of ``draw_codes_torch(seeds[r],
    indices[r], 1, ...)``.

    ``seeds`` and ``indices`` are equal-length sequences of ints in [0, 2**64)
    (uint64 arrays, say); they cross to ``device`` in one copy of 32 bytes a
    row.
    """
    seeds = np.asarray(seeds, dtype=np.uint64).reshape(-1)
    indices = np.asarray(indices, dtype=np.uint64).reshape(-1)
    if seeds.shape != indices.shape:
        raise ValueError(f"seeds and indices differ in length: {seeds.size} and {indices.size}")
    count = int(seeds.size)
    _check(0, 0, count, dim, num_categories, num_continuous)
    mask, shift = np.uint64(MASK32), np.uint64(32)
    halves = np.stack([indices & mask, indices >> shift, seeds & mask, seeds >> shift]).astype(np.int64)
    lo, hi, k0, k1 = torch.from_numpy(halves).to(device).unbind(0)

    def words(j: torch.Tensor, tag: torch.Tensor, first: int, n: int) -> torch.Tensor:
        rows = slice(first, first + n)
        key = (k0[rows, None], k1[rows, None])
        return torch.stack(philox4x32((lo[rows, None], hi[rows, None], j[None, :], tag[None, :]), key))

    return _codes(words, count, dim, num_categories, num_continuous, continuous_range, device)


@functools.lru_cache(maxsize=64)
def _layout(dim: int, num_categories: int, num_continuous: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """:func:`block_layout` as int64 tensors on ``device``, made once per shape
    (not one host-to-device copy per draw). Read-only, from any stream."""
    j, tag = (torch.from_numpy(a.astype("int64")).to(device) for a in block_layout(dim, num_categories, num_continuous))
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # copied before any other stream reads them
    return j, tag


def _codes(words, count, dim, num_categories, num_continuous, continuous_range, device) -> TorchCodes:
    """Codes of ``count`` rows from ``words(j, tag, first, n)``, the words
    (4, n, blocks) of rows ``first .. first + n - 1``, a chunk at a time."""
    j, tag = _layout(dim, num_categories, num_continuous, torch.device(device))
    bz = -(-dim // WORDS_PER_BLOCK)
    nk = 1 if num_categories else 0
    low, high = (float(v) for v in continuous_range)

    z = torch.empty((count, dim), dtype=torch.float32, device=device)
    cat = torch.zeros((count,), dtype=torch.int64, device=device)
    cont = torch.empty((count, num_continuous), dtype=torch.float32, device=device)
    chunk = CHUNK_BLOCKS_CUDA if torch.device(device).type == "cuda" else CHUNK_BLOCKS
    rows = max(1, min(count, chunk // max(1, j.numel())))
    for first in range(0, count, rows):
        n = min(rows, count - first)
        w = words(j, tag, first, n)  # (4, n, blocks)
        if bz:
            xy = normals(w[0::2, :, :bz], w[1::2, :, :bz])  # (pair, n, bz, 2)
            z[first : first + n] = xy.permute(1, 2, 0, 3).reshape(n, -1)[:, :dim]
        if nk:
            cat[first : first + n] = mulhilo32(w[0, :, bz], num_categories)[0]
        if num_continuous:
            words_c = w[:, :, bz + nk :].permute(1, 2, 0).reshape(n, -1)[:, :num_continuous]
            u = (words_c >> 8).to(torch.float64) * UNIFORM24_SCALE * (high - low) + low
            cont[first : first + n] = u.to(torch.float32)
    return TorchCodes(z=z, category=cat, continuous=cont)
