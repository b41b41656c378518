"""The Open Inference Protocol (KServe v2, gRPC) on the real server, called with stock tritonclient.

Only tritonclient's own ``inference.*`` messages are used in this process:
the server's generated copy (gan_server._proto.inference) would collide with
them in the protobuf descriptor pool, and the server runs as a subprocess.
"""

from __future__ import annotations

from importlib import metadata

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tc
from gan_client import GanClient
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from ..conftest import start_server, stop_server

MODELS = ["dcgan", "cgan", "infogan"]


@pytest.fixture(scope="module")
def triton(server):
    client = tc.InferenceServerClient(server.address)
    yield client
    client.close()


@pytest.fixture(scope="module")
def gan(server):
    with GanClient(server.address) as client:
        yield client


@pytest.fixture(scope="module")
def stub(server):
    """tritonclient's generated stub, for requests its high-level client cannot build."""
    with grpc.insecure_channel(server.address) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def tensor(name: str, value, datatype: str) -> tc.InferInput:
    array = np.asarray(
        value,
        dtype={"UINT64": np.uint64, "INT64": np.int64, "INT32": np.int32, "FP32": np.float32, "FP64": np.float64}[
            datatype
        ],
    )
    t = tc.InferInput(name, list(array.shape), datatype)
    t.set_data_from_numpy(array)
    return t


def infer_images(triton: tc.InferenceServerClient, model: str, *inputs: tc.InferInput, **kwargs) -> np.ndarray:
    result = triton.infer(model, list(inputs), outputs=[tc.InferRequestedOutput("images")], **kwargs)
    return result.as_numpy("images")


# -- health and metadata -----------------------------------------------------------


def test_server_live_and_ready(triton) -> None:
    assert triton.is_server_live() is True
    assert triton.is_server_ready() is True


def test_model_ready(triton, gan) -> None:
    for model in MODELS:
        assert triton.is_model_ready(model) is True
        for version in gan.model_info(model).versions:
            assert triton.is_model_ready(model, version) is True
    assert triton.is_model_ready("no-such-model") is False
    assert triton.is_model_ready("dcgan", "no-such-version") is False


def test_server_metadata(triton) -> None:
    meta = triton.get_server_metadata()
    assert meta.name == "gan-server"
    assert meta.version == metadata.version("gan-platform")
    assert list(meta.extensions) == []


@pytest.mark.parametrize("model", MODELS)
def test_model_metadata_lists_inputs_and_the_images_output(triton, gan, model: str) -> None:
    info = gan.model_info(model)
    meta = triton.get_model_metadata(model)
    assert meta.name == model
    assert list(meta.versions) == list(info.versions)
    assert meta.platform == "onnxruntime_onnx"
    expected = {"seed": ("UINT64", [1]), "count": ("INT32", [1]), "latent": ("FP32", [-1, info.latent_dim])}
    cond = info.conditioning
    if cond.kind == "class":
        expected["label"] = ("INT32", [1])
    if cond.kind == "infogan":
        expected.update(digit=("INT32", [1]), category=("INT32", [1]), continuous=("FP32", [cond.num_continuous]))
    assert {i.name: (i.datatype, list(i.shape)) for i in meta.inputs} == expected
    assert [(o.name, o.datatype, list(o.shape)) for o in meta.outputs] == [
        ("images", "UINT8", [-1, info.height, info.width, info.channels])
    ]


