"""Echoed request values are cut short in error messages.

The message travels back in the grpc-message trailer; a 10 KB model name
echoed whole went over the client's 8 KiB metadata limit and the caller saw
RESOURCE_EXHAUSTED "Stream removed" instead of NOT_FOUND.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest
from gan_contract.errors import ECHO_CHARS, MESSAGE_CHARS, clip, shown
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from tritonclient.grpc import service_pb2 as ip
from tritonclient.grpc import service_pb2_grpc as ip_grpc

from ..conftest import RunningServer, start_server, stop_server

# OIP messages are tritonclient's (the same wire format): one test process can register only one set
Tensor = ip.ModelInferRequest.InferInputTensor


@pytest.fixture(scope="module")
def small(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("echo") / "models"
    for name in ("dcgan", "cgan"):
        shutil.copytree(bundled_models / name, root / name)
    srv = start_server(root, root.parent / "log")
    yield srv
    stop_server(srv)


def _channel(srv: RunningServer) -> grpc.Channel:
    return grpc.insecure_channel(srv.address)


def test_clip_and_shown() -> None:
    assert clip("abc") == "abc" and shown("abc") == "'abc'"
    long = "x" * 10_000
    assert clip(long) == "x" * ECHO_CHARS + "... (10000 characters)"
    assert len(shown(long)) < ECHO_CHARS + 30


LONG = 10 * 1024


def test_long_echoed_values_keep_the_real_status(small: RunningServer) -> None:
    # Before: the 10 KB value came back in the status message, over gRPC's 8 KiB metadata limit,
    # and the client saw RESOURCE_EXHAUSTED "Stream removed" instead of the real status.
    with _channel(small) as channel:
        stub = pb_grpc.GeneratorStub(channel)
        oip = ip_grpc.GRPCInferenceServiceStub(channel)
        cases = [
            (lambda: stub.Sample(pb.SampleRequest(model="m" * LONG, count=1), timeout=10), "NOT_FOUND"),
            (lambda: stub.Sample(pb.SampleRequest(model="dcgan", version="v" * LONG), timeout=10), "NOT_FOUND"),
            (lambda: stub.GetModel(pb.GetModelRequest(name="n" * LONG), timeout=10), "NOT_FOUND"),
            (lambda: stub.Sample(pb.SampleRequest(model="cgan", count=1, label="l" * LONG), timeout=10), "INVALID"),
            (lambda: oip.ModelMetadata(ip.ModelMetadataRequest(name="n" * LONG), timeout=10), "NOT_FOUND"),
            (
                lambda: oip.ModelInfer(
                    ip.ModelInferRequest(model_name="dcgan", inputs=[Tensor(name="i" * LONG, datatype="INT32")]),
                    timeout=10,
                ),
                "INVALID",
            ),
            (
                lambda: oip.ModelInfer(
                    ip.ModelInferRequest(
                        model_name="dcgan", inputs=[Tensor(name="count", datatype="d" * LONG, shape=[1])]
                    ),
                    timeout=10,
                ),
                "INVALID",
            ),
            (
                lambda: oip.ModelInfer(
                    ip.ModelInferRequest(
                        model_name="dcgan", inputs=[Tensor(name="count", datatype="INT32", shape=[1] * 5000)]
                    ),
                    timeout=10,
                ),
                "INVALID",
            ),
            (
                lambda: oip.ModelInfer(
                    ip.ModelInferRequest(
                        model_name="dcgan", outputs=[ip.ModelInferRequest.InferRequestedOutputTensor(name="o" * LONG)]
                    ),
                    timeout=10,
                ),
                "INVALID",
            ),
        ]
        for call, code in cases:
            with pytest.raises(grpc.RpcError) as info:
                call()
            details = info.value.details()
            assert info.value.code().name.startswith(code), (info.value.code(), details[:200])
            assert "Stream removed" not in details
            assert len(details) <= MESSAGE_CHARS + 40, len(details)
            assert "characters)" in details  # the marker of a cut value
