"""Hostile input: generated requests never crash the server or yield INTERNAL/UNKNOWN.

Property-based with hypothesis: random fields, huge and negative counts,
NaN/inf codes, wrong-length latents, unknown models and versions, and raw
garbage bytes on both gRPC APIs. Each reply must be OK or a proper client
status; afterwards the server must still answer correctly.
"""

from __future__ import annotations

import math

import grpc
import numpy as np
import pytest
from gan_client import GanClient
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
COUNTS: dict[str, int] = {"requests": 0}

floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
models = st.sampled_from(["dcgan", "cgan", "infogan", "", "nope", "DCGAN", "dcgan/../cgan", "\x00", "ü" * 40])
versions = st.sampled_from(["", "1", "0", "999", "-1", "latest", "1.0", "../1"])

sample_requests = st.builds(
    lambda model, version, count, seed, digit, label, category, cont, lat_len, lat_val, ret, first: pb.SampleRequest(
        model=model,
        version=version,
        count=count,
        seed=seed,
        **({} if digit is None else {"digit": digit}),
        **({} if label is None else {"label": label}),
        **({} if category is None else {"category": category}),
        continuous=cont,
        latents=[lat_val] * lat_len,
        return_latents=ret,
        first_index=first,
    ),
    models,
    versions,
    st.one_of(st.integers(0, 40), st.sampled_from([4096, 4097, 10**6, 2**32 - 1])),
    st.one_of(st.integers(0, 10), st.just(2**64 - 1)),
    st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1), st.integers(-2, 12)),
    st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["0", "7", "sneaker"])),
    st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1), st.integers(-2, 12)),
    st.lists(floats, max_size=4),
    st.one_of(st.just(0), st.integers(0, 200), st.sampled_from([62, 64, 100, 124])),
    st.one_of(st.just(0.5), floats),
    st.booleans(),
    st.one_of(st.just(0), st.integers(0, 2**64 - 1)),
)


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.GeneratorStub(channel)


@settings(
    max_examples=1800, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(request=sample_requests)
def test_generated_sample_requests_get_proper_statuses(stub, request: pb.SampleRequest) -> None:
    COUNTS["requests"] += 1
    try:
        resp = stub.Sample(request, timeout=30)
    except grpc.RpcError as exc:
        assert exc.code() in ALLOWED, (exc.code(), exc.details(), request)
        assert exc.details(), "an error status without a message"
        return
    h, w, c = resp.image.height, resp.image.width, resp.image.channels
    assert len(resp.images) == resp.count * h * w * c == request.count * 784
    assert not any(math.isnan(v) for v in request.continuous)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=models, version=versions)
def test_generated_model_lookups(stub, name: str, version: str) -> None:
    COUNTS["requests"] += 1
    try:
        stub.GetModel(pb.GetModelRequest(name=name, version=version), timeout=10)
    except grpc.RpcError as exc:
        assert exc.code() in ALLOWED, (exc.code(), exc.details())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=st.binary(max_size=512),
    method=st.sampled_from(
        [
            "/gan.v1.Generator/Sample",
            "/gan.v1.Generator/GetModel",
            "/gan.v1.Generator/Encode",
            "/inference.GRPCInferenceService/ModelInfer",
            "/inference.GRPCInferenceService/ModelMetadata",
        ]
    ),
)
def test_garbage_bytes(server, payload: bytes, method: str) -> None:
    COUNTS["requests"] += 1
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            call(payload, timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() in ALLOWED, (exc.code(), exc.details(), method, payload[:40])


def test_server_is_still_correct_after_fuzzing(server) -> None:
    assert COUNTS["requests"] >= 2000 or COUNTS["requests"] == 0  # 0: run alone with -k
    with GanClient(server.address) as c:
        a = c.sample("cgan", n=4, seed=1, digit=3).images
        b = c.sample("cgan", n=4, seed=1, digit=3).images
    np.testing.assert_array_equal(a, b)
    assert "unhandled error" not in server.log()
