"""HTTP on the gRPC server's event loop: the Open Inference Protocol's REST binding,
image URLs, and the browser playground (``gan-server --http-port``).

Routes (docs/api.md has the table next to the gRPC methods):

- ``/v2/...``: KServe v2 / Open Inference Protocol REST: health, server and
  model metadata, readiness, and ``infer`` with JSON tensors or the binary
  tensor extension (``Inference-Header-Content-Length``). The checks, the
  limits and the sampling are gan_server.oip's, shared with the gRPC binding,
  so the same request gives the same bytes over either.
- ``/v1/models[/{name}]``: the gan.v1 ``ListModels``/``GetModel`` messages as JSON.
- ``/v1/models/{name}/sample.png|.npy`` and ``interpolate.png|.npy``: images
  for a URL, with the PNG text chunks and .npy bytes ``gan-client`` writes for
  the same request (gan_contract.provenance, .png, .images).
- ``/``: the playground (static files shipped in the package).

Every answer that is not an image is JSON; errors are ``{"error": "<field>:
<problem>"}`` with the HTTP status of the domain error's status name
(:data:`HTTP_STATUS`): bad input is always a 4xx, anything unexpected is
logged and answered 500 without details, and no request can stop the server.
The bearer token (``--token-file``) is checked, in constant time, before a
body is read; health and the playground's static files stay open. On SIGTERM
readiness turns false and new requests get 503 while accepted ones finish.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from aiohttp import web
from gan_contract import provenance
from gan_contract.errors import GanError, InvalidArgument, ResourceExhausted, Unavailable
from gan_contract.images import encode_npy, make_grid
from gan_contract.interp import METHODS, interpolate, strip_conditioning
from gan_contract.latents import MAX_SEED
from gan_contract.png import encode_png
from gan_contract.request import SampleSpec, draw
from google.protobuf import json_format

from . import oip
from .batching import Dispatcher
from .metrics import Metrics
from .repository import ModelRepository
from .sampling import LoadedModel
from .servicer import model_info

log = logging.getLogger("gan_server.access")
errors_log = logging.getLogger("gan_server")

# The one mapping from the contract's status names to HTTP statuses.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "NOT_FOUND": 404,
    # A model whose files failed their checks: the resource's state conflicts
    # with the request until an operator fixes it (not retryable, unlike 503).
    "FAILED_PRECONDITION": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
    "INTERNAL": 500,
}

# Health and the playground's static files need no token (as gRPC health does).
_OPEN_PATHS = frozenset({"/", "/static/app.js", "/static/style.css", "/v2/health/live", "/v2/health/ready"})
# The largest scaled image a URL may ask for, in pixels (4096 x 4096).
MAX_PIXELS = 1 << 24
MAX_SCALE = 16
# Bodies above this are parsed off the event loop.
_BIG_BODY = 1 << 20
_STATIC = {
    "/": ("index.html", "text/html"),
    "/static/app.js": ("app.js", "text/javascript"),
    "/static/style.css": ("style.css", "text/css"),
}
# The playground loads nothing from elsewhere: this policy makes the browser enforce it.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class Unauthenticated(GanError):
    status = "UNAUTHENTICATED"


class BodyTooLarge(ResourceExhausted):
    """A request body over the limit: 413, not 429 (retrying the same body cannot help)."""

    http_status = 413


def http_status(exc: GanError) -> int:
    return getattr(exc, "http_status", None) or HTTP_STATUS.get(exc.status, 500)


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(exc: GanError) -> web.Response:
    status = http_status(exc)
    body: dict[str, Any] = {"error": str(exc)}
    if isinstance(exc, InvalidArgument):
        body["field"] = exc.field
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="gan-server"'
    if status == 503:
        headers["Retry-After"] = "1"
    return _json(body, status, headers)


def _status_name(status: int) -> str:
    """The ``code`` label of a finished request, in the gRPC side's vocabulary."""
    if status < 400:
        return "OK"
    for name, value in HTTP_STATUS.items():
        if value == status:
            return name
    return "RESOURCE_EXHAUSTED" if status == 413 else f"HTTP_{status}"


# -- query strings ----------------------------------------------------------------

