"""The Open Inference Protocol (KServe v2, gRPC) servicer: ``inference.GRPCInferenceService``.

Stock OIP clients (tritonclient, the KServe SDK) can sample through it. Each
model takes named tensors that map one-to-one onto :class:`SampleSpec`
(docs/api.md, "Open Inference Protocol"); the images come back as one UINT8
tensor ``images`` of shape [N, H, W, C] in ``raw_output_contents``. Sampling is
the same code as gan.v1 ``Sample``, so the same seed gives the same bytes.
Errors go through :func:`gan_server.errors.grpc_errors` like the gan.v1 ones.

The REST binding of the same protocol (``/v2/...``, gan_server.http) shares
everything below the transport: the model's tensors and metadata
(:func:`model_inputs`, :func:`model_metadata_dict`), the checks of each input
(:func:`check_inputs`, :func:`values_from_bytes`, :func:`values_from_list`),
tensors → request (:func:`sample_spec`), the limits and the sampling itself
(:func:`prepare_infer`, :func:`run_infer`). Only reading tensors out of a
protobuf message or a JSON body differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from importlib import metadata

import grpc
import numpy as np
from gan_contract.errors import InvalidArgument, shown
from gan_contract.request import Plan, SampleSpec
from google.protobuf import json_format

from ._proto.inference import grpc_predict_v2_pb2 as pb
from ._proto.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from .batching import Dispatcher
from .errors import add_lenient_service, grpc_errors
from .repository import ModelRepository
from .sampling import LoadedModel
from .servicer import length_delimited_size, max_fitting

Context = grpc.aio.ServicerContext
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
OUTPUT = "images"
_PLATFORMS = {"onnx": "onnxruntime_onnx", "torchscript": "pytorch_libtorch"}
# datatype -> (element type on the wire, the InferTensorContents field that holds it)
_TYPES = {
    "UINT64": (np.dtype("<u8"), "uint64_contents"),
    "INT32": (np.dtype("<i4"), "int_contents"),
    "FP32": (np.dtype("<f4"), "fp32_contents"),
}


SERVER_NAME = "gan-server"


def server_version() -> str:
    try:
        return metadata.version("gan-platform")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


@dataclass(frozen=True)
class InputSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1: any size >= 1


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(
        self, repo: ModelRepository, dispatcher: Dispatcher, max_count: int, max_message_bytes: int = 64 << 20
    ) -> None:
        self.repo = repo
        self.dispatcher = dispatcher
        self.max_count = max_count
        self.max_message_bytes = max_message_bytes

    @grpc_errors
    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @grpc_errors
    async def ServerReady(self, request: pb.ServerReadyRequest, context: Context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=server_ready(self.repo))

    @grpc_errors
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=model_ready(self.repo, request.name, request.version))

    @grpc_errors
    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=server_version(), extensions=[])

    @grpc_errors
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> pb.ModelMetadataResponse:
        if not request.name:
            raise InvalidArgument("name", f"is required; available: {', '.join(self.repo.names()) or 'none'}")
        return model_metadata(self.repo, self.repo.get(request.name, request.version))

    @grpc_errors
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> pb.ModelInferResponse:
        if not request.model_name:
            raise InvalidArgument("model_name", f"is required; available: {', '.join(self.repo.names()) or 'none'}")
        outputs = [(out.name, out.parameters.keys()) for out in request.outputs]
        model, plan = prepare_infer(
            self.repo,
            request.model_name,
            request.model_version,
            outputs,
            lambda model: decode_inputs(request, model_inputs(model), model.name),
            self.max_count,
            self.max_message_bytes,
            id_bytes=_utf8_len(request.id),
        )
        images = await run_infer(self.dispatcher, model, plan)
        return pb.ModelInferResponse(
            model_name=model.name,
            model_version=model.version,
            id=request.id,
            outputs=[pb.ModelInferResponse.InferOutputTensor(name=OUTPUT, datatype="UINT8", shape=images.shape)],
            raw_output_contents=[images.tobytes()],
        )


def add_oip_servicer(
    server: grpc.aio.Server,
    repo: ModelRepository,
    dispatcher: Dispatcher,
    max_count: int,
    max_message_bytes: int = 64 << 20,
) -> None:
    """Serve ``inference.GRPCInferenceService`` on ``server``.

    Like the generated ``add_GRPCInferenceServiceServicer_to_server``, except
    that a request body that is not a valid protobuf message is answered with
    INVALID_ARGUMENT (grpc's default is UNKNOWN with the parser's exception).
    """
    add_lenient_service(server, InferenceServicer(repo, dispatcher, max_count, max_message_bytes), pb, SERVICE_NAME)


# -- pure helpers: model ↔ tensors ---------------------------------------------


def model_inputs(model: LoadedModel) -> list[InputSpec]:
    """The named input tensors ``model`` accepts; every one is optional."""
    cond = model.manifest.conditioning
    inputs = [
        InputSpec("seed", "UINT64", (1,)),
        InputSpec("count", "INT32", (1,)),
        InputSpec("latent", "FP32", (-1, model.manifest.latent.dim)),
    ]
    if cond.kind == "class":
        inputs.append(InputSpec("label", "INT32", (1,)))
    elif cond.kind == "infogan":
        if cond.category_to_digit:
            inputs.append(InputSpec("digit", "INT32", (1,)))
        inputs.append(InputSpec("category", "INT32", (1,)))
        if cond.num_continuous:
            inputs.append(InputSpec("continuous", "FP32", (cond.num_continuous,)))
    return inputs


def server_ready(repo: ModelRepository) -> bool:
    """ServerReady: every model warmed up (and at least one loaded)."""
    return repo.warmed and bool(repo.models)


def model_ready(repo: ModelRepository, name: str, version: str = "") -> bool:
    """ModelReady: the model (and version, when given) is loaded."""
    versions = repo.models.get(name, {})
    return bool(versions) and (not version or version in versions)


def model_metadata_dict(model: LoadedModel, versions: list[str], platform: str) -> dict:
    """ModelMetadata as the REST binding writes it (and the gRPC message is built from)."""
    image = model.manifest.image
    return {
        "name": model.name,
        "versions": versions,
        "platform": platform,
        "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in model_inputs(model)],
        "outputs": [{"name": OUTPUT, "datatype": "UINT8", "shape": [-1, image.height, image.width, image.channels]}],
    }


def platform_name(backend: str) -> str:
    """The OIP ``platform`` of models run by ``backend`` (Triton's names)."""
    return _PLATFORMS.get(backend, backend)


def model_metadata(repo: ModelRepository, model: LoadedModel) -> pb.ModelMetadataResponse:
    fields = model_metadata_dict(model, repo.versions(model.name), platform_name(repo.backend))
    return json_format.ParseDict(fields, pb.ModelMetadataResponse())


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("N" if d == -1 else str(d) for d in shape) + "]"


@dataclass(frozen=True)
class TensorIn:
    """One input tensor as a request names it, before any check; its data is read by the binding."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: Collection[str] = ()


# (index of the tensor in the request, the tensor, its checked spec) -> its values, flat
Reader = Callable[[int, TensorIn, InputSpec], np.ndarray]


def check_inputs(
    tensors: Sequence[TensorIn], specs: list[InputSpec], model_name: str, read: Reader
) -> dict[str, np.ndarray]:
    """Check each input's name, datatype and shape, then read it; return native-endian arrays by name."""
    by_name = {t.name: t for t in specs}
    values: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(tensors):
        name = tensor.name
        spec = by_name.get(name)
        if spec is None:
            raise InvalidArgument(
                name or f"inputs[{index}]",
                f"model {model_name!r} has no input {shown(name)}; its inputs: {', '.join(by_name)}",
            )
        if name in values:
            raise InvalidArgument(name, "is given more than once")
        if any(key.startswith("shared_memory") for key in tensor.parameters):
            raise InvalidArgument(name, "shared-memory inputs are not supported; send the data in the request")
        if tensor.datatype != spec.datatype:
            raise InvalidArgument(name, f"datatype must be {spec.datatype}, got {shown(tensor.datatype)}")
        shape = tensor.shape
        if len(shape) != len(spec.shape) or any(
            (d < 1) if want == -1 else (d != want) for d, want in zip(shape, spec.shape)
        ):
            raise InvalidArgument(name, f"shape must be {_shape_text(spec.shape)}, got {shown(list(shape))}")
        values[name] = read(index, tensor, spec).reshape(shape)
    return values


def values_from_bytes(name: str, data: bytes, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A tensor's little-endian bytes (``where``: how the request holds them) → native-endian values."""
    dtype = _TYPES[datatype][0]
    need = math.prod(shape) * dtype.itemsize
    if len(data) != need:
        raise InvalidArgument(name, f"{where} has {len(data)} bytes; shape {list(shape)} of {datatype} needs {need}")
    return np.frombuffer(data, dtype).astype(dtype.newbyteorder("="))


def values_from_list(name: str, items: Sequence, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A tensor's values given one by one (already of the datatype's kind and range) → an array."""
    size = math.prod(shape)
    if len(items) != size:
        raise InvalidArgument(name, f"shape {list(shape)} needs {size} values in {where}, got {len(items)}")
    return np.asarray(items, dtype=_TYPES[datatype][0].newbyteorder("="))


def decode_inputs(request: pb.ModelInferRequest, specs: list[InputSpec], model_name: str) -> dict[str, np.ndarray]:
    """The inputs of a gRPC ModelInferRequest: raw_input_contents or typed contents."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(
            "raw_input_contents",
            f"has {len(raw)} entries for {len(request.inputs)} inputs; give one per input, in order",
        )
    tensors = [TensorIn(t.name, t.datatype, tuple(t.shape), t.parameters.keys()) for t in request.inputs]

    def read(index: int, tensor: TensorIn, spec: InputSpec) -> np.ndarray:
        message = request.inputs[index]
        if raw:
            if message.HasField("contents"):
                raise InvalidArgument(tensor.name, "has both contents and raw_input_contents; use one")
            return values_from_bytes(
                tensor.name, raw[index], spec.datatype, tensor.shape, f"raw_input_contents[{index}]"
            )
        field = _TYPES[spec.datatype][1]
        wrong = [f.name for f, _ in message.contents.ListFields() if f.name != field]
        if wrong:
            raise InvalidArgument(
                tensor.name, f"{spec.datatype} values go in contents.{field}, got contents.{wrong[0]}"
            )
        return values_from_list(
            tensor.name, getattr(message.contents, field), spec.datatype, tensor.shape, f"contents.{field}"
        )

    return check_inputs(tensors, specs, model_name, read)


def sample_spec(model: LoadedModel, values: dict[str, np.ndarray], max_count: int) -> SampleSpec:
    """Decoded tensors → the domain request (values the model checks in ``plan``)."""
    latent = values.get("latent")
    if "count" in values:
        count = int(values["count"][0])
        if count < 1:
            raise InvalidArgument("count", f"must be at least 1, got {count}")
        if count > max_count:
            raise InvalidArgument("count", f"{count} exceeds this server's limit of {max_count} images per request")
        if latent is not None and latent.shape[0] != count:
            raise InvalidArgument("latent", f"has {latent.shape[0]} rows but count is {count}")
    else:
        count = 1 if latent is None else latent.shape[0]
        if count > max_count:
            raise InvalidArgument(
                "latent", f"{count} rows exceed this server's limit of {max_count} images per request"
            )
    if latent is not None and not np.all(np.isfinite(latent)):
        raise InvalidArgument("latent", "values must be finite (no NaN or inf)")
    label = None
    if "label" in values:
        names = model.manifest.conditioning.class_names
        index = int(values["label"][0])
        if not 0 <= index < len(names):
            raise InvalidArgument("label", f"must be a class index in [0, {len(names) - 1}], got {index}")
        label = names[index]
    return SampleSpec(
        count=count,
        seed=int(values["seed"][0]) if "seed" in values else 0,
        digit=int(values["digit"][0]) if "digit" in values else None,
        label=label,
        category=int(values["category"][0]) if "category" in values else None,
        continuous=tuple(float(v) for v in values["continuous"]) if "continuous" in values else (),
        latents=latent,
    )


def infer_response_size(model: LoadedModel, count: int, id_bytes: int = 0) -> int:
    """The serialized size of the ModelInferResponse ModelInfer builds for ``count`` images.

    Exact: the names, the echoed ``id`` (``id_bytes`` of UTF-8), the output
    tensor's metadata (its shape's varints depend on ``count``) and the raw
    images, each with its tag and length.
    """
    image = model.manifest.image
    size = pb.ModelInferResponse(
        model_name=model.name,
        model_version=model.version,
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(
                name=OUTPUT, datatype="UINT8", shape=(count, image.height, image.width, image.channels)
            )
        ],
    ).ByteSize()
    if id_bytes:
        size += length_delimited_size(id_bytes)
    return size + length_delimited_size(count * image.height * image.width * image.channels)


