"""The Open Inference Protocol (KServe v2, gRPC) servicer: ``inference.GRPCInferenceService``.

Stock OIP clients (tritonclient, the KServe SDK) can sample through it. Each
model takes named tensors that map one-to-one onto :class:`SampleSpec`
(docs/api.md, "Open Inference Protocol"); the images come back as one UINT8
tensor ``images`` of shape [N, H, W, C] in ``raw_output_contents``. Sampling is
the same code as gan.v1 ``Sample``, so the same seed gives the same bytes.
Errors go through :func:`gan_server.errors.grpc_errors` like the gan.v1 ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import metadata

import grpc
import numpy as np
from gan_contract.errors import InvalidArgument, shown
from gan_contract.request import SampleSpec

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


def _server_version() -> str:
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
        return pb.ServerReadyResponse(ready=self.repo.warmed and bool(self.repo.models))

    @grpc_errors
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> pb.ModelReadyResponse:
        versions = self.repo.models.get(request.name, {})
        return pb.ModelReadyResponse(ready=bool(versions) and (not request.version or request.version in versions))

    @grpc_errors
    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="gan-server", version=_server_version(), extensions=[])

    @grpc_errors
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> pb.ModelMetadataResponse:
        if not request.name:
            raise InvalidArgument("name", f"is required; available: {', '.join(self.repo.names()) or 'none'}")
        model = self.repo.get(request.name, request.version)
        platform = _PLATFORMS.get(self.repo.backend, self.repo.backend)
        return model_metadata(model, self.repo.versions(model.name), platform)

    @grpc_errors
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> pb.ModelInferResponse:
        if not request.model_name:
            raise InvalidArgument("model_name", f"is required; available: {', '.join(self.repo.names()) or 'none'}")
        model = self.repo.get(request.model_name, request.model_version)
        check_requested_outputs(request)
        values = decode_inputs(request, model_inputs(model), model.name)
        spec = sample_spec(model, values, self.max_count)
        field = "latent" if "count" not in values and "latent" in values else "count"
        # The id comes back in the response: a long one counts against the limit.
        request_id = request.id
        id_bytes = len(request_id) if request_id.isascii() else len(request_id.encode("utf-8"))
        check_response_size(model, spec.count, self.max_message_bytes, field, id_bytes)
        plan = model.plan(spec, self.repo.conditional_names())
        # The dispatcher gan.v1 Sample uses: same chunking, batching and limits, same images.
        parts = await self.dispatcher.run(model, plan)
        images = np.concatenate([p.images for p in parts])
        return pb.ModelInferResponse(
            model_name=model.name,
            model_version=model.version,
            id=request_id,
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


def model_metadata(model: LoadedModel, versions: list[str], platform: str) -> pb.ModelMetadataResponse:
    image = model.manifest.image
    meta = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=model.name,
        versions=versions,
        platform=platform,
        inputs=[meta(name=t.name, datatype=t.datatype, shape=t.shape) for t in model_inputs(model)],
        outputs=[meta(name=OUTPUT, datatype="UINT8", shape=(-1, image.height, image.width, image.channels))],
    )


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("N" if d == -1 else str(d) for d in shape) + "]"


def decode_inputs(request: pb.ModelInferRequest, specs: list[InputSpec], model_name: str) -> dict[str, np.ndarray]:
    """Check each input's name, datatype, shape and size; return native-endian arrays."""
    by_name = {t.name: t for t in specs}
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(
            "raw_input_contents",
            f"has {len(raw)} entries for {len(request.inputs)} inputs; give one per input, in order",
        )
    values: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(request.inputs):
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
        shape = tuple(tensor.shape)
        if len(shape) != len(spec.shape) or any(
            (d < 1) if want == -1 else (d != want) for d, want in zip(shape, spec.shape)
        ):
            raise InvalidArgument(name, f"shape must be {_shape_text(spec.shape)}, got {shown(list(shape))}")
        size = math.prod(shape)
        dtype, field = _TYPES[spec.datatype]
        if raw:
            if tensor.HasField("contents"):
                raise InvalidArgument(name, "has both contents and raw_input_contents; use one")
            data = raw[index]
            if len(data) != size * dtype.itemsize:
                raise InvalidArgument(
                    name,
                    f"raw_input_contents[{index}] has {len(data)} bytes; shape {list(shape)} of {spec.datatype} "
                    f"needs {size * dtype.itemsize}",
                )
            array = np.frombuffer(data, dtype).astype(dtype.newbyteorder("="))
        else:
            contents = tensor.contents
            wrong = [f.name for f, _ in contents.ListFields() if f.name != field]
            if wrong:
                raise InvalidArgument(name, f"{spec.datatype} values go in contents.{field}, got contents.{wrong[0]}")
            got = getattr(contents, field)
            if len(got) != size:
                raise InvalidArgument(
                    name, f"shape {list(shape)} needs {size} values in contents.{field}, got {len(got)}"
                )
            array = np.asarray(got, dtype=dtype.newbyteorder("="))
        values[name] = array.reshape(shape)
    return values


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


def check_requested_outputs(request: pb.ModelInferRequest) -> None:
    """Only ``images`` exists; Triton's shared-memory and classification options are not supported."""
    for index, out in enumerate(request.outputs):
        if out.name != OUTPUT:
            raise InvalidArgument(
                out.name or f"outputs[{index}]", f"unknown output {shown(out.name)}; the only output is {OUTPUT!r}"
            )
        unsupported = sorted(k for k in out.parameters if k.startswith("shared_memory") or k == "classification")
        if unsupported:
            raise InvalidArgument(OUTPUT, f"output parameter {shown(unsupported[0])} is not supported")
