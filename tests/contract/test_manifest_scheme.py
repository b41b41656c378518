"""The manifest's optional latent_scheme field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from gan_contract import latents
from gan_contract.manifest import LATENT_SCHEMES, ManifestError, parse_manifest

MODELS = Path(__file__).resolve().parents[2] / "models"


def _bundled() -> list[Path]:
    return sorted(MODELS.glob("*/*/manifest.json"))


def test_scheme_names_agree_with_latents() -> None:
    assert LATENT_SCHEMES == latents.LATENT_SCHEMES
    assert LATENT_SCHEMES[0] == latents.DEFAULT_LATENT_SCHEME


@pytest.mark.parametrize("path", _bundled(), ids=lambda p: p.parent.parent.name)
def test_bundled_manifests_name_their_scheme_and_keep_their_bytes(path: Path) -> None:
    # Models bundled before the vectorised scheme existed say nothing and get
    # the default (their golden bytes depend on it); models exported since
    # (the retrained gan, ebgan, wgan-gp) name the export default.
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    manifest = parse_manifest(data, path)
    if "latent_scheme" in data:
        assert manifest.latent_scheme == "philox4x32-vectorised"
    else:
        assert manifest.latent_scheme == latents.DEFAULT_LATENT_SCHEME
    assert manifest.to_json() == text


def test_the_field_round_trips_and_is_validated() -> None:
    path = _bundled()[0]
    manifest = parse_manifest(json.loads(path.read_text(encoding="utf-8")), path)
    new = dataclasses.replace(manifest, latent_scheme="philox4x32-vectorised")
    data = json.loads(new.to_json())
    assert data["latent_scheme"] == "philox4x32-vectorised"
    assert parse_manifest(data, path) == new
    data["latent_scheme"] = "mt19937"
    with pytest.raises(ManifestError, match="latent_scheme"):
        parse_manifest(data, path)
