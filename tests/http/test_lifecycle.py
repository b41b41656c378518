"""The HTTP side's life: drain on SIGTERM, metrics, and ``--processes`` (every
worker serves the shared HTTP port)."""

from __future__ import annotations

import io
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..conftest import BIN, start_server, stop_server
from .conftest import call

SAMPLE = "HTTP GET /v1/models/{name}/sample.png"


def _counts(url: str) -> dict[tuple, float]:
    """gan_requests_total by (method, model, code)."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out: dict[tuple, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "gan_requests_total":
                key = (s.labels["method"], s.labels["model"], s.labels["code"])
                out[key] = out.get(key, 0.0) + s.value
    return out


def test_sigterm_lets_in_flight_requests_finish_and_refuses_new_ones(bundled_models: Path, tmp_path: Path) -> None:
    srv = start_server(bundled_models, tmp_path / "log", "--http-port", "0", "--grace", "30")
    results: list[object] = []

    def fetch(seed: int) -> None:
        try:
            reply = call(f"{srv.http_url}/v1/models/infogan/sample.npy?n=4096&seed={seed}", timeout=90)
            results.append(np.load(io.BytesIO(reply.body)).shape[0] if reply.status == 200 else reply.status)
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results.append(exc)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the requests are in flight (6 x 4096 images take seconds on 2 cores)
    srv.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    refused = call(srv.http_url + "/v1/models", timeout=10)
    ready = call(srv.http_url + "/v2/health/ready", timeout=10)
    live = call(srv.http_url + "/v2/health/live", timeout=10)
    for t in threads:
        t.join(90)
    code = srv.process.wait(60)
    assert results == [4096] * 6, results
    assert refused.status == 503, refused.body
    assert refused.json()["error"] == "server is shutting down; retry"
    assert refused.headers["Retry-After"] == "1"
    assert (ready.status, ready.json()) == (503, {"ready": False})
    assert live.status == 200
    assert code == 0, srv.log()[-2000:]
    assert "draining" in srv.log()


def test_http_calls_are_counted_in_the_metrics(bundled_models: Path, tmp_path: Path) -> None:
    srv = start_server(bundled_models, tmp_path / "log", "--http-port", "0", "--metrics-port", "0")
    try:
        assert srv.metrics_url and srv.http_address, srv.line
        for seed in range(3):
            assert call(f"{srv.http_url}/v1/models/infogan/sample.png?n=2&seed={seed}").status == 200
        assert call(f"{srv.http_url}/v1/models/infogan/sample.png?n=0").status == 400
        assert call(f"{srv.http_url}/v1/models/no-such-model/sample.png").status == 404
        assert call(f"{srv.http_url}/v2/health/ready").status == 200
        counts = _counts(srv.metrics_url)
        assert counts[(SAMPLE, "infogan", "OK")] == 3
        assert counts[(SAMPLE, "infogan", "INVALID_ARGUMENT")] == 1
        assert counts[(SAMPLE, "unknown", "NOT_FOUND")] == 1  # caller-chosen names never become labels
        assert counts[("HTTP GET /v2/health/ready", "", "OK")] == 1
    finally:
        assert stop_server(srv) == 0


@pytest.fixture(scope="module")
def small_repo(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("http-procs") / "models"
    for name in ("dcgan", "infogan"):
        shutil.copytree(bundled_models / name, dest / name)
    return dest


def test_every_process_serves_http_on_the_shared_port(small_repo: Path, tmp_path: Path) -> None:
    srv = start_server(
        small_repo,
        tmp_path / "log",
        "--processes",
        "2",
        "--http-port",
        "0",
        "--metrics-port",
        "0",
        "--workers",
        "1",
        "--threads",
        "1",
    )
    try:
        assert srv.http_address and srv.metrics_url, srv.line
        first = call(f"{srv.http_url}/v1/models/dcgan/sample.npy?n=3&seed=5").body
        for _ in range(40):  # a fresh connection each: the kernel spreads them over the processes
            assert call(f"{srv.http_url}/v1/models/dcgan/sample.npy?n=3&seed=5").body == first
        assert call(f"{srv.http_url}/v2/health/ready").status == 200
        counts = _counts(srv.metrics_url)
        assert counts[("HTTP GET /v1/models/{name}/sample.npy", "dcgan", "OK")] == 41
        text = urllib.request.urlopen(srv.metrics_url, timeout=5).read().decode()
        per_worker = [
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "gan_worker_requests_total"
        ]
        assert len(per_worker) == 2 and all(v > 0 for v in per_worker), per_worker
    finally:
        assert stop_server(srv) == 0


def test_a_taken_http_port_is_a_clear_start_error(bundled_models: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(BIN / "gan-server"), "--models", str(bundled_models), "--port", "0", "--http-port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"gan-server: error: cannot bind HTTP 127.0.0.1:{port}" in done.stderr
    assert "listening" not in done.stdout


def test_http_is_off_without_the_flag(server) -> None:
    assert server.http_address is None
    assert " http on " not in server.line
