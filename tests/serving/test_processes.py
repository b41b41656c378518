"""``gan-server --processes 2``: real supervisor and worker processes on one port.

Connections, not calls, are spread over the workers (SO_REUSEPORT), so the
tests open separate channels, each with its own connection
(``grpc.use_local_subchannel_pool``). Which worker answered is read from
``gan_worker_requests_total{worker,pid}`` on /metrics.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from ..conftest import BIN, RunningServer, start_server, stop_server

MODELS = ("dcgan", "cgan", "infogan")
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def _channel(address: str) -> grpc.Channel:
    channel = grpc.insecure_channel(address, options=OWN_CONNECTION)
    grpc.channel_ready_future(channel).result(timeout=10)
    return channel


def _scrape(url: str) -> dict[str, dict[tuple, float]]:
    """/metrics as {sample name: {sorted label items: value}}."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _per_worker(url: str) -> dict[str, float]:
    return {dict(k)["worker"]: v for k, v in _scrape(url).get("gan_worker_requests_total", {}).items()}


def _requests(url: str) -> float:
    return sum(_scrape(url).get("gan_requests_total", {}).values())


def _wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _pids(srv: RunningServer) -> list[int]:
    match = re.search(r"started 2 processes on port \d+: pids \[(\d+), (\d+)\]", srv.log())
    assert match, srv.log()[-2000:]
    return [int(match[1]), int(match[2])]


