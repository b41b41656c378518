"""The server's one interceptor: call limits, bearer-token auth, drain gate, per-RPC metrics and access log.

Each method's handler is wrapped once, on its first call, and the wrapper is
reused for every later call of that method, so a call pays for one dictionary
lookup here plus the wrapper itself. What applies to a method is fixed when
it is wrapped:

- bearer token (with ``--token-file``), every method but the open probes:
  checked here, on the call's headers, before any of its body is read (a
  refused call gets a handler that never reads its request);
- unary-request methods are served as request-streaming ones, so that the
  wrapper runs on the headers and reads the request itself: it waits at
  most ``message_timeout`` seconds for it (DEADLINE_EXCEEDED), and only
  0.25 s while more than ``max_calls`` calls are waiting for theirs (a
  flood of calls that send headers only is answered at once, while a
  normal client, which sends its message with its headers, goes through);
- the call cap (``max_calls``; the open probes aside) counts calls whose
  request has arrived, until they finish: calls over it are answered
  RESOURCE_EXHAUSTED at once, so callers that only send headers cannot
  take the slots of callers that send requests;
- drain gate (unary and server-streaming methods but the open probes):
  counts calls in flight and, once draining, refuses new ones with
  UNAVAILABLE;
- the answer is serialized here and checked against the send limit, so that
  a call whose answer cannot be sent is logged and counted with its real
  code (RESOURCE_EXHAUSTED) instead of the handler's OK;
- metrics and access log (everything but health and reflection): one
  ``gan_requests_total`` / latency sample and one log line per call, refused
  calls included, with the caller's ``x-request-id`` (sanitised) or one made
  up here.

Health checks and the OIP liveness/readiness probes skip the token, the cap
and the gate so that probes keep working; health and reflection are not
logged.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import itertools
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

import grpc

from .metrics import Metrics

log = logging.getLogger("gan_server.access")
limits_log = logging.getLogger("gan_server")

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
_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
_DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED
_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_EOF = grpc.aio.EOF
_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+
# How long a call waits for its message while the server is crowded (see _read).
CROWDED_MESSAGE_TIMEOUT = 0.25
# How long a call whose client vanished waits for gRPC core's cancellation.
_CANCEL_WAIT = 0.5
_ACCESS_FORMAT = "rpc %s model=%s code=%s ms=%.2f request_id=%s"
# A request id reaches the log as at most this many of these characters;
# anything else (spaces, "=", control characters) becomes "_".
REQUEST_ID_CHARS = 128
_REQUEST_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:/@+-]")
# At most one warning per this many seconds when the call cap refuses calls.
_LIMIT_LOG_INTERVAL = 10.0


def sanitize_request_id(value: str) -> str:
    """A caller's ``x-request-id`` as it may appear in a log line: short, one token, no field separators."""
    return _REQUEST_ID_UNSAFE.sub("_", value[:REQUEST_ID_CHARS])


