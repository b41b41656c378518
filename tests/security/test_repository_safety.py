"""A hostile or careless model repository: links out of it, FIFOs in a file's
place, and graphs that do not match their manifests.

Each broken version is left out with FAILED_PRECONDITION naming the model, in
words that name paths relative to the repository only; every other model
loads and serves, at start and on hot reload.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import grpc
import pytest
from gan_client import GanClient, ModelUnavailable
from gan_contract.errors import ModelUnavailable as DomainModelUnavailable
from gan_contract.manifest import ManifestError, load_manifest, sha256_file
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from gan_server.repository import ModelRepository

from ..conftest import start_server, stop_server


def _repo_of(bundled: Path, root: Path, *names: str) -> Path:
    for name in names:
        shutil.copytree(bundled / name / "1", root / name / "1")
    return root


def _with_version(root: Path, name: str, version: str, source: str = "1", *, hidden_first: bool = True) -> Path:
    """A copy of ``name/source`` as ``name/version``, written under a hidden name and renamed into place."""
    tmp = root / name / f".{version}.tmp"
    shutil.copytree(root / name / source, tmp)
    data = json.loads((tmp / "manifest.json").read_text())
    data["version"] = version
    (tmp / "manifest.json").write_text(json.dumps(data))
    target = root / name / version
    tmp.rename(target)
    return target


def _swap_graph(version_dir: Path, graph: Path) -> None:
    """Replace the version's model.onnx with ``graph`` and update its sha256: the file check passes."""
    (version_dir / "model.onnx").unlink()
    shutil.copy(graph, version_dir / "model.onnx")
    data = json.loads((version_dir / "manifest.json").read_text())
    data["files"]["onnx"]["sha256"] = sha256_file(version_dir / "model.onnx")
    (version_dir / "manifest.json").write_text(json.dumps(data))


def _unavailable(repo: ModelRepository, name: str, version: str = "") -> str:
    with pytest.raises(DomainModelUnavailable) as info:
        repo.get(name, version)
    return str(info.value)


def _no_absolute_paths(message: str, *paths: Path) -> None:
    for path in paths:
        for form in {str(path), os.path.realpath(path)}:
            assert form not in message, message


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A folder beside the repository, not inside it."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


@pytest.fixture()
def root(bundled_models: Path, tmp_path: Path) -> Path:
    return _repo_of(bundled_models, tmp_path / "models", "dcgan", "cgan")


# -- links out of the repository -----------------------------------------------------------------


def test_model_file_linked_out_of_the_repository_is_refused(root: Path, outside: Path) -> None:
    # The link's target is a valid graph whose sha256 matches: only where it lives is wrong.
    target = outside / "model.onnx"
    shutil.copy(root / "dcgan" / "1" / "model.onnx", target)
    (root / "dcgan" / "1" / "model.onnx").unlink()
    (root / "dcgan" / "1" / "model.onnx").symlink_to(target)
    repo = ModelRepository(root, threads=1)
    repo.load_all()
    message = _unavailable(repo, "dcgan", "1")
    assert message.startswith("model 'dcgan' version '1' is unavailable: dcgan/1/manifest.json")
    assert "model.onnx resolves outside the model repository" in message
    _no_absolute_paths(message, root, outside)
    assert repo.names() == ["cgan"]


def test_manifest_linked_out_of_the_repository_is_refused(root: Path, outside: Path) -> None:
    target = outside / "manifest.json"
    shutil.copy(root / "dcgan" / "1" / "manifest.json", target)
    (root / "dcgan" / "1" / "manifest.json").unlink()
    (root / "dcgan" / "1" / "manifest.json").symlink_to(target)
    repo = ModelRepository(root, threads=1)
    repo.load_all()
    message = _unavailable(repo, "dcgan", "1")
    assert "dcgan/1/manifest.json" in message and "resolves outside the model repository" in message
    _no_absolute_paths(message, root, outside)


def test_version_directory_linked_out_of_the_repository_is_refused(root: Path, outside: Path) -> None:
    shutil.copytree(root / "dcgan" / "1", outside / "2")
    data = json.loads((outside / "2" / "manifest.json").read_text())
    data["version"] = "2"
    (outside / "2" / "manifest.json").write_text(json.dumps(data))
    (root / "dcgan" / "2").symlink_to(outside / "2")
    repo = ModelRepository(root, threads=1)
    repo.load_all()
    message = _unavailable(repo, "dcgan", "2")
    assert "dcgan/2: the directory resolves outside the model repository" in message
    _no_absolute_paths(message, root, outside)
    assert repo.get("dcgan").version == "1"


def test_model_directory_linked_out_of_the_repository_is_refused(root: Path, outside: Path) -> None:
    shutil.copytree(root / "cgan", outside / "cgan")
    shutil.rmtree(root / "cgan")
    (root / "cgan").symlink_to(outside / "cgan")
    repo = ModelRepository(root, threads=1)
    repo.load_all()
    message = _unavailable(repo, "cgan")
    assert "cgan/1: the directory resolves outside the model repository" in message
    _no_absolute_paths(message, root, outside)
    assert repo.names() == ["dcgan"]


