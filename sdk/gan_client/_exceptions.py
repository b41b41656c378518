"""Exceptions raised by the SDK. Catch them without importing grpc.

    GanError
     ├── ConnectionFailed            the server could not be reached
     └── APIError                    the server answered with an error status
          ├── InvalidArgument         INVALID_ARGUMENT (message names the field)
          ├── ModelNotFound           NOT_FOUND (message lists the models)
          ├── ResourceExhausted       RESOURCE_EXHAUSTED
          ├── Unauthenticated         UNAUTHENTICATED
          ├── DeadlineExceeded        DEADLINE_EXCEEDED
          ├── Unavailable             UNAVAILABLE (also the base of ConnectionFailed's cause)
          └── InternalError           INTERNAL / UNKNOWN / anything else
"""

from __future__ import annotations

import grpc


class GanError(Exception):
    """Base of every error this SDK raises."""


class APIError(GanError):
    """The server answered with a non-OK status."""

    def __init__(self, message: str, code: str, details: str) -> None:
        super().__init__(message)
        self.code = code  # the gRPC status name, e.g. "NOT_FOUND"
        self.details = details  # the server's message


class InvalidArgument(APIError):
    pass


class ModelNotFound(APIError):
    pass


class ResourceExhausted(APIError):
    pass


class Unauthenticated(APIError):
    pass


class DeadlineExceeded(APIError):
    pass


class Unavailable(APIError):
    pass


class InternalError(APIError):
    pass


class ConnectionFailed(Unavailable):
    """No server answered at the address."""


_BY_CODE: dict[grpc.StatusCode, type[APIError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: ModelNotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
}


def from_rpc_error(error: grpc.RpcError, server: str) -> APIError:
    code = error.code()  # type: ignore[attr-defined]
    details = error.details() or ""  # type: ignore[attr-defined]
    if code == grpc.StatusCode.UNAVAILABLE:
        return ConnectionFailed(f"cannot reach a gan-server at {server} ({details})", code.name, details)
    cls = _BY_CODE.get(code, InternalError)
    return cls(details or code.name, code.name, details)
