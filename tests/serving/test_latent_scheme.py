"""A model's manifest picks its latent scheme; the server, the planner and the
TorchServe handler all draw with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gan_client import GanClient
from gan_contract.counter_rng import draw_codes_v2
from gan_contract.latents import draw_codes
from gan_contract.manifest import load_manifest

from ..conftest import start_server, stop_server

VECTORISED = "philox4x32-vectorised"


def _with_scheme(src: Path, dest: Path, scheme: str) -> Path:
    shutil.copytree(src, dest)
    path = dest / "manifest.json"
    data = json.loads(path.read_text())
    data["latent_scheme"] = scheme
    data["name"] = dest.parent.name
    path.write_text(json.dumps(data, indent=2))
    return dest


@pytest.fixture(scope="module")
def vectorised_repo(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("schemes")
    _with_scheme(bundled_models / "infogan" / "1", root / "infogan-v" / "1", VECTORISED)
    shutil.copytree(bundled_models / "infogan" / "1", root / "infogan" / "1")
    return root


def test_the_manifest_names_the_scheme(vectorised_repo: Path) -> None:
    assert load_manifest(vectorised_repo / "infogan-v" / "1").latent_scheme == VECTORISED
    assert load_manifest(vectorised_repo / "infogan" / "1").latent_scheme == "philox4x64-per-image"


def test_server_draws_with_the_models_scheme(vectorised_repo: Path, tmp_path: Path) -> None:
    srv = start_server(vectorised_repo, tmp_path / "server.log")
    try:
        with GanClient(srv.address) as client:
            new = client.sample("infogan-v", 9, seed=5, first_index=11, return_latents=True)
            old = client.sample("infogan", 9, seed=5, first_index=11, return_latents=True)
            chunked = client.sample("infogan-v", 4, seed=5, first_index=16, return_latents=True)
    finally:
        assert stop_server(srv) == 0
    m = load_manifest(vectorised_repo / "infogan-v" / "1")
    cond = m.conditioning
    want_new = draw_codes_v2(5, 11, 9, m.latent.dim, cond.num_categories, cond.num_continuous, cond.continuous_range)
    want_old = draw_codes(5, 11, 9, m.latent.dim, cond.num_categories, cond.num_continuous, cond.continuous_range)
    np.testing.assert_array_equal(new.latents, want_new.z)
    np.testing.assert_array_equal(old.latents, want_old.z)
    np.testing.assert_array_equal(np.asarray(new.classes), want_new.category.astype(np.int32))
    assert not np.array_equal(new.latents, old.latents)
    # image i is image i whatever the request: images 16..19 within the first request's 11..19
    np.testing.assert_array_equal(chunked.latents, new.latents[5:])
    np.testing.assert_array_equal(chunked.images, new.images[5:])
