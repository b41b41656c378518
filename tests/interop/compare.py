"""Image comparisons for the interop tests, and where each one applies.

- :func:`assert_same_images`: byte for byte. TorchServe runs the same
  TorchScript file with the same torch as ``gan-server --backend torchscript``
  on the same inputs (the latents come from a verbatim copy of
  gan_server/latents.py), so anything but equality is a bug.
- :func:`assert_images_close`: at most one uint8 level apart on at most 0.1 %
  of the pixels. Only for comparisons across numerical paths: TorchScript vs
  ONNX Runtime (different kernels round float32 differently), or one request
  computed inside a larger TorchServe batch (another GEMM shape can reorder a
  float32 sum). Such differences move a value across a .5 rounding boundary
  of ``to_uint8`` now and then, by one level; a real bug (wrong latents, class,
  scaling or layout) changes most pixels by many levels.
"""

from __future__ import annotations

import numpy as np

MAX_DIFFERENT_FRACTION = 0.001


def assert_same_images(got: np.ndarray, want: np.ndarray, what: str = "images") -> None:
    assert got.dtype == np.uint8 and want.dtype == np.uint8, f"{what}: dtypes {got.dtype}, {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if not np.array_equal(got, want):
        diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
        raise AssertionError(
            f"{what} differ: {np.count_nonzero(diff)} of {diff.size} pixels, by up to {diff.max()} levels"
        )


def assert_images_close(
    got: np.ndarray, want: np.ndarray, what: str = "images", max_fraction: float = MAX_DIFFERENT_FRACTION
) -> int:
    """Return how many pixels differ (each by exactly one level)."""
    assert got.dtype == np.uint8 and want.dtype == np.uint8, f"{what}: dtypes {got.dtype}, {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    changed = int(np.count_nonzero(diff))
    assert diff.max(initial=0) <= 1, f"{what}: a pixel differs by {diff.max()} levels (at most 1 allowed)"
    assert changed <= max_fraction * diff.size, (
        f"{what}: {changed} of {diff.size} pixels differ (at most {max_fraction:.1%} allowed)"
    )
    return changed