def test_links_that_stay_inside_the_repository_are_fine(root: Path) -> None:
    # A version sharing the previous version's graph, and a repository that is itself a link.
    v2 = _with_version(root, "dcgan", "2")
    (v2 / "model.onnx").unlink()
    (v2 / "model.onnx").symlink_to(Path("..") / "1" / "model.onnx")
    alias = root.parent / "models-link"
    alias.symlink_to(root)
    repo = ModelRepository(alias, threads=1)
    repo.load_all()
    assert repo.problems == []
    assert repo.versions("dcgan") == ["1", "2"]


def test_kubernetes_volume_layout_loads(root: Path, tmp_path: Path) -> None:
    # A projected volume: the real files under ..<timestamp>/, ..data linking there, and each
    # top-level name a link through ..data. Nothing leaves the root; the ".." names are skipped.
    volume = tmp_path / "volume"
    shutil.copytree(root, volume / "..2026_01_01_00_00_00.1")
    (volume / "..data").symlink_to("..2026_01_01_00_00_00.1")
    for name in ("dcgan", "cgan"):
        (volume / name).symlink_to(Path("..data") / name)
    repo = ModelRepository(volume, threads=1)
    repo.load_all()
    assert repo.problems == [] and repo.names() == ["cgan", "dcgan"]


def test_symlink_out_seen_by_a_client(bundled_models: Path, tmp_path: Path, outside: Path) -> None:
    root = _repo_of(bundled_models, tmp_path / "models", "dcgan", "cgan")
    target = outside / "model.onnx"
    shutil.copy(root / "cgan" / "1" / "model.onnx", target)
    (root / "cgan" / "1" / "model.onnx").unlink()
    (root / "cgan" / "1" / "model.onnx").symlink_to(target)
    srv = start_server(root, tmp_path / "log")
    try:
        with GanClient(srv.address, retry=False, timeout=20) as c:
            with pytest.raises(ModelUnavailable) as info:
                c.sample("cgan", n=1, digit=1)
            assert info.value.code == "FAILED_PRECONDITION"
            assert "'cgan'" in info.value.details and "resolves outside the model repository" in info.value.details
            _no_absolute_paths(info.value.details, root, outside, tmp_path)
            assert len(c.sample("dcgan", n=2)) == 2
    finally:
        assert stop_server(srv) == 0
    assert str(root / "cgan" / "1") in srv.log()  # the operator's log keeps the full path


# -- FIFOs and other non-files -----------------------------------------------------------------


def test_fifo_as_a_model_file_is_refused_without_blocking(root: Path) -> None:
    onnx = root / "dcgan" / "1" / "model.onnx"
    onnx.unlink()
    os.mkfifo(onnx)
    t0 = time.monotonic()
    with pytest.raises(ManifestError, match="model.onnx is a FIFO, not a regular file"):
        load_manifest(root / "dcgan" / "1")
    repo = ModelRepository(root, threads=1)
    repo.load_all()
    assert time.monotonic() - t0 < 30  # (it would block forever)
    assert "model.onnx is a FIFO, not a regular file" in _unavailable(repo, "dcgan")


def test_directory_as_a_manifest_is_refused(root: Path) -> None:
    v2 = _with_version(root, "dcgan", "2")
    (v2 / "manifest.json").unlink()
    (v2 / "manifest.json").mkdir()
    repo = ModelRepository(root, threads=1)
    repo.load_all()
    assert "manifest.json: field '<file>': is a directory, not a regular file" in _unavailable(repo, "dcgan", "2")


def test_fifo_manifest_does_not_wedge_the_reload_scan(bundled_models: Path, tmp_path: Path) -> None:
    root = _repo_of(bundled_models, tmp_path / "models", "dcgan", "cgan")
    srv = start_server(root, tmp_path / "log", "--reload-interval", "0.2", "--grace", "10")
    try:
        with GanClient(srv.address, retry=False, timeout=10) as c:
            fifo_dir = root / "dcgan" / "2"
            fifo_dir.mkdir()
            os.mkfifo(fifo_dir / "manifest.json")  # opened for reading, this blocks until a writer comes
            time.sleep(1.0)  # a few scans meet the FIFO
            _with_version(root, "cgan", "2")  # added later: the scans must still run
            t0 = time.monotonic()
            while c.model_info("cgan").versions != ("1", "2"):
                assert time.monotonic() - t0 < 10, "the reload scan is stuck"
                time.sleep(0.1)
            assert c.sample("cgan", n=1, digit=3).version == "2"
            with pytest.raises(ModelUnavailable, match="is a FIFO, not a regular file"):
                c.sample("dcgan", version="2")
            assert len(c.sample("dcgan", n=1)) == 1
        # and no thread is left blocked on it: SIGTERM exits at once (no call is in flight)
        t0 = time.monotonic()
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(20) == 0
        assert time.monotonic() - t0 < 5
    finally:
        stop_server(srv)


# -- graphs that do not match their manifest ---------------------------------------------------


