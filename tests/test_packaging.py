"""Packaging contracts: generated code is fresh; the SDK needs no torch or onnxruntime."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from tests import pins

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "sdk" / "gan_contract" / "proto"
# The OIP code lives in the server package (tritonclient ships its own `inference.*` protos).
OIP_GENERATED = ROOT / "serving" / "gan_server" / "_proto"


def _load_generator():
    spec = importlib.util.spec_from_file_location("protos_generate", ROOT / "protos" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Everything `make proto` writes, written under a temporary root by the same script."""
    out = tmp_path_factory.mktemp("proto")
    done = subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--sdk-out", str(out), "--server-out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode == generator.TOOLS_UNAVAILABLE:
        pytest.skip(f"the pinned code generator cannot be installed here: {done.stderr.strip()[-1000:]}")
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _assert_fresh(regenerated: Path, package: str, committed_root: Path) -> None:
    """The files generated for import package ``package`` (e.g. ``gan_contract/proto``) equal the committed ones."""
    root = regenerated / package
    fresh = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert fresh
    for rel, content in fresh.items():
        committed = committed_root / rel
        assert committed.is_file(), f"{committed} is missing: run `make proto`"
        assert committed.read_bytes() == content, f"{committed} is stale: run `make proto`"


def test_generated_protobuf_code_is_fresh(regenerated: Path) -> None:
    _assert_fresh(regenerated, "gan_contract/proto", GENERATED)


def test_generated_oip_code_is_fresh_and_outside_the_sdk(regenerated: Path) -> None:
    _assert_fresh(regenerated, "gan_server/_proto", OIP_GENERATED)
    assert not (GENERATED / "inference").exists(), "OIP code must not be generated into the SDK"
    for package in (OIP_GENERATED, OIP_GENERATED / "inference"):
        assert (package / "__init__.py").is_file(), f"{package} is not a package"


def _generated_versions() -> tuple[set[Version], set[Version]]:
    protobuf, grpc = set(), set()
    for path in [*GENERATED.rglob("*_pb2.py"), *OIP_GENERATED.rglob("*_pb2.py")]:
        protobuf |= {Version(v) for v in re.findall(r"^# Protobuf Python Version: (\S+)$", path.read_text(), re.M)}
    for path in [*GENERATED.rglob("*_pb2_grpc.py"), *OIP_GENERATED.rglob("*_pb2_grpc.py")]:
        grpc |= {Version(v) for v in re.findall(r"^GRPC_GENERATED_VERSION = '(\S+)'$", path.read_text(), re.M)}
    return protobuf, grpc


def test_declared_runtime_ranges_match_the_generated_code() -> None:
    """The generated code refuses a protobuf older than its gencode and a grpcio older than its
    grpcio-tools; protobuf supports gencode of major V on runtimes V and V+1 only."""
    protobuf, grpc = _generated_versions()
    assert len(protobuf) == 1 and len(grpc) == 1, (protobuf, grpc)
    (gencode,), (grpc_generated,) = protobuf, grpc
    assert grpc_generated == Version(generator.pinned_version())
    pb = pins.requirement("protobuf")
    assert pins.floor(pb) >= gencode, f"{pb}: the generated code needs protobuf>={gencode}"
    assert pins.floor(pb).major == gencode.major, f"{pb}: lowest major should be the gencode's ({gencode})"
    assert not pb.specifier.contains(f"{gencode.major + 2}.0.0"), f"{pb}: gencode {gencode} is unsupported there"
    assert pb.specifier.contains(f"{gencode.major + 1}.99"), f"{pb}: protobuf {gencode.major + 1} runs this code"
    for extras, name in [((), "grpcio"), ((), "grpcio-health-checking"), (("serve",), "grpcio-reflection")]:
        req = pins.requirement(name, *extras)
        assert pins.floor(req) >= grpc_generated, f"{req}: the generated code needs grpcio>={grpc_generated}"


# Imports of the heavy runtimes fail inside this child, so the SDK and its CLI
# must work without them, as in an install with only the base dependencies.
_BLOCKER = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {'torch', 'onnxruntime', 'onnx', 'grpc_reflection'}:
            raise ImportError('blocked in this test: ' + name)
sys.meta_path.insert(0, Block())
"""


def test_sdk_imports_without_server_or_training_dependencies() -> None:
    code = (
        _BLOCKER
        + """
import gan_client
from gan_client.cli import cli
from click.testing import CliRunner
result = CliRunner().invoke(cli, ['--help'])
assert result.exit_code == 0, result.output
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'onnxruntime', 'onnx'})
assert not heavy, heavy
print('ok', gan_client.GanClient.__name__)
"""
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok GanClient"


def test_server_package_import_does_not_load_torch() -> None:
    # Nor the OIP messages: they share the package name `inference` with stock
    # clients such as tritonclient, and two copies in one process collide.
    code = (
        "import sys, gan_server.cli, gan_server.server; "
        "print(sorted(m for m in sys.modules if m.startswith('torch') or m.startswith('gan_server._proto')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_playground_ships_as_package_data() -> None:
    """gan-server --http-port serves / from files inside the package: pyproject must include them."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib", reason="Python >= 3.11 reads pyproject.toml")
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gan_server"]
    static = ROOT / "serving" / "gan_server" / "static"
    files = sorted(p.relative_to(static.parent).as_posix() for p in static.iterdir())
    assert {"static/index.html", "static/app.js", "static/style.css"} <= set(files)
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data] gan_server: {missing}"