_UINT = re.compile(r"[0-9]{1,20}")
_INT = re.compile(r"-?[0-9]{1,20}")


class Query:
    """The parameters of an image URL: each read once, with its type and range; unknown names are errors."""

    def __init__(self, request: web.Request, known: Sequence[str]) -> None:
        self.params = request.rel_url.query
        unknown = sorted(set(self.params) - set(known))
        if unknown:
            raise InvalidArgument(unknown[0], f"unknown parameter; this URL takes {', '.join(known)}")

    def _one(self, name: str) -> str | None:
        values = self.params.getall(name, [])
        if len(values) > 1:
            raise InvalidArgument(name, "is given more than once")
        return values[0] if values else None

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        text = self._one(name)
        if text is None:
            return default
        if not (_INT if low < 0 else _UINT).fullmatch(text):
            raise InvalidArgument(name, f"must be an integer in [{low}, {high}], got {_shown(text)}")
        value = int(text)
        if not low <= value <= high:
            raise InvalidArgument(name, f"must be an integer in [{low}, {high}], got {value}")
        return value

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._one(name)
        return default if value is None else value

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        value = self._one(name)
        if value is None:
            return default
        if value not in choices:
            raise InvalidArgument(name, f"must be one of {', '.join(choices)}, got {_shown(value)}")
        return value

    def floats(self, name: str) -> list[float] | None:
        """Repeated and/or comma-separated numbers (``code=0.5&code=-1`` or ``code=0.5,-1``)."""
        texts = self.params.getall(name, [])
        if not texts:
            return None
        values = []
        for text in texts:
            for part in text.split(","):
                try:
                    value = float(part)
                except ValueError:
                    raise InvalidArgument(name, f"must be numbers such as 0.5,-1; got {_shown(part)}") from None
                if not math.isfinite(value):
                    raise InvalidArgument(name, f"values must be finite numbers, got {_shown(part)}")
                values.append(value)
        return values


def _shown(text: str, limit: int = 40) -> str:
    """A caller's value, quoted and cut short, for a message."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _renamed(exc: InvalidArgument, names: Mapping[str, str]) -> InvalidArgument:
    """The planner names SampleSpec fields; a URL's parameters may be called otherwise (count → n)."""
    if exc.field in names:
        return InvalidArgument(names[exc.field], exc.problem)
    return exc


# -- the OIP REST binding: JSON tensors ------------------------------------------------

_INT_RANGES = {"UINT64": (0, MAX_SEED), "INT32": (-(2**31), 2**31 - 1)}
_FP32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class _Input:
    tensor: oip.TensorIn
    values: list | None = None  # the JSON "data", flat, checked against the tensor's datatype
    binary: bytes | None = None  # its part of the body (binary tensor extension), or None


def _row_major(data: list, rank: int, name: str) -> list:
    """Flatten nested lists depth-first without recursion."""
    out: list = []
    stack: list[tuple[list, int, int]] = [(data, 0, 1)]
    while stack:
        items, pos, depth = stack.pop()
        while pos < len(items):
            item = items[pos]
            pos += 1
            if isinstance(item, list):
                if depth >= rank:
                    raise InvalidArgument(name, f"data is nested deeper than the tensor's {rank} dimensions")
                stack.append((items, pos, depth))
                items, pos, depth = item, 0, depth + 1
                continue
            out.append(item)
    return out


def _checked(name: str, values: list, datatype: str) -> list:
    """``values`` if they are of ``datatype``'s kind and range (other datatypes are refused later)."""
    if datatype not in _INT_RANGES and datatype != "FP32":
        return values
    if datatype == "FP32":
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidArgument(name, f"FP32 data must be numbers, got {_shown(json.dumps(v))}")
            if isinstance(v, int) and abs(v) > _FP32_MAX:
                raise InvalidArgument(name, f"FP32 values must be finite, got {_shown(str(v))}")
        return values
    low, high = _INT_RANGES[datatype]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise InvalidArgument(name, f"{datatype} data must be integers, got {_shown(json.dumps(v))}")
        if not low <= v <= high:
            raise InvalidArgument(name, f"{datatype} values must be in [{low}, {high}], got {v}")
    return values


