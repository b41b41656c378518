"""Domain errors and their single mapping to gRPC status codes.

Sampling code raises these exceptions; :func:`grpc_errors` (a decorator on the
servicer's handlers) turns them into statuses in one place. Anything else is
logged with its traceback and answered as a generic INTERNAL error, so the
server never crashes on a request and never leaks internals to callers.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

log = logging.getLogger("gan_server")


class GanServerError(Exception):
    """Base of the errors a request can cause."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidArgument(GanServerError):
    """A request field is wrong. The message names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


class ModelNotFound(GanServerError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, name: str, version: str | None, available: list[str]) -> None:
        what = f"model {name!r}" if not version else f"model {name!r} version {version!r}"
        there = ", ".join(available) if available else "none"
        super().__init__(f"{what} not found; available: {there}")


class ResourceExhausted(GanServerError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(GanServerError):
    code = grpc.StatusCode.UNAVAILABLE


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def grpc_errors(handler: Handler) -> Handler:
    """Map :class:`GanServerError` to its status; log anything else as INTERNAL.

    Works on unary handlers and on server-streaming (async generator) ones.
    """

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await handler(self, request, context)
        except GanServerError as exc:
            await context.abort(exc.code, str(exc))
        except grpc.aio.AbortError:
            raise
        except Exception:  # noqa: BLE001 - the one place that must catch all
            log.exception("unhandled error in %s", handler.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")

    if inspect.isasyncgenfunction(handler):
        return _stream_wrapper(handler)  # type: ignore[return-value]
    return wrapper  # type: ignore[return-value]


def _stream_wrapper(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            async for message in handler(self, request, context):
                yield message
        except GanServerError as exc:
            await context.abort(exc.code, str(exc))
        except grpc.aio.AbortError:
            raise
        except Exception:  # noqa: BLE001 - the one place that must catch all
            log.exception("unhandled error in %s", handler.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")

    return wrapper
