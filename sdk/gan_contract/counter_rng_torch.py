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

from dataclasses import dataclass

import torch

from gan_contract.counter_rng import (
    COS_COEFFS,
    MASK32,
    PHI_SCALE,
    PHILOX_M0,
    PHILOX_M1,
    PHILOX_ROUNDS,
    SIN_COEFFS,
    TWO_POW_M32,
    UNIFORM24_SCALE,
    WORDS_PER_BLOCK,
    _check,
    block_layout,
    round_keys,
)

# Rows per chunk hold about this many blocks (bounds the temporaries).
CHUNK_BLOCKS = 1 << 16


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


def philox4x32(
    counter: tuple[torch.Tensor, ...], key: tuple[int, int], rounds: int = PHILOX_ROUNDS
) -> tuple[torch.Tensor, ...]:
    """Philox4x32-``rounds`` of four broadcastable int64 tensors of 32-bit
    values under ``key``: the four output words, int64 in [0, 2**32)."""
    c0, c1, c2, c3 = counter
    for k0, k1 in round_keys(key, rounds):
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
    turns = torch.tensor(_OCTANT_TURNS, dtype=torch.complex128, device=b.device)
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
    j_np, tag_np = block_layout(dim, num_categories, num_continuous)
    j = torch.from_numpy(j_np.astype("int64")).to(device)
    tag = torch.from_numpy(tag_np.astype("int64")).to(device)
    bz = -(-dim // WORDS_PER_BLOCK)
    nk = 1 if num_categories else 0
    low, high = (float(v) for v in continuous_range)

    z = torch.empty((count, dim), dtype=torch.float32, device=device)
    cat = torch.zeros((count,), dtype=torch.int64, device=device)
    cont = torch.empty((count, num_continuous), dtype=torch.float32, device=device)
    rows = max(1, min(count, CHUNK_BLOCKS // max(1, j.numel())))
    for first in range(0, count, rows):
        n = min(rows, count - first)
        w = _words(seed, start + first, n, j, tag, device)  # (4, n, blocks)
        if bz:
            xy = normals(w[0::2, :, :bz], w[1::2, :, :bz])  # (pair, n, bz, 2)
            z[first : first + n] = xy.permute(1, 2, 0, 3).reshape(n, -1)[:, :dim]
        if nk:
            cat[first : first + n] = mulhilo32(w[0, :, bz], num_categories)[0]
        if num_continuous:
            words = w[:, :, bz + nk :].permute(1, 2, 0).reshape(n, -1)[:, :num_continuous]
            u = (words >> 8).to(torch.float64) * UNIFORM24_SCALE * (high - low) + low
            cont[first : first + n] = u.to(torch.float32)
    return TorchCodes(z=z, category=cat, continuous=cont)
