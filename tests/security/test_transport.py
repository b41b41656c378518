"""Attacks on the transport, as a hostile peer on loopback would make them, and what the server does now.

Each test names the attack it replays. The server runs with small limits
(a few streams, a few calls, 1 s timeouts) so that every limit is reached
within seconds; docs/security.md lists the defaults. The raw HTTP/2 peer is
tests/security/h2raw.py.

Timing tolerances: a limit of T seconds is asserted to act after at least
T - 0.2 s (it must not fire early) and within T + 3 s (loaded 2-core CI
machines stall for a second or more); gRPC core checks idle connections
on a timer of its own, hence the larger margin there.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..conftest import RunningServer, start_server, stop_server
from .h2raw import MAX_CONCURRENT_STREAMS, REFUSED_STREAM, RawH2

TOKEN = "transport-test-token"
SAMPLE = "/gan.v1.Generator/Sample"
STREAMS_PER_CONNECTION = 4
MAX_CALLS = 6
MESSAGE_TIMEOUT = 1.0
IDLE_TIMEOUT = 1.5
# gRPC status codes (the numbers of the spec's enum)
DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAUTHENTICATED = 4, 8, 16


def _models(bundled_models: Path, root: Path) -> Path:
    root.mkdir()
    shutil.copytree(bundled_models / "dcgan", root / "dcgan")
    return root


def _serve(bundled_models: Path, d: Path, *flags: str) -> RunningServer:
    models = _models(bundled_models, d / "models")
    return start_server(models, d / "server.log", *flags, "--metrics-port", "0", "--log-format", "text")


@pytest.fixture(scope="module")
def limited(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    srv = _serve(
        bundled_models,
        tmp_path_factory.mktemp("transport"),
        *("--max-streams-per-connection", str(STREAMS_PER_CONNECTION), "--max-calls", str(MAX_CALLS)),
        *("--message-timeout", str(MESSAGE_TIMEOUT), "--idle-timeout", str(IDLE_TIMEOUT)),
    )
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def guarded(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("transport-token")
    (d / "token").write_text(TOKEN)
    srv = _serve(bundled_models, d, "--token-file", str(d / "token"))
    yield srv
    stop_server(srv)


def _sample(srv: RunningServer, metadata=(), timeout: float = 10.0) -> pb.SampleResponse:
    with grpc.insecure_channel(srv.address) as channel:
        return pb_grpc.GeneratorStub(channel).Sample(
            pb.SampleRequest(model="dcgan", count=1), timeout=timeout, metadata=metadata
        )


def _metric(srv: RunningServer, pattern: str) -> float:
    body = urllib.request.urlopen(srv.metrics_url, timeout=5).read().decode()
    total = 0.0
    for line in body.splitlines():
        if re.match(pattern, line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _wait_log(srv: RunningServer, needle: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in srv.log():
            return True
        time.sleep(0.05)
    return needle in srv.log()


def test_the_stream_limit_is_advertised_and_enforced(limited) -> None:
    # Attack 1: 100,000 streams on 40 connections; no limit was advertised.
    peer = RawH2(limited.address)
    try:
        assert peer.settings().get(MAX_CONCURRENT_STREAMS) == STREAMS_PER_CONNECTION
        sids = [peer.open(SAMPLE) for _ in range(STREAMS_PER_CONNECTION + 2)]
        extra = sids[STREAMS_PER_CONNECTION:]
        assert peer.wait(lambda: all(peer.streams[s].reset is not None for s in extra), 5.0)
        assert all(peer.streams[s].reset == REFUSED_STREAM for s in extra)
        # the streams within the limit were not refused
        assert all(peer.streams[s].reset is None for s in sids[:STREAMS_PER_CONNECTION])
    finally:
        peer.close()


def test_a_call_whose_message_never_arrives_times_out(limited) -> None:
    # Attack 1 again: streams that send headers and nothing else were held forever.
    peer = RawH2(limited.address)
    try:
        opened = time.monotonic()
        sids = [peer.open(SAMPLE) for _ in range(3)]
        assert peer.wait(lambda: all(peer.streams[s].status is not None for s in sids), MESSAGE_TIMEOUT + 3)
        elapsed = time.monotonic() - opened
        assert elapsed >= MESSAGE_TIMEOUT - 0.2
        for s in sids:
            assert peer.streams[s].status == DEADLINE_EXCEEDED
            assert "did not arrive within 1 s" in peer.streams[s].message
    finally:
        peer.close()
    assert _wait_log(limited, "rpc Sample model=- code=DEADLINE_EXCEEDED")
    # a normal call is unaffected
    assert len(_sample(limited).images) == 28 * 28


def test_calls_over_the_cap_are_refused_at_once_logged_and_counted(limited) -> None:
    # Attack 4: nothing bounded the calls in progress. Here unread streams
    # (their request sent, their answers never read) hold every slot.
    before = _metric(limited, r'gan_requests_total\{code="RESOURCE_EXHAUSTED",method="Sample"')
    request = pb.SampleRequest(model="dcgan", count=1_000_000).SerializeToString()
    peers = [RawH2(limited.address) for _ in range(2)]
    try:
        for peer in peers:
            peer.settings()
            for _ in range(MAX_CALLS // 2):
                peer.send_message(peer.open("/gan.v1.Generator/SampleStream"), request)
        time.sleep(0.5)  # the server has started all of them
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            _sample(limited)
        assert time.monotonic() - started < MESSAGE_TIMEOUT  # refused at once, not after a wait
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-calls" in err.value.details()
        # probes are not counted against the cap
        with grpc.insecure_channel(limited.address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        for peer in peers:
            peer.close()
    # once the streams' client is gone, calls are served again
    deadline = time.monotonic() + 5
    while True:
        try:
            assert len(_sample(limited).images) == 28 * 28
            break
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
            time.sleep(0.2)
    assert _wait_log(limited, "call limit reached: 6 calls in progress (--max-calls 6)")
    assert _wait_log(limited, "rpc Sample model=dcgan code=RESOURCE_EXHAUSTED")
    assert _metric(limited, r'gan_requests_total\{code="RESOURCE_EXHAUSTED",method="Sample"') >= before + 1


def test_calls_that_send_only_headers_do_not_take_the_slots_of_those_that_send_requests(limited) -> None:
    # Attack 1: 40 connections x 100 header-only streams. They wait for their
    # message outside the cap; once more than --max-calls wait, a new one
    # waits 0.25 s only, while a normal call (message sent with the headers)
    # is served.
    peers = [RawH2(limited.address) for _ in range(3)]
    try:
        for peer in peers:
            peer.settings()
        held = [(peer, peer.open(SAMPLE)) for peer in peers[:2] for _ in range(MAX_CALLS // 2)]
        time.sleep(0.3)  # the server waits for all of them now
        assert len(_sample(limited).images) == 28 * 28
        opened = time.monotonic()
        crowded = [peers[2].open(SAMPLE) for _ in range(2)]
        assert peers[2].wait(lambda: all(peers[2].streams[s].status is not None for s in crowded), 3.0)
        assert time.monotonic() - opened < MESSAGE_TIMEOUT
        for sid in crowded:
            assert peers[2].streams[sid].status == DEADLINE_EXCEEDED
            assert "did not arrive within 0.25 s" in peers[2].streams[sid].message
        for peer, sid in held:  # the first ones keep the full timeout
            assert peer.wait(lambda p=peer, s=sid: p.streams[s].status is not None, MESSAGE_TIMEOUT + 3)
            assert "did not arrive within 1 s" in peer.streams[sid].message
    finally:
        for peer in peers:
            peer.close()


def test_an_idle_connection_is_closed(limited) -> None:
    # Attack 3: 1,008 connections that completed their handshake were never closed.
    peer = RawH2(limited.address)
    try:
        peer.settings()
        opened = time.monotonic()
        assert peer.wait(lambda: peer.goaway is not None or peer.closed, IDLE_TIMEOUT + 5)
        assert time.monotonic() - opened >= IDLE_TIMEOUT - 0.2
        assert peer.goaway is not None  # a GOAWAY, not a dropped socket
    finally:
        peer.close()


def test_an_unauthenticated_call_is_refused_on_its_headers(guarded) -> None:
    # Attack 2 with --token-file: bodies were received and parsed before the refusal.
    # Here the call announces a 3 MiB message and sends none of it: the answer
    # comes anyway, so the server decided on the headers alone.
    peer = RawH2(guarded.address)
    try:
        peer.settings()
        sid = peer.open(SAMPLE, metadata=(("x-request-id", "no-token-1"),))
        peer.conn.send_data(sid, struct.pack(">BI", 0, 3 << 20), end_stream=False)
        peer.flush()
        assert peer.wait(lambda: peer.streams[sid].status is not None, 5.0)
        assert peer.streams[sid].status == UNAUTHENTICATED
        assert peer.streams[sid].message == "missing bearer token"
    finally:
        peer.close()
    # refused calls are logged and counted like any other
    assert _wait_log(guarded, "rpc Sample model=- code=UNAUTHENTICATED")
    assert _wait_log(guarded, "request_id=no-token-1")
    assert _metric(guarded, r'gan_requests_total\{code="UNAUTHENTICATED",method="Sample"') >= 1
    # with the token, the same call is served
    assert len(_sample(guarded, metadata=(("authorization", f"Bearer {TOKEN}"),)).images) == 28 * 28


def test_a_request_over_the_request_limit_is_refused_on_its_length_prefix(guarded) -> None:
    # The default request limit (4 MiB) fits the largest legitimate request (an
    # Encode of 4096 images, 3.2 MB); a larger announced message is refused
    # before its bytes are sent.
    peer = RawH2(guarded.address)
    try:
        peer.settings()
        sid = peer.open(SAMPLE, metadata=(("authorization", f"Bearer {TOKEN}"),))
        peer.conn.send_data(sid, struct.pack(">BI", 0, 5 << 20) + b"\0" * 1024, end_stream=False)
        peer.flush()
        assert peer.wait(lambda: peer.streams[sid].status is not None or peer.streams[sid].reset is not None, 5.0)
        assert peer.streams[sid].status == RESOURCE_EXHAUSTED
        assert str(4 << 20) in peer.streams[sid].message
    finally:
        peer.close()


def test_forged_request_ids_are_sanitised_in_the_log(limited) -> None:
    # Attack 11: a request id was copied raw into the text access log.
    forged = "abc model=dcgan code=OK ms=0.01 request_id=x\nINFO fake line"
    _sample(limited, metadata=(("x-request-id", forged.replace("\n", " ")),))
    assert _wait_log(limited, "request_id=abc_model_dcgan_code_OK_ms_0.01_request_id_x_INFO_fake_line")
    assert "request_id=abc model=dcgan" not in limited.log()
    # a very long id is cut to 128 characters
    _sample(limited, metadata=(("x-request-id", "L" * 5000),))
    assert _wait_log(limited, "request_id=" + "L" * 128 + "\n")


def test_the_open_file_limit_is_raised_and_the_connection_limit_kept_below_it(limited) -> None:
    limits = Path(f"/proc/{limited.process.pid}/limits")
    if not limits.exists():
        pytest.skip("no /proc on this system")
    row = next(line for line in limits.read_text().splitlines() if line.startswith("Max open files"))
    soft, hard = row.split()[3:5]
    assert soft == hard or int(soft) >= 1 << 20
    match = re.search(r"limits: (\d+) open files, (\d+) connections", limited.log())
    assert match is not None
    assert int(match.group(2)) == int(match.group(1)) - 256


def test_connections_over_the_limit_are_closed_on_arrival(bundled_models: Path, tmp_path: Path) -> None:
    srv = start_server(_models(bundled_models, tmp_path / "models"), tmp_path / "log", "--max-connections", "3")
    peers: list[RawH2] = []
    try:
        for _ in range(3):
            peers.append(RawH2(srv.address))
            assert peers[-1].settings()
        extra = RawH2(srv.address)
        peers.append(extra)
        assert extra.wait(lambda: extra.closed, 5.0)  # closed without a SETTINGS frame
        assert not extra.remote_settings
        peers[0].close()
        time.sleep(0.3)
        again = RawH2(srv.address)
        peers.append(again)
        assert again.settings()  # a slot freed: accepted
    finally:
        for peer in peers:
            peer.close()
        stop_server(srv)


def test_an_answer_over_the_send_limit_is_logged_with_its_real_code(bundled_models: Path, tmp_path: Path) -> None:
    # Attack 6's tail: a send over the limit failed after the handler, logged code=OK.
    root = _models(bundled_models, tmp_path / "models")
    manifest = root / "dcgan" / "1" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["notes"] = "n" * (1 << 20)  # a 1 MiB manifest: GetModel's answer carries it
    manifest.write_text(json.dumps(data))
    srv = start_server(root, tmp_path / "log", "--max-message-mb", "1", "--metrics-port", "0", "--log-format", "text")
    try:
        with grpc.insecure_channel(srv.address, options=[("grpc.max_receive_message_length", 8 << 20)]) as channel:
            with pytest.raises(grpc.RpcError) as err:
                pb_grpc.GeneratorStub(channel).GetModel(pb.GetModelRequest(name="dcgan"), timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "over this server's message limit of 1048576 bytes" in err.value.details()
        assert _wait_log(srv, "rpc GetModel model=dcgan code=RESOURCE_EXHAUSTED")
        assert _metric(srv, r'gan_requests_total\{code="RESOURCE_EXHAUSTED",method="GetModel"') == 1
    finally:
        stop_server(srv)


def test_an_unread_stream_computes_at_most_one_chunk_ahead(bundled_models: Path, tmp_path: Path) -> None:
    # Attack 4's memory side: 200 SampleStream calls whose client never reads.
    # Each must hold at most the message gRPC could not send yet and the one
    # being computed, however long it stays unread.
    batch, streams = 64, 5
    srv = _serve(bundled_models, tmp_path, "--max-batch", str(batch))
    peer = RawH2(srv.address)
    try:
        peer.settings()
        request = pb.SampleRequest(model="dcgan", count=1_000_000).SerializeToString()
        for _ in range(streams):
            peer.send_message(peer.open("/gan.v1.Generator/SampleStream"), request)
        # (the peer never reads from here on: its HTTP/2 windows stay full)
        deadline = time.monotonic() + 10
        while _metric(srv, r"gan_images_generated_total") < streams * batch and time.monotonic() < deadline:
            time.sleep(0.1)  # every stream computes its first chunk
        time.sleep(1.0)
        first = _metric(srv, r"gan_images_generated_total")
        time.sleep(2.0)
        last = _metric(srv, r"gan_images_generated_total")
        assert streams * batch <= last <= streams * 2 * batch, (first, last)
        assert last == first  # and nothing more while it stays unread
    finally:
        peer.close()
        stop_server(srv)


def test_a_client_that_goes_away_is_logged_as_cancelled_without_errors(limited) -> None:
    # Before: a client that closed its connection before sending its request
    # was logged INVALID_ARGUMENT, and a stream whose send failed because its
    # client had gone logged "ExecuteBatchError raised in core" with a traceback.
    log_before = limited.log()
    request = pb.SampleRequest(model="dcgan", count=1_000_000).SerializeToString()
    peer = RawH2(limited.address)
    peer.settings()
    for _ in range(2):
        peer.open(SAMPLE, metadata=(("x-request-id", "gone-unary"),))
        peer.send_message(peer.open("/gan.v1.Generator/SampleStream", (("x-request-id", "gone-stream"),)), request)
    time.sleep(0.5)
    peer.close()
    assert _wait_log(limited, "code=CANCELLED")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        new = limited.log()[len(log_before) :]
        if new.count("request_id=gone-unary") == 2 and new.count("request_id=gone-stream") == 2:
            break
        time.sleep(0.1)
    lines = [line for line in new.splitlines() if "request_id=gone-" in line]
    assert len(lines) == 4, new[-3000:]
    assert all("code=CANCELLED" in line for line in lines), lines
    assert "Traceback" not in new and " ERROR " not in new, new[-3000:]
