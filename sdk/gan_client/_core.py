"""Request building and response decoding shared by the sync and async clients.

No I/O happens here: the clients call these, then send or return.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._proto.gan.v1 import generator_pb2 as pb
from ._types import Conditioning, ModelInfo, SampleResult

_KIND_NAMES = {
    pb.CONDITIONING_KIND_NONE: "none",
    pb.CONDITIONING_KIND_CLASS: "class",
    pb.CONDITIONING_KIND_INFOGAN: "infogan",
}


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


def sample_request(
    model: str,
    n: int,
    seed: int,
    *,
    digit: int | None = None,
    label: str | None = None,
    category: int | None = None,
    continuous: Sequence[float] | None = None,
    latents: np.ndarray | Sequence[Sequence[float]] | None = None,
    version: str | None = None,
    return_latents: bool = False,
) -> pb.SampleRequest:
    """Build a SampleRequest. Value checks are the server's job; types are ours."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 1, got {n}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64 - 1], got {seed!r}")
    req = pb.SampleRequest(model=model, version=version or "", count=int(n), seed=int(seed), return_latents=return_latents)
    if digit is not None:
        req.digit = int(digit)
    if label is not None:
        req.label = str(label)
    if category is not None:
        req.category = int(category)
    if continuous is not None:
        req.continuous.extend(float(v) for v in continuous)
    if latents is not None:
        arr = np.asarray(latents, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(f"latents must have shape (n, latent_dim) = ({n}, ...), got {arr.shape}")
        req.latents.extend(arr.ravel().tolist())
    return req


def request_summary(req: pb.SampleRequest) -> dict[str, Any]:
    """The request's conditioning as plain values (for PNG metadata)."""
    out: dict[str, Any] = {"count": req.count, "seed": req.seed}
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
