"""What a saved image says about where it came from: the PNG text chunks.

``gan-client`` (``SampleResult.save*``) and the server's image URLs
(``/v1/models/{name}/sample.png``) both write these keys, so a grid fetched
with ``curl`` carries the same provenance as one written by the SDK for the
same request:

- ``gan:model``, ``gan:version``, ``gan:seed``;
- ``gan:request``: the conditioning fixed for every image, as sorted JSON
  (:func:`request_summary`), when there is any;
- a grid: ``gan:first_index`` and ``gan:count``; one image: ``gan:index``,
  ``gan:class`` (when the model has classes) and ``gan:latent`` (when known).

Standard library and numpy only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def request_summary(
    digit: int | None = None,
    label: str | None = None,
    category: int | None = None,
    continuous: Sequence[float] = (),
    explicit_latents: bool = False,
) -> dict[str, Any]:
    """A request's conditioning as plain values.

    Only what the request fixed for every image: not its count or first index,
    so that one image's PNG does not depend on how the work was split.
    Continuous codes are reported as the float32 values the model sees,
    rounded to 6 decimals.
    """
    out: dict[str, Any] = {}
    for name, value in (("digit", digit), ("label", label), ("category", category)):
        if value is not None:
            out[name] = value
    if len(continuous):
        out["continuous"] = [round(float(np.float32(v)), 6) for v in continuous]
    if explicit_latents:
        out["latents"] = "explicit"
    return out


def _common(model: str, version: str, seed: int, request: Mapping[str, Any]) -> dict[str, str]:
    meta = {"gan:model": model, "gan:version": version, "gan:seed": str(seed)}
    if request:
        meta["gan:request"] = json.dumps(request, sort_keys=True)
    return meta


def grid_text(
    model: str, version: str, seed: int, request: Mapping[str, Any], first_index: int, count: int
) -> dict[str, str]:
    """Text chunks of a grid of ``count`` images starting at ``first_index`` of ``seed``."""
    meta = _common(model, version, seed, request)
    meta["gan:first_index"] = str(first_index)
    meta["gan:count"] = str(count)
    return meta


def image_text(
    model: str,
    version: str,
    seed: int,
    request: Mapping[str, Any],
    index: int,
    image_class: int,
    latent: Sequence[float] | None = None,
) -> dict[str, str]:
    """Text chunks of image ``index`` of ``seed`` (``image_class`` -1: the model has no classes)."""
    meta = _common(model, version, seed, request)
    meta["gan:index"] = str(index)
    if image_class >= 0:
        meta["gan:class"] = str(image_class)
    if latent is not None:
        meta["gan:latent"] = json.dumps([float(v) for v in latent])
    return meta