def check_response_size(model: LoadedModel, count: int, limit: int, field: str, id_bytes: int = 0) -> None:
    """Refuse, before any work, a response over the server's message limit."""
    need = infer_response_size(model, count, id_bytes)
    if need <= limit:
        return
    fits = max_fitting(lambda n: infer_response_size(model, n, id_bytes), limit)
    advice = f"ask for at most {fits} per request" if fits else "no image fits"
    if id_bytes and infer_response_size(model, count) <= limit:
        raise InvalidArgument(
            "id",
            f"is {id_bytes} bytes and comes back in the response: with {count} images it needs {need} bytes, "
            f"over this server's message limit of {limit} bytes; send a shorter id, or with this one {advice}",
        )
    if not fits:
        raise InvalidArgument(
            field,
            f"one image needs {infer_response_size(model, 1, id_bytes)} bytes, over this server's message limit "
            f"of {limit} bytes",
        )
    raise InvalidArgument(
        field,
        f"{count} images need {need} bytes, over this server's message limit of {limit} bytes; {advice}",
    )


def check_requested_outputs(outputs: Sequence[tuple[str, Collection[str]]]) -> None:
    """Only ``images`` exists; Triton's shared-memory and classification options are not supported.

    ``outputs``: (name, its parameter names) of each requested output.
    """
    for index, (name, parameters) in enumerate(outputs):
        if name != OUTPUT:
            raise InvalidArgument(
                name or f"outputs[{index}]", f"unknown output {shown(name)}; the only output is {OUTPUT!r}"
            )
        unsupported = sorted(k for k in parameters if k.startswith("shared_memory") or k == "classification")
        if unsupported:
            raise InvalidArgument(OUTPUT, f"output parameter {shown(unsupported[0])} is not supported")