def test_reflection_lists_the_oip_service(server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        responses = list(refl.ServerReflectionInfo(iter([request]), timeout=5))
    assert "inference.GRPCInferenceService" in {s.name for s in responses[0].list_services_response.service}


# -- inference: the same bytes as gan.v1 Sample ------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_infer_matches_gan_v1_sample_byte_for_byte(triton, gan, model: str) -> None:
    info = gan.model_info(model)
    images = infer_images(triton, model, tensor("seed", [7], "UINT64"), tensor("count", [5], "INT32"))
    assert images.shape == (5, info.height, info.width, info.channels) and images.dtype == np.uint8
    assert images.tobytes() == gan.sample(model, n=5, seed=7).images.tobytes()
    other = infer_images(triton, model, tensor("seed", [8], "UINT64"), tensor("count", [5], "INT32"))
    assert other.tobytes() != images.tobytes()


def test_cgan_label_is_the_class_index(triton, gan) -> None:
    names = gan.model_info("cgan").conditioning.class_names
    for index in (0, 3, len(names) - 1):
        images = infer_images(
            triton,
            "cgan",
            tensor("seed", [11], "UINT64"),
            tensor("count", [4], "INT32"),
            tensor("label", [index], "INT32"),
        )
        assert images.tobytes() == gan.sample("cgan", n=4, seed=11, label=names[index]).images.tobytes()
    assert (
        images.tobytes()
        != infer_images(
            triton, "cgan", tensor("seed", [11], "UINT64"), tensor("count", [4], "INT32"), tensor("label", [0], "INT32")
        ).tobytes()
    )


def test_infogan_digit_category_and_continuous(triton, gan) -> None:
    cond = gan.model_info("infogan").conditioning
    codes = np.linspace(-0.5, 0.5, cond.num_continuous, dtype=np.float32)
    by_digit = infer_images(
        triton,
        "infogan",
        tensor("seed", [3], "UINT64"),
        tensor("count", [3], "INT32"),
        tensor("digit", [7], "INT32"),
        tensor("continuous", codes, "FP32"),
    )
    want = gan.sample("infogan", n=3, seed=3, digit=7, continuous=codes.tolist()).images
    assert by_digit.tobytes() == want.tobytes()
    # digit d goes through the manifest's category_to_digit map: the same images as its category
    by_category = infer_images(
        triton,
        "infogan",
        tensor("seed", [3], "UINT64"),
        tensor("count", [3], "INT32"),
        tensor("category", [cond.category_to_digit.index(7)], "INT32"),
        tensor("continuous", codes, "FP32"),
    )
    assert by_category.tobytes() == by_digit.tobytes()


def test_latent_input_replaces_the_seeded_z(triton, gan) -> None:
    seeded = gan.sample("dcgan", n=3, seed=9, return_latents=True)
    images = infer_images(triton, "dcgan", tensor("latent", seeded.latents, "FP32"))  # count defaults to its rows
    assert images.tobytes() == seeded.images.tobytes()


def test_defaults_are_one_image_of_seed_0(triton, gan) -> None:
    result = triton.infer("dcgan", [], request_id="req-1")
    assert result.as_numpy("images").tobytes() == gan.sample("dcgan", n=1, seed=0).images.tobytes()
    response = result.get_response()
    assert response.id == "req-1"
    assert (response.model_name, response.model_version) == ("dcgan", gan.model_info("dcgan").version)


def test_model_version_is_honoured(triton, gan) -> None:
    for version in gan.model_info("dcgan").versions:
        result = triton.infer("dcgan", [tensor("seed", [5], "UINT64")], model_version=version)
        assert result.get_response().model_version == version
        assert result.as_numpy("images").tobytes() == gan.sample("dcgan", n=1, seed=5, version=version).images.tobytes()


def test_typed_contents_work_like_raw_contents(triton, stub) -> None:
    request = service_pb2.ModelInferRequest(model_name="cgan")
    for name, datatype, field, value in (
        ("seed", "UINT64", "uint64_contents", 2**64 - 1),
        ("count", "INT32", "int_contents", 2),
        ("label", "INT32", "int_contents", 5),
    ):
        t = request.inputs.add(name=name, datatype=datatype, shape=[1])
        getattr(t.contents, field).append(value)
    response = stub.ModelInfer(request, timeout=10)
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [("images", "UINT8", [2, 28, 28, 1])]
    raw = infer_images(
        triton,
        "cgan",
        tensor("seed", [2**64 - 1], "UINT64"),
        tensor("count", [2], "INT32"),
        tensor("label", [5], "INT32"),
    )
    assert response.raw_output_contents[0] == raw.tobytes()


# -- errors -------------------------------------------------------------------------


def test_unknown_model_is_not_found(triton) -> None:
    with pytest.raises(InferenceServerException) as exc:
        triton.infer("no-such-model", [tensor("seed", [1], "UINT64")])
    assert exc.value.status() == "StatusCode.NOT_FOUND"
    assert "no-such-model" in exc.value.message() and "dcgan" in exc.value.message()
    with pytest.raises(InferenceServerException) as exc:
        triton.get_model_metadata("no-such-model")
    assert exc.value.status() == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException) as exc:
        triton.infer("dcgan", [], model_version="no-such-version")
    assert exc.value.status() == "StatusCode.NOT_FOUND"


NAN2 = [float("nan"), 0.0]


