"""Manifest validation: every broken field is an error naming the file and field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from gan_contract.manifest import (
    Conditioning,
    FileEntry,
    ImageSpec,
    LatentSpec,
    Manifest,
    ManifestError,
    TensorSpec,
    expected_inputs,
    load_manifest,
    parse_manifest,
    sha256_file,
    write_manifest,
)


def _manifest(tmp_path: Path, kind: str = "infogan") -> Manifest:
    (tmp_path / "model.onnx").write_bytes(b"not really onnx, but hashed")
    if kind == "infogan":
        cond = Conditioning(
            kind="infogan",
            class_names=tuple("0123456789"),
            num_categories=10,
            num_continuous=2,
            category_to_digit=(3, 1, 0, 2, 4, 5, 6, 7, 9, 8),
        )
    elif kind == "class":
        cond = Conditioning(kind="class", class_names=("shirt", "sneaker"))
    else:
        cond = Conditioning()
    latent = LatentSpec(dim=62)
    return Manifest(
        name="m",
        version="1",
        variant="infogan",
        dataset="mnist",
        image=ImageSpec(28, 28, 1),
        latent=latent,
        conditioning=cond,
        inputs=expected_inputs(latent, cond),
        output=TensorSpec("images", (-1, 1, 28, 28), "float32"),
        files={"onnx": FileEntry("model.onnx", sha256_file(tmp_path / "model.onnx"))},
        training={"epochs": 3},
    )


@pytest.mark.parametrize("kind", ["none", "class", "infogan"])
def test_round_trip(tmp_path: Path, kind: str) -> None:
    m = _manifest(tmp_path, kind)
    write_manifest(tmp_path, m)
    loaded = load_manifest(tmp_path)
    assert loaded == m


def _broken(tmp_path: Path, edit) -> ManifestError:
    data = json.loads(_manifest(tmp_path).to_json())
    edit(data)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    assert str(path) in str(info.value)
    return info.value


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("name"), "name"),
        (lambda d: d.update(schema_version=99), "schema_version"),
        (lambda d: d["image"].update(height=0), "image.height"),
        (lambda d: d["image"].update(width="28"), "image.width"),
        (lambda d: d["image"].update(value_range=[1, -1]), "image.value_range"),
        (lambda d: d["latent"].update(prior="cauchy"), "latent.prior"),
        (lambda d: d["conditioning"].update(kind="text"), "conditioning.kind"),
        (lambda d: d["conditioning"].update(category_to_digit=[0, 1]), "conditioning.category_to_digit"),
        (lambda d: d["conditioning"].update(class_names=["0", "0"]), "conditioning.class_names"),
        (lambda d: d["inputs"].pop(), "inputs"),
        (lambda d: d["inputs"][0].update(shape=[-1, 61]), "inputs"),
        (lambda d: d["output"].update(shape=[-1, 3, 28, 28]), "output"),
        (lambda d: d["files"].pop("onnx"), "files.onnx"),
        (lambda d: d["files"]["onnx"].update(sha256="0" * 64), "files.onnx.sha256"),
        (lambda d: d["files"]["onnx"].update(sha256="xyz"), "files.onnx.sha256"),
        (lambda d: d["files"]["onnx"].update(path="../escape.onnx"), "files.onnx.path"),
        (lambda d: d["files"]["onnx"].update(path="gone.onnx"), "files.onnx.path"),
    ],
)
def test_broken_field_is_named(tmp_path: Path, edit, field: str) -> None:
    err = _broken(tmp_path, edit)
    assert err.field == field, str(err)
    assert f"field '{field}'" in str(err)


def test_corrupt_file_is_a_sha256_error(tmp_path: Path) -> None:
    write_manifest(tmp_path, _manifest(tmp_path))
    (tmp_path / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(ManifestError, match="files.onnx.sha256"):
        load_manifest(tmp_path)


def test_invalid_json_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(tmp_path)


def test_write_refuses_an_invalid_manifest(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    bad = dataclasses.replace(m, inputs=m.inputs[:1])
    with pytest.raises(ManifestError, match="inputs"):
        write_manifest(tmp_path, bad)
    assert not (tmp_path / "manifest.json").exists()


def test_parse_rejects_non_object() -> None:
    with pytest.raises(ManifestError, match="<root>"):
        parse_manifest([1, 2, 3])
