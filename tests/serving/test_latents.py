"""The seed contract: image i of seed s depends on (s, i) alone."""

from __future__ import annotations

import numpy as np
import pytest
from gan_contract.latents import MAX_SEED, draw_codes, image_stream


def test_image_codes_do_not_depend_on_batching() -> None:
    whole = draw_codes(42, 0, 64, 62, num_categories=10, num_continuous=2)
    for start, count in [(0, 1), (7, 1), (5, 20), (63, 1), (32, 32)]:
        part = draw_codes(42, start, count, 62, num_categories=10, num_continuous=2)
        np.testing.assert_array_equal(part.z, whole.z[start : start + count])
        np.testing.assert_array_equal(part.category, whole.category[start : start + count])
        np.testing.assert_array_equal(part.continuous, whole.continuous[start : start + count])


def test_z_is_the_same_with_or_without_codes() -> None:
    # A digit/category fixed by the caller must not change the image's style.
    plain = draw_codes(3, 0, 8, 62)
    coded = draw_codes(3, 0, 8, 62, num_categories=10, num_continuous=2)
    np.testing.assert_array_equal(plain.z, coded.z)


def test_seeds_and_indices_give_different_streams() -> None:
    a = draw_codes(1, 0, 4, 16).z
    b = draw_codes(2, 0, 4, 16).z
    assert not np.allclose(a, b)
    assert len({row.tobytes() for row in a}) == 4


def test_distribution_of_draws() -> None:
    # 4096 x 62 normals: the mean's standard error is 1/sqrt(253952) ~ 0.002,
    # so |mean| < 0.01 and |std - 1| < 0.01 fail only for a broken sampler.
    codes = draw_codes(7, 0, 4096, 62, num_categories=10, num_continuous=2, continuous_range=(-1.0, 1.0))
    assert abs(float(codes.z.mean())) < 0.01
    assert abs(float(codes.z.std()) - 1.0) < 0.01
    counts = np.bincount(codes.category, minlength=10)
    assert counts.min() > 300  # expected 409.6 each; 300 is > 5 sd below
    assert codes.continuous.min() >= -1.0 and codes.continuous.max() <= 1.0


@pytest.mark.parametrize(("seed", "index"), [(-1, 0), (MAX_SEED + 1, 0), (0, -1), (0, MAX_SEED + 1)])
def test_out_of_range(seed: int, index: int) -> None:
    with pytest.raises(ValueError):
        image_stream(seed, index)


def test_extreme_seed_is_valid() -> None:
    assert draw_codes(MAX_SEED, 0, 1, 4).z.shape == (1, 4)
