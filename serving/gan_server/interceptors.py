"""The server's one interceptor: drain gate, bearer-token auth, per-RPC metrics and access log.

Each method's handler is wrapped once, on its first call, and the wrapper is
reused for every later call of that method, so a call pays for one dictionary
lookup here plus the wrapper itself. What applies to a method is fixed when
it is wrapped:

- drain gate (unary and server-streaming methods): counts calls in flight
  and, once draining, refuses new ones with UNAVAILABLE;
- bearer token (with ``--token-file``): ``authorization: Bearer <token>``
  on every method;
- metrics and access log (unary and server-streaming methods): one
  ``gan_requests_total`` / latency sample and one log line per call, with
  the caller's ``x-request-id`` or one made up here.

Health checks and the OIP liveness/readiness probes skip the gate and the
token so that probes keep working; health and reflection are not logged.
Refused calls (draining, bad token) are neither counted nor logged.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import itertools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import grpc

from .metrics import Metrics

log = logging.getLogger("gan_server.access")

# Liveness/readiness probes stay open; they reveal nothing about the models.
_OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/inference.GRPCInferenceService/ServerLive",
    "/inference.GRPCInferenceService/ServerReady",
)
_UNOBSERVED_PREFIXES = ("/grpc.health", "/grpc.reflection")
_INFO = logging.INFO
_OK = grpc.StatusCode.OK
_CANCELLED = grpc.StatusCode.CANCELLED
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
_UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
_ACCESS_FORMAT = "rpc %s model=%s code=%s ms=%.2f request_id=%s"


class RequestIds:
    """Request ids for calls that bring none: a random per-process prefix and a counter (16 hex digits)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFF:08x}"


