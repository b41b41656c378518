"""Reliability under load: a server restart with retrying clients, and a soak run."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gan_client import GanClient, RetryPolicy

from ..conftest import start_server, stop_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_restart_under_load_loses_no_call(bundled_models: Path, tmp_path: Path) -> None:
    port = _free_port()
    first = start_server(bundled_models, tmp_path / "a.log", "--port", str(port), "--grace", "10")
    address = first.address
    assert address.endswith(f":{port}")
    expected = {}
    with GanClient(address) as c:
        for k in range(4):
            expected[k] = c.sample("cgan", n=4, seed=k, digit=k).images
    # Backoff 1 s doubling to 4 s over 5 attempts: about 11 s of retrying
    # (gRPC jitters each wait by ±20 %), several times what a restart takes
    # here (~2 s on an idle machine), inside the 30 s deadline.
    policy = RetryPolicy(max_attempts=5, initial_backoff=1.0, max_backoff=4.0)
    stop = threading.Event()
    failures: list[BaseException] = []
    done = [0] * 4

    def client(k: int) -> None:
        with GanClient(address, retry=policy, timeout=30) as c:
            while not stop.is_set():
                try:
                    images = c.sample("cgan", n=4, seed=k, digit=k).images
                    assert np.array_equal(images, expected[k])
                    done[k] += 1
                except BaseException as exc:  # noqa: BLE001 - asserted below
                    failures.append(exc)
                    return

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    second = None
    try:
        time.sleep(1.0)
        before = sum(done)
        assert stop_server(first) == 0
        second = start_server(bundled_models, tmp_path / "b.log", "--port", str(port))
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(40)
    finally:
        stop.set()
        if second is not None:
            stop_server(second)
    assert not failures, failures[:3]
    assert before > 0 and sum(done) > before, (before, done)


@pytest.mark.slow
def test_soak_64_clients_five_minutes(bundled_models: Path, tmp_path: Path) -> None:
    """64 concurrent clients for 5 minutes (GAN_SOAK_SECONDS): no errors, RSS growth < 10 %."""
    import asyncio

    from gan_client import AsyncGanClient

    seconds = float(os.environ.get("GAN_SOAK_SECONDS", "300"))
    srv = start_server(bundled_models, tmp_path / "soak.log")
    errors: list[BaseException] = []
    counts = [0] * 64

    async def run(duration: float) -> None:
        async with AsyncGanClient(srv.address, timeout=30) as ac:
            deadline = time.monotonic() + duration

            async def worker(k: int) -> None:
                models = ("dcgan", "cgan", "infogan")
                while time.monotonic() < deadline:
                    try:
                        r = await ac.sample(models[k % 3], n=1 + k % 4, seed=counts[k])
                        assert len(r) == 1 + k % 4
                        counts[k] += 1
                    except BaseException as exc:  # noqa: BLE001 - asserted below
                        errors.append(exc)
                        return

            await asyncio.gather(*(worker(k) for k in range(64)))

    try:
        asyncio.run(run(min(30.0, seconds / 5)))  # warm-up: allocator pools, caches
        rss_warm = _rss_mib(srv.process.pid)
        asyncio.run(run(seconds))
        rss_end = _rss_mib(srv.process.pid)
    finally:
        stop_server(srv)
    assert not errors, errors[:3]
    assert min(counts) > 0
    growth = (rss_end - rss_warm) / rss_warm
    print(f"soak: {sum(counts)} calls in {seconds:.0f}s, RSS {rss_warm:.0f} -> {rss_end:.0f} MiB ({growth:+.1%})")
    assert growth < 0.10, f"RSS grew {growth:.1%}"
