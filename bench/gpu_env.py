"""bench/gpu.sh's environment checks, standard library only.

    python bench/gpu_env.py check [--tests]      # what the torch path cannot import; exit 1 if anything
    python bench/gpu_env.py unpack WHEELS SITE   # unpack the wheels this interpreter can use into SITE

``check`` imports what gan-server (``--backend torchscript``), the SDK and
(with ``--tests``) the gpu-marked tests import, including the generated gRPC
code, whose import also checks the grpcio and protobuf versions. It prints one
line per missing package: the distribution to install and why.

``unpack`` is a pip-less install of carried wheels: a wheel is a zip of
what goes on ``sys.path`` (its ``.data`` scripts and headers are not needed
here). Only wheels for this CPython and platform are taken, one version per
distribution (the newest).
"""

from __future__ import annotations

import importlib
import platform
import re
import sys
import zipfile
from pathlib import Path

# (module to import, distribution that provides it)
SERVER = [
    ("numpy", "numpy"),
    ("torch", "torch (with CUDA, from the machine: not carried)"),
    ("grpc", "grpcio"),
    ("google.protobuf", "protobuf"),
    ("grpc_health.v1.health", "grpcio-health-checking"),
    ("grpc_reflection.v1alpha.reflection", "grpcio-reflection"),
    ("prometheus_client", "prometheus-client"),
    ("click", "click"),
    # the generated code: refuses a grpcio / protobuf older than it was generated for
    ("gan_contract.proto.gan.v1.generator_pb2_grpc", "grpcio>=1.85.1 and protobuf>=7.35.1,<8"),
    ("gan_server.server", "gan-server's imports (see the lines above)"),
    ("gan_client", "the SDK's imports (see the lines above)"),
]
TESTS = [("pytest", "pytest"), ("pytest_timeout", "pytest-timeout (optional)")]

_WHEEL = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)


def check(tests: bool) -> int:
    missing = []
    for module, dist in SERVER + (TESTS if tests else []):
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - ImportError, or a version check's error
            if module == "pytest_timeout":
                continue
            missing.append(f"  {dist}: import {module} failed: {type(exc).__name__}: {exc}")
    if missing:
        print("missing or unusable:")
        print("\n".join(missing))
        return 1
    return 0


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.+-]", version))


def compatible(filename: str) -> bool:
    m = _WHEEL.match(filename)
    if not m:
        return False
    here = f"cp{sys.version_info.major}{sys.version_info.minor}"
    pys, abis, plats = m["py"].split("."), m["abi"].split("."), m["plat"].split(".")
    machine = platform.machine()
    plat_ok = "any" in plats or any(p.startswith(("manylinux", "linux")) and p.endswith(machine) for p in plats)
    if not plat_ok or (sys.platform != "linux" and "any" not in plats):
        return False
    if "none" in abis and any(p in ("py3", "py2.py3") or p == here for p in pys):
        return True
    if here in abis:
        return True
    if "abi3" in abis:  # cpXY-abi3: any CPython >= X.Y
        lowest = min((int(p[3:]) for p in pys if p.startswith("cp3")), default=99)
        return sys.version_info.minor >= lowest
    return False


def unpack(wheels: Path, site: Path) -> int:
    site.mkdir(parents=True, exist_ok=True)
    best: dict[str, Path] = {}
    for path in sorted(wheels.glob("*.whl")):
        if not compatible(path.name):
            continue
        m = _WHEEL.match(path.name)
        name = m["name"].lower().replace("_", "-")
        if name not in best or _version_key(m["version"]) > _version_key(_WHEEL.match(best[name].name)["version"]):
            best[name] = path
    for _, path in sorted(best.items()):
        with zipfile.ZipFile(path) as z:
            z.extractall(site)
        print(f"  unpacked {path.name}")
    if not best:
        print(f"  no wheel in {wheels} fits CPython {platform.python_version()} on {platform.machine()}")
    return 0


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "check":
        return check("--tests" in sys.argv[2:])
    if len(sys.argv) == 4 and sys.argv[1] == "unpack":
        return unpack(Path(sys.argv[2]), Path(sys.argv[3]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
