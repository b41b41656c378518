"""The Open Inference Protocol's REST binding (``/v2``), called with the stock
``tritonclient.http`` client: requests built only from the model metadata give
the bytes ``tritonclient.grpc`` gets over the gRPC binding, and bad requests get
the gRPC binding's messages with an HTTP 400."""

from __future__ import annotations

import json
from importlib import metadata

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

from .conftest import call

MODELS = ["dcgan", "cgan", "infogan", "cgan-fashion", "wgan-gp"]


@pytest.fixture(scope="module")
def rest(http_server):
    client = thttp.InferenceServerClient(http_server.http_address)
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc_oip(http_server):
    client = tgrpc.InferenceServerClient(http_server.address)
    yield client
    client.close()


def _inputs(module, meta_inputs, values: dict, binary: bool = True) -> list:
    """InferInputs for ``values``, their datatypes and shapes taken from the model metadata alone."""
    by_name = {i["name"]: i for i in meta_inputs}
    built = []
    for name, value in values.items():
        spec = by_name[name]
        shape = [int(d) for d in spec["shape"]]  # proto3 JSON (the gRPC client's as_json) writes int64 as text
        array = np.asarray(value, dtype=triton_to_np_dtype(spec["datatype"])).reshape(shape)
        tensor = module.InferInput(name, list(array.shape), spec["datatype"])
        if module is thttp:
            tensor.set_data_from_numpy(array, binary_data=binary)
        else:
            tensor.set_data_from_numpy(array)
        built.append(tensor)
    return built


def _request_values(meta: dict) -> dict:
    """seed and count, plus a class when the model takes one: only what the metadata says exists."""
    names = {i["name"] for i in meta["inputs"]}
    values = {"seed": [7], "count": [5]}
    if "digit" in names:
        values["digit"] = [7]
    elif "label" in names:
        values["label"] = [3]
    return values


# -- health and metadata -------------------------------------------------------------


def test_live_ready_and_server_metadata(rest) -> None:
    assert rest.is_server_live() is True
    assert rest.is_server_ready() is True
    meta = rest.get_server_metadata()
    assert meta == {
        "name": "gan-server",
        "version": metadata.version("gan-platform"),
        "extensions": ["binary_tensor_data"],
    }


