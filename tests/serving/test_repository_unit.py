"""ModelRepository without a server: load, look up, hot reload, and broken versions kept apart."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from gan_contract.errors import ModelNotFound, ModelUnavailable
from gan_contract.manifest import load_manifest, sha256_file, write_manifest
from gan_contract.request import SampleSpec
from gan_server.errors import grpc_code
from gan_server.repository import ModelRepository
from gan_server.sampling import LoadedModel

from tests.sdk.tiny_models import write_encoder_model

FAILED_PRECONDITION = "FAILED_PRECONDITION"


def _copy_models(bundled: Path, dest: Path, *names: str) -> Path:
    for name in names:
        shutil.copytree(bundled / name, dest / name)
    return dest


def _add_version(root: Path, name: str, version: str, source: str = "1") -> Path:
    """A copy of ``name/source`` as ``name/version``, its manifest saying so."""
    target = root / name / version
    shutil.copytree(root / name / source, target)
    manifest = load_manifest(target, verify_files=False)
    write_manifest(target, dataclasses.replace(manifest, version=version))
    return target


def _repo(root: Path) -> ModelRepository:
    repo = ModelRepository(root, threads=1)
    repo.load_all()
    return repo


@pytest.fixture(scope="module")
def bundled_repo(bundled_models: Path) -> ModelRepository:
    return _repo(bundled_models)


@pytest.fixture()
def models(bundled_models: Path, tmp_path: Path) -> Path:
    """A private repository with dcgan and cgan that a test may change."""
    return _copy_models(bundled_models, tmp_path / "models", "dcgan", "cgan")


def _unavailable(repo: ModelRepository, name: str, version: str = "") -> ModelUnavailable:
    with pytest.raises(ModelUnavailable) as info:
        repo.get(name, version)
    assert grpc_code(info.value).name == FAILED_PRECONDITION
    return info.value


# -- loading and lookup ------------------------------------------------------------------------


def test_loads_every_bundled_model(bundled_models: Path, bundled_repo: ModelRepository) -> None:
    repo = bundled_repo
    expected = sorted(p.parent.parent.name for p in bundled_models.glob("*/*/manifest.json"))
    assert repo.names() == sorted(set(expected))
    assert {"dcgan", "cgan", "infogan"} <= set(repo.names())
    assert repo.problems == []
    dcgan = repo.get("dcgan")
    assert isinstance(dcgan, LoadedModel)
    assert (dcgan.name, dcgan.version) == ("dcgan", "1")
    assert dcgan.directory == bundled_models / "dcgan" / "1"
    assert repo.get("dcgan", "1") is dcgan
    assert [m.name for m in repo.latest()] == repo.names()
    conditional = repo.conditional_names()
    assert "cgan" in conditional and "infogan" in conditional and "dcgan" not in conditional


def test_loaded_model_generates(bundled_repo: ModelRepository) -> None:
    for name, latent_dim in [("dcgan", 100), ("cgan", 100), ("infogan", 62)]:
        model = bundled_repo.get(name)
        assert model.manifest.latent.dim == latent_dim
        out = model.generate(model.plan(SampleSpec(count=3, seed=1, return_latents=True)), 0, 3)
        assert out.images.shape == (3, 28, 28, 1) and out.images.dtype == np.uint8
        assert out.latents.shape == (3, latent_dim)
        assert out.images.std() > 0  # not a blank picture


def test_unknown_names_and_versions(models: Path) -> None:
    repo = _repo(models)
    with pytest.raises(ModelNotFound, match=r"model 'wgan' not found; available: cgan, dcgan"):
        repo.get("wgan")
    with pytest.raises(ModelNotFound, match=r"model 'dcgan' version '3' not found; available: dcgan:1"):
        repo.get("dcgan", "3")


def test_load_all_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        ModelRepository(tmp_path / "missing").load_all()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(FileNotFoundError):
        ModelRepository(tmp_path / "a-file").load_all()


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        ModelRepository(tmp_path, backend="tensorrt")


def test_empty_repository_loads_nothing(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert repo.names() == [] and repo.problems == [] and repo.latest() == []
    with pytest.raises(ModelNotFound, match="available: none"):
        repo.get("dcgan")


def test_versions_sort_numerically_and_latest_is_the_highest(models: Path) -> None:
    for version in ("10", "2", "beta"):
        _add_version(models, "dcgan", version)
    repo = _repo(models)
    # integers numerically (10 after 2) and after any other name
    assert repo.versions("dcgan") == ["beta", "1", "2", "10"]
    assert repo.get("dcgan").version == "10"
    assert repo.get("dcgan", "beta").version == "beta"
    assert [(m.name, m.version) for m in repo.latest()] == [("cgan", "1"), ("dcgan", "10")]
    assert repo.versions("nothing") == []


def test_encoder_is_loaded_when_the_manifest_lists_one(tmp_path: Path, bundled_models: Path) -> None:
    root = write_encoder_model(tmp_path / "models")
    _copy_models(bundled_models, root, "dcgan")
    repo = _repo(root)
    tiny = repo.get("tinybigan")
    assert tiny.encoder is not None
    assert repo.get("dcgan").encoder is None
    images = tiny.generate(tiny.plan(SampleSpec(count=2, seed=3)), 0, 2).images
    assert tiny.encode(images).shape == (2, 8)


# -- hot reload --------------------------------------------------------------------------------


def test_rescan_reports_added_and_removed_versions(models: Path) -> None:
    repo = _repo(models)
    v1, cgan = repo.get("dcgan", "1"), repo.get("cgan")
    assert repo.rescan() == ([], [])  # nothing changed

    _add_version(models, "dcgan", "2")
    loaded, removed = repo.rescan()
    assert [(m.name, m.version) for m in loaded] == [("dcgan", "2")]
    assert removed == []
    v2 = loaded[0]
    assert repo.get("dcgan") is v2
    assert repo.get("dcgan", "1") is v1  # untouched versions are the same objects
    assert repo.get("cgan") is cgan

    shutil.rmtree(models / "dcgan" / "2")
    loaded, removed = repo.rescan()
    assert loaded == [] and removed == [v2]
    assert repo.get("dcgan") is v1
    with pytest.raises(ModelNotFound):
        repo.get("dcgan", "2")

    shutil.rmtree(models / "dcgan")
    loaded, removed = repo.rescan()
    assert loaded == [] and removed == [v1]
    assert repo.names() == ["cgan"]
    with pytest.raises(ModelNotFound):
        repo.get("dcgan")


def test_new_model_appears_on_rescan(models: Path, bundled_models: Path) -> None:
    repo = _repo(models)
    _copy_models(bundled_models, models, "infogan")
    loaded, removed = repo.rescan()
    assert [(m.name, m.version) for m in loaded] == [("infogan", "1")] and removed == []
    assert repo.names() == ["cgan", "dcgan", "infogan"]


def test_a_removed_model_still_serves_its_holder(models: Path) -> None:
    # "Callers holding a removed model may finish with it"
    _add_version(models, "dcgan", "2")
    repo = _repo(models)
    held = repo.get("dcgan", "2")
    plan = held.plan(SampleSpec(count=2, seed=5))
    before = held.generate(plan, 0, 2).images
    shutil.rmtree(models / "dcgan" / "2")
    assert repo.rescan()[1] == [held]
    np.testing.assert_array_equal(held.generate(plan, 0, 2).images, before)


def test_a_rewritten_version_is_reloaded(models: Path) -> None:
    repo = _repo(models)
    old = repo.get("dcgan")
    manifest_path = models / "dcgan" / "1" / "manifest.json"
    manifest = load_manifest(manifest_path.parent)
    write_manifest(manifest_path.parent, dataclasses.replace(manifest, metrics={"note": "re-evaluated"}))
    loaded, removed = repo.rescan()
    assert removed == [old]
    assert len(loaded) == 1 and loaded[0] is not old
    assert repo.get("dcgan").manifest.metrics == {"note": "re-evaluated"}


# -- broken versions ---------------------------------------------------------------------------


@pytest.mark.parametrize("filename", ["model.onnx", "model.ts"])
def test_corrupt_file_takes_out_that_version_alone(models: Path, filename: str) -> None:
    _add_version(models, "dcgan", "2")
    repo = _repo(models)
    v1, v2, cgan = repo.get("dcgan", "1"), repo.get("dcgan", "2"), repo.get("cgan")
    target = models / "dcgan" / "2" / filename
    original = target.read_bytes()
    with open(target, "r+b") as f:  # flip one byte in the middle
        f.seek(len(original) // 2)
        f.write(bytes([original[len(original) // 2] ^ 0xFF]))

    loaded, removed = repo.rescan()
    assert loaded == [] and removed == [v2]
    err = _unavailable(repo, "dcgan", "2")
    assert filename in str(err)
    assert "sha256" in str(err)
    assert str(err).startswith("model 'dcgan' version '2' is unavailable: ")
    # the other version and the other model keep serving, as the same objects
    assert repo.get("dcgan") is v1
    assert repo.get("cgan") is cgan
    assert [p.path for p in repo.problems] == [str(models / "dcgan" / "2")]
    assert repo.rescan() == ([], [])  # a broken version is not retried until it changes

    target.write_bytes(original)  # fixed
    loaded, removed = repo.rescan()
    assert [(m.name, m.version) for m in loaded] == [("dcgan", "2")] and removed == []
    assert repo.problems == []
    assert repo.get("dcgan").version == "2"


def test_deleted_file_makes_the_version_unavailable(models: Path) -> None:
    repo = _repo(models)
    (models / "cgan" / "1" / "model.onnx").unlink()
    loaded, removed = repo.rescan()
    assert loaded == [] and [m.name for m in removed] == ["cgan"]
    err = _unavailable(repo, "cgan")  # its only version: unavailable, not "not found"
    assert "model.onnx does not exist" in str(err)
    assert str(err).startswith("model 'cgan' is unavailable: ")
    _unavailable(repo, "cgan", "1")
    assert repo.names() == ["dcgan"]


def test_broken_version_at_start_is_skipped(models: Path) -> None:
    broken = _add_version(models, "dcgan", "2")
    (broken / "manifest.json").write_text("{ not json")
    repo = _repo(models)
    assert repo.versions("dcgan") == ["1"]
    assert repo.get("dcgan").version == "1"  # latest of what loaded
    err = _unavailable(repo, "dcgan", "2")
    assert "manifest.json" in str(err) and "not valid JSON" in str(err)
    assert len(repo.problems) == 1 and repo.problems[0].path == str(broken)


def test_manifest_for_another_directory_is_refused(models: Path) -> None:
    target = models / "dcgan" / "7"
    shutil.copytree(models / "dcgan" / "1", target)  # manifest still says version 1
    repo = _repo(models)
    err = _unavailable(repo, "dcgan", "7")
    assert "says dcgan/1 but the directory is dcgan/7" in str(err)
    assert repo.get("dcgan").version == "1"


def test_file_that_onnx_runtime_cannot_load(models: Path) -> None:
    version_dir = _add_version(models, "dcgan", "2")
    (version_dir / "model.onnx").write_bytes(b"this is not an onnx graph")
    manifest = load_manifest(version_dir, verify_files=False)
    files = dict(manifest.files)
    files["onnx"] = dataclasses.replace(files["onnx"], sha256=sha256_file(version_dir / "model.onnx"))
    write_manifest(
        version_dir, dataclasses.replace(manifest, files=files)
    )  # the hash matches: only the runtime objects
    repo = _repo(models)
    err = _unavailable(repo, "dcgan", "2")
    assert "model.onnx" in str(err) and "ONNX Runtime cannot load it" in str(err)
    assert repo.get("dcgan").version == "1"


def test_removing_a_broken_version_clears_its_problem(models: Path) -> None:
    broken = _add_version(models, "dcgan", "2")
    (broken / "model.onnx").write_bytes(b"truncated")
    repo = _repo(models)
    assert len(repo.problems) == 1
    shutil.rmtree(broken)
    assert repo.rescan() == ([], [])
    assert repo.problems == []
    with pytest.raises(ModelNotFound):
        repo.get("dcgan", "2")


def test_mark_broken_takes_a_model_out_until_its_files_change(models: Path) -> None:
    repo = _repo(models)
    model = repo.get("cgan")
    repo.mark_broken(model, "model.onnx: the runtime failed: bad allocation")
    err = _unavailable(repo, "cgan")
    assert "model.onnx: the runtime failed" in str(err)
    assert repo.rescan() == ([], [])  # unchanged files: still out
    _unavailable(repo, "cgan")

    manifest = models / "cgan" / "1" / "manifest.json"
    stat = manifest.stat()
    os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    loaded, _ = repo.rescan()
    assert [(m.name, m.version) for m in loaded] == [("cgan", "1")]
    assert repo.problems == []
    assert repo.get("cgan") is loaded[0]


def test_hidden_files_do_not_trigger_a_reload(models: Path) -> None:
    # an atomic writer's temporary file (".name.*.tmp") beside a model is not a change
    repo = _repo(models)
    dcgan = repo.get("dcgan")
    (models / "dcgan" / "1" / ".manifest.json.abc123.tmp").write_text("half")
    assert repo.rescan() == ([], [])
    assert repo.get("dcgan") is dcgan
