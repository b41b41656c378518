"""Server interceptors: bearer-token auth, and per-RPC metrics and logs.

Health checks stay reachable without a token so that probes work.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
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


def _wrap_unary(handler: grpc.RpcMethodHandler, behaviour: Callable[..., Awaitable[Any]]) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _wrap_unary_stream(handler: grpc.RpcMethodHandler, behaviour: Callable[..., Any]) -> grpc.RpcMethodHandler:
    return grpc.unary_stream_rpc_method_handler(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class DrainGate(grpc.aio.ServerInterceptor):
    """Counts RPCs in flight and, once draining, refuses new ones with UNAVAILABLE.

    grpc's own ``server.stop()`` cancels calls that arrive while it shuts down
    (the client sees CANCELLED, which clients do not retry). Refusing them
    ourselves first, with a retryable UNAVAILABLE, and stopping only once the
    accepted calls have finished, lets retrying clients move to another
    replica or wait for the restart without losing a call. Health stays open
    so that probes see NOT_SERVING.
    """

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0

    async def wait_idle(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        return self.in_flight == 0

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):  # type: ignore[override]
        handler = await continuation(details)
        if handler is None or details.method.startswith(_OPEN_PREFIXES):
            return handler
        gate = self

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if gate.draining:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "server is shutting down; retry")
                gate.in_flight += 1
                try:
                    return await inner(request, context)
                finally:
                    gate.in_flight -= 1

            return _wrap_unary(handler, unary)
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if gate.draining:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "server is shutting down; retry")
                gate.in_flight += 1
                try:
                    async for message in inner_stream(request, context):
                        yield message
                finally:
                    gate.in_flight -= 1

            return _wrap_unary_stream(handler, stream)
        return handler


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Require ``authorization: Bearer <token>`` on every RPC except health."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):  # type: ignore[override]
        if details.method.startswith(_OPEN_PREFIXES):
            return await continuation(details)
        metadata = dict(details.invocation_metadata or ())
        given = metadata.get("authorization", "")
        given_bytes = given.encode() if isinstance(given, str) else given
        if hmac.compare_digest(given_bytes, self._expected):
            return await continuation(details)
        handler = await continuation(details)
        if handler is None:
            return None
        message = "missing bearer token" if not given else "invalid bearer token"

        async def deny_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        async def deny_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
            yield  # pragma: no cover - makes this an async generator

        if handler.unary_unary:
            return _wrap_unary(handler, deny_unary)
        if handler.unary_stream:
            return _wrap_unary_stream(handler, deny_stream)
        if handler.stream_stream:

            async def deny_bidi(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
                yield  # pragma: no cover

            return grpc.stream_stream_rpc_method_handler(
                deny_bidi,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Count, time and log every RPC with its status code and a request id."""

    def __init__(self, metrics: Metrics | None, known_model: Callable[[str], bool]) -> None:
        self.metrics = metrics
        self.known_model = known_model

    def _model_label(self, request: Any) -> str:
        name = getattr(request, "model", None) or getattr(request, "name", None) or getattr(request, "model_name", None)
        if not isinstance(name, str) or not name:
            return ""
        return name if self.known_model(name) else "unknown"

    def _finish(
        self,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext,
        started: float,
        request_id: str,
        code: grpc.StatusCode | None,
    ) -> None:
        code_name = (code or grpc.StatusCode.OK).name
        elapsed = time.perf_counter() - started
        model = self._model_label(request)
        if self.metrics is not None:
            self.metrics.observe_rpc(method, model, code_name, elapsed)
        log.info(
            "rpc %s model=%s code=%s ms=%.2f request_id=%s",
            method,
            model or "-",
            code_name,
            elapsed * 1000,
            request_id,
            extra={
                "request_id": request_id,
                "method": method,
                "model": model,
                "code": code_name,
                "ms": round(elapsed * 1000, 3),
            },
        )

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):  # type: ignore[override]
        handler = await continuation(details)
        if handler is None or details.method.startswith(("/grpc.health", "/grpc.reflection")):
            return handler
        method = details.method.rsplit("/", 1)[-1]
        metadata = dict(details.invocation_metadata or ())
        request_id = str(metadata.get("x-request-id") or uuid.uuid4().hex[:16])

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                code: grpc.StatusCode | None = None
                try:
                    response = await inner(request, context)
                    code = context.code()
                    return response
                except BaseException:
                    code = context.code() or grpc.StatusCode.CANCELLED
                    raise
                finally:
                    self._finish(method, request, context, started, request_id, code)

            return _wrap_unary(handler, unary)
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                code: grpc.StatusCode | None = None
                try:
                    async for message in inner_stream(request, context):
                        yield message
                    code = context.code()
                except BaseException:
                    code = context.code() or grpc.StatusCode.CANCELLED
                    raise
                finally:
                    self._finish(method, request, context, started, request_id, code)

            return _wrap_unary_stream(handler, stream)
        return handler
