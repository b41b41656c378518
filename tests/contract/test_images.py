"""Pixels: float NCHW ↔ uint8 NHWC (round half to even, clip) and image grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gan_contract.images import from_uint8, make_grid, to_uint8


def _column(values: list[float]) -> np.ndarray:
    """Values as (N, 1, 1, 1) images."""
    return np.asarray(values, np.float32).reshape(-1, 1, 1, 1)


def _pixels(values: list[float], value_range: tuple[float, float]) -> list[int]:
    return to_uint8(_column(values), value_range).reshape(-1).tolist()


# -- to_uint8 -------------------------------------------------------------------


def test_identity_range_rounds_half_to_even() -> None:
    # value_range (0, 255): pixel = rint(x); exact .5 ties go to the even neighbour
    values = [0.5, 1.5, 2.5, 3.5, 4.5, 127.5, 128.5, 253.5, 254.5]
    assert _pixels(values, (0.0, 255.0)) == [0, 2, 2, 4, 4, 128, 128, 254, 254]
    # off the tie, nearest
    assert _pixels([0.49, 0.51, 2.4999, 2.5001, 254.6], (0.0, 255.0)) == [0, 1, 2, 3, 255]


def test_minus_one_to_one() -> None:
    # pixel = (x + 1) * 127.5: -1 → 0, 0 → 127.5 → 128 (even), 1 → 255
    assert _pixels([-1.0, 0.0, 1.0], (-1.0, 1.0)) == [0, 128, 255]
    # x = 2k/255 - 1 lands on k exactly (up to float error far from a tie)
    ks = [1, 17, 100, 200, 254]
    assert _pixels([2 * k / 255 - 1 for k in ks], (-1.0, 1.0)) == ks


def test_other_ranges() -> None:
    # (0, 1): pixel = 255 x; 0.5 → 127.5 → 128
    assert _pixels([0.0, 0.5, 1.0, 0.25], (0.0, 1.0)) == [0, 128, 255, 64]  # 63.75 → 64
    # (-255, 255): pixel = (x + 255) / 2; ties at odd x
    assert _pixels([-255.0, -254.0, -252.0, -250.0, 0.0, 2.0, 4.0, 255.0], (-255.0, 255.0)) == [
        0,  # 0.0
        0,  # 0.5 → even 0
        2,  # 1.5 → even 2
        2,  # 2.5 → even 2
        128,  # 127.5 → 128
        128,  # 128.5 → 128
        130,  # 129.5 → 130
        255,
    ]
    # a range that does not start at 0: (10, 20), pixel = (x - 10) * 25.5
    assert _pixels([10.0, 15.0, 20.0, 12.0], (10.0, 20.0)) == [0, 128, 255, 51]  # 127.5 → 128, 51.0


def test_out_of_range_values_are_clipped() -> None:
    assert _pixels([-1.5, -100.0, 1.0001, 7.0, -1.001], (-1.0, 1.0)) == [0, 0, 255, 255, 0]
    assert _pixels([-0.5, 255.4, 255.6, 1e9, -1e9], (0.0, 255.0)) == [0, 255, 255, 255, 0]


def test_layout_is_nchw_to_nhwc() -> None:
    # two images, 3 channels, 1x2 pixels; channel c of pixel (0, w) of image n = 100n + 10c + w on (0, 255)
    images = np.zeros((2, 3, 1, 2), np.float32)
    for n in range(2):
        for c in range(3):
            for w in range(2):
                images[n, c, 0, w] = 100 * n + 10 * c + w
    out = to_uint8(images, (0.0, 255.0))
    assert out.shape == (2, 1, 2, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous
    assert out[1, 0, 1].tolist() == [101, 111, 121]
    assert out[0, 0, 0].tolist() == [0, 10, 20]


def test_float64_and_integer_input() -> None:
    assert to_uint8(np.array([[[[0.5]]]], np.float64), (-1.0, 1.0)).item() == 191  # 191.25
    assert to_uint8(np.array([[[[3]]]], np.int64), (0.0, 255.0)).item() == 3


# -- from_uint8 ---------------------------------------------------------------------


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0), (-255.0, 255.0), (10.0, 20.0), (0.0, 3.0)])
def test_every_pixel_round_trips(value_range: tuple[float, float]) -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)
    floats = from_uint8(pixels, value_range)
    assert floats.dtype == np.float32
    assert floats.shape == (4, 1, 8, 8)
    low, high = value_range
    assert floats.min() == pytest.approx(low, abs=1e-5 * (high - low))
    assert floats.max() == pytest.approx(high, abs=1e-5 * (high - low))
    np.testing.assert_array_equal(to_uint8(floats, value_range), pixels)


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0), (10.0, 20.0)])
def test_floats_come_back_within_one_step(value_range: tuple[float, float]) -> None:
    low, high = value_range
    rng = np.random.default_rng(0)
    x = rng.uniform(low, high, size=(16, 3, 5, 7)).astype(np.float32)
    back = from_uint8(to_uint8(x, value_range), value_range)
    step = (high - low) / 255
    # nearest rounding: within half a step (plus float error); at most one step in any case
    assert np.abs(back - x).max() <= step / 2 + 1e-5 * (high - low)


def test_from_uint8_layout() -> None:
    pixels = np.zeros((1, 2, 3, 3), np.uint8)  # (N, H, W, C)
    pixels[0, 1, 2] = [0, 51, 255]
    x = from_uint8(pixels, (0.0, 1.0))
    assert x.shape == (1, 3, 2, 3)  # (N, C, H, W)
    assert x.flags.c_contiguous
    np.testing.assert_allclose(x[0, :, 1, 2], [0.0, 0.2, 1.0], atol=1e-6)


# -- make_grid ------------------------------------------------------------------------


def _numbered(n: int, h: int = 3, w: int = 4, c: int = 1) -> np.ndarray:
    """n images, image i filled with the value 10 + i."""
    return np.stack([np.full((h, w, c), 10 + i, np.uint8) for i in range(n)])


def test_default_columns_are_ceil_sqrt() -> None:
    for n, cols in [(1, 1), (2, 2), (4, 2), (5, 3), (9, 3), (10, 4), (16, 4), (17, 5)]:
        rows = math.ceil(n / cols)
        grid = make_grid(_numbered(n), pad=2)
        assert grid.shape == (rows * 5 + 2, cols * 6 + 2, 1), n


def test_grid_layout_with_padding() -> None:
    # 5 images of 3x4 in 3 columns, pad 2: image i at row i // 3, column i % 3
    grid = make_grid(_numbered(5), pad=2, background=7)
    assert grid.shape == (2 * (3 + 2) + 2, 3 * (4 + 2) + 2, 1) == (12, 20, 1)
    assert grid.dtype == np.uint8
    for i in range(5):
        r, c = divmod(i, 3)
        y, x = 2 + r * 5, 2 + c * 6
        assert np.all(grid[y : y + 3, x : x + 4] == 10 + i), i
        assert int((grid == 10 + i).sum()) == 12  # the image and nothing else has its value
    assert np.all(grid[:2] == 7) and np.all(grid[:, :2] == 7)  # outer border
    assert np.all(grid[5:7] == 7)  # between the rows
    assert np.all(grid[:, 6:8] == 7)  # between the first two columns
    assert np.all(grid[7:10, 14:18] == 7)  # the sixth cell is empty
    assert int((grid == 7).sum()) == 12 * 20 - 5 * 12


def test_no_padding_tiles_exactly() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(6, 3, 2, 3), dtype=np.uint8)
    grid = make_grid(images, cols=3, pad=0)
    expected = np.concatenate(
        [np.concatenate(list(images[0:3]), axis=1), np.concatenate(list(images[3:6]), axis=1)], axis=0
    )
    np.testing.assert_array_equal(grid, expected)


def test_explicit_columns() -> None:
    grid = make_grid(_numbered(3), cols=1, pad=1)  # one column, three rows
    assert grid.shape == (3 * 4 + 1, 1 * 5 + 1, 1)
    assert grid[1, 1, 0] == 10 and grid[5, 1, 0] == 11 and grid[9, 1, 0] == 12
    wide = make_grid(_numbered(2), cols=5, pad=1)  # more columns than images: one row
    assert wide.shape == (1 * 4 + 1, 5 * 5 + 1, 1)
    assert np.all(wide[1:4, 11:] == 0)


def test_background_and_channels() -> None:
    grid = make_grid(_numbered(2, c=3), pad=3, background=255)
    assert grid.shape == (1 * 6 + 3, 2 * 7 + 3, 3)
    assert np.all(grid[:3] == 255) and np.all(grid[-3:] == 255)
    assert grid[3, 3].tolist() == [10, 10, 10]
    assert grid[3, 10].tolist() == [11, 11, 11]


@pytest.mark.parametrize(
    ("images", "kwargs", "match"),
    [
        (np.zeros((3, 4, 1), np.uint8), {}, r"\(N, H, W, C\)"),
        (np.zeros((2, 2, 3, 4, 1), np.uint8), {}, r"\(N, H, W, C\)"),
        (np.zeros((0, 4, 4, 1), np.uint8), {}, "no images"),
        (np.zeros((2, 4, 4, 1), np.uint8), {"cols": -1}, "cols must be >= 1"),
        (np.zeros((2, 4, 4, 1), np.uint8), {"cols": 0}, "cols must be >= 1"),
    ],
)
def test_grid_errors(images: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_grid(images, **kwargs)