def _mismatched_repo(bundled_models: Path, root: Path) -> Path:
    """dcgan, cgan and infogan; dcgan/1 carries cgan's graph (inputs z and label), sha256 updated."""
    _repo_of(bundled_models, root, "dcgan", "cgan", "infogan")
    _swap_graph(root / "dcgan" / "1", bundled_models / "cgan" / "1" / "model.onnx")
    return root


def test_graph_with_other_inputs_is_left_out_at_load(bundled_models: Path, tmp_path: Path) -> None:
    repo = ModelRepository(_mismatched_repo(bundled_models, tmp_path / "models"), threads=1)
    repo.load_all()
    message = _unavailable(repo, "dcgan")
    assert "dcgan/1/model.onnx: the graph's inputs" in message
    assert "label:int64" in message and "do not match the manifest's (z:float32[-1, 100])" in message
    assert repo.names() == ["cgan", "infogan"]


def test_graph_of_another_shape_fails_its_warm_up(root: Path, bundled_models: Path) -> None:
    # bigan's graph takes z of 32 values; a manifest that says 32 but images of 32x32 passes every
    # static check (names, dtypes, the latent size) and only running it shows the difference.
    v2 = _with_version(root, "dcgan", "2")
    _swap_graph(v2, bundled_models / "bigan" / "1" / "model.onnx")
    data = json.loads((v2 / "manifest.json").read_text())
    data["latent"]["dim"] = 32
    data["inputs"][0]["shape"] = [-1, 32]
    data["image"]["height"] = 32
    data["output"]["shape"] = [-1, 1, 32, 28]
    (v2 / "manifest.json").write_text(json.dumps(data))
    repo = ModelRepository(root, threads=1)
    repo.load_all()
    message = _unavailable(repo, "dcgan", "2")
    assert "warm-up: the graph made images of shape [1, 28, 28, 1], the manifest says [1, 32, 28, 1]" in message
    assert repo.get("dcgan").version == "1"


def test_mismatched_graph_at_start_leaves_the_others_serving(bundled_models: Path, tmp_path: Path) -> None:
    # Before: the warm-up's exception ended the whole server (exit status 2).
    root = _mismatched_repo(bundled_models, tmp_path / "models")
    srv = start_server(root, tmp_path / "log")
    try:
        assert "dcgan" not in srv.line.split("serving", 1)[1]
        with GanClient(srv.address, retry=False, timeout=20) as c:
            with pytest.raises(ModelUnavailable) as info:
                c.sample("dcgan", n=1)
            assert info.value.code == "FAILED_PRECONDITION" and "model 'dcgan'" in info.value.details
            _no_absolute_paths(info.value.details, root, tmp_path)
            assert len(c.sample("cgan", n=2, digit=4)) == 2
            assert len(c.sample("infogan", n=2, digit=4)) == 2
    finally:
        assert stop_server(srv) == 0


def test_mismatched_graph_on_reload_leaves_the_scan_and_the_others_alone(bundled_models: Path, tmp_path: Path) -> None:
    # Before: the warm-up's exception aborted the scan; the broken version was published anyway
    # (answering INTERNAL) and versions that came with it were never warmed up.
    root = _repo_of(bundled_models, tmp_path / "models", "dcgan", "cgan")
    srv = start_server(root, tmp_path / "log", "--reload-interval", "0.2")
    try:
        with GanClient(srv.address, retry=False, timeout=20) as c:
            tmp = root / "dcgan" / ".2.tmp"
            shutil.copytree(root / "dcgan" / "1", tmp)
            data = json.loads((tmp / "manifest.json").read_text())
            data["version"] = "2"
            (tmp / "manifest.json").write_text(json.dumps(data))
            _swap_graph(tmp, root / "cgan" / "1" / "model.onnx")
            tmp.rename(root / "dcgan" / "2")
            _with_version(root, "cgan", "2")  # in the same scan
            t0 = time.monotonic()
            while c.model_info("cgan").versions != ("1", "2"):
                assert time.monotonic() - t0 < 15
                time.sleep(0.1)
            with pytest.raises(ModelUnavailable) as info:
                c.sample("dcgan", n=1, version="2")
            assert "model 'dcgan' version '2'" in info.value.details
            assert c.model_info("dcgan").versions == ("1",)
            assert c.sample("dcgan", n=1).version == "1"
            assert c.sample("cgan", n=1, digit=2).version == "2"
    finally:
        assert stop_server(srv) == 0
    assert "repository scan failed" not in srv.log()


def test_stub_sees_failed_precondition_for_a_broken_version(bundled_models: Path, tmp_path: Path) -> None:
    root = _mismatched_repo(bundled_models, tmp_path / "models")
    srv = start_server(root, tmp_path / "log")
    try:
        with grpc.insecure_channel(srv.address) as channel:
            stub = pb_grpc.GeneratorStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.GetModel(pb.GetModelRequest(name="dcgan"), timeout=10)
            assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert stub.GetModel(pb.GetModelRequest(name="cgan"), timeout=10).name == "cgan"
    finally:
        stop_server(srv)
