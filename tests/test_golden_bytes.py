"""Served bytes do not change under refactoring.

``tests/golden/served.json`` holds SHA-256 digests of images, classes and
latents for a fixed set of (model, seed, count, conditioning) requests on
every bundled model, recorded from the server and the TorchServe handler
before the code that produces them was restructured
(``tests/golden/record.py``). Any change to the seed scheme, the
codes → inputs mapping or the float → uint8 rounding fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.golden.cases import OUT, handler_digests, served_digests


def _recorded() -> dict:
    return json.loads(OUT.read_text())


def test_served_bytes_match_the_recording(server, bundled_models: Path) -> None:
    recorded = _recorded()["served"]
    now = served_digests(server.address, bundled_models)
    assert sorted(now) == sorted(recorded)
    changed = [key for key in recorded if now[key] != recorded[key]]
    assert not changed, f"{len(changed)} of {len(recorded)} requests changed bytes, e.g. {changed[:3]}"


def test_torchserve_handler_bytes_match_the_recording(bundled_models: Path, tmp_path: Path) -> None:
    pytest.importorskip("ts", reason="torchserve is not installed")
    pytest.importorskip("torch")
    recorded = _recorded()["torchserve_handler"]
    now = handler_digests(bundled_models, tmp_path / "staged")
    assert sorted(now) == sorted(recorded)
    changed = [key for key in recorded if now[key] != recorded[key]]
    assert not changed, f"{len(changed)} of {len(recorded)} requests changed bytes, e.g. {changed[:3]}"
