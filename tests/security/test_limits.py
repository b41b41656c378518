"""Limits that tell the truth: the response-size check counts the real encoding.

With ``--max-message-mb 1`` the counts are small. For every model tried, the
count the error suggests ("ask for at most N") succeeds, N + 1 is refused
before any work, and the size the error quotes for N + 1 is the length of
that response serialized. The OIP ``id``, echoed in the response, counts.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import grpc
import pytest
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from gan_server.servicer import varint_size
from tritonclient.grpc import service_pb2 as ip
from tritonclient.grpc import service_pb2_grpc as ip_grpc

from ..conftest import RunningServer, start_server, stop_server

LIMIT = 1 << 20  # --max-message-mb 1
FAST_MODELS = ("dcgan", "cgan", "infogan", "gan-ring8")
# OIP messages are tritonclient's (the same wire format): one test process can register only one set
Tensor = ip.ModelInferRequest.InferInputTensor
# Where a send over the limit would show: the access log said OK and grpc logged this.
SEND_FAILED = "Sent message larger than max"


def _serve(models: Path, log: Path) -> RunningServer:
    # --max-count high enough that the message limit, not the count limit, binds for tiny images too
    return start_server(models, log, "--max-message-mb", "1", "--max-count", "10000000", "--log-format", "text")


@pytest.fixture(scope="module")
def small(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("limits") / "models"
    for name in FAST_MODELS:
        shutil.copytree(bundled_models / name, root / name)
    srv = _serve(root, root.parent / "log")
    yield srv
    stop_server(srv)
    assert SEND_FAILED not in srv.log()


@pytest.fixture(scope="module")
def every(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    srv = _serve(bundled_models, tmp_path_factory.mktemp("limits-all") / "log")
    yield srv
    stop_server(srv)
    assert SEND_FAILED not in srv.log()


def _channel(srv: RunningServer) -> grpc.Channel:
    big = 256 << 20
    return grpc.insecure_channel(
        srv.address, options=[("grpc.max_receive_message_length", big), ("grpc.max_send_message_length", big)]
    )


def _refusal(call, count: int) -> tuple[int, int]:
    """(the N the error suggests, the bytes it says ``count`` images need)."""
    with pytest.raises(grpc.RpcError) as info:
        call(count)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    details = info.value.details()
    suggested = re.search(r"ask for at most (\d+)", details)
    need = re.search(r"(\d+) images need (\d+) bytes", details)
    assert suggested and need and int(need.group(1)) == count, details
    return int(suggested.group(1)), int(need.group(2))


def _check_sample(srv: RunningServer, model: str, return_latents: bool) -> dict[str, int]:
    with _channel(srv) as channel:
        stub = pb_grpc.GeneratorStub(channel)

        def call(count: int) -> pb.SampleResponse:
            request = pb.SampleRequest(model=model, count=count, seed=7, return_latents=return_latents)
            if model in ("cgan", "infogan"):
                request.digit = 3
            return stub.Sample(request, timeout=120)

        n, _ = _refusal(call, 10_000_000)
        response = call(n)  # the suggested count succeeds...
        assert response.count == n
        size = len(response.SerializeToString())
        assert size <= LIMIT
        # ...and one image more is over the limit, by the real encoding: the same response grown
        # by one image (its bytes, its class varint, its latents) serializes to more than the limit.
        grown = pb.SampleResponse()
        grown.CopyFrom(response)
        image = response.image
        grown.count = n + 1
        grown.images += bytes(image.height * image.width * image.channels)
        grown.classes.append(response.classes[-1])
        if return_latents:
            dim = len(response.latents) // n
            grown.latents.extend(response.latents[-dim:])
        grown_size = len(grown.SerializeToString())
        assert grown_size > LIMIT
        suggested, need = _refusal(call, n + 1)  # refused before any work
        assert suggested == n
        assert need == grown_size  # the figure quoted is the exact size
        return {"n": n, "bytes": size, "next": grown_size}


def _check_infer(srv: RunningServer, model: str) -> dict[str, int]:
    with _channel(srv) as channel:
        stub = ip_grpc.GRPCInferenceServiceStub(channel)

        def call(count: int) -> ip.ModelInferResponse:
            contents = ip.InferTensorContents(int_contents=[count])
            request = ip.ModelInferRequest(
                model_name=model, inputs=[Tensor(name="count", datatype="INT32", shape=[1], contents=contents)]
            )
            return stub.ModelInfer(request, timeout=120)

        n, _ = _refusal(call, 10_000_000)
        response = call(n)
        size = len(response.SerializeToString())
        assert size <= LIMIT and response.outputs[0].shape[0] == n
        grown = ip.ModelInferResponse()
        grown.CopyFrom(response)
        per_image = len(response.raw_output_contents[0]) // n
        grown.outputs[0].shape[0] = n + 1
        grown.raw_output_contents[0] += bytes(per_image)
        grown_size = len(grown.SerializeToString())
        assert grown_size > LIMIT
        suggested, need = _refusal(call, n + 1)
        assert suggested == n and need == grown_size
        return {"n": n, "bytes": size, "next": grown_size}


@pytest.mark.parametrize("model", FAST_MODELS)
@pytest.mark.parametrize("return_latents", [False, True])
def test_sample_suggestion_is_exact(small: RunningServer, model: str, return_latents: bool) -> None:
    # Before: dcgan's suggestion (1326, without latents) failed after the work with
    # RESOURCE_EXHAUSTED "Sent message larger than max (1052872 vs. 1048576)".
    _check_sample(small, model, return_latents)


@pytest.mark.parametrize("model", FAST_MODELS)
def test_infer_suggestion_is_exact(small: RunningServer, model: str) -> None:
    _check_infer(small, model)


@pytest.mark.slow
def test_every_bundled_model_on_both_apis(every: RunningServer, bundled_models: Path) -> None:
    names = sorted(p.parent.parent.name for p in bundled_models.glob("*/*/manifest.json"))
    for name in names:
        for return_latents in (False, True):
            _check_sample(every, name, return_latents)
        _check_infer(every, name)


def test_stream_messages_stay_under_the_limit(small: RunningServer) -> None:
    with _channel(small) as channel:
        stub = pb_grpc.GeneratorStub(channel)
        request = pb.SampleRequest(model="dcgan", count=3000, seed=2, return_latents=True)
        chunks = list(stub.SampleStream(request, timeout=120))
    assert sum(c.count for c in chunks) == 3000
    assert max(len(c.SerializeToString()) for c in chunks) <= LIMIT


# -- the OIP id comes back in the response -------------------------------------------------------


def _infer_request(count: int, request_id: str = "") -> ip.ModelInferRequest:
    contents = ip.InferTensorContents(int_contents=[count])
    return ip.ModelInferRequest(
        model_name="dcgan",
        id=request_id,
        inputs=[Tensor(name="count", datatype="INT32", shape=[1], contents=contents)],
    )


def test_infer_id_is_counted_to_the_byte(small: RunningServer) -> None:
    with _channel(small) as channel:
        stub = ip_grpc.GRPCInferenceServiceStub(channel)
        count = 100
        base = len(stub.ModelInfer(_infer_request(count), timeout=60).SerializeToString())
        # the id's field is tag + length varint + bytes: find the length that makes exactly LIMIT
        length = next(n for n in range(LIMIT - base - 5, LIMIT) if base + 1 + varint_size(n) + n == LIMIT)
        exact = stub.ModelInfer(_infer_request(count, "i" * length), timeout=60)
        assert len(exact.SerializeToString()) == LIMIT  # a response of exactly the limit is sent
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(_infer_request(count, "i" * (length + 1)), timeout=60)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith(f"id: is {length + 1} bytes and comes back in the response")
        assert f"needs {LIMIT + 1} bytes" in info.value.details()


@pytest.mark.slow
def test_a_62_mb_id_is_refused_before_any_work(bundled_models: Path, tmp_path: Path) -> None:
    # Before: 4096 images were made (2.4 s here), then the send failed with RESOURCE_EXHAUSTED
    # "Sent message larger than max (68223020 vs. 67108864)", and the access log said code=OK.
    root = tmp_path / "models"
    shutil.copytree(bundled_models / "dcgan", root / "dcgan")
    # the 64 MiB limit both ways that the server had by default then
    srv = start_server(
        root, tmp_path / "log", "--log-format", "text", "--max-message-mb", "64", "--max-request-mb", "64"
    )
    try:
        with _channel(srv) as channel:
            stub = ip_grpc.GRPCInferenceServiceStub(channel)
            t0 = time.monotonic()
            with pytest.raises(grpc.RpcError) as info:
                stub.ModelInfer(_infer_request(4096, "i" * (62 << 20)), timeout=60)
            elapsed = time.monotonic() - t0
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details().startswith("id: is 65011712 bytes")
            fits = int(re.search(r"at most (\d+) per request", info.value.details()).group(1))
            response = stub.ModelInfer(_infer_request(fits, "i" * (62 << 20)), timeout=60)
            assert response.outputs[0].shape[0] == fits and response.ByteSize() <= 64 << 20
        time.sleep(0.3)
    finally:
        stop_server(srv)
    lines = [line for line in srv.log().splitlines() if "ModelInfer" in line and "code=" in line]
    assert any("INVALID_ARGUMENT" in line for line in lines), lines
    assert SEND_FAILED not in srv.log()
    assert elapsed < 10, elapsed


def test_encode_suggestion_is_exact(tmp_path: Path) -> None:
    # Small images with long latents: 4 bytes in, 256 bytes out per image. Before, 10,000 images
    # (40 kB in) were encoded, then the 2.5 MB answer failed to send.
    from tests.sdk.tiny_models import write_encoder_model

    root = write_encoder_model(tmp_path / "models", latent_dim=64, side=2)
    srv = _serve(root, tmp_path / "log")
    try:
        with _channel(srv) as channel:
            stub = pb_grpc.GeneratorStub(channel)

            def call(count: int) -> pb.EncodeResponse:
                image = pb.ImageSpec(height=2, width=2, channels=1)
                request = pb.EncodeRequest(model="tinybigan", count=count, image=image, images=bytes(4 * count))
                return stub.Encode(request, timeout=60)

            with pytest.raises(grpc.RpcError) as info:
                call(10_000)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            n = int(re.search(r"at most (\d+) images", info.value.details()).group(1))
            response = call(n)
            assert len(response.latents) == 64 * n and len(response.SerializeToString()) <= LIMIT
            grown = pb.EncodeResponse()
            grown.CopyFrom(response)
            grown.count = n + 1
            grown.latents.extend(response.latents[-64:])
            assert len(grown.SerializeToString()) > LIMIT
            with pytest.raises(grpc.RpcError) as info:
                call(n + 1)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert f"need {len(grown.SerializeToString())} bytes" in info.value.details()
    finally:
        stop_server(srv)
    assert SEND_FAILED not in srv.log()
