"""Packaging contracts: generated code is fresh; the SDK needs no torch or onnxruntime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "sdk" / "gan_contract" / "proto"
# The OIP code lives in the server package (tritonclient ships its own `inference.*` protos).
OIP_GENERATED = ROOT / "serving" / "gan_server" / "_proto"


def _assert_fresh(tmp_path: Path, package: str, protos: list[str], committed_root: Path) -> None:
    """``package`` is the import path of the generated code, e.g. ``gan_contract/proto``."""
    """Regenerate ``protos`` as `make proto` does and compare with the committed files."""
    assert protos, "no .proto files found"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{package}=protos",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *protos,
        ],
        cwd=ROOT,
        check=True,
    )
    fresh = {p.relative_to(tmp_path / package): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert fresh
    for rel, content in fresh.items():
        committed = committed_root / rel
        assert committed.is_file(), f"{committed} is missing: run `make proto`"
        assert committed.read_bytes() == content, f"{committed} is stale: run `make proto`"


def test_generated_protobuf_code_is_fresh(tmp_path: Path) -> None:
    protos = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "protos" / "gan").rglob("*.proto"))
    _assert_fresh(tmp_path, "gan_contract/proto", protos, GENERATED)


def test_generated_oip_code_is_fresh_and_outside_the_sdk(tmp_path: Path) -> None:
    _assert_fresh(tmp_path, "gan_server/_proto", ["protos/inference/grpc_predict_v2.proto"], OIP_GENERATED)
    assert not (GENERATED / "inference").exists(), "OIP code must not be generated into the SDK"
    for package in (OIP_GENERATED, OIP_GENERATED / "inference"):
        assert (package / "__init__.py").is_file(), f"{package} is not a package"


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
