"""The real server on loopback, called with the real SDK and stock grpc tools."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from gan_client import GanClient, InvalidArgument, ModelNotFound
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


@pytest.fixture(scope="module")
def client(server):
    with GanClient(server.address) as c:
        yield c


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.GeneratorStub(channel)


def test_health_says_serving(server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "gan.v1.Generator"):
            resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_generator_service(server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = list(
            stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        )
        names = {s.name for s in responses[0].list_services_response.service}
        assert "gan.v1.Generator" in names
        assert "grpc.health.v1.Health" in names


def test_list_and_info(client) -> None:
    models = {m.name: m for m in client.list_models()}
    assert {"dcgan", "cgan", "infogan"} <= set(models)
    assert models["dcgan"].conditioning.kind == "none"
    assert models["cgan"].conditioning.kind == "class"
    info = client.model_info("infogan")
    assert info.conditioning.kind == "infogan"
    assert sorted(info.conditioning.category_to_digit) == list(range(10))
    assert info.manifest["name"] == "infogan"
    assert (info.height, info.width, info.channels) == (28, 28, 1)


@pytest.mark.parametrize("model", ["dcgan", "cgan", "infogan"])
def test_sample_shape_and_determinism(client, model: str) -> None:
    a = client.sample(model, n=5, seed=11)
    b = client.sample(model, n=5, seed=11)
    assert a.images.shape == (5, 28, 28, 1) and a.images.dtype == np.uint8
    assert a.images.tobytes() == b.images.tobytes()
    c = client.sample(model, n=5, seed=12)
    assert a.images.tobytes() != c.images.tobytes()
    assert a.images.std() > 10  # not a blank or constant image


@pytest.mark.parametrize("model", ["dcgan", "cgan", "infogan"])
def test_image_i_does_not_depend_on_count_or_chunking(client, model: str) -> None:
    # 300 > --max-batch (256): the request is computed in two backend runs.
    big = client.sample(model, n=300, seed=5).images
    for start in (0, 17, 255, 256, 299):
        one = client.sample(model, n=start + 1, seed=5).images[start]
        np.testing.assert_array_equal(one, big[start])


def test_explicit_latents_reproduce_seeded_images(client) -> None:
    seeded = client.sample("dcgan", n=3, seed=9, return_latents=True)
    assert seeded.latents is not None and seeded.latents.shape == (3, client.model_info("dcgan").latent_dim)
    again = client.sample("dcgan", n=3, latents=seeded.latents)
    np.testing.assert_array_equal(again.images, seeded.images)


def test_digit_fixes_the_class(client) -> None:
    result = client.sample("cgan", n=6, seed=1, digit=4)
    assert result.classes.tolist() == [4] * 6
    info = client.model_info("infogan")
    result = client.sample("infogan", n=3, seed=1, digit=4)
    assert result.classes.tolist() == [info.conditioning.category_to_digit.index(4)] * 3


def _code(fn) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value.code(), info.value.details()


def test_unknown_model_is_not_found_and_lists_models(stub) -> None:
    code, msg = _code(lambda: stub.Sample(pb.SampleRequest(model="nope", count=1), timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "nope" in msg and "dcgan" in msg and "infogan" in msg
    code, msg = _code(lambda: stub.GetModel(pb.GetModelRequest(name="dcgan", version="999"), timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND and "999" in msg


def test_digit_for_unconditional_model_names_the_conditional_ones(stub) -> None:
    code, msg = _code(lambda: stub.Sample(pb.SampleRequest(model="dcgan", count=1, digit=7), timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert msg.startswith("digit:") and "cgan" in msg and "infogan" in msg


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        ({"model": "cgan", "count": 0}, "count"),
        ({"model": "cgan", "count": 10**6}, "count"),
        ({"model": "", "count": 1}, "model"),
        ({"model": "cgan", "count": 1, "digit": 10}, "digit"),
        ({"model": "cgan", "count": 1, "digit": -1}, "digit"),
        ({"model": "cgan", "count": 1, "label": "sneaker"}, "label"),
        ({"model": "cgan", "count": 1, "category": 1}, "category"),
        ({"model": "cgan", "count": 1, "digit": 1, "label": "1"}, "label"),
        ({"model": "infogan", "count": 1, "category": 10}, "category"),
        ({"model": "infogan", "count": 1, "continuous": [0.0]}, "continuous"),
        ({"model": "infogan", "count": 1, "continuous": [float("nan"), 0.0]}, "continuous"),
        ({"model": "infogan", "count": 1, "continuous": [float("inf"), 0.0]}, "continuous"),
        ({"model": "dcgan", "count": 1, "continuous": [0.0, 0.0]}, "continuous"),
        ({"model": "dcgan", "count": 2, "latents": [0.0] * 5}, "latents"),
        ({"model": "dcgan", "count": 1, "latents": [float("nan")] * 100}, "latents"),
    ],
)
def test_bad_fields_are_invalid_argument_naming_the_field(stub, request_kwargs, field: str) -> None:
    if request_kwargs.get("latents") and len(request_kwargs["latents"]) == 100:
        # make the NaN case exactly latent_dim long so only the value is wrong
        dim = stub.GetModel(pb.GetModelRequest(name="dcgan"), timeout=5).latent_dim
        request_kwargs = {**request_kwargs, "latents": [float("nan")] * dim}
    code, msg = _code(lambda: stub.Sample(pb.SampleRequest(**request_kwargs), timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
    assert msg.startswith(f"{field}:"), msg


def test_server_keeps_serving_after_errors(client) -> None:
    with pytest.raises(ModelNotFound):
        client.sample("nope")
    with pytest.raises(InvalidArgument, match="count"):
        client.sample("dcgan", n=10**6)
    assert client.sample("dcgan", n=2, seed=1).images.shape == (2, 28, 28, 1)