@pytest.fixture(scope="module")
def small_repo(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three models only: each worker loads its own, so fewer start faster."""
    dest = tmp_path_factory.mktemp("procs") / "models"
    for name in MODELS:
        shutil.copytree(bundled_models / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def procs(small_repo: Path, tmp_path_factory: pytest.TempPathFactory):
    srv = start_server(
        small_repo,
        tmp_path_factory.mktemp("procs-log") / "log",
        "--processes",
        "2",
        "--metrics-port",
        "0",
        "--reload-interval",
        "0.3",
        "--workers",
        "1",
        "--threads",
        "1",
    )
    assert srv.metrics_url, srv.line
    yield srv
    code = stop_server(srv)
    assert code == 0, f"gan-server exited with {code}:\n{srv.log()[-3000:]}"


def test_listening_line_and_health_on_every_connection(procs) -> None:
    words = procs.line.split()
    assert words[:3] == ["gan-server", "listening", "on"] and words[4] == "serving"
    assert "dcgan:1," in procs.line and words[-3:-1] == ["metrics", "on"]
    assert procs.log().count("serving on port") == 2  # both workers were up before the line
    for _ in range(6):
        with _channel(procs.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "gan.v1.Generator"):
                resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_concurrent_calls_reach_both_workers_and_metrics_sum_them(procs) -> None:
    before_total, before = _requests(procs.metrics_url), _per_worker(procs.metrics_url)
    channels = [_channel(procs.address) for _ in range(16)]
    try:
        stubs = [pb_grpc.GeneratorStub(ch) for ch in channels]
        futures = [
            stubs[i % 16].Sample.future(pb.SampleRequest(model="cgan", count=4, seed=i % 4, digit=7), timeout=60)
            for i in range(64)
        ]
        responses = [f.result() for f in futures]
    finally:
        for ch in channels:
            ch.close()
    assert all(len(r.images) == 4 * 784 for r in responses)
    for i, r in enumerate(responses):  # same seed, same bytes, whichever worker answered
        assert r.images == responses[i % 4].images
    after_total, after = _requests(procs.metrics_url), _per_worker(procs.metrics_url)
    assert after_total - before_total == 64
    served = {w: after[w] - before.get(w, 0.0) for w in after}
    assert set(served) == {"0", "1"} and sum(served.values()) == 64
    assert min(served.values()) > 0, f"one worker took every connection: {served}"
    m = _scrape(procs.metrics_url)
    assert m["gan_models_loaded"][()] == len(MODELS)  # not summed over the workers
    assert sum(m["gan_batch_size_count"].values()) > 0


def test_same_seed_same_bytes_from_each_worker(procs) -> None:
    images: dict[str, bytes] = {}
    for _ in range(30):  # fresh connections until both workers have answered
        before = _per_worker(procs.metrics_url)
        with _channel(procs.address) as channel:
            r = pb_grpc.GeneratorStub(channel).Sample(
                pb.SampleRequest(model="infogan", count=8, seed=42, digit=3), timeout=30
            )
        after = _per_worker(procs.metrics_url)
        (worker,) = [w for w in after if after[w] != before.get(w, 0.0)]
        images.setdefault(worker, r.images)
        if len(images) == 2:
            break
    assert set(images) == {"0", "1"}
    assert images["0"] == images["1"]


def test_hot_reload_reaches_every_worker(procs, small_repo: Path) -> None:
    src, dst, tmp = small_repo / "dcgan" / "1", small_repo / "dcgan" / "2", small_repo / "dcgan" / ".2.tmp"
    shutil.copytree(src, tmp)
    manifest = json.loads((tmp / "manifest.json").read_text())
    manifest["version"] = "2"
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    tmp.rename(dst)

    def every_connection_sees_it() -> bool:
        seen = set()
        for _ in range(8):
            with _channel(procs.address) as channel:
                info = pb_grpc.GeneratorStub(channel).GetModel(pb.GetModelRequest(name="dcgan"), timeout=5)
                seen.add(tuple(info.versions))
        return seen == {("1", "2")}

    assert _wait_for(every_connection_sees_it), procs.log()[-2000:]
    served = _per_worker(procs.metrics_url)
    assert all(v > 0 for v in served.values()), served


def test_sigterm_under_load_drains_every_worker(small_repo: Path, tmp_path: Path) -> None:
    srv = start_server(
        small_repo, tmp_path / "log", "--processes", "2", "--grace", "60", "--max-batch", "64", "--workers", "1"
    )
    unary_channels = [_channel(srv.address) for _ in range(8)]
    stream_channels = [_channel(srv.address) for _ in range(6)]
    try:
        unary = [
            pb_grpc.GeneratorStub(ch).Sample.future(pb.SampleRequest(model="infogan", count=512, seed=i), timeout=90)
            for i, ch in enumerate(unary_channels)
        ]
        streams = [
            pb_grpc.GeneratorStub(ch).SampleStream(pb.SampleRequest(model="dcgan", count=1024, seed=i), timeout=90)
            for i, ch in enumerate(stream_channels)
        ]
        # A first message on every stream: those calls are in flight on the
        # workers, and the unary calls (sent earlier on ready connections) too.
        firsts = [next(s) for s in streams]
        srv.process.send_signal(signal.SIGTERM)
        with ThreadPoolExecutor(len(streams)) as pool:
            rest = list(pool.map(lambda s: sum(m.count for m in s), streams))
        images = [len(f.result().images) for f in unary]
        code = srv.process.wait(90)
    finally:
        for ch in unary_channels + stream_channels:
            ch.close()
        stop_server(srv)
    assert images == [512 * 784] * 8
    assert [f.count + r for f, r in zip(firsts, rest, strict=True)] == [1024] * 6
    assert code == 0, srv.log()[-3000:]
    assert srv.log().count("draining in-flight calls") == 2
    with pytest.raises(grpc.FutureTimeoutError):
        with grpc.insecure_channel(srv.address) as channel:
            grpc.channel_ready_future(channel).result(timeout=1)


def test_a_dead_worker_stops_the_server(small_repo: Path, tmp_path: Path) -> None:
    srv = start_server(small_repo, tmp_path / "log", "--processes", "2", "--workers", "1")
    try:
        victim, survivor = _pids(srv)
        os.kill(victim, signal.SIGKILL)
        code = srv.process.wait(60)
    finally:
        stop_server(srv)
    assert code == 1
    log = srv.log()
    assert f"(pid {victim}) exited unexpectedly" in log
    assert f"(pid {survivor}) stopped" in log
    with pytest.raises(ProcessLookupError):
        os.kill(survivor, 0)


def test_a_worker_start_error_is_a_start_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(BIN / "gan-server"), "--models", str(tmp_path), "--port", "0", "--processes", "2"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 2
    assert "no model could be loaded" in out.stderr and "failed to start" in out.stderr
    assert "listening" not in out.stdout
