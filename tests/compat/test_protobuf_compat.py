"""The SDK and the server across the protobuf/grpcio range that pyproject.toml declares.

Each test builds a virtualenv from PyPI (cached, see ``venvs.py``) holding
this repository's wheel, and talks to a real gan-server over the bundled models:

- **next to tritonclient[grpc]>=2.73** (which pins protobuf<7): the base
  install imports next to ``tritonclient.grpc`` without a warning and samples
  from this environment's server through ``gan_client.GanClient``; the bytes
  equal those this environment's SDK (protobuf 7) receives for the same
  requests;
- **on the lowest declared versions** of every base and ``serve`` dependency
  (the ``>=`` floors parsed from pyproject.toml): gan-server runs from that
  venv, its SDK samples and checks health, and the bytes equal the golden
  recording.

``make test-compat`` runs them (``-m compat``; excluded from ``make test``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from packaging.version import Version

from tests import pins
from tests.compat import venvs
from tests.conftest import RunningServer, start_server, stop_server
from tests.golden.cases import OUT as GOLDEN
from tests.golden.cases import served_digests

pytestmark = [pytest.mark.compat, pytest.mark.timeout(2400)]

PROBE = Path(__file__).with_name("probe.py")
TRITON = "tritonclient[grpc]>=2.73"
PROBE_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return venvs.build_wheel(tmp_path_factory.mktemp("wheel"))
    except venvs.CommandFailed as exc:
        pytest.fail(f"cannot build the wheel: {exc}")


def _ensure(name: str, requirements: list[str], wheel: Path, extras: tuple[str, ...] = (), **kw) -> Path:
    started = time.monotonic()
    try:
        venv = venvs.ensure(name, requirements, wheel, extras, **kw)
    except venvs.CommandFailed as exc:
        pytest.fail(f"cannot set up the {name} venv: {exc}")
    print(f"{name} venv ready in {time.monotonic() - started:.1f}s: {venv}")
    assert "torch" not in venvs.installed(venv)
    return venv


def _probe(venv: Path, address: str, models: Path, out: Path, *flags: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    try:
        venvs.run(
            [str(venvs.python(venv)), str(PROBE), address, str(models), str(out), *flags],
            timeout=PROBE_TIMEOUT_S,
            cwd=out,
        )
    except venvs.CommandFailed as exc:
        pytest.fail(f"the SDK in {venv.name} failed: {exc}")
    report = json.loads((out / "report.json").read_text())
    installed_sdk = Path(report["gan_client_file"]).resolve()
    assert installed_sdk.is_relative_to(venv.resolve()), f"{installed_sdk}: not the venv's installed SDK"
    gencode = [w for w in report["import_warnings"] if "protobuf" in w.lower() or "gencode" in w.lower()]
    assert not gencode, gencode
    assert report["health"] == report["health_generator"] == "SERVING"
    return report


def _main_sdk_bytes(address: str) -> bytes:
    from gan_client import GanClient

    from tests.compat.probe import RAW_REQUEST

    req = dict(RAW_REQUEST)
    with GanClient(address) as client:
        return client.sample(req.pop("model"), req.pop("n"), **req).images.tobytes()


def test_sdk_next_to_tritonclient_grpc(server: RunningServer, bundled_models: Path, wheel: Path, tmp_path: Path):
    venv = _ensure("tritonclient", [TRITON], wheel)
    have = venvs.installed(venv)
    assert Version(have["tritonclient"]) >= Version("2.73"), have["tritonclient"]
    assert Version(have["protobuf"]).major == 6, f"tritonclient[grpc] should hold protobuf 6, got {have['protobuf']}"

    report = _probe(venv, server.address, bundled_models, tmp_path / "probe", "--triton")
    assert Version(report["protobuf_runtime"]).major == 6
    assert report["oip_live"] is True
    assert report["oip_dcgan_inputs"], "tritonclient got no model metadata"
    # The same requests through this environment's SDK (protobuf 7): same bytes.
    assert report["digests"] == served_digests(server.address, bundled_models)
    assert (tmp_path / "probe" / "infogan-7.bin").read_bytes() == _main_sdk_bytes(server.address)
    print(
        f"tritonclient {have['tritonclient']}, protobuf {have['protobuf']}, grpcio {have['grpcio']}, "
        f"grpcio-health-checking {have['grpcio-health-checking']}: {len(report['digests'])} requests match"
    )


def test_tritonclient_grpc_added_to_an_existing_install(
    server: RunningServer, bundled_models: Path, wheel: Path, tmp_path: Path
):
    """The README's recipe: naming both in one command moves protobuf and grpc's health stubs back to 6.

    (`pip install 'tritonclient[grpc]'` alone would downgrade protobuf under
    grpcio-health-checking 1.82+, whose protobuf 7 gencode then refuses to load.)
    """
    venv = _ensure("tritonclient-later", [TRITON], wheel, sdk_first=True)
    have = venvs.installed(venv)
    assert Version(have["protobuf"]).major == 6, have["protobuf"]
    assert Version(have["grpcio-health-checking"]) < Version("1.82"), have["grpcio-health-checking"]
    report = _probe(venv, server.address, bundled_models, tmp_path / "probe", "--triton")
    assert report["digests"] == served_digests(server.address, bundled_models)


def test_unpinned_tritonclient_grpc_resolves_to_a_current_release(wheel: Path, tmp_path: Path):
    """`pip install gan-platform 'tritonclient[grpc]'` must not backtrack to an old tritonclient."""
    venv = _ensure("tritonclient", [TRITON], wheel)
    report = tmp_path / "resolution.json"
    try:
        venvs.run(
            [
                str(venvs.python(venv)),
                *("-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--only-binary", ":all:"),
                *("--report", str(report), str(wheel), "tritonclient[grpc]"),
            ],
            timeout=venvs.INSTALL_TIMEOUT_S,
        )
    except venvs.CommandFailed as exc:
        pytest.fail(f"no installable set for gan-platform + tritonclient[grpc]: {exc}")
    install = json.loads(report.read_text())["install"]
    chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in install}
    assert Version(chosen["tritonclient"]) >= Version("2.73"), chosen
    print(f"resolved tritonclient {chosen['tritonclient']}, protobuf {chosen['protobuf']}, grpcio {chosen['grpcio']}")


def test_lowest_declared_versions_serve_and_sample(bundled_models: Path, wheel: Path, tmp_path: Path):
    lowest = pins.lowest("serve")
    venv = _ensure("lowest", lowest, wheel, ("serve",))
    have = venvs.installed(venv)
    for pin in lowest:
        name, low = pin.split("==")
        assert Version(have[name.lower()]) == Version(low), f"{name}: installed {have[name.lower()]}, floor {low}"

    log = tmp_path / "server.log"
    try:
        srv = start_server(bundled_models, log, timeout=180, bin_dir=venvs.bin_dir(venv), env=venvs.child_env())
    except RuntimeError as exc:
        pytest.fail(f"gan-server on the lowest versions: {exc}")
    try:
        report = _probe(venv, srv.address, bundled_models, tmp_path / "probe")
        assert report["protobuf_runtime"] == str(pins.floor(pins.requirement("protobuf")))
        assert report["models"] == sorted(p.name for p in bundled_models.iterdir() if p.is_dir())
        recorded = json.loads(GOLDEN.read_text())["served"]
        changed = [k for k in recorded if report["digests"].get(k) != recorded[k]]
        assert not changed, f"{len(changed)} of {len(recorded)} golden requests differ, e.g. {changed[:3]}"
        # This environment's SDK (protobuf 7, newest grpcio) against that server.
        assert served_digests(srv.address, bundled_models) == report["digests"]
        assert (tmp_path / "probe" / "infogan-7.bin").read_bytes() == _main_sdk_bytes(srv.address)
        health = subprocess.run(
            [str(venvs.bin_dir(venv) / "gan-client"), "--server", srv.address, "health"],
            capture_output=True,
            text=True,
            timeout=60,
            env=venvs.child_env(),
        )
        assert (health.returncode, health.stdout.strip()) == (0, "SERVING"), health.stderr
    finally:
        code = stop_server(srv)
    assert code == 0, f"gan-server exited {code}:\n{srv.log()[-3000:]}"
    names = [pin.split("==")[0] for pin in lowest]
    print("lowest: " + ", ".join(f"{name} {have[name.lower()]}" for name in names))


def test_cache_dir_is_ignored_by_git():
    if shutil.which("git") is None or not (pins.ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    probe = venvs.CACHE / "x"
    if not probe.resolve().is_relative_to(pins.ROOT.resolve()):
        pytest.skip(f"{venvs.CACHE} is outside the checkout")
    out = subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=pins.ROOT, timeout=30)
    assert out.returncode == 0, f"{venvs.CACHE} is not ignored by git"
