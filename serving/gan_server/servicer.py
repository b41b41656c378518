"""The gan.v1.Generator servicer: validate, convert, await sampling, convert back.

Protobuf ↔ domain conversion lives in the pure helpers at the bottom; the
sampling itself is :class:`gan_server.sampling.LoadedModel`. Errors are mapped
to status codes once, by :func:`gan_server.errors.grpc_errors`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import grpc
import numpy as np
from gan_contract.errors import InvalidArgument
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from gan_contract.request import SampleSpec

from .batching import Dispatcher
from .errors import grpc_errors
from .repository import ModelRepository
from .sampling import LoadedModel, SampleOutput

_KINDS = {
    "none": pb.CONDITIONING_KIND_NONE,
    "class": pb.CONDITIONING_KIND_CLASS,
    "infogan": pb.CONDITIONING_KIND_INFOGAN,
}


class GeneratorServicer(pb_grpc.GeneratorServicer):
    def __init__(
        self,
        repo: ModelRepository,
        dispatcher: Dispatcher,
        max_count: int,
        max_stream_count: int = 1_000_000,
        max_message_bytes: int = 64 << 20,
    ) -> None:
        self.repo = repo
        self.max_message_bytes = max_message_bytes
        self.dispatcher = dispatcher
        self.max_count = max_count
        self.max_stream_count = max_stream_count

    @grpc_errors
    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=[model_info(m, self.repo.versions(m.name)) for m in self.repo.latest()])

    @grpc_errors
    async def GetModel(self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext) -> pb.ModelInfo:
        if not request.name:
            raise InvalidArgument("name", "is required")
        model = self.repo.get(request.name, request.version)
        return model_info(model, self.repo.versions(model.name))

    @grpc_errors
    async def Sample(self, request: pb.SampleRequest, context: grpc.aio.ServicerContext) -> pb.SampleResponse:
        if not request.model:
            raise InvalidArgument("model", f"is required; available: {', '.join(self.repo.names()) or 'none'}")
        model = self.repo.get(request.model, request.version)
        spec = sample_spec(request, model, self.max_count)
        check_response_size(model, spec, self.max_message_bytes)
        plan = model.plan(spec, self.repo.conditional_names())
        parts = await self.dispatcher.run(model, plan)
        return sample_response(model, request.seed, parts, start=request.first_index)

    @grpc_errors
    async def SampleStream(self, request: pb.SampleRequest, context: grpc.aio.ServicerContext):
        if not request.model:
            raise InvalidArgument("model", f"is required; available: {', '.join(self.repo.names()) or 'none'}")
        model = self.repo.get(request.model, request.version)
        spec = sample_spec(request, model, self.max_stream_count)
        plan = model.plan(spec, self.repo.conditional_names())
        step = stream_chunk_images(model, self.dispatcher.max_batch, spec, self.max_message_bytes)
        model.in_flight += 1
        try:
            # One chunk at a time: the next is computed only after the previous
            # was handed to gRPC, whose flow control waits for a slow reader.
            for start in range(0, spec.count, step):
                count = min(step, spec.count - start)
                parts = [
                    await self.dispatcher.run_chunk(model, plan, s, n) for s, n in self.dispatcher.chunks(count, start)
                ]
                yield sample_response(model, request.seed, parts, start=request.first_index + start)
        finally:
            model.in_flight -= 1

    @grpc_errors
    async def Encode(self, request: pb.EncodeRequest, context: grpc.aio.ServicerContext) -> pb.EncodeResponse:
        if not request.model:
            raise InvalidArgument("model", "is required")
        model = self.repo.get(request.model, request.version)
        if model.encoder is None:
            takers = [m.name for m in self.repo.latest() if m.encoder is not None]
            raise InvalidArgument(
                "model", f"model {model.name!r} has no encoder; models with one: {', '.join(takers) or 'none'}"
            )
        img = model.manifest.image
        if (request.image.height, request.image.width, request.image.channels) != (img.height, img.width, img.channels):
            raise InvalidArgument(
                "image",
                f"model {model.name!r} takes {img.height}x{img.width}x{img.channels} images, got "
                f"{request.image.height}x{request.image.width}x{request.image.channels}",
            )
        if request.count < 1 or request.count > self.max_count:
            raise InvalidArgument("count", f"must be in [1, {self.max_count}], got {request.count}")
        expected = request.count * img.height * img.width * img.channels
        if len(request.images) != expected:
            raise InvalidArgument("images", f"expected {expected} bytes (count x H x W x C), got {len(request.images)}")
        check_encode_size(model, request.count, self.max_message_bytes)
        images = np.frombuffer(request.images, np.uint8).reshape(request.count, img.height, img.width, img.channels)
        latents = await self.dispatcher.call(model.encode, images)
        return pb.EncodeResponse(
            model=model.name,
            version=model.version,
            count=request.count,
            latent_dim=latents.shape[1],
            latents=latents.ravel().tolist(),
        )


def varint_size(value: int) -> int:
    """Bytes of ``value`` as a protobuf varint; a negative int32 or int64 takes 10."""
    value &= (1 << 64) - 1
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def length_delimited_size(payload: int) -> int:
    """Bytes of a length-delimited field of ``payload`` bytes: tag (field number < 16), length, payload."""
    return 1 + varint_size(payload) + payload


def max_fitting(size_of: Callable[[int], int], limit: int) -> int:
    """The largest n >= 0 with ``size_of(n) <= limit`` (``size_of`` grows with n by at least 1 per step)."""
    lo, hi = 0, max(0, limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size_of(mid) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def sample_response_size(model: LoadedModel, spec: SampleSpec, count: int, start: int) -> int:
    """The serialized size of the SampleResponse :func:`sample_response` builds for ``count`` images.

    Exact: ``images`` (count x H x W x C bytes), ``classes`` (packed int32
    varints: 10 bytes each for the -1 of an unconditional model, else the
    varint of the largest class index, exact below 128 classes), ``latents``
    (packed floats, 4 bytes each, when asked for), each with its tag and
    length, and the small fields (model, version, count, image, seed, start).
    """
    img = model.manifest.image
    size = pb.SampleResponse(
        model=model.name,
        version=model.version,
        count=count,
        image=pb.ImageSpec(height=img.height, width=img.width, channels=img.channels),
        seed=spec.seed,
        start=start,
    ).ByteSize()
    if count:
        size += length_delimited_size(count * img.height * img.width * img.channels)
        per_class = varint_size(-1) if not model.takes_condition else varint_size(max(0, model.num_classes - 1))
        size += length_delimited_size(count * per_class)
        if spec.return_latents:
            size += length_delimited_size(4 * count * model.manifest.latent.dim)
    return size


def check_response_size(model: LoadedModel, spec: SampleSpec, limit: int) -> None:
    """Refuse, before any work, a response that could not be sent (over the message limit)."""
    need = sample_response_size(model, spec, spec.count, spec.first_index)
    if need <= limit:
        return
    fits = max_fitting(lambda n: sample_response_size(model, spec, n, spec.first_index), limit)
    if not fits:
        raise InvalidArgument(
            "count",
            f"one image needs {sample_response_size(model, spec, 1, spec.first_index)} bytes, over this server's "
            f"message limit of {limit} bytes",
        )
    raise InvalidArgument(
        "count",
        f"{spec.count} images need {need} bytes, over this server's message limit of {limit} bytes; "
        f"ask for at most {fits} or use SampleStream",
    )


def encode_response_size(model: LoadedModel, count: int) -> int:
    """The serialized size of the EncodeResponse for ``count`` images (packed float latents)."""
    dim = model.manifest.latent.dim
    size = pb.EncodeResponse(model=model.name, version=model.version, count=count, latent_dim=dim).ByteSize()
    return size + (length_delimited_size(4 * count * dim) if count else 0)


def check_encode_size(model: LoadedModel, count: int, limit: int) -> None:
    """Refuse, before any work, latents that could not be sent (small images with long latents)."""
    need = encode_response_size(model, count)
    if need > limit:
        fits = max_fitting(lambda n: encode_response_size(model, n), limit)
        raise InvalidArgument(
            "count",
            f"the latents of {count} images need {need} bytes, over this server's message limit of {limit} bytes; "
            f"send at most {fits} images per call",
        )


def sample_spec(request: pb.SampleRequest, model: LoadedModel, max_count: int) -> SampleSpec:
    """Check the request's shape and build the domain request."""
    if request.count < 1:
        raise InvalidArgument("count", "must be at least 1")
    if request.count > max_count:
        raise InvalidArgument("count", f"{request.count} exceeds this server's limit of {max_count} images per request")
    latents = None
    if len(request.latents):
        latents = np.asarray(request.latents, dtype=np.float32)
        dim = model.manifest.latent.dim
        if latents.size != request.count * dim:
            raise InvalidArgument(
                "latents",
                f"expected count x latent_dim = {request.count} x {dim} = {request.count * dim} values, "
                f"got {latents.size}",
            )
        latents = latents.reshape(request.count, dim)
    return SampleSpec(
        count=request.count,
        seed=request.seed,
        digit=request.digit if request.HasField("digit") else None,
        label=request.label if request.HasField("label") else None,
        category=request.category if request.HasField("category") else None,
        continuous=tuple(request.continuous),
        latents=latents,
        return_latents=request.return_latents,
        first_index=request.first_index,
    )


