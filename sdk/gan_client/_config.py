"""Client defaults, in one place."""

from __future__ import annotations

import os
from dataclasses import KW_ONLY, dataclass

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

    With ``wait_for_ready`` (the default), once a call has reached the server
    later calls wait for a connection, within their deadline, while it is
    down (a restart, a rolling update) instead of spending the attempts in a
    few seconds of refused connections; an address where no server ever
    answered still fails after the backoffs. A ``sample_stream`` cut by one
    of ``status_codes`` after some images arrived resumes from the next image
    (``first_index``), on the version it started with, so every image comes
    exactly once.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    backoff_multiplier: float = 2.0
    status_codes: tuple[str, ...] = ("UNAVAILABLE", "CANCELLED")
    wait_for_ready: bool = True

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


def resolve_retry(retry: RetryPolicy | bool | None) -> RetryPolicy | None:
    """True: the default policy; False/None: no retries; a RetryPolicy: itself."""
    if retry is True:
        return DEFAULT_RETRY
    if retry is False or retry is None:
        return None
    if isinstance(retry, RetryPolicy):
        return retry
    raise TypeError(f"retry must be a bool or a RetryPolicy, got {type(retry).__name__}")


PemSource = str | os.PathLike[str] | bytes


def tls_enabled(
    tls: bool,
    root_certificates: PemSource | None = None,
    client_cert: PemSource | None = None,
    client_key: PemSource | None = None,
    tls_server_name: str | None = None,
) -> bool:
    """Whether these options make a TLS channel (any certificate argument turns
    TLS on); ValueError for a combination that cannot work.

    The one check of the TLS options: :class:`ClientConfig` runs it, the CLI
    only turns its ValueError into a usage error.
    """
    if (client_cert is None) != (client_key is None):
        raise ValueError("mTLS needs both client_cert and client_key (CLI: --client-cert and --client-key)")
    enabled = tls or root_certificates is not None or client_cert is not None
    if tls_server_name and not enabled:
        raise ValueError("tls_server_name only applies to TLS channels: pass tls=True as well")
    return enabled


@dataclass(frozen=True, eq=False)
class ClientConfig:
    """How a client reaches the server: what ``GanClient(...)`` and ``AsyncGanClient(...)`` take.

    Args:
        server: HOST:PORT; default $GAN_SERVER, else localhost:50051.
        timeout: default per-call deadline in seconds (60); every method also
            takes ``timeout=``. A stream's deadline covers the whole stream.
        token: bearer token sent as ``authorization: Bearer <token>``; default
            $GAN_TOKEN. Works on plaintext and TLS channels.
        tls: use TLS, trusting the system's CAs unless ``root_certificates``
            is given. Any certificate argument turns TLS on.
        root_certificates: PEM CA bundle (path or bytes) to verify the server.
        client_cert, client_key: PEM client certificate and key (path or
            bytes) for servers that require mTLS.
        tls_server_name: the name to verify in the server's certificate when
            it differs from the address's host (e.g. dialling an IP).
        retry: gRPC's own retries of UNAVAILABLE with exponential backoff
            (True: :data:`DEFAULT_RETRY`; a :class:`RetryPolicy`; False: off).
        max_message_bytes: the largest message either side may send.

    Checked when made (ValueError/TypeError); $GAN_SERVER and $GAN_TOKEN are
    read by :meth:`address` and :meth:`bearer_token`.
    """

    server: str | None = None
    _: KW_ONLY
    timeout: float | None = None
    token: str | None = None
    tls: bool = False
    root_certificates: PemSource | None = None
    client_cert: PemSource | None = None
    client_key: PemSource | None = None
    tls_server_name: str | None = None
    retry: RetryPolicy | bool | None = True
    max_message_bytes: int = MAX_MESSAGE_BYTES

    def __post_init__(self) -> None:
        resolve_retry(self.retry)
        tls_enabled(self.tls, self.root_certificates, self.client_cert, self.client_key, self.tls_server_name)

    @property
    def retry_policy(self) -> RetryPolicy | None:
        return resolve_retry(self.retry)

    @property
    def default_timeout(self) -> float:
        return DEFAULT_TIMEOUT if self.timeout is None else self.timeout

    def address(self) -> str:
        return resolve_server(self.server)

    def bearer_token(self) -> str | None:
        return resolve_token(self.token)