def _object(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidArgument(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(field, f"must be a string, got {_shown(json.dumps(value))}")
    return value


def _list(value: Any, field: str) -> list:
    if not isinstance(value, list):
        raise InvalidArgument(field, f"must be a JSON array, got {type(value).__name__}")
    return value


def _parse_json(data: bytes, field: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        problem = str(exc) if not isinstance(exc, RecursionError) else "nesting is too deep"
        raise InvalidArgument(field, f"is not valid JSON: {problem[:200]}") from None


@dataclass(frozen=True)
class InferBody:
    """A parsed ``POST .../infer`` body."""

    id: str | None
    inputs: list[_Input]
    outputs: list[tuple[str, list[str]]]
    binary_output: bool  # answer with the binary tensor extension


def parse_infer_body(body: bytes, header_length: str | None) -> InferBody:
    """The JSON part (and binary tensors) of an infer request; InvalidArgument names what is wrong."""
    binary = b""
    if header_length is not None:
        field = "Inference-Header-Content-Length"
        if not _UINT.fullmatch(header_length.strip()) or int(header_length) > len(body):
            raise InvalidArgument(field, f"must be the JSON header's length, at most the body's {len(body)} bytes")
        size = int(header_length)
        body, binary = body[:size], body[size:]
    doc = _object(_parse_json(body, "body"), "body")
    request_id = doc.get("id")
    if request_id is not None:
        _string(request_id, "id")
    params = _object(doc.get("parameters", {}), "parameters")
    binary_output = params.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise InvalidArgument("parameters.binary_data_output", "must be true or false")
    inputs = []
    offset = 0
    for index, item in enumerate(_list(doc.get("inputs", []), "inputs")):
        where = f"inputs[{index}]"
        item = _object(item, where)
        name = _string(item.get("name", ""), f"{where}.name")
        label = name or where
        datatype = _string(item.get("datatype", ""), f"{label}.datatype")
        shape = _list(item.get("shape", []), f"{label}.shape")
        if any(isinstance(d, bool) or not isinstance(d, int) for d in shape):
            raise InvalidArgument(label, f"shape must be a list of integers, got {_shown(json.dumps(shape))}")
        tparams = _object(item.get("parameters", {}), f"{label}.parameters")
        part = None
        if "binary_data_size" in tparams:
            size = tparams["binary_data_size"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise InvalidArgument(label, "parameters.binary_data_size must be a byte count")
            if "data" in item:
                raise InvalidArgument(label, "has both data and parameters.binary_data_size; use one")
            if offset + size > len(binary):
                raise InvalidArgument(
                    label,
                    f"binary_data_size {size} runs past the end of the body's {len(binary)} binary bytes "
                    "(Inference-Header-Content-Length must give the JSON header's length)",
                )
            part = binary[offset : offset + size]
            offset += size
        elif "data" not in item:
            raise InvalidArgument(label, "has no data; give data or parameters.binary_data_size")
        values = None
        if part is None:  # flattened and checked here, off the event loop for big bodies
            data = item["data"]
            values = _checked(
                label, _row_major(data if isinstance(data, list) else [data], len(shape), label), datatype
            )
        tensor = oip.TensorIn(name, datatype, tuple(shape), tuple(tparams))
        inputs.append(_Input(tensor, values, part))
    if offset != len(binary):
        raise InvalidArgument(
            "Inference-Header-Content-Length",
            f"the body has {len(binary) - offset} binary bytes that no input's binary_data_size accounts for",
        )
    outputs = []
    want_binary = binary_output
    for index, item in enumerate(_list(doc.get("outputs", []), "outputs")):
        where = f"outputs[{index}]"
        item = _object(item, where)
        name = _string(item.get("name", ""), f"{where}.name")
        oparams = _object(item.get("parameters", {}), f"{name or where}.parameters")
        if "binary_data" in oparams:
            if not isinstance(oparams["binary_data"], bool):
                raise InvalidArgument(name or where, "parameters.binary_data must be true or false")
            want_binary = oparams["binary_data"]
        outputs.append((name, list(oparams)))
    return InferBody(request_id, inputs, outputs, want_binary)


def decode_json_inputs(body: InferBody, model: LoadedModel) -> dict[str, np.ndarray]:
    """The inputs of a REST infer request, checked by the rules of the gRPC binding."""

    def read(index: int, tensor: oip.TensorIn, spec: oip.InputSpec) -> np.ndarray:
        item = body.inputs[index]
        if item.binary is not None:
            return oip.values_from_bytes(tensor.name, item.binary, spec.datatype, tensor.shape, "its binary data")
        assert item.values is not None
        # check_inputs has matched the datatype to the model's, so the values are of its kind
        with np.errstate(over="ignore"):  # FP32 overflow becomes inf, which the finite checks name
            return oip.values_from_list(tensor.name, item.values, spec.datatype, tensor.shape, "data")

    return oip.check_inputs([i.tensor for i in body.inputs], oip.model_inputs(model), model.name, read)


# -- the application -----------------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpFront:
    """The HTTP side of one server process; shares the repository, dispatcher and metrics with gRPC."""

    def __init__(
        self,
        repo: ModelRepository,
        dispatcher: Dispatcher,
        metrics: Metrics | None,
        *,
        max_count: int,
        max_body_bytes: int,
        token: str | None = None,
        grpc_port: int = 0,
        tls: bool = False,
    ) -> None:
        self.repo = repo
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.max_count = max_count
        self.max_body_bytes = max_body_bytes
        self._expected = f"Bearer {token}".encode() if token else None
        self.grpc_port = grpc_port
        self.tls = tls
        self.serving = False  # set with gRPC health SERVING; readiness
        self.draining = False
        self.in_flight = 0
        self._runner: web.AppRunner | None = None
        self._static = {
            path: resources.files(__package__).joinpath("static", f).read_bytes() for path, (f, _) in _STATIC.items()
        }
        self.app = self._build()

    # -- lifecycle ------------------------------------------------------------

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None, reuse_port: bool) -> int:
        """Listen on ``host:port`` (0: a free port); return the bound port."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise OSError(f"cannot bind HTTP {host}:{port}: {exc.strerror}") from None
        return int(self._runner.addresses[0][1])

    async def wait_idle(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        return self.in_flight == 0

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- routing --------------------------------------------------------------

    def _build(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=self.max_body_bytes)
        get = [
            ("/", self.static),
            ("/static/app.js", self.static),
            ("/static/style.css", self.static),
            ("/v2", self.server_metadata),
            ("/v2/health/live", self.live),
            ("/v2/health/ready", self.ready),
            ("/v2/models/{name}", self.model_metadata),
            ("/v2/models/{name}/versions/{version}", self.model_metadata),
            ("/v2/models/{name}/ready", self.model_ready),
            ("/v2/models/{name}/versions/{version}/ready", self.model_ready),
            ("/v1", self.about),
            ("/v1/models", self.list_models),
            ("/v1/models/{name}", self.get_model),
            ("/v1/models/{name}/sample.png", self.sample),
            ("/v1/models/{name}/sample.npy", self.sample),
            ("/v1/models/{name}/interpolate.png", self.interpolate),
            ("/v1/models/{name}/interpolate.npy", self.interpolate),
        ]
        for path, handler in get:
            app.router.add_get(path, handler)
        for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
            app.router.add_post(path, self.infer, expect_handler=self._expect)
        return app

    def _route(self, request: web.Request) -> str:
        route = request.match_info.route
        resource = route.resource if route is not None else None
        return resource.canonical if resource is not None else "(no route)"

    def _admit(self, request: web.Request, route: str) -> None:
        """Refusals that come before any work and before the body: drain, token, size."""
        if route in _OPEN_PATHS:
            return
        if self.draining:
            raise Unavailable("server is shutting down; retry")
        if self._expected is not None:
            given = request.headers.get("Authorization", "")
            try:
                given_bytes = given.encode("utf-8", "surrogateescape")
            except UnicodeError:
                given_bytes = b""
            if not hmac.compare_digest(given_bytes, self._expected):
                raise Unauthenticated("missing bearer token" if not given else "invalid bearer token")
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise BodyTooLarge(f"body: {length} bytes is over this server's limit of {self.max_body_bytes} bytes")

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: refuse before the client sends the body, or let it send."""
        expect = request.headers.get("Expect", "")
        if expect.lower() != "100-continue":
            return error_response(InvalidArgument("Expect", f"only 100-continue is understood, got {_shown(expect)}"))
        try:
            self._admit(request, self._route(request))
        except GanError as exc:
            response = error_response(exc)
            self._observe(request, self._route(request), response.status, 0.0, "")
            return response
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = self._route(request)
        request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]
        counted = False
        try:
            self._admit(request, route)
            if route not in _OPEN_PATHS:
                self.in_flight += 1
                counted = True
            response = await handler(request)
        except GanError as exc:
            response = error_response(exc)
        except web.HTTPException as exc:  # the router's 404 / 405, aiohttp's 413
            response = self._http_error(request, exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the one place that must catch all
            errors_log.exception("unhandled error in HTTP %s %s", request.method, route)
            response = _json({"error": "internal error; see the server log"}, 500)
        finally:
            if counted:
                self.in_flight -= 1
        response.headers["X-Request-Id"] = request_id
        if self.draining:
            response.headers["Connection"] = "close"
        self._observe(request, route, response.status, time.perf_counter() - started, request_id)
        return response

    def _http_error(self, request: web.Request, exc: web.HTTPException) -> web.Response:
        if isinstance(exc, web.HTTPRequestEntityTooLarge):
            return error_response(BodyTooLarge(f"body: is over this server's limit of {self.max_body_bytes} bytes"))
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            response = _json({"error": f"method: {request.method} is not allowed here; use {allowed}"}, 405)
            response.headers["Allow"] = allowed
            return response
        if isinstance(exc, web.HTTPNotFound):
            return _json({"error": "path: no such endpoint; see /v1/models and /v2 (docs/api.md)"}, 404)
        status = exc.status if 400 <= exc.status < 500 else 400
        return _json({"error": f"request: {exc.reason}"}, status)

    def _model_label(self, request: web.Request) -> str:
        name = request.match_info.get("name")
        if not name:
            return ""
        return name if name in self.repo.models else "unknown"

    def _observe(self, request: web.Request, route: str, status: int, seconds: float, request_id: str) -> None:
        method = request.method if request.method in ("GET", "HEAD", "POST") else "OTHER"
        name = f"HTTP {method} {route}"
        model = self._model_label(request)
        code = _status_name(status)
        if self.metrics is not None:
            self.metrics.observe_rpc(name, model, code, seconds)
        log.info(
            "%s model=%s status=%d code=%s ms=%.2f request_id=%s",
            name,
            model or "-",
            status,
            code,
            seconds * 1000,
            request_id,
            extra={
                "request_id": request_id,
                "method": name,
                "model": model,
                "code": code,
                "ms": round(seconds * 1000, 3),
            },
        )

    # -- static files ---------------------------------------------------------

    async def static(self, request: web.Request) -> web.Response:
        path = self._route(request)
        _, content_type = _STATIC[path]
        return web.Response(
            body=self._static[path],
            content_type=content_type,
            charset="utf-8",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"},
        )

    # -- OIP REST --------------------------------------------------------------

    async def live(self, request: web.Request) -> web.Response:
        return _json({"live": True})

    async def ready(self, request: web.Request) -> web.Response:
        ready = self.serving and not self.draining and oip.server_ready(self.repo)
        return _json({"ready": ready}, 200 if ready else 503)

    async def server_metadata(self, request: web.Request) -> web.Response:
        return _json({"name": oip.SERVER_NAME, "version": oip.server_version(), "extensions": ["binary_tensor_data"]})

    async def model_metadata(self, request: web.Request) -> web.Response:
        model = self.repo.get(request.match_info["name"], request.match_info.get("version", ""))
        versions = self.repo.versions(model.name)
        return _json(oip.model_metadata_dict(model, versions, oip.platform_name(self.repo.backend)))

    async def model_ready(self, request: web.Request) -> web.Response:
        name, version = request.match_info["name"], request.match_info.get("version", "")
        if not oip.model_ready(self.repo, name, version):
            self.repo.get(name, version)  # raises the reason: not found, or files broken
        return _json({"name": name, "ready": True})

    async def _read_body(self, request: web.Request) -> bytes:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise BodyTooLarge(f"body: is over this server's limit of {self.max_body_bytes} bytes") from None

    async def infer(self, request: web.Request) -> web.Response:
        body = await self._read_body(request)
        header_length = request.headers.get("Inference-Header-Content-Length")
        loop = asyncio.get_running_loop()
        if len(body) > _BIG_BODY:
            parsed = await loop.run_in_executor(None, parse_infer_body, body, header_length)
        else:
            parsed = parse_infer_body(body, header_length)
        model, plan = oip.prepare_infer(
            self.repo,
            request.match_info["name"],
            request.match_info.get("version", ""),
            parsed.outputs,
            lambda model: decode_json_inputs(parsed, model),
            self.max_count,
            self.max_body_bytes,
        )
        images = await oip.run_infer(self.dispatcher, model, plan)
        output: dict[str, Any] = {"name": oip.OUTPUT, "datatype": "UINT8", "shape": list(images.shape)}
        head: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
        if parsed.id is not None:
            head["id"] = parsed.id
        head["outputs"] = [output]
        if parsed.binary_output:
            data = images.tobytes()
            output["parameters"] = {"binary_data_size": len(data)}
            header = json.dumps(head, separators=(",", ":")).encode()
            return web.Response(
                body=header + data,
                content_type="application/octet-stream",
                headers={"Inference-Header-Content-Length": str(len(header))},
            )
        output["data"] = None

        def encode() -> bytes:
            output["data"] = images.ravel().tolist()
            return json.dumps(head, separators=(",", ":")).encode()

        text = await loop.run_in_executor(None, encode) if images.size > _BIG_BODY // 4 else encode()
        return web.Response(body=text, content_type="application/json")

    # -- gan.v1 as JSON -------------------------------------------------------

    async def about(self, request: web.Request) -> web.Response:
        return _json(
            {
                "name": oip.SERVER_NAME,
                "version": oip.server_version(),
                "grpc_port": self.grpc_port,
                "tls": self.tls,
                "token_required": self._expected is not None,
                "max_count": self.max_count,
            }
        )

    def _info(self, model: LoadedModel) -> dict[str, Any]:
        message = model_info(model, self.repo.versions(model.name))
        return json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )

    async def list_models(self, request: web.Request) -> web.Response:
        Query(request, ())
        return _json({"models": [self._info(m) for m in self.repo.latest()]})

    async def get_model(self, request: web.Request) -> web.Response:
        query = Query(request, ("version",))
        model = self.repo.get(request.match_info["name"], query.text("version", "") or "")
        return _json(self._info(model))

    # -- images for a URL -----------------------------------------------------

    def _model(self, request: web.Request, query: Query) -> LoadedModel:
        return self.repo.get(request.match_info["name"], query.text("version", "") or "")

    def _conditioning(self, query: Query) -> dict[str, Any]:
        return {
            "digit": query.integer("digit", None, -(2**31), 2**31 - 1),
            "label": query.text("label"),
            "category": query.integer("category", None, -(2**31), 2**31 - 1),
            "continuous": query.floats("code"),
        }

    def _grid_checked(self, model: LoadedModel, query: Query, n: int, cols: int | None) -> tuple[int, int]:
        """(cols, scale) of a PNG grid of ``n`` images, its size checked before any work."""
        scale = query.integer("scale", 1, 1, MAX_SCALE)
        cols = cols or math.ceil(math.sqrt(n))
        image = model.manifest.image
        rows = math.ceil(n / cols)
        h, w = (rows * (image.height + 2) + 2) * scale, (cols * (image.width + 2) + 2) * scale
        if h * w > MAX_PIXELS:
            raise InvalidArgument(
                "scale" if scale > 1 else "cols" if cols > n else "n",
                f"the image would be {w}x{h} pixels, over this server's limit of {MAX_PIXELS} pixels",
            )
        return cols, scale

    async def _images(self, model: LoadedModel, spec: SampleSpec, names: Mapping[str, str]) -> np.ndarray:
        try:
            oip.check_response_size(model, spec.count, self.max_body_bytes, "count")
            plan = model.plan(spec, self.repo.conditional_names())
        except InvalidArgument as exc:
            raise _renamed(exc, names) from None
        return await oip.run_infer(self.dispatcher, model, plan)

    async def _answer(
        self, request: web.Request, images: np.ndarray, grid: tuple[int, int], text: dict[str, str]
    ) -> web.Response:
        loop = asyncio.get_running_loop()
        if request.path.endswith(".npy"):
            data = await loop.run_in_executor(None, encode_npy, images)
            return web.Response(body=data, content_type="application/octet-stream")
        cols, scale = grid

        def encode() -> bytes:
            tiled = make_grid(images, cols=cols)
            if scale > 1:  # nearest neighbour: every pixel becomes a scale x scale block
                tiled = np.repeat(np.repeat(tiled, scale, axis=0), scale, axis=1)
            return encode_png(tiled, text)

        data = await loop.run_in_executor(None, encode)
        return web.Response(body=data, content_type="image/png", headers={"Cache-Control": "no-store"})

    async def sample(self, request: web.Request) -> web.Response:
        png = request.path.endswith(".png")
        known = ["n", "seed", "digit", "label", "category", "code", "first_index", "version"]
        query = Query(request, known + (["cols", "scale"] if png else []))
        model = self._model(request, query)
        n = query.integer("n", 16, 1, self.max_count)
        seed = query.integer("seed", 0, 0, MAX_SEED)
        first_index = query.integer("first_index", 0, 0, MAX_SEED)
        cols = query.integer("cols", None, 1, self.max_count) if png else None
        cond = self._conditioning(query)
        grid = self._grid_checked(model, query, n, cols) if png else (0, 1)
        spec = SampleSpec(
            count=n,
            seed=seed,
            digit=cond["digit"],
            label=cond["label"],
            category=cond["category"],
            continuous=tuple(cond["continuous"] or ()),
            first_index=first_index,
        )
        images = await self._images(model, spec, {"count": "n", "continuous": "code"})
        summary = provenance.request_summary(cond["digit"], cond["label"], cond["category"], spec.continuous)
        text = provenance.grid_text(model.name, model.version, seed, summary, first_index, len(images))
        return await self._answer(request, images, grid, text)

    async def interpolate(self, request: web.Request) -> web.Response:
        png = request.path.endswith(".png")
        known = ["seed_a", "seed_b", "steps", "method", "digit", "label", "category", "code", "version"]
        query = Query(request, known + (["scale"] if png else []))
        model = self._model(request, query)
        seed_a = query.integer("seed_a", 0, 0, MAX_SEED)
        seed_b = query.integer("seed_b", 1, 0, MAX_SEED)
        steps = query.integer("steps", 10, 2, self.max_count)
        method = query.choice("method", "lerp", METHODS)
        given = self._conditioning(query)
        grid = self._grid_checked(model, query, steps, steps) if png else (0, 1)
        cond = strip_conditioning(
            model.name,
            model.manifest.conditioning,
            given["digit"],
            given["label"],
            given["category"],
            given["continuous"],
        )
        # Each end is image 0 of its seed, as `sample -n 1` draws it; the frames walk between the two.
        ends = [draw(model.manifest, seed, 0, 1).z[0] for seed in (seed_a, seed_b)]
        zs = interpolate(ends[0], ends[1], steps, method)
        continuous = tuple(cond["continuous"] or ())
        spec = SampleSpec(
            count=steps,
            seed=seed_a,
            digit=cond["digit"],
            label=cond["label"],
            category=cond["category"],
            continuous=continuous,
            latents=zs,
        )
        images = await self._images(model, spec, {"count": "steps", "continuous": "code", "seed": "seed_a"})
        summary = provenance.request_summary(cond["digit"], cond["label"], cond["category"], continuous, True)
        summary["interpolate"] = {"from": seed_a, "to": seed_b, "steps": steps, "method": method}
        text = provenance.grid_text(model.name, model.version, seed_a, summary, 0, steps)
        return await self._answer(request, images, grid, text)


def ssl_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    """The HTTP side's TLS settings from the same files as gRPC's (mTLS when ``client_ca`` is given)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