@pytest.mark.parametrize("model", MODELS)
def test_model_metadata_is_the_grpc_bindings(rest, grpc_oip, model: str) -> None:
    meta = rest.get_model_metadata(model)
    other = grpc_oip.get_model_metadata(model, as_json=True)
    assert meta["name"] == other["name"] == model
    assert meta["versions"] == other["versions"]
    assert meta["platform"] == other["platform"] == "onnxruntime_onnx"
    # proto3 JSON writes int64 as strings; the REST binding writes numbers
    for key in ("inputs", "outputs"):
        assert [(t["name"], t["datatype"], t["shape"]) for t in meta[key]] == [
            (t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in other[key]
        ]
    for version in meta["versions"]:
        assert rest.get_model_metadata(model, version) == meta
        assert rest.is_model_ready(model, version) is True
    assert rest.is_model_ready(model) is True


def test_unknown_models_and_versions_are_not_ready_and_404(rest, http_server) -> None:
    assert rest.is_model_ready("no-such-model") is False
    assert rest.is_model_ready("dcgan", "99") is False
    for path in ("/v2/models/no-such-model", "/v2/models/dcgan/versions/99", "/v2/models/no-such-model/ready"):
        reply = call(http_server.http_url + path)
        assert reply.status == 404, path
        assert "not found" in reply.json()["error"]
    with pytest.raises(InferenceServerException) as exc:
        rest.infer("no-such-model", [])
    assert exc.value.status() == "404" and "dcgan" in exc.value.message()


# -- inference: the gRPC binding's bytes ---------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_from_metadata_matches_grpc_oip_byte_for_byte(rest, grpc_oip, model: str, binary: bool) -> None:
    meta = rest.get_model_metadata(model)
    values = _request_values(meta)
    result = rest.infer(
        model,
        _inputs(thttp, meta["inputs"], values, binary),
        outputs=[thttp.InferRequestedOutput("images", binary_data=binary)],
        request_id="rest-1",
    )
    images = result.as_numpy("images")
    (out,) = meta["outputs"]
    assert list(images.shape) == [5, *out["shape"][1:]] and images.dtype == np.uint8
    want = grpc_oip.infer(
        model,
        _inputs(tgrpc, grpc_oip.get_model_metadata(model, as_json=True)["inputs"], values),
        outputs=[tgrpc.InferRequestedOutput("images")],
    ).as_numpy("images")
    assert images.tobytes() == want.tobytes()
    response = result.get_response()
    assert response["id"] == "rest-1"
    assert (response["model_name"], response["model_version"]) == (model, meta["versions"][-1])


def test_infogan_continuous_codes_and_latents_match_grpc(rest, grpc_oip) -> None:
    meta = rest.get_model_metadata("infogan")
    codes = np.linspace(-0.5, 0.5, 2, dtype=np.float32)
    values = {"seed": [2**64 - 1], "count": [3], "category": [4], "continuous": codes}
    got = rest.infer("infogan", _inputs(thttp, meta["inputs"], values, binary=False)).as_numpy("images")
    grpc_meta = grpc_oip.get_model_metadata("infogan", as_json=True)["inputs"]
    want = grpc_oip.infer("infogan", _inputs(tgrpc, grpc_meta, values)).as_numpy("images")
    assert got.tobytes() == want.tobytes()
    latent = np.random.default_rng(0).standard_normal((4, 62)).astype(np.float32)
    z = thttp.InferInput("latent", [4, 62], "FP32")
    z.set_data_from_numpy(latent)
    zg = tgrpc.InferInput("latent", [4, 62], "FP32")
    zg.set_data_from_numpy(latent)
    assert rest.infer("dcgan", [], outputs=None).as_numpy("images").shape[0] == 1  # defaults: one image of seed 0
    got = rest.infer("infogan", [z]).as_numpy("images")
    assert got.tobytes() == grpc_oip.infer("infogan", [zg]).as_numpy("images").tobytes()


def test_model_version_in_the_path(rest, grpc_oip) -> None:
    for version in rest.get_model_metadata("dcgan")["versions"]:
        seed = thttp.InferInput("seed", [1], "UINT64")
        seed.set_data_from_numpy(np.array([5], np.uint64))
        result = rest.infer("dcgan", [seed], model_version=version)
        assert result.get_response()["model_version"] == version
        gseed = tgrpc.InferInput("seed", [1], "UINT64")
        gseed.set_data_from_numpy(np.array([5], np.uint64))
        want = grpc_oip.infer("dcgan", [gseed], model_version=version).as_numpy("images")
        assert result.as_numpy("images").tobytes() == want.tobytes()


def test_plain_json_request_and_response_without_tritonclient(http_server) -> None:
    body = {
        "id": "plain",
        "inputs": [
            {"name": "seed", "shape": [1], "datatype": "UINT64", "data": [3]},
            {"name": "count", "shape": [1], "datatype": "INT32", "data": [2]},
            {"name": "label", "shape": [1], "datatype": "INT32", "data": 1},  # a lone value for shape [1]
        ],
    }
    reply = call(http_server.http_url + "/v2/models/cgan/infer", "POST", json.dumps(body).encode())
    assert reply.status == 200, reply.body
    doc = reply.json()
    assert doc["id"] == "plain" and doc["model_name"] == "cgan"
    (out,) = doc["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("images", "UINT8", [2, 28, 28, 1])
    assert len(out["data"]) == 2 * 28 * 28 and all(0 <= v <= 255 for v in out["data"])
    # the binary extension by hand: a JSON header, then each input's bytes in order
    header = json.dumps(
        {
            "inputs": [
                {"name": "seed", "shape": [1], "datatype": "UINT64", "parameters": {"binary_data_size": 8}},
                {"name": "count", "shape": [1], "datatype": "INT32", "data": [2]},
                {"name": "label", "shape": [1], "datatype": "INT32", "parameters": {"binary_data_size": 4}},
            ],
            "outputs": [{"name": "images", "parameters": {"binary_data": True}}],
        }
    ).encode()
    raw = header + np.array([3], "<u8").tobytes() + np.array([1], "<i4").tobytes()
    reply = call(
        http_server.http_url + "/v2/models/cgan/infer",
        "POST",
        raw,
        {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert reply.status == 200, reply.body
    size = int(reply.headers["Inference-Header-Content-Length"])
    head = json.loads(reply.body[:size])
    assert head["outputs"][0]["parameters"]["binary_data_size"] == len(reply.body) - size
    assert reply.body[size:] == bytes(out["data"])


def test_nested_data_is_row_major_like_flat_data(http_server) -> None:
    latent = np.random.default_rng(1).standard_normal((2, 100)).astype(np.float32)
    replies = []
    for data in (latent.tolist(), latent.ravel().tolist()):
        body = {"inputs": [{"name": "latent", "shape": [2, 100], "datatype": "FP32", "data": data}]}
        replies.append(call(http_server.http_url + "/v2/models/dcgan/infer", "POST", json.dumps(body).encode()))
    assert [r.status for r in replies] == [200, 200]
    assert replies[0].json()["outputs"] == replies[1].json()["outputs"]
    too_deep = {"inputs": [{"name": "count", "shape": [1], "datatype": "INT32", "data": [[2]]}]}
    reply = call(http_server.http_url + "/v2/models/dcgan/infer", "POST", json.dumps(too_deep).encode())
    assert reply.status == 400 and reply.json()["error"].startswith("count: data is nested deeper")


# -- errors: the gRPC binding's messages, as 400 --------------------------------------


NAN2 = [float("nan"), 0.0]


@pytest.mark.parametrize(
    ("model", "inputs", "field"),
    [
        ("dcgan", [("seed", [7], "INT64")], "seed"),
        ("dcgan", [("count", [2.0], "FP32")], "count"),
        ("dcgan", [("temperature", [1.0], "FP32")], "temperature"),
        ("dcgan", [("seed", [7, 8], "UINT64")], "seed"),
        ("dcgan", [("count", [0], "INT32")], "count"),
        ("dcgan", [("count", [4097], "INT32")], "count"),
        ("dcgan", [("latent", [[float("nan")] * 100], "FP32")], "latent"),
        ("dcgan", [("label", [1], "INT32")], "label"),
        ("dcgan", [("seed", [1], "UINT64"), ("seed", [2], "UINT64")], "seed"),
        ("cgan", [("label", [10_000], "INT32")], "label"),
        ("cgan", [("digit", [1], "INT32")], "digit"),
        ("infogan", [("continuous", NAN2, "FP32")], "continuous"),
        ("infogan", [("digit", [11], "INT32")], "digit"),
        ("infogan", [("digit", [1], "INT32"), ("category", [1], "INT32")], "category"),
    ],
)
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_bad_inputs_get_the_grpc_message_and_400(rest, grpc_oip, model, inputs, field, binary) -> None:
    def build(module):
        built = []
        for name, value, datatype in inputs:
            array = np.asarray(value, dtype=triton_to_np_dtype(datatype))
            if name == "latent":
                array = np.resize(array, (array.shape[0], 62 if model == "infogan" else 100))
            t = module.InferInput(name, list(array.shape), datatype)
            if module is thttp:
                t.set_data_from_numpy(array, binary_data=binary or datatype == "FP32")
            else:
                t.set_data_from_numpy(array)
            built.append(t)
        return built

    with pytest.raises(InferenceServerException) as rest_exc:
        rest.infer(model, build(thttp))
    with pytest.raises(InferenceServerException) as grpc_exc:
        grpc_oip.infer(model, build(tgrpc))
    assert rest_exc.value.status() == "400", rest_exc.value.message()
    assert rest_exc.value.message().startswith(f"{field}: "), rest_exc.value.message()
    if field != "latent":  # a latent's width is the model's: the test builds the same rows for both
        assert rest_exc.value.message() == grpc_exc.value.message()


def test_unknown_output_and_unsupported_parameters_are_400(rest) -> None:
    with pytest.raises(InferenceServerException) as exc:
        rest.infer("dcgan", [], outputs=[thttp.InferRequestedOutput("probabilities")])
    assert exc.value.status() == "400" and exc.value.message().startswith("probabilities: ")
    with pytest.raises(InferenceServerException) as exc:
        rest.infer("dcgan", [], outputs=[thttp.InferRequestedOutput("images", class_count=3)])
    assert exc.value.status() == "400" and "classification" in exc.value.message()
