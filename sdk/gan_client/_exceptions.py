"""Exceptions raised by the SDK. Catch them without importing grpc.

    GanError
     └── APIError                    a call failed with a gRPC status (code, details)
          ├── InvalidArgument         INVALID_ARGUMENT / OUT_OF_RANGE (message names the field)
          ├── ModelNotFound           NOT_FOUND (message lists the models)
          ├── ModelUnavailable        FAILED_PRECONDITION (the model's files failed their checks)
          ├── ResourceExhausted       RESOURCE_EXHAUSTED
          ├── Unauthenticated         UNAUTHENTICATED (missing or wrong bearer token)
          ├── PermissionDenied        PERMISSION_DENIED
          ├── DeadlineExceeded        DEADLINE_EXCEEDED
          ├── Unavailable             UNAVAILABLE
          │    └── ConnectionFailed    no server answered at the address
          │         └── TLSError        the TLS handshake failed (CA, certificate, TLS on one side only)
          └── InternalError           INTERNAL / UNKNOWN / anything else

Client-side mistakes (a wrong type, a missing file, a bad shape) raise
ValueError / TypeError / OSError before any call is made.
"""

from __future__ import annotations

import re

import grpc

from ._config import TOKEN_ENV


class GanError(Exception):
    """Base of every error this SDK raises."""


class APIError(GanError):
    """The server answered with a non-OK status (or none answered: UNAVAILABLE)."""

    def __init__(self, message: str, code: str, details: str) -> None:
        super().__init__(message)
        self.code = code  # the gRPC status name, e.g. "NOT_FOUND"
        self.details = details  # the server's (or gRPC's) message


class InvalidArgument(APIError):
    pass


class ModelNotFound(APIError):
    pass


class ModelUnavailable(APIError):
    """The model exists but its files failed their checks; an operator must fix them."""


class ResourceExhausted(APIError):
    pass


class Unauthenticated(APIError):
    """The server wants ``authorization: Bearer <token>``: pass token= or set $GAN_TOKEN."""


class PermissionDenied(APIError):
    pass


class DeadlineExceeded(APIError):
    pass


class Unavailable(APIError):
    pass


class InternalError(APIError):
    pass


class ConnectionFailed(Unavailable):
    """No server answered at the address (after any retries)."""


class TLSError(ConnectionFailed):
    """The TLS handshake failed: wrong CA, missing client certificate, or TLS on one side only."""


_BY_CODE: dict[grpc.StatusCode, type[APIError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: ModelNotFound,
    grpc.StatusCode.FAILED_PRECONDITION: ModelUnavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
}

_HANDSHAKE = re.compile(r"(tls|ssl) handshake|TSI_|CERTIFICATE_VERIFY_FAILED|WRONG_VERSION_NUMBER", re.IGNORECASE)
# gRPC's UNAVAILABLE messages when the connection itself failed (as opposed to
# a server that answered UNAVAILABLE, e.g. while draining).
_NO_CONNECTION = re.compile(
    r"failed to connect|connection refused|socket closed|connect failed|"
    r"name resolution|DNS resolution|unreachable|Connection reset",
    re.IGNORECASE,
)


def from_rpc_error(error: grpc.RpcError, server: str, *, tls: bool = False) -> APIError:
    """Map a grpc.RpcError to the SDK's exception, with a message that names the fix."""
    code = error.code()  # type: ignore[attr-defined]
    details = error.details() or ""  # type: ignore[attr-defined]
    name = code.name if code is not None else "UNKNOWN"
    if code == grpc.StatusCode.UNAVAILABLE:
        if _HANDSHAKE.search(details):
            hint = (
                "the server does not speak TLS: drop tls=/--tls"
                if "WRONG_VERSION_NUMBER" in details
                else "check root_certificates/--ca-cert (the CA that signed the server's certificate) "
                "and that the address matches the certificate's names"
            )
            return TLSError(f"TLS handshake with {server} failed: {hint} ({details})", name, details)
        if "socket closed" in details.lower():
            if tls:
                return TLSError(
                    f"{server} closed the connection during the TLS handshake: if it requires client "
                    f"certificates (mTLS), pass client_cert=/client_key= (--client-cert/--client-key) "
                    f"signed by its client CA ({details})",
                    name,
                    details,
                )
            return ConnectionFailed(
                f"{server} closed the connection: if it serves TLS, connect with tls=True (--tls) ({details})",
                name,
                details,
            )
        if _NO_CONNECTION.search(details) or not details:
            return ConnectionFailed(f"cannot reach a gan-server at {server} ({details})", name, details)
        return Unavailable(f"{server} is unavailable: {details}", name, details)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        fix = f"pass token= or set ${TOKEN_ENV} (CLI: --token)"
        if "invalid" in details.lower():
            fix = f"check the token given by token= / ${TOKEN_ENV} / --token"
        return Unauthenticated(f"{details or 'unauthenticated'} for {server}: {fix}", name, details)
    cls = _BY_CODE.get(code, InternalError) if code is not None else InternalError
    return cls(details or name, name, details)