class RpcInterceptor(grpc.aio.ServerInterceptor):
    """Drain gate + bearer token + metrics and access log, for every RPC.

    Draining (``draining = True``, see :meth:`wait_idle`): grpc's own
    ``server.stop()`` cancels calls that arrive while it shuts down (the
    client sees CANCELLED, which clients do not retry). Refusing them here
    first, with a retryable UNAVAILABLE, and stopping only once the accepted
    calls have finished, lets retrying clients move to another replica or
    wait for the restart without losing a call. Health stays open so that
    probes see NOT_SERVING.
    """

    def __init__(self, token: str | None, metrics: Metrics | None, known_model: Callable[[str], bool]) -> None:
        self.draining = False
        self.in_flight = 0
        self._expected = f"Bearer {token}".encode() if token else None
        self.metrics = metrics
        self.known_model = known_model
        self.request_ids = RequestIds()
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def wait_idle(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        return self.in_flight == 0

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):  # type: ignore[override]
        wrapped = self._wrapped.get(details.method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(details)
        if handler is None:  # unknown method: UNIMPLEMENTED; not cached (callers choose the names)
            return None
        wrapped = self._wrapped[details.method] = self.wrap(details.method, handler)
        return wrapped

    # -- per call -----------------------------------------------------------

    def _denied(self, context: grpc.aio.ServicerContext) -> str | None:
        """Why the call's bearer token is refused, or None when it is accepted."""
        given: str | bytes = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                given = value
        given_bytes = given.encode() if isinstance(given, str) else given
        if hmac.compare_digest(given_bytes, self._expected):
            return None
        return "missing bearer token" if not given else "invalid bearer token"

    def _request_id(self, context: grpc.aio.ServicerContext) -> str:
        request_id: Any = None
        for key, value in context.invocation_metadata() or ():
            if key == "x-request-id":
                request_id = value
        return str(request_id) if request_id else self.request_ids.next()

    def _model_label(self, request: Any) -> str:
        name = getattr(request, "model", None) or getattr(request, "name", None) or getattr(request, "model_name", None)
        if not isinstance(name, str) or not name:
            return ""
        return name if self.known_model(name) else "unknown"

    def _finish(self, method: str, request: Any, context: grpc.aio.ServicerContext, started: float, code: Any) -> None:
        elapsed = time.perf_counter() - started
        code_name = (code or _OK).name
        model = self._model_label(request)
        if self.metrics is not None:
            self.metrics.observe_rpc(method, model, code_name, elapsed)
        if log.isEnabledFor(_INFO):
            request_id = self._request_id(context)
            ms = elapsed * 1000
            log.info(
                _ACCESS_FORMAT,
                method,
                model or "-",
                code_name,
                ms,
                request_id,
                extra={
                    "request_id": request_id,
                    "method": method,
                    "model": model,
                    "code": code_name,
                    "ms": round(ms, 3),
                },
            )

    # -- wrapping, once per method ------------------------------------------

    def wrap(self, full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` with what applies to ``full_method`` (see the module docstring)."""
        open_ = full_method.startswith(_OPEN_PREFIXES)
        auth = self._expected is not None and not open_
        observe = not full_method.startswith(_UNOBSERVED_PREFIXES)
        method = full_method.rsplit("/", 1)[-1]
        guard = self
        if handler.unary_unary or handler.unary_stream:
            gate = not open_
            if not (gate or auth or observe):
                return handler
            if handler.unary_unary:
                inner = handler.unary_unary

                async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                    if gate:
                        if guard.draining:
                            await context.abort(_UNAVAILABLE, "server is shutting down; retry")
                        guard.in_flight += 1
                    try:
                        if auth:
                            denied = guard._denied(context)
                            if denied is not None:
                                await context.abort(_UNAUTHENTICATED, denied)
                        if not observe:
                            return await inner(request, context)
                        started = time.perf_counter()
                        code = None
                        try:
                            response = await inner(request, context)
                            code = context.code()
                            return response
                        except BaseException:
                            code = context.code() or _CANCELLED
                            raise
                        finally:
                            guard._finish(method, request, context, started, code)
                    finally:
                        if gate:
                            guard.in_flight -= 1

                return _replace(handler, unary_unary=unary)
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if gate:
                    if guard.draining:
                        await context.abort(_UNAVAILABLE, "server is shutting down; retry")
                    guard.in_flight += 1
                try:
                    if auth:
                        denied = guard._denied(context)
                        if denied is not None:
                            await context.abort(_UNAUTHENTICATED, denied)
                    if not observe:
                        async for message in inner_stream(request, context):
                            yield message
                        return
                    started = time.perf_counter()
                    code = None
                    try:
                        async for message in inner_stream(request, context):
                            yield message
                        code = context.code()
                    except BaseException:
                        code = context.code() or _CANCELLED
                        raise
                    finally:
                        guard._finish(method, request, context, started, code)
                finally:
                    if gate:
                        guard.in_flight -= 1

            return _replace(handler, unary_stream=stream)
        # Client-streaming and bidirectional methods (server reflection): the token only.
        if not auth:
            return handler
        kind = "stream_stream" if handler.stream_stream else "stream_unary"
        inner_any = getattr(handler, kind)
        if inspect.isasyncgenfunction(inner_any):

            async def checked_gen(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
                denied = guard._denied(context)
                if denied is not None:
                    await context.abort(_UNAUTHENTICATED, denied)
                async for message in inner_any(request_or_iterator, context):
                    yield message

            return _replace(handler, **{kind: checked_gen})

        async def checked(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            denied = guard._denied(context)
            if denied is not None:
                await context.abort(_UNAUTHENTICATED, denied)
            return await inner_any(request_or_iterator, context)

        return _replace(handler, **{kind: checked})


_MAKERS = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _replace(handler: grpc.RpcMethodHandler, **behaviour: Any) -> grpc.RpcMethodHandler:
    """The same handler (serializers, streaming flags) with another behaviour."""
    ((kind, fn),) = behaviour.items()
    return _MAKERS[kind](
        fn, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )
