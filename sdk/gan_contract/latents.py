"""Seed-reproducible latent codes, drawn outside the network graph.

Image ``i`` of a request with seed ``s`` gets its own random stream:
numpy's Philox-4x64 counter-based generator with key ``s`` and its 256-bit
counter starting at ``(0, 0, i, 0)``. Draws within one image advance only the
low counter words, so two images' streams never overlap (that would take
2**128 draws). Because the stream depends on ``(s, i)`` alone, an image is the
same whatever the count asked for, the batch it is computed in, or the
backend that runs the network.

From its stream each image draws, in this order and always all of them:

1. ``z``: ``dim`` standard normals (the latent prior);
2. one categorical index, uniform over ``num_categories`` (InfoGAN only);
3. ``num_continuous`` codes, uniform over ``continuous_range`` (InfoGAN only).

Values the caller fixes (a digit, a code) replace the drawn ones afterwards,
so changing the digit keeps the same z ("style") for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SEED = 2**64 - 1

# The latent schemes a model can name, each a fixed map seed -> codes:
# - "philox4x64-per-image": the scheme described above (one numpy Generator
#   per image; numpy's normal, integer and uniform algorithms); the default,
#   that of every model that does not name one;
# - "philox4x32-vectorised": Philox4x32-10 evaluated over whole arrays, with
#   Box-Muller normals (gan_contract/counter_rng.py defines it exactly).
LATENT_SCHEMES = ("philox4x64-per-image", "philox4x32-vectorised")
DEFAULT_LATENT_SCHEME = LATENT_SCHEMES[0]


@dataclass(frozen=True)
class Codes:
    z: np.ndarray  # (N, dim) float32
    category: np.ndarray  # (N,) int64, empty columns when unused
    continuous: np.ndarray  # (N, C) float32


def image_stream(seed: int, index: int) -> np.random.Generator:
    """The random stream of image ``index`` of a request with ``seed``."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**64 - 1], got {seed}")
    if not 0 <= index <= MAX_SEED:
        raise ValueError(f"index must be in [0, 2**64 - 1], got {index}")
    # A uint64 array: from a plain list numpy would take an index >= 2**63 through
    # float64, rounding neighbouring images onto one stream (and near 2**64 onto 0).
    counter = np.array([0, 0, index, 0], dtype=np.uint64)
    return np.random.Generator(np.random.Philox(key=seed, counter=counter))


def draw_codes(
    seed: int,
    start: int,
    count: int,
    dim: int,
    num_categories: int = 0,
    num_continuous: int = 0,
    continuous_range: tuple[float, float] = (-1.0, 1.0),
    scheme: str = DEFAULT_LATENT_SCHEME,
) -> Codes:
    """Codes for images ``start .. start + count - 1`` of the request ``seed``."""
    if scheme != DEFAULT_LATENT_SCHEME:
        return draw(scheme, seed, start, count, dim, num_categories, num_continuous, continuous_range)
    z = np.empty((count, dim), dtype=np.float32)
    cat = np.zeros((count,), dtype=np.int64)
    cont = np.empty((count, num_continuous), dtype=np.float32)
    low, high = continuous_range
    for row in range(count):
        rng = image_stream(seed, start + row)
        z[row] = rng.standard_normal(dim, dtype=np.float64)
        if num_categories:
            cat[row] = rng.integers(num_categories)
        if num_continuous:
            cont[row] = rng.uniform(low, high, num_continuous)
    return Codes(z=z, category=cat, continuous=cont)


def draw(
    scheme: str,
    seed: int,
    start: int,
    count: int,
    dim: int,
    num_categories: int = 0,
    num_continuous: int = 0,
    continuous_range: tuple[float, float] = (-1.0, 1.0),
) -> Codes:
    """:func:`draw_codes` under the latent scheme ``scheme`` (one of
    :data:`LATENT_SCHEMES`)."""
    if scheme == DEFAULT_LATENT_SCHEME:
        return draw_codes(seed, start, count, dim, num_categories, num_continuous, continuous_range)
    if scheme == "philox4x32-vectorised":
        # Here, not at the top: counter_rng imports Codes from this module.
        from gan_contract.counter_rng import draw_codes_v2

        return draw_codes_v2(seed, start, count, dim, num_categories, num_continuous, continuous_range)
    raise ValueError(f"unknown latent scheme {scheme!r}; known: {', '.join(LATENT_SCHEMES)}")