# Stream messages stay under 1 MiB including protobuf framing and latents.
STREAM_MESSAGE_BYTES = 900 * 1024


def stream_chunk_images(
    model: LoadedModel, max_batch: int, spec: SampleSpec | None = None, limit: int | None = None
) -> int:
    """Images per SampleStream message; InvalidArgument when not even one fits the message ``limit``."""
    img = model.manifest.image
    per_image = img.height * img.width * img.channels + 4 * model.manifest.latent.dim + 8
    step = max(1, min(max_batch, STREAM_MESSAGE_BYTES // per_image))
    if spec is None or limit is None:
        return step
    last = spec.first_index + spec.count  # the largest start varint a message can have
    if sample_response_size(model, spec, step, last) <= limit:
        return step
    fits = max_fitting(lambda n: sample_response_size(model, spec, n, last), limit)
    if not fits:
        raise InvalidArgument(
            "count",
            f"one image needs {sample_response_size(model, spec, 1, last)} bytes, over this server's "
            f"message limit of {limit} bytes",
        )
    return min(step, fits)


def sample_response(model: LoadedModel, seed: int, parts: list[SampleOutput], start: int = 0) -> pb.SampleResponse:
    # One part (every request up to --max-batch images): its arrays as they are, no concatenation.
    one = parts[0] if len(parts) == 1 else None
    images = one.images if one else np.concatenate([p.images for p in parts])
    image = model.manifest.image
    response = pb.SampleResponse(
        model=model.name,
        version=model.version,
        count=images.shape[0],
        image=pb.ImageSpec(height=image.height, width=image.width, channels=image.channels),
        images=images.tobytes(),
        seed=seed,
        classes=(one.classes if one else np.concatenate([p.classes for p in parts])).tolist(),
        start=start,
    )
    if parts[0].latents is not None:
        latents = one.latents if one else np.concatenate([p.latents for p in parts])
        response.latents.extend(latents.ravel().tolist())
    return response


def model_info(model: LoadedModel, versions: list[str]) -> pb.ModelInfo:
    m = model.manifest
    c = m.conditioning
    return pb.ModelInfo(
        name=m.name,
        version=m.version,
        variant=m.variant,
        dataset=m.dataset,
        image=pb.ImageSpec(height=m.image.height, width=m.image.width, channels=m.image.channels),
        latent_dim=m.latent.dim,
        latent_prior=m.latent.prior,
        conditioning=pb.Conditioning(
            kind=_KINDS[c.kind],
            class_names=list(c.class_names),
            num_categories=c.num_categories,
            num_continuous=c.num_continuous,
            category_to_digit=list(c.category_to_digit),
            continuous_min=c.continuous_range[0],
            continuous_max=c.continuous_range[1],
        ),
        versions=versions,
        manifest_json=json.dumps(json.loads(model.manifest_json), separators=(",", ":")),
    )
