"""The drain on SIGTERM ends when the last call in flight ends, not at the end of ``--grace``."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from gan_client import GanClient
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..conftest import start_server, stop_server


@pytest.fixture(scope="module")
def dcgan_only(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drain") / "models"
    shutil.copytree(bundled_models / "dcgan", root / "dcgan")
    return root


def test_sigterm_without_calls_in_flight_exits_at_once(dcgan_only: Path, tmp_path: Path) -> None:
    # Before: an open health Watch (client-side health checking, a mesh) is a call that never
    # ends; the drain saw no sampling call in flight, then server.stop() waited for the Watch
    # until the end of --grace (8.1 s of an 8 s grace here).
    srv = start_server(dcgan_only, tmp_path / "log", "--grace", "8")
    try:
        with GanClient(srv.address) as c:
            assert len(c.sample("dcgan", 1)) == 1
        channel = grpc.insecure_channel(srv.address)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        t0 = time.monotonic()
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(30) == 0
        elapsed = time.monotonic() - t0
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING  # told before the stop
        channel.close()
    finally:
        stop_server(srv)
    assert elapsed < 2.0, elapsed


def test_drain_still_waits_for_calls_in_flight(dcgan_only: Path, tmp_path: Path) -> None:
    srv = start_server(dcgan_only, tmp_path / "log", "--grace", "30")
    results: list[object] = []

    def call() -> None:
        try:
            with GanClient(srv.address, timeout=60, retry=False) as c:
                results.append(len(c.sample("dcgan", 4096, seed=1)))
        except Exception as exc:  # noqa: BLE001 - asserted below
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.3)
        srv.process.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        assert srv.process.wait(30) == 0
    finally:
        stop_server(srv)
    assert results == [4096] * 3, results


def test_sigterm_right_after_the_listening_line_drains(dcgan_only: Path, tmp_path: Path) -> None:
    # Before: the handlers were installed after the line was printed; a SIGTERM sent as soon as
    # it was read could kill the process with the default action (exit status -15).
    for attempt in range(3):
        srv = start_server(dcgan_only, tmp_path / f"log{attempt}")
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(30) == 0, srv.log()[-1000:]
        stop_server(srv)