@pytest.mark.parametrize(
    ("model", "inputs", "field"),
    [
        ("dcgan", [("seed", [7], "INT64")], "seed"),
        ("dcgan", [("count", [2.0], "FP32")], "count"),
        ("dcgan", [("temperature", [1.0], "FP32")], "temperature"),
        ("dcgan", [("seed", [7, 8], "UINT64")], "seed"),
        ("dcgan", [("seed", [[7]], "UINT64")], "seed"),
        ("dcgan", [("count", [0], "INT32")], "count"),
        ("dcgan", [("count", [-3], "INT32")], "count"),
        ("dcgan", [("count", [4097], "INT32")], "count"),
        ("dcgan", [("latent", [[float("nan")] * 4], "FP32")], "latent"),
        ("dcgan", [("count", [2], "INT32"), ("latent", np.zeros((3, 1)), "FP32")], "latent"),
        ("dcgan", [("label", [1], "INT32")], "label"),
        ("dcgan", [("seed", [1], "UINT64"), ("seed", [2], "UINT64")], "seed"),
        ("cgan", [("label", [-1], "INT32")], "label"),
        ("cgan", [("label", [10_000], "INT32")], "label"),
        ("cgan", [("digit", [1], "INT32")], "digit"),
        ("infogan", [("continuous", NAN2, "FP32")], "continuous"),
        ("infogan", [("continuous", [0.0] * 65, "FP32")], "continuous"),
        ("infogan", [("digit", [11], "INT32")], "digit"),
        ("infogan", [("category", [-1], "INT32")], "category"),
        ("infogan", [("digit", [1], "INT32"), ("category", [1], "INT32")], "category"),
    ],
)
def test_bad_inputs_are_invalid_argument_naming_the_input(triton, gan, model, inputs, field) -> None:
    built = []
    for name, value, datatype in inputs:
        if name == "latent":  # give it the model's latent width, keeping the test's rows
            value = np.resize(np.asarray(value, np.float32), (np.shape(value)[0], gan.model_info(model).latent_dim))
        built.append(tensor(name, value, datatype))
    with pytest.raises(InferenceServerException) as exc:
        triton.infer(model, built)
    assert exc.value.status() == "StatusCode.INVALID_ARGUMENT", exc.value.message()
    assert exc.value.message().startswith(f"{field}: "), exc.value.message()


def test_latent_of_the_wrong_width_names_latent(triton, gan) -> None:
    dim = gan.model_info("dcgan").latent_dim
    with pytest.raises(InferenceServerException) as exc:
        triton.infer("dcgan", [tensor("latent", np.zeros((2, dim + 1)), "FP32")])
    assert exc.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert exc.value.message().startswith("latent: ")


def test_unknown_requested_output_is_invalid_argument(triton) -> None:
    with pytest.raises(InferenceServerException) as exc:
        triton.infer("dcgan", [], outputs=[tc.InferRequestedOutput("probabilities")])
    assert exc.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert exc.value.message().startswith("probabilities: ")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([b"\x07"], "seed"),  # 1 byte for an 8-byte UINT64
        ([], None),  # no data at all: contents empty too
        ([b"\x07" + b"\0" * 7, b"extra"], "raw_input_contents"),
    ],
)
def test_malformed_raw_contents_are_invalid_argument(stub, raw, field) -> None:
    request = service_pb2.ModelInferRequest(model_name="dcgan", raw_input_contents=raw)
    request.inputs.add(name="seed", datatype="UINT64", shape=[1])
    with pytest.raises(grpc.RpcError) as exc:
        stub.ModelInfer(request, timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith(f"{field or 'seed'}: "), exc.value.details()


def test_typed_contents_in_the_wrong_field_are_invalid_argument(stub) -> None:
    request = service_pb2.ModelInferRequest(model_name="dcgan")
    request.inputs.add(name="seed", datatype="UINT64", shape=[1]).contents.int64_contents.append(7)
    with pytest.raises(grpc.RpcError) as exc:
        stub.ModelInfer(request, timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith("seed: ") and "contents.int64_contents" in exc.value.details()


def test_garbage_request_bytes_are_invalid_argument(server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as exc:
            call(b"\xff\xff\xff\xff not a protobuf message", timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_response_over_the_message_limit_is_refused_before_work(bundled_models, tmp_path) -> None:
    srv = start_server(bundled_models, tmp_path / "log", "--max-message-mb", "1")
    try:
        client = tc.InferenceServerClient(srv.address)
        with pytest.raises(InferenceServerException) as exc:
            client.infer("dcgan", [tensor("count", [2000], "INT32")])  # 2000 x 784 bytes > 1 MiB
        assert exc.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert exc.value.message().startswith("count: ") and "message limit" in exc.value.message()
        assert infer_images(client, "dcgan", tensor("count", [1000], "INT32")).shape[0] == 1000
        client.close()
    finally:
        assert stop_server(srv) == 0


def test_server_keeps_serving_after_bad_requests(triton, gan, server) -> None:
    for value in ([float("nan")], [1e30]):
        with pytest.raises(InferenceServerException):
            triton.infer("dcgan", [tensor("count", value, "FP32")])
    assert triton.is_server_live()
    assert (
        infer_images(triton, "dcgan", tensor("seed", [1], "UINT64")).tobytes()
        == gan.sample("dcgan", n=1, seed=1).images.tobytes()
    )
    assert server.process.poll() is None
    oip_methods = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer")
    assert not [m for m in oip_methods if f"unhandled error in {m}" in server.log()]
