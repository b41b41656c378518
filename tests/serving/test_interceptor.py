"""The server's one interceptor (gate, token, metrics, access log) and the log writer thread."""

from __future__ import annotations

import io
import logging
import re
import time
from pathlib import Path

import grpc
import pytest
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from gan_server import logs
from gan_server.interceptors import RequestIds
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

# The stock client's OIP messages (the server's own generated copy shares the
# package name `inference` and cannot be loaded beside them in one process).
from tritonclient.grpc import service_pb2 as oip_pb
from tritonclient.grpc import service_pb2_grpc as oip_grpc

from ..conftest import start_server, stop_server

TOKEN = "interceptor-test-token"


@pytest.fixture(scope="module")
def token_server(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("token")
    (d / "token").write_text(TOKEN)
    srv = start_server(bundled_models, d / "server.log", "--token-file", str(d / "token"))
    yield srv
    stop_server(srv)


def _list_services(channel: grpc.Channel, metadata=()) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = stub.ServerReflectionInfo(iter([request]), timeout=5, metadata=metadata)
    return {s.name for s in response.list_services_response.service}


def test_token_guards_reflection_but_not_the_probes(token_server) -> None:
    auth = [("authorization", f"Bearer {TOKEN}")]
    with grpc.insecure_channel(token_server.address) as channel:
        with pytest.raises(grpc.RpcError) as err:
            _list_services(channel)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "gan.v1.Generator" in _list_services(channel, auth)
        # health and the OIP liveness/readiness probes need no token
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        oip = oip_grpc.GRPCInferenceServiceStub(channel)
        assert oip.ServerLive(oip_pb.ServerLiveRequest(), timeout=5).live
        assert oip.ServerReady(oip_pb.ServerReadyRequest(), timeout=5).ready
        with pytest.raises(grpc.RpcError) as err:
            oip.ServerMetadata(oip_pb.ServerMetadataRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # unknown methods stay UNIMPLEMENTED, with or without a token
        unknown = channel.unary_unary("/gan.v1.Generator/NoSuchMethod")
        for metadata in ((), auth):
            with pytest.raises(grpc.RpcError) as err:
                unknown(b"", timeout=5, metadata=metadata)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_refused_calls_are_logged_with_their_code(token_server) -> None:
    # A call refused on its token is logged like any other, with the code the
    # client saw (before, refused calls left no line at all).
    with grpc.insecure_channel(token_server.address) as channel:
        stub = pb_grpc.GeneratorStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Sample(pb.SampleRequest(model="dcgan", count=1), timeout=5, metadata=[("x-request-id", "refused-1")])
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Sample(
            pb.SampleRequest(model="dcgan", count=1),
            timeout=5,
            metadata=[("authorization", f"Bearer {TOKEN}"), ("x-request-id", "accepted-1")],
        )
    assert _wait_for(lambda: "request_id=accepted-1" in token_server.log())
    # Refused on its headers, so its body (and model) was never read: model=-.
    assert re.search(
        r"rpc Sample model=- code=UNAUTHENTICATED ms=\d+\.\d\d request_id=refused-1$", token_server.log(), re.M
    )


def test_access_log_lines_and_request_ids(server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GeneratorStub(channel)
        for _ in range(2):
            stub.Sample(pb.SampleRequest(model="dcgan", count=1, seed=77), timeout=5)
        stub.Sample(pb.SampleRequest(model="dcgan", count=1), timeout=5, metadata=[("x-request-id", "from-client-9")])
        with pytest.raises(grpc.RpcError):
            stub.Sample(
                pb.SampleRequest(model="no-such-model", count=1), timeout=5, metadata=[("x-request-id", "last-call-9")]
            )
    # The session's server is shared: wait for this test's last line, not any NOT_FOUND line.
    assert _wait_for(
        lambda: "model=unknown code=NOT_FOUND ms=" in server.log() and "request_id=last-call-9" in server.log()
    )
    lines = [line for line in server.log().splitlines() if " rpc Sample model=" in line]
    pattern = re.compile(r"rpc Sample model=(\S+) code=(\S+) ms=\d+\.\d\d request_id=(\S+)$")
    parsed = [pattern.search(line).groups() for line in lines]
    assert ("dcgan", "OK", "from-client-9") in parsed
    assert ("unknown", "NOT_FOUND", "last-call-9") in parsed
    made_up = [rid for _, _, rid in parsed if rid not in ("from-client-9", "last-call-9")]
    assert all(re.fullmatch(r"[0-9a-f]{16}", rid) for rid in made_up)
    assert len(set(made_up)) == len(made_up)


def test_request_ids_share_a_prefix_and_count_up() -> None:
    ids = RequestIds()
    a, b = ids.next(), ids.next()
    assert a[:8] == b[:8] and int(b[8:], 16) == int(a[8:], 16) + 1


def test_log_writer_formats_off_the_caller_and_writes_everything_on_stop() -> None:
    stream = io.StringIO()
    handler = logging.Handler()
    handler.setFormatter(logs.JsonFormatter())
    writer = logs._Writer(handler, stream, interval=0.05)
    queue_handler = logs._Handoff(writer.queue)
    logger = logging.getLogger("gan_server.test_writer")
    logger.addHandler(queue_handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        mutable = ["before"]
        logger.info("list %s", mutable)  # rendered at once: the list may change before the writer runs
        mutable[0] = "after"
        for i in range(500):
            logger.info("rpc %s n=%d", "Sample", i, extra={"request_id": f"r{i}", "code": "OK"})
        writer.stop()
    finally:
        logger.removeHandler(queue_handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 501
    assert '"message": "list [\'before\']"' in lines[0]
    assert '"request_id": "r499"' in lines[-1] and '"code": "OK"' in lines[-1]


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
