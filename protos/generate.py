"""Regenerate the Python code for protos/: `make proto` and the freshness tests run this.

The gan.v1 code goes to ``sdk/gan_contract/proto/`` and the Open Inference
Protocol code to ``serving/gan_server/_proto/``. The generator is the
grpcio-tools pinned in ``protos/protoc-requirements.txt``, installed on first
use into a virtualenv of its own (``--venv``, default ``$PROTO_VENV`` or
``.venv-proto``): the version of protoc decides which protobuf and grpcio
runtimes the committed code accepts, and that pin is older than the protobuf
and grpcio the development environment runs on.

Standard library only. Exit status 3 means the generator could not be installed
(no network, no wheel for this Python); the tests skip on it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTOS = ROOT / "protos"
REQUIREMENTS = PROTOS / "protoc-requirements.txt"
TOOLS_UNAVAILABLE = 3
INSTALL_TIMEOUT_S = 600


class ToolsUnavailable(RuntimeError):
    pass


def pinned_version() -> str:
    """The ``grpcio-tools==X`` of the requirements file."""
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("grpcio-tools=="):
            return line.split("==", 1)[1].strip()
    raise SystemExit(f"{REQUIREMENTS}: no grpcio-tools==<version> line")


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('grpcio-tools'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() if out.returncode == 0 else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One installer at a time (two test runs, or a test run and `make proto`)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tool_python(venv: Path) -> Path:
    """The interpreter of ``venv`` with the pinned grpcio-tools, (re)creating it when needed."""
    wanted = pinned_version()
    python = _python(venv)
    if _installed_version(python) == wanted:
        return python
    with _locked(venv.with_name(venv.name + ".lock")):
        if _installed_version(python) == wanted:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "--only-binary", ":all:", "-r", str(REQUIREMENTS)],
        ]
        for step in steps:
            try:
                out = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise ToolsUnavailable(f"timed out after {INSTALL_TIMEOUT_S}s: {' '.join(step)}") from None
            if out.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise ToolsUnavailable(f"{' '.join(step)} failed:\n{(out.stdout + out.stderr)[-3000:]}")
        got = _installed_version(python)
        if got != wanted:
            raise ToolsUnavailable(f"{venv} has grpcio-tools {got}, wanted {wanted}")
    return python


def _protoc(python: Path, package: str, out: Path, protos: list[str]) -> None:
    """``protos`` (paths under protos/) compiled as import package ``package`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "grpc_tools.protoc",
            f"-I{package}=protos",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *protos,
        ],
        cwd=ROOT,
        check=True,
        timeout=300,
    )


def gan_protos() -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for p in (PROTOS / "gan").rglob("*.proto"))


OIP_PROTOS = ["protos/inference/grpc_predict_v2.proto"]


def generate(python: Path, sdk_out: Path, server_out: Path) -> None:
    _protoc(python, "gan_contract/proto", sdk_out, gan_protos())
    _protoc(python, "gan_server/_proto", server_out, OIP_PROTOS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path(os.environ.get("PROTO_VENV") or ROOT / ".venv-proto"))
    parser.add_argument("--sdk-out", type=Path, default=ROOT / "sdk", help="root for gan_contract/proto/")
    parser.add_argument("--server-out", type=Path, default=ROOT / "serving", help="root for gan_server/_proto/")
    args = parser.parse_args(argv)
    try:
        python = tool_python(args.venv.resolve())
    except ToolsUnavailable as exc:
        print(f"cannot install grpcio-tools=={pinned_version()} into {args.venv}: {exc}", file=sys.stderr)
        return TOOLS_UNAVAILABLE
    generate(python, args.sdk_out.resolve(), args.server_out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
