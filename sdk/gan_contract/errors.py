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

Messages echo request values through :func:`shown`, which cuts them to
``ECHO_CHARS`` characters, and a whole message is cut to ``MESSAGE_CHARS``:
the message travels back in a status trailer, and one over the peer's
metadata limit (8 KiB by default in gRPC) turns the real status into
RESOURCE_EXHAUSTED "Stream removed".
"""

from __future__ import annotations

# The most characters of one echoed request value (a model name, a label...).
ECHO_CHARS = 200
# The most characters of a whole error message.
MESSAGE_CHARS = 1024


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def shown(value: object, limit: int = ECHO_CHARS) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters (see :func:`clip`)."""
    return clip(repr(value), limit)


class GanError(Exception):
    """Base of the errors a request can cause. The message is cut to ``MESSAGE_CHARS``."""

    status: str = "INTERNAL"

    def __init__(self, message: str = "") -> None:
        super().__init__(clip(message, MESSAGE_CHARS))


class InvalidArgument(GanError):
    """A request field is wrong. The message names the field."""

    status = "INVALID_ARGUMENT"

    def __init__(self, field: str, problem: str) -> None:
        self.field = clip(field)  # the name of an OIP input, say, is the client's
        self.problem = problem
        super().__init__(f"{self.field}: {problem}")


class ModelNotFound(GanError):
    status = "NOT_FOUND"

    def __init__(self, name: str, version: str | None, available: list[str]) -> None:
        what = f"model {shown(name)}" if not version else f"model {shown(name)} version {shown(version)}"
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
