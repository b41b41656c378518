"""Everything the sync and async clients share that is not I/O: channel
settings, requests, decoding, and the plans of the calls that take several RPCs.

No network I/O happens here. A call is planned as a generator (see "plans"
below) that yields the requests to send and combines the responses; the two
clients only execute those requests, blocking or with asyncio.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
import numpy as np
from gan_contract import provenance
from gan_contract.errors import InvalidArgument
from gan_contract.interp import strip_conditioning
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from gan_contract.request import condition_asked
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ._config import (
    DEFAULT_RETRY,
    ENCODE_BATCH,
    MAX_MESSAGE_BYTES,
    SERVICE_NAME,
    ClientConfig,
    PemSource,
    RetryPolicy,
    tls_enabled,
)
from ._exceptions import APIError, InternalError, ModelNotFound
from ._interp import METHODS
from ._interp import interpolate as interpolate_latents
from ._options import InterpolateOptions, SampleOptions
from ._types import Conditioning, ModelInfo, SampleResult

T = TypeVar("T")

_KIND_NAMES = {
    pb.CONDITIONING_KIND_NONE: "none",
    pb.CONDITIONING_KIND_CLASS: "class",
    pb.CONDITIONING_KIND_INFOGAN: "infogan",
}


# -- channel --------------------------------------------------------------


def _duration(seconds: float) -> str:
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def service_config(retry: RetryPolicy) -> str:
    """The channel's service config: gRPC's own retry policy for every Generator method."""
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{"service": SERVICE_NAME}],
                    "retryPolicy": {
                        "maxAttempts": retry.max_attempts,
                        "initialBackoff": _duration(retry.initial_backoff),
                        "maxBackoff": _duration(retry.max_backoff),
                        "backoffMultiplier": retry.backoff_multiplier,
                        "retryableStatusCodes": [c.upper() for c in retry.status_codes],
                    },
                }
            ],
        }
    )


def channel_options(
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    tls_server_name: str | None = None,
) -> list[tuple[str, Any]]:
    """gRPC channel arguments: message limits, retries, reconnect backoff.

    The reconnect backoff follows the retry policy (gRPC's default grows to
    120 s, during which calls to a server that came back still fail fast).
    """
    backoff = retry or DEFAULT_RETRY
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # (not grpc.min_reconnect_backoff_ms: gRPC core uses it as the minimum
        # connect timeout, 20 s by default, which must stay generous)
        ("grpc.initial_reconnect_backoff_ms", max(1, int(backoff.initial_backoff * 1000))),
        ("grpc.max_reconnect_backoff_ms", max(1, int(backoff.max_backoff * 1000))),
    ]
    if retry is None:
        options.append(("grpc.enable_retries", 0))
    else:
        options += [("grpc.enable_retries", 1), ("grpc.service_config", service_config(retry))]
    if tls_server_name:
        options.append(("grpc.ssl_target_name_override", tls_server_name))
    return options


def read_pem(name: str, value: PemSource | None) -> bytes | None:
    """PEM bytes as given, or read from a path; errors name the argument."""
    if value is None or isinstance(value, bytes):
        return value
    path = Path(value)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None


def channel_credentials(
    tls: bool,
    root_certificates: PemSource | None = None,
    client_cert: PemSource | None = None,
    client_key: PemSource | None = None,
) -> grpc.ChannelCredentials | None:
    """TLS credentials, or None for a plaintext channel.

    Any certificate argument turns TLS on. Without ``root_certificates`` the
    system's trusted CAs are used.
    """
    if not tls_enabled(tls, root_certificates, client_cert, client_key):
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=read_pem("root_certificates", root_certificates),
        private_key=read_pem("client_key", client_key),
        certificate_chain=read_pem("client_cert", client_cert),
    )


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Per-call metadata: the bearer token when there is one (plaintext or TLS channel alike)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


@dataclass(frozen=True)
class Connection:
    """What a client needs to open its channel and make calls, resolved from its config."""

    server: str
    timeout: float
    retry: RetryPolicy | None
    credentials: grpc.ChannelCredentials | None
    options: list[tuple[str, Any]]
    metadata: tuple[tuple[str, str], ...]

    @classmethod
    def resolve(cls, config: ClientConfig) -> Connection:
        """Environment fallbacks applied, certificates read."""
        retry = config.retry_policy
        return cls(
            server=config.address(),
            timeout=config.default_timeout,
            retry=retry,
            credentials=channel_credentials(
                config.tls, config.root_certificates, config.client_cert, config.client_key
            ),
            options=channel_options(config.max_message_bytes, retry, config.tls_server_name),
            metadata=call_metadata(config.bearer_token()),
        )


def unary_methods(channel: Any) -> dict[type[Message], Any]:
    """The channel's unary-unary methods by request type (a grpc or grpc.aio channel)."""
    stub, health = pb_grpc.GeneratorStub(channel), health_pb2_grpc.HealthStub(channel)
    return {
        pb.ListModelsRequest: stub.ListModels,
        pb.GetModelRequest: stub.GetModel,
        pb.SampleRequest: stub.Sample,
        pb.EncodeRequest: stub.Encode,
        health_pb2.HealthCheckRequest: health.Check,
    }


