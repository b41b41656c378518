"""Client defaults, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_SERVER = "localhost:50051"
SERVER_ENV = "GAN_SERVER"
# Bearer token sent as ``authorization: Bearer <token>`` when none is passed.
TOKEN_ENV = "GAN_TOKEN"
# Default per-call deadline, seconds. Sampling thousands of images on a CPU
# can take a while; pass timeout= to tighten it. A stream's deadline covers
# the whole stream.
DEFAULT_TIMEOUT = 60.0
# Responses carry raw uint8 images: 4096 MNIST images are ~3.2 MB, above
# gRPC's 4 MB default once larger images are served.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# The gRPC service the retry policy applies to (health checks are not retried,
# so probes answer at once).
SERVICE_NAME = "gan.v1.Generator"
# Images per Encode call; larger inputs are split into several calls.
ENCODE_BATCH = 1024
# gRPC core caps a retry policy's maxAttempts at 5 (silently).
MAX_ATTEMPTS_LIMIT = 5

# Kubernetes Indexed Jobs set JOB_COMPLETION_INDEX in every pod; the shard
# count has to be passed in by the Job spec (set it to .spec.completions).
SHARD_INDEX_ENV = "JOB_COMPLETION_INDEX"
SHARD_COUNT_ENV = "GAN_SHARD_COUNT"
# Images per request in `gan-client batch`: a killed pod redoes at most this many.
BATCH_CHUNK = 256


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC's own retry policy (service config), applied to every Generator call.

    A call that fails with one of ``status_codes`` (by default UNAVAILABLE: no
    server answered, or it is draining; and CANCELLED as sent by a server
    whose transport is stopping — gRPC never retries a cancel made by the
    caller itself) is retried after
    ``initial_backoff * backoff_multiplier**k`` seconds (at most
    ``max_backoff``, with gRPC's jitter), up to ``max_attempts`` attempts in all,
    all within the call's deadline. Requests are deterministic, so retrying
    them is safe. gRPC allows at most 5 attempts.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    backoff_multiplier: float = 2.0
    status_codes: tuple[str, ...] = ("UNAVAILABLE", "CANCELLED")

    def __post_init__(self) -> None:
        if not 2 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValueError(
                f"max_attempts must be in [2, {MAX_ATTEMPTS_LIMIT}] (gRPC's limit), got {self.max_attempts}"
            )
        if not (self.initial_backoff > 0 and self.max_backoff > 0 and self.backoff_multiplier > 0):
            raise ValueError("initial_backoff, max_backoff and backoff_multiplier must be > 0")
        if not self.status_codes:
            raise ValueError("status_codes must name at least one gRPC status, e.g. ('UNAVAILABLE',)")


DEFAULT_RETRY = RetryPolicy()


def resolve_server(server: str | None) -> str:
    """The explicit address, else $GAN_SERVER, else localhost:50051."""
    return server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER


def resolve_token(token: str | None) -> str | None:
    """The explicit token, else $GAN_TOKEN, else none (surrounding whitespace dropped)."""
    value = token if token is not None else os.environ.get(TOKEN_ENV)
    value = (value or "").strip()
    return value or None
