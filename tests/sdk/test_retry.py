"""gRPC's own retries (the channel's service config), against a real server
that only starts after the call began, and their absence when turned off."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from gan_client import ConnectionFailed, DeadlineExceeded, GanClient, RetryPolicy

from ..conftest import RunningServer, start_server, stop_server


def test_retries_reach_a_server_that_starts_after_the_call(
    bundled_models: Path, tmp_path: Path, unused_port: int
) -> None:
    address = f"127.0.0.1:{unused_port}"
    started: dict[str, RunningServer | BaseException] = {}

    def launch() -> None:
        time.sleep(1.0)
        try:
            started["server"] = start_server(bundled_models, tmp_path / "server.log", "--port", str(unused_port))
        except BaseException as exc:  # noqa: BLE001 - reported below
            started["server"] = exc

    # backoffs 0.5, 1, 2, 4 s (±20 %): about 7.5 s of attempts, well past a server start
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.5, max_backoff=4.0, backoff_multiplier=2.0)
    thread = threading.Thread(target=launch)
    try:
        with GanClient(address, retry=policy, timeout=30) as client:
            t0 = time.monotonic()
            thread.start()
            result = client.sample("dcgan", 2, seed=1)
            elapsed = time.monotonic() - t0
    finally:
        thread.join()
        srv = started.get("server")
        if isinstance(srv, RunningServer):
            stop_server(srv)
    assert isinstance(srv, RunningServer), srv
    assert len(result) == 2
    assert 1.0 < elapsed < 30, elapsed  # the first attempts failed; a retry got through


def test_without_retries_a_missing_server_fails_at_once(unused_port: int) -> None:
    with GanClient(f"127.0.0.1:{unused_port}", retry=False, timeout=10) as client:
        t0 = time.monotonic()
        with pytest.raises(ConnectionFailed, match="cannot reach"):
            client.list_models()
        assert time.monotonic() - t0 < 1.0


def test_with_retries_a_missing_server_fails_after_the_backoffs(unused_port: int) -> None:
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.3, max_backoff=0.3, backoff_multiplier=1.0)
    with GanClient(f"127.0.0.1:{unused_port}", retry=policy, timeout=10) as client:
        t0 = time.monotonic()
        with pytest.raises(ConnectionFailed):
            client.list_models()
        elapsed = time.monotonic() - t0
    assert 0.6 < elapsed < 5, elapsed  # 3 backoffs of 0.3 s ± 20 %


def test_retries_stay_within_the_deadline(unused_port: int) -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff=2.0, max_backoff=10.0)
    with GanClient(f"127.0.0.1:{unused_port}", retry=policy) as client:
        t0 = time.monotonic()
        with pytest.raises((DeadlineExceeded, ConnectionFailed)):
            client.sample("dcgan", 1, timeout=0.5)
        assert time.monotonic() - t0 < 2.0
