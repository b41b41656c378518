"""Domain errors of a request, without any transport.

Raised by the request planner (``gan_contract.request``), the server's model
repository and data plane, and the TorchServe handler. Each class names a
*status* in the vocabulary shared by gRPC and HTTP (``INVALID_ARGUMENT``,
``NOT_FOUND``, ...); the edges (``gan_server.errors`` for gRPC, the handler
for TorchServe) map that name to their own codes in one place each.

    GanError                     status
    ├── InvalidArgument          INVALID_ARGUMENT  (message starts with the field)
    ├── ModelNotFound            NOT_FOUND
    ├── ModelUnavailable         FAILED_PRECONDITION (files failed their checks)
    ├── ResourceExhausted        RESOURCE_EXHAUSTED
    └── Unavailable              UNAVAILABLE (draining; retry elsewhere)
"""

from __future__ import annotations


class GanError(Exception):
    """Base of the errors a request can cause."""

    status: str = "INTERNAL"


class InvalidArgument(GanError):
    """A request field is wrong. The message names the field."""

    status = "INVALID_ARGUMENT"

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ModelNotFound(GanError):
    status = "NOT_FOUND"

    def __init__(self, name: str, version: str | None, available: list[str]) -> None:
        what = f"model {name!r}" if not version else f"model {name!r} version {version!r}"
        there = ", ".join(available) if available else "none"
        super().__init__(f"{what} not found; available: {there}")


class ModelUnavailable(GanError):
    """A model whose files failed their checks (corrupt, truncated, deleted).

    FAILED_PRECONDITION rather than UNAVAILABLE: retrying will not help until
    an operator fixes the files, so clients must not retry it automatically.
    """

    status = "FAILED_PRECONDITION"


class ResourceExhausted(GanError):
    status = "RESOURCE_EXHAUSTED"


class Unavailable(GanError):
    status = "UNAVAILABLE"
