"""Shared fixtures: a real gan-server on a free loopback port.

The server runs as a subprocess exactly as users start it (``gan-server
--port 0``); the fixture reads the bound port from its first stdout line.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = Path(os.environ.get("GAN_TEST_MODELS", ROOT / "models"))
BIN = Path(sys.executable).parent


@dataclass
class RunningServer:
    process: subprocess.Popen
    address: str
    log_path: Path
    line: str = ""  # the listening line

    @property
    def metrics_url(self) -> str | None:
        words = self.line.split()
        if "metrics" in words:
            return f"http://{words[words.index('metrics') + 2]}/metrics"
        return None

    @property
    def http_address(self) -> str | None:
        """HOST:PORT of the HTTP side (``--http-port``), from the listening line."""
        words = self.line.split()
        if "http" in words:
            return words[words.index("http") + 2]
        return None

    @property
    def http_url(self) -> str:
        assert self.http_address, f"the server was started without --http-port: {self.line}"
        return f"http://{self.http_address}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    models: Path,
    log_path: Path,
    *extra: str,
    timeout: float = 60.0,
    bin_dir: Path = BIN,
    env: dict[str, str] | None = None,
) -> RunningServer:
    """Start gan-server on 127.0.0.1 with --port 0 and wait for its listening line.

    ``bin_dir``: the environment whose gan-server runs (default: this one's);
    ``env``: its environment variables (default: this process's).
    """
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(bin_dir / "gan-server"), "--models", str(models), "--host", "127.0.0.1", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=log,
        env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    line = b""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(b"gan-server listening on "):
            break
        if proc.poll() is not None:
            break
    else:
        proc.kill()
    if not line.startswith(b"gan-server listening on "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"gan-server did not start: {log_path.read_text(errors='replace')[-2000:]}")
    address = line.split()[3].decode()
    return RunningServer(proc, address, log_path, line.decode().strip())


def stop_server(server: RunningServer) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    if server.process.stdout:
        server.process.stdout.close()
    return server.process.returncode


@pytest.fixture(scope="session")
def bundled_models() -> Path:
    needed = ["dcgan", "cgan", "infogan"]
    missing = [n for n in needed if not (BUNDLED / n).is_dir()]
    if missing:
        pytest.fail(f"bundled models missing: {missing}; run `make models`")
    return BUNDLED


@pytest.fixture(scope="session")
def server(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(bundled_models, tmp_path_factory.mktemp("server") / "server.log")
    yield srv
    code = stop_server(srv)
    assert code == 0, f"gan-server exited with {code}:\n{srv.log()[-2000:]}"


@pytest.fixture()
def repo_copy(bundled_models: Path, tmp_path: Path) -> Path:
    """A private copy of the bundled repository that a test may break."""
    dest = tmp_path / "models"
    shutil.copytree(bundled_models, dest)
    return dest


@pytest.fixture()
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