class RequestIds:
    """Request ids for calls that bring none: a random per-process prefix and a counter (16 hex digits)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFF:08x}"


class _Method:
    """What applies to one method, fixed when it is first called."""

    __slots__ = ("handler", "auth", "name", "observe", "streaming", "denied")

    def __init__(self, handler: grpc.RpcMethodHandler, auth: bool, name: str, observe: bool, streaming: bool):
        self.handler = handler
        self.auth = auth
        self.name = name
        self.observe = observe
        self.streaming = streaming
        self.denied: dict[str, grpc.RpcMethodHandler] = {}


class RpcInterceptor(grpc.aio.ServerInterceptor):
    """Call limits + bearer token + drain gate + metrics and access log, for every RPC.

    Draining (``draining = True``, see :meth:`wait_idle`): grpc's own
    ``server.stop()`` cancels calls that arrive while it shuts down (the
    client sees CANCELLED, which clients do not retry). Refusing them here
    first, with a retryable UNAVAILABLE, and stopping only once the accepted
    calls have finished, lets retrying clients move to another replica or
    wait for the restart without losing a call. Health stays open so that
    probes see NOT_SERVING.
    """

    def __init__(
        self,
        token: str | None,
        metrics: Metrics | None,
        known_model: Callable[[str], bool],
        *,
        max_calls: int = 0,
        message_timeout: float = 0.0,
        max_send_bytes: int = 0,
    ) -> None:
        self.draining = False
        self.in_flight = 0  # sampling calls the drain waits for
        self.active = 0  # calls working on their request: what the cap counts (open probes aside)
        self.waiting = 0  # calls waiting for their request message (open probes aside)
        self.started = 0  # calls accepted so far (MemoryTrimmer looks at it)
        self.max_calls = max_calls
        self.message_timeout = message_timeout or None
        self.max_send_bytes = max_send_bytes
        self.refused_over_cap = 0
        self._cap_logged_at = float("-inf")
        self._cap_unlogged = 0
        self._expected = f"Bearer {token}".encode() if token else None
        self.metrics = metrics
        self.known_model = known_model
        self.request_ids = RequestIds()
        self._methods: dict[str, _Method] = {}

    async def wait_idle(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        return self.in_flight == 0

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):  # type: ignore[override]
        method = self._methods.get(details.method)
        if method is None:
            handler = await continuation(details)
            if handler is None:  # unknown method: UNIMPLEMENTED; not cached (callers choose the names)
                return None
            method = self._methods[details.method] = self.wrap(details.method, handler)
        if method.auth:
            reason = self._denied(details.invocation_metadata)
            if reason is not None:
                return self._deny_handler(method, reason)
        return method.handler

    # -- per call -----------------------------------------------------------

    def _denied(self, metadata: Any) -> str | None:
        """Why the call's bearer token is refused, or None when it is accepted."""
        given: str | bytes = ""
        for key, value in metadata or ():
            if key == "authorization":
                given = value
        given_bytes = given.encode() if isinstance(given, str) else given
        if hmac.compare_digest(given_bytes, self._expected):
            return None
        return "missing bearer token" if not given else "invalid bearer token"

    def _deny_handler(self, method: _Method, reason: str) -> grpc.RpcMethodHandler:
        """A handler that refuses the call without reading its request (one per method and reason)."""
        handler = method.denied.get(reason)
        if handler is not None:
            return handler
        guard = self

        async def deny(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            if method.observe:
                guard._finish(method.name, None, context, time.perf_counter(), _UNAUTHENTICATED)
            await context.abort(_UNAUTHENTICATED, reason)

        maker = grpc.stream_stream_rpc_method_handler if method.streaming else grpc.stream_unary_rpc_method_handler
        handler = method.denied[reason] = maker(deny)
        return handler

    def _request_id(self, context: grpc.aio.ServicerContext) -> str:
        request_id: Any = None
        for key, value in context.invocation_metadata() or ():
            if key == "x-request-id":
                request_id = value
        if not request_id:
            return self.request_ids.next()
        if isinstance(request_id, bytes):
            request_id = request_id.decode("latin-1")
        return sanitize_request_id(str(request_id))

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

    def _over_cap(self) -> str:
        """Note a call refused by the cap (a warning at most every few seconds); the status message."""
        self.refused_over_cap += 1
        self._cap_unlogged += 1
        now = time.monotonic()
        if now - self._cap_logged_at >= _LIMIT_LOG_INTERVAL:
            limits_log.warning(
                "call limit reached: %d calls in progress (--max-calls %d); refused %d calls since the last warning",
                self.active,
                self.max_calls,
                self._cap_unlogged,
            )
            self._cap_logged_at = now
            self._cap_unlogged = 0
        return f"server busy: {self.max_calls} calls in progress (--max-calls); retry later"

    async def _read(self, context: grpc.aio.ServicerContext, limited: bool) -> Any:
        """The call's one request message, waiting at most ``message_timeout``.

        While more than ``max_calls`` calls are waiting for their message (a
        flood of calls that send headers only), a new one waits at most
        :data:`CROWDED_MESSAGE_TIMEOUT`: a normal client sends its message
        with its headers, so it is not held up, while the flood's calls are
        answered at once instead of holding their slots.
        """
        timeout = self.message_timeout
        if limited:
            if self.max_calls and self.waiting >= self.max_calls:
                timeout = min(timeout or CROWDED_MESSAGE_TIMEOUT, CROWDED_MESSAGE_TIMEOUT)
            self.waiting += 1
        try:
            if timeout is None:
                request = await context.read()
            else:
                try:
                    if _timeout is not None:
                        async with _timeout(timeout):
                            request = await context.read()
                    else:  # Python 3.10
                        request = await asyncio.wait_for(context.read(), timeout)
                except (TimeoutError, asyncio.TimeoutError):
                    await context.abort(
                        _DEADLINE, f"the request message did not arrive within {timeout:g} s of the headers"
                    )
        finally:
            if limited:
                self.waiting -= 1
        if request is _EOF:
            # The client went away (its cancellation, on its way from gRPC
            # core, cancels this task) or half-closed without a message.
            await asyncio.sleep(_CANCEL_WAIT)
            if context.cancelled():
                await context.abort(_CANCELLED, "the call was cancelled before its request message arrived")
            await context.abort(_INVALID, "the call ended before its request message arrived")
        return request

    async def _write(self, context: grpc.aio.ServicerContext, data: bytes) -> None:
        """Send one stream message; a send that fails because the client went away ends the call as CANCELLED."""
        try:
            await context.write(data)
        except grpc.aio.AbortError:
            raise
        except Exception:
            # gRPC core failed the send: the client is gone. Its cancellation
            # is on its way and cancels this task; without this wait grpc.aio
            # would log the failed send as an error of the method.
            await asyncio.sleep(_CANCEL_WAIT)
            raise

    async def _check_size(self, data: bytes, context: grpc.aio.ServicerContext) -> None:
        if self.max_send_bytes and len(data) > self.max_send_bytes:
            await context.abort(
                _EXHAUSTED,
                f"the answer is {len(data)} bytes, over this server's message limit of {self.max_send_bytes} bytes "
                "(--max-message-mb)",
            )

    # -- wrapping, once per method ------------------------------------------

    def wrap(self, full_method: str, handler: grpc.RpcMethodHandler) -> _Method:
        """``handler`` with what applies to ``full_method`` (see the module docstring)."""
        open_ = full_method.startswith(_OPEN_PREFIXES)
        auth = self._expected is not None and not open_
        observe = not full_method.startswith(_UNOBSERVED_PREFIXES)
        name = full_method.rsplit("/", 1)[-1]
        streaming = bool(handler.response_streaming)
        if handler.request_streaming:
            # Client-streaming and bidirectional methods (server reflection):
            # the token only, on the headers (intercept_service).
            return _Method(handler, auth, name, observe, streaming)
        return _Method(self._wrap_unary_request(handler, name, open_, observe), auth, name, observe, streaming)

    def _wrap_unary_request(self, handler: grpc.RpcMethodHandler, name: str, open_: bool, observe: bool):
        guard = self
        limited = not open_
        serialize = handler.response_serializer or (lambda message: message)
        deserializer = handler.request_deserializer

        async def enter(context: grpc.aio.ServicerContext, started: float) -> None:
            """Refuse a call while draining, before reading it; else count it."""
            if limited:
                if guard.draining:
                    if observe:
                        guard._finish(name, None, context, started, _UNAVAILABLE)
                    await context.abort(_UNAVAILABLE, "server is shutting down; retry")
                guard.in_flight += 1
            guard.started += 1

        async def admit(context: grpc.aio.ServicerContext) -> bool:
            """Once the request is read: refuse the call over the cap, else count it as working."""
            if not limited:
                return False
            if guard.max_calls and guard.active >= guard.max_calls:
                await context.abort(_EXHAUSTED, guard._over_cap())
            guard.active += 1
            return True

        def leave(working: bool, request: Any, context: grpc.aio.ServicerContext, started: float, code: Any) -> None:
            """Uncount a finished call; its access-log line and metrics."""
            if working:
                guard.active -= 1
            if limited:
                guard.in_flight -= 1
            if observe:
                guard._finish(name, request, context, started, code)

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                await enter(context, started)
                request = None
                code = None
                working = False
                try:
                    request = await guard._read(context, limited)
                    working = await admit(context)
                    data = serialize(await inner(request, context))
                    await guard._check_size(data, context)
                    code = context.code()
                    return data
                except BaseException:
                    code = context.code() or _CANCELLED
                    raise
                finally:
                    leave(working, request, context, started, code)

            return grpc.stream_unary_rpc_method_handler(unary, request_deserializer=deserializer)

        inner_stream = handler.unary_stream
        if not inspect.isasyncgenfunction(inner_stream):
            # A handler that writes with context.write() (grpc's health Watch):
            # its messages keep the handler's serializer.
            async def writer(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
                await inner_stream(await guard._read(context, False), context)

            return grpc.stream_stream_rpc_method_handler(
                writer, request_deserializer=deserializer, response_serializer=handler.response_serializer
            )

        async def stream(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
            started = time.perf_counter()
            await enter(context, started)
            request = None
            code = None
            working = False
            try:
                request = await guard._read(context, limited)
                working = await admit(context)
                messages = inner_stream(request, context)
                try:
                    async for message in messages:
                        data = serialize(message)
                        await guard._check_size(data, context)
                        await guard._write(context, data)
                finally:
                    await messages.aclose()
                code = context.code()
            except BaseException:
                code = context.code() or _CANCELLED
                raise
            finally:
                leave(working, request, context, started, code)

        return grpc.stream_stream_rpc_method_handler(stream, request_deserializer=deserializer)