# -- the protocol-independent request path ------------------------------------------


def prepare_infer(
    repo: ModelRepository,
    model_name: str,
    model_version: str,
    outputs: Sequence[tuple[str, Collection[str]]],
    decode: Callable[[LoadedModel], dict[str, np.ndarray]],
    max_count: int,
    max_response_bytes: int,
    id_bytes: int = 0,
) -> tuple[LoadedModel, Plan]:
    """Everything before the work: the model, the requested outputs, the inputs
    (``decode(model)``), the limits and the plan. Raises the domain errors.

    ``id_bytes``: the UTF-8 length of the request id, which the response echoes
    and so counts against the limit."""
    model = repo.get(model_name, model_version)
    check_requested_outputs(outputs)
    values = decode(model)
    spec = sample_spec(model, values, max_count)
    field = "latent" if "count" not in values and "latent" in values else "count"
    check_response_size(model, spec.count, max_response_bytes, field, id_bytes)
    return model, model.plan(spec, repo.conditional_names())


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


async def run_infer(dispatcher: Dispatcher, model: LoadedModel, plan: Plan) -> np.ndarray:
    """The images of a planned request: uint8 (N, H, W, C)."""
    # The dispatcher gan.v1 Sample uses: same chunking, batching and limits, same images.
    parts = await dispatcher.run(model, plan)
    return np.concatenate([p.images for p in parts])
