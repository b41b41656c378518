"""The single mapping of domain errors to gRPC status codes.

Sampling code raises the contract's exceptions (``gan_contract.errors``);
:func:`grpc_errors` (a decorator on the servicer's handlers) turns them into
statuses in one place. Anything else is logged with its traceback and answered as a generic INTERNAL error, so the
server never crashes on a request and never leaks internals to callers.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from gan_contract.errors import GanError
from google.protobuf.message import DecodeError

log = logging.getLogger("gan_server")


# The one mapping from the contract's status names to gRPC codes.
STATUS = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "INTERNAL": grpc.StatusCode.INTERNAL,
}


def grpc_code(exc: GanError) -> grpc.StatusCode:
    """The gRPC status code of a domain error."""
    return STATUS.get(exc.status, grpc.StatusCode.INTERNAL)


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def grpc_errors(handler: Handler) -> Handler:
    """Map :class:`GanError` to its status; log anything else as INTERNAL.

    Works on unary handlers and on server-streaming (async generator) ones.
    """

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await handler(self, request, context)
        except GanError as exc:
            await context.abort(grpc_code(exc), str(exc))
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
        except GanError as exc:
            await context.abort(grpc_code(exc), str(exc))
        except grpc.aio.AbortError:
            raise
        except Exception:  # noqa: BLE001 - the one place that must catch all
            log.exception("unhandled error in %s", handler.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")

    return wrapper


def add_lenient_service(server: grpc.aio.Server, servicer: Any, pb_module: Any, service: str) -> None:
    """Register ``servicer``'s methods for ``service`` like the generated
    ``add_*Servicer_to_server``, except that a request body that is not a
    valid protobuf message is answered INVALID_ARGUMENT (grpc's default is
    UNKNOWN with the parser's exception text). Unary and server-streaming.
    """
    descriptor = pb_module.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[-1]]
    handlers = {}
    for method in descriptor.methods:
        request_type = getattr(pb_module, method.input_type.name)
        behaviour = getattr(servicer, method.name)
        serializer = getattr(pb_module, method.output_type.name).SerializeToString
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _reject_undecodable_stream(behaviour, method.input_type.full_name),
                request_deserializer=_lenient_parser(request_type),
                response_serializer=serializer,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _reject_undecodable(behaviour, method.input_type.full_name),
                request_deserializer=_lenient_parser(request_type),
                response_serializer=serializer,
            )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def _lenient_parser(message_type: type) -> Callable[[bytes], object | None]:
    def parse(data: bytes) -> object | None:
        try:
            return message_type.FromString(data)
        except DecodeError:
            return None

    return parse


def _reject_undecodable(behaviour: Callable[..., Awaitable[Any]], type_name: str) -> Callable[..., Awaitable[Any]]:
    async def handle(request: object | None, context: grpc.aio.ServicerContext) -> Any:
        if request is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request: is not a valid {type_name} message")
        return await behaviour(request, context)

    return handle


def _reject_undecodable_stream(behaviour: Callable[..., Any], type_name: str) -> Callable[..., Any]:
    async def handle(request: object | None, context: grpc.aio.ServicerContext) -> Any:
        if request is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request: is not a valid {type_name} message")
        async for message in behaviour(request, context):
            yield message

    return handle