# -- requests ---------------------------------------------------------------


def _check_uint64(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**64:
        raise ValueError(f"{name} must be an integer in [0, 2**64 - 1], got {value!r}")
    return int(value)


def sample_request(*args: Any, **kwargs: Any) -> pb.SampleRequest:
    """The SampleRequest for ``SampleOptions(*args, **kwargs)``: see :func:`build_sample_request`."""
    return build_sample_request(SampleOptions(*args, **kwargs))


def build_sample_request(opts: SampleOptions) -> pb.SampleRequest:
    """Build a SampleRequest. Value checks are the server's job; types are ours.

    ``n`` defaults to the number of ``latents`` rows when they are given, else 1.
    """
    n, arr = opts.n, None
    if opts.latents is not None:
        arr = np.asarray(opts.latents, dtype=np.float32)
        if arr.ndim != 2:
            raise ValueError(f"latents must have shape (n, latent_dim), got {arr.shape}")
        if n is None:
            n = arr.shape[0]
    if n is None:
        n = 1
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if arr is not None and arr.shape[0] != n:
        raise ValueError(f"latents must have shape (n, latent_dim) = ({n}, ...), got {arr.shape}")
    req = pb.SampleRequest(
        model=opts.model,
        version=opts.version or "",
        count=int(n),
        seed=_check_uint64("seed", opts.seed),
        return_latents=opts.return_latents,
        first_index=_check_uint64("first_index", opts.first_index),
    )
    if opts.digit is not None:
        req.digit = int(opts.digit)
    if opts.label is not None:
        req.label = str(opts.label)
    if opts.category is not None:
        req.category = int(opts.category)
    if opts.continuous is not None:
        req.continuous.extend(float(v) for v in opts.continuous)
    if arr is not None:
        req.latents.extend(arr.ravel().tolist())
    return req


def resume_request(req: pb.SampleRequest, done: int, version: str = "") -> pb.SampleRequest:
    """The request for the images of ``req`` after its first ``done``, on ``version`` when given.

    Image i of a request is stream (seed, first_index + i), so moving
    ``first_index`` on (and cutting explicit latents) gives the same images.
    """
    rest = pb.SampleRequest()
    rest.CopyFrom(req)
    rest.count = req.count - done
    rest.first_index = req.first_index + done
    if version:
        rest.version = version
    if len(req.latents):
        dim = len(req.latents) // req.count
        del rest.latents[:]
        rest.latents.extend(req.latents[done * dim :])
    return rest


def check_one_condition(digit: int | None, label: str | None, category: int | None) -> None:
    """At most one of digit, label, category: ValueError naming those given.

    The server enforces the rule; the CLI calls this to fail before any call.
    """
    try:
        condition_asked(digit, label, category)
    except InvalidArgument as exc:
        raise ValueError(f"{exc} (CLI: --digit/--label/--category)") from None


def request_summary(req: pb.SampleRequest) -> dict[str, Any]:
    """The request's conditioning as plain values, for PNG metadata (see gan_contract.provenance)."""
    return provenance.request_summary(
        digit=req.digit if req.HasField("digit") else None,
        label=req.label if req.HasField("label") else None,
        category=req.category if req.HasField("category") else None,
        continuous=req.continuous,
        explicit_latents=len(req.latents) > 0,
    )


def decode_sample(req: pb.SampleRequest, resp: pb.SampleResponse) -> SampleResult:
    h, w, c = resp.image.height, resp.image.width, resp.image.channels
    images = np.frombuffer(resp.images, dtype=np.uint8).reshape(resp.count, h, w, c)
    latents = None
    if len(resp.latents):
        latents = np.asarray(resp.latents, dtype=np.float32).reshape(resp.count, -1)
    return SampleResult(
        model=resp.model,
        version=resp.version,
        seed=resp.seed,
        images=images,
        classes=np.asarray(resp.classes, dtype=np.int32),
        latents=latents,
        request=request_summary(req),
        start=resp.start,
    )


def decode_model(info: pb.ModelInfo) -> ModelInfo:
    c = info.conditioning
    return ModelInfo(
        name=info.name,
        version=info.version,
        variant=info.variant,
        dataset=info.dataset,
        height=info.image.height,
        width=info.image.width,
        channels=info.image.channels,
        latent_dim=info.latent_dim,
        latent_prior=info.latent_prior,
        conditioning=Conditioning(
            kind=_KIND_NAMES.get(c.kind, "none"),
            class_names=tuple(c.class_names),
            num_categories=c.num_categories,
            num_continuous=c.num_continuous,
            category_to_digit=tuple(c.category_to_digit),
            continuous_range=(c.continuous_min, c.continuous_max),
        ),
        versions=tuple(info.versions),
        manifest=json.loads(info.manifest_json) if info.manifest_json else {},
    )


# -- encode -----------------------------------------------------------------


def as_image_batch(images: Any) -> np.ndarray:
    """uint8 (N, H, W, C) from uint8 (N, H, W, C) / (N, H, W), or a list of such images or PIL images."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is empty")
        images = np.stack([np.asarray(im) for im in images])
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise TypeError(f"images must be uint8 (0..255), got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[0] == 0:
        raise ValueError(f"images must have shape (N, H, W, C) or (N, H, W) with N >= 1, got {arr.shape}")
    return np.ascontiguousarray(arr)


def encode_requests(
    model: str, images: Any, version: str | None = None, batch: int = ENCODE_BATCH
) -> list[pb.EncodeRequest]:
    """EncodeRequests of at most ``batch`` images each."""
    arr = as_image_batch(images)
    _, h, w, c = arr.shape
    spec = pb.ImageSpec(height=h, width=w, channels=c)
    return [
        pb.EncodeRequest(model=model, version=version or "", count=len(part), image=spec, images=part.tobytes())
        for part in (arr[i : i + batch] for i in range(0, len(arr), batch))
    ]


def decode_encode(responses: Sequence[pb.EncodeResponse]) -> np.ndarray:
    """float32 (N, latent_dim) from the EncodeResponses, in order."""
    parts = [np.asarray(r.latents, dtype=np.float32).reshape(r.count, r.latent_dim) for r in responses]
    return np.concatenate(parts)


# -- interpolate ------------------------------------------------------------


def interpolation_conditioning(
    info: ModelInfo,
    digit: int | None,
    label: str | None,
    category: int | None,
    continuous: Sequence[float] | None,
) -> dict[str, Any]:
    """The conditioning every frame of a strip shares (:func:`gan_contract.interp.strip_conditioning`)."""
    try:
        return strip_conditioning(info.name, info.conditioning, digit, label, category, continuous)
    except InvalidArgument as exc:
        flags = "--digit/--label" + ("/--category" if info.conditioning.kind == "infogan" else "")
        raise ValueError(f"{exc.problem} (CLI: {flags})") from None


def endpoint_vector(name: str, value: Any, latent_dim: int) -> np.ndarray | None:
    """None for a seed (the server draws its z), else the given vector as float32 (latent_dim,)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        _check_uint64(name, value)
        return None
    arr = np.asarray(value, dtype=np.float32)
    if arr.shape != (latent_dim,):
        raise ValueError(f"{name} must be a seed or a latent vector of shape ({latent_dim},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def interpolation_request(
    opts: InterpolateOptions, version: str, z_start: np.ndarray, z_end: np.ndarray, conditioning: dict[str, Any]
) -> tuple[pb.SampleRequest, dict[str, Any]]:
    """The strip's SampleRequest (explicit latents, one per frame) and its summary.

    The request's seed is the start seed (0 for a vector), so anything not
    fixed by the conditioning would come from that seed's streams.
    """
    zs = interpolate_latents(z_start, z_end, opts.steps, opts.method)
    seed = int(opts.start) if endpoint_is_seed(opts.start) else 0
    req = sample_request(opts.model, opts.steps, seed, latents=zs, version=version, return_latents=True, **conditioning)
    summary = request_summary(req)
    summary["interpolate"] = {
        "from": int(opts.start) if endpoint_is_seed(opts.start) else "vector",
        "to": int(opts.end) if endpoint_is_seed(opts.end) else "vector",
        "steps": int(opts.steps),
        "method": opts.method,
    }
    return req, summary


def first_latent(result: SampleResult) -> np.ndarray:
    """The ``z`` of a result's first image (asked for with return_latents=True)."""
    if result.latents is None or not len(result.latents):
        raise InternalError("the server returned no latents although they were asked for", "INTERNAL", "")
    return result.latents[0]


def endpoint_is_seed(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_interpolation_args(steps: int, method: str) -> None:
    """Fail before any call on arguments the interpolation would reject."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


# -- plans --------------------------------------------------------------------
#
# Each client method is planned here, once, as a generator: it yields a step
# (a tuple of requests that do not depend on each other), is sent the step's
# responses in the same order, and returns the method's result. An APIError
# from a step is thrown into it. GanClient sends a step's requests one after
# another, AsyncGanClient concurrently; nothing else differs, so both give the
# same results.

Step = tuple[Message, ...]
Plan = Generator[Step, list[Any], T]


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T


def advance(plan: Plan[T], outcome: list[Any] | APIError | None) -> Step | Done[T]:
    """The plan's next step given the last one's responses (None to start, or the error it raised)."""
    try:
        if isinstance(outcome, APIError):
            return plan.throw(outcome)
        return plan.send(outcome)  # type: ignore[arg-type]
    except StopIteration as stop:
        return Done(stop.value)


def health_plan(service: str) -> Plan[str]:
    try:
        (resp,) = yield (health_pb2.HealthCheckRequest(service=service),)
    except ModelNotFound:
        return "SERVICE_UNKNOWN"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


def list_models_plan() -> Plan[list[ModelInfo]]:
    (resp,) = yield (pb.ListModelsRequest(),)
    return [decode_model(m) for m in resp.models]


def model_info_plan(name: str, version: str | None) -> Plan[ModelInfo]:
    (resp,) = yield (pb.GetModelRequest(name=name, version=version or ""),)
    return decode_model(resp)


def sample_plan(opts: SampleOptions) -> Plan[SampleResult]:
    req = build_sample_request(opts)
    (resp,) = yield (req,)
    return decode_sample(req, resp)


def interpolate_plan(opts: InterpolateOptions) -> Plan[SampleResult]:
    """The model's info; the ``z`` of each endpoint given as a seed (both in one
    step); then the strip from explicit latents."""
    check_interpolation_args(opts.steps, opts.method)
    info = yield from model_info_plan(opts.model, opts.version)
    cond = interpolation_conditioning(info, opts.digit, opts.label, opts.category, opts.continuous)
    ends = {"start": opts.start, "end": opts.end}
    zs: dict[str, Any] = {name: endpoint_vector(name, value, info.latent_dim) for name, value in ends.items()}
    seeded = [name for name, z in zs.items() if z is None]
    reqs = tuple(
        sample_request(opts.model, 1, int(ends[name]), return_latents=True, version=info.version, **cond)
        for name in seeded
    )
    if reqs:
        resps = yield reqs
        for name, req, resp in zip(seeded, reqs, resps, strict=True):
            zs[name] = first_latent(decode_sample(req, resp))
    req, summary = interpolation_request(opts, info.version, zs["start"], zs["end"], cond)
    (resp,) = yield (req,)
    result = decode_sample(req, resp)
    result.request = summary
    return result


def _encode_steps(model: str, images: Any, version: str | None) -> Plan[tuple[np.ndarray, str]]:
    """One Encode call after another (at most ENCODE_BATCH images each); every
    call after the first asks for the version the first answered with, so one
    encode never mixes two versions of a model that is reloaded meanwhile."""
    responses: list[pb.EncodeResponse] = []
    for req in encode_requests(model, images, version):
        if responses:
            req.version = responses[0].version
        (resp,) = yield (req,)
        responses.append(resp)
    return decode_encode(responses), responses[0].version


def encode_plan(model: str, images: Any, version: str | None) -> Plan[np.ndarray]:
    latents, _ = yield from _encode_steps(model, images, version)
    return latents


def reconstruct_plan(model: str, images: Any, version: str | None) -> Plan[SampleResult]:
    """Encode, then generate from those latents with the encoder's version, in
    chunks of at most ENCODE_BATCH images (``first_index`` counts on)."""
    latents, version = yield from _encode_steps(model, images, version)
    parts = []
    for first in range(0, len(latents), ENCODE_BATCH):
        part = yield from sample_plan(
            SampleOptions(
                model,
                latents=latents[first : first + ENCODE_BATCH],
                version=version,
                return_latents=True,
                first_index=first,
            )
        )
        parts.append(part)
    return SampleResult.concatenate(parts)
