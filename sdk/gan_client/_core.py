"""Channel settings, request building and response decoding shared by the sync
and async clients.

No network I/O happens here: the clients call these, then send or return.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from gan_contract.proto.gan.v1 import generator_pb2 as pb

from ._config import DEFAULT_RETRY, ENCODE_BATCH, MAX_MESSAGE_BYTES, SERVICE_NAME, RetryPolicy
from ._exceptions import InternalError
from ._interp import METHODS
from ._interp import interpolate as interpolate_latents
from ._types import Conditioning, ModelInfo, SampleResult

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


def resolve_retry(retry: RetryPolicy | bool | None) -> RetryPolicy | None:
    """True: the default policy; False/None: no retries; a RetryPolicy: itself."""
    if retry is True:
        return DEFAULT_RETRY
    if retry is False or retry is None:
        return None
    if isinstance(retry, RetryPolicy):
        return retry
    raise TypeError(f"retry must be a bool or a RetryPolicy, got {type(retry).__name__}")


def read_pem(name: str, value: str | os.PathLike[str] | bytes | None) -> bytes | None:
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
    root_certificates: str | os.PathLike[str] | bytes | None = None,
    client_cert: str | os.PathLike[str] | bytes | None = None,
    client_key: str | os.PathLike[str] | bytes | None = None,
) -> grpc.ChannelCredentials | None:
    """TLS credentials, or None for a plaintext channel.

    Any certificate argument turns TLS on. Without ``root_certificates`` the
    system's trusted CAs are used.
    """
    if (client_cert is None) != (client_key is None):
        raise ValueError("mTLS needs both client_cert and client_key (CLI: --client-cert and --client-key)")
    if not (tls or root_certificates is not None or client_cert is not None):
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=read_pem("root_certificates", root_certificates),
        private_key=read_pem("client_key", client_key),
        certificate_chain=read_pem("client_cert", client_cert),
    )


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Per-call metadata: the bearer token when there is one (plaintext or TLS channel alike)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


# -- requests ---------------------------------------------------------------


def _check_uint64(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**64:
        raise ValueError(f"{name} must be an integer in [0, 2**64 - 1], got {value!r}")
    return int(value)


def sample_request(
    model: str,
    n: int | None,
    seed: int,
    *,
    digit: int | None = None,
    label: str | None = None,
    category: int | None = None,
    continuous: Sequence[float] | None = None,
    latents: np.ndarray | Sequence[Sequence[float]] | None = None,
    version: str | None = None,
    return_latents: bool = False,
    first_index: int = 0,
) -> pb.SampleRequest:
    """Build a SampleRequest. Value checks are the server's job; types are ours.

    ``n`` defaults to the number of ``latents`` rows when they are given, else 1.
    """
    arr = None
    if latents is not None:
        arr = np.asarray(latents, dtype=np.float32)
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
        model=model,
        version=version or "",
        count=int(n),
        seed=_check_uint64("seed", seed),
        return_latents=return_latents,
        first_index=_check_uint64("first_index", first_index),
    )
    if digit is not None:
        req.digit = int(digit)
    if label is not None:
        req.label = str(label)
    if category is not None:
        req.category = int(category)
    if continuous is not None:
        req.continuous.extend(float(v) for v in continuous)
    if arr is not None:
        req.latents.extend(arr.ravel().tolist())
    return req


def request_summary(req: pb.SampleRequest) -> dict[str, Any]:
    """The request's conditioning as plain values (for PNG metadata).

    Only what the request fixed for every image: not its count or first index,
    so that one image's PNG does not depend on how the work was split.
    """
    out: dict[str, Any] = {}
    for name in ("digit", "label", "category"):
        if req.HasField(name):
            out[name] = getattr(req, name)
    if len(req.continuous):
        out["continuous"] = [round(v, 6) for v in req.continuous]
    if len(req.latents):
        out["latents"] = "explicit"
    return out


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
    """The conditioning every frame of a strip shares: only ``z`` may vary.

    Class-conditional and InfoGAN models need a class (else each frame would
    draw its own). InfoGAN continuous codes default to the middle of their
    range (else each frame would draw its own).
    """
    cond = info.conditioning
    if cond.kind != "none" and digit is None and label is None and category is None:
        options = "digit= or label=" if cond.kind == "class" else "digit=, label= or category="
        raise ValueError(
            f"model {info.name!r} is conditional ({cond.kind}): pass {options} so every frame "
            f"draws the same class (CLI: --digit/--label{'/--category' if cond.kind == 'infogan' else ''})"
        )
    if cond.kind == "infogan" and continuous is None and cond.num_continuous:
        mid = (cond.continuous_range[0] + cond.continuous_range[1]) / 2.0
        continuous = [mid] * cond.num_continuous
    return {"digit": digit, "label": label, "category": category, "continuous": continuous}


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
    model: str,
    version: str,
    start: Any,
    end: Any,
    z_start: np.ndarray,
    z_end: np.ndarray,
    steps: int,
    method: str,
    conditioning: dict[str, Any],
) -> tuple[pb.SampleRequest, dict[str, Any]]:
    """The strip's SampleRequest (explicit latents, one per frame) and its summary.

    The request's seed is the start seed (0 for a vector), so anything not
    fixed by the conditioning would come from that seed's streams.
    """
    zs = interpolate_latents(z_start, z_end, steps, method)
    seed = int(start) if endpoint_is_seed(start) else 0
    req = sample_request(model, steps, seed, latents=zs, version=version, return_latents=True, **conditioning)
    summary = request_summary(req)
    summary["interpolate"] = {
        "from": int(start) if endpoint_is_seed(start) else "vector",
        "to": int(end) if endpoint_is_seed(end) else "vector",
        "steps": int(steps),
        "method": method,
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
