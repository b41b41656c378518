"""GanClient (blocking) and AsyncGanClient (asyncio): the same methods, one core.

    from gan_client import GanClient
    with GanClient("localhost:50051") as client:
        result = client.sample("infogan", n=16, seed=0, digit=7)
        result.images  # uint8 (16, 28, 28, 1)

Everything that is not I/O lives in ``_core``: the channel settings, and each
method's plan (the requests it sends and how their responses combine). The
two classes below only execute plans, blocking or with asyncio, so they give
the same results. Their arguments are declared once: the constructor's in
``ClientConfig``, the sampling calls' in ``_options``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any, TypeVar

import grpc
import numpy as np
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

from . import _core
from ._config import ClientConfig
from ._exceptions import APIError, from_rpc_error
from ._options import InterpolateOptions, SampleOptions, takes
from ._types import ModelInfo, SampleResult

T = TypeVar("T")

# Codes that do not show a server answered (so do not prove one exists at the address).
_NO_ANSWER = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


class _BaseClient:
    """The channel and call settings both clients share; see :class:`ClientConfig` for the arguments."""

    _grpc: ModuleType  # grpc or grpc.aio: where the channel comes from

    @takes(ClientConfig)
    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        conn = _core.Connection.resolve(config)
        self.server, self.timeout, self.retry = conn.server, conn.timeout, conn.retry
        self.tls = conn.credentials is not None
        self._metadata = conn.metadata
        if conn.credentials is not None:
            self._channel = self._grpc.secure_channel(self.server, conn.credentials, options=conn.options)
        else:
            self._channel = self._grpc.insecure_channel(self.server, options=conn.options)
        self._methods = _core.unary_methods(self._channel)
        self._sample_stream = pb_grpc.GeneratorStub(self._channel).SampleStream
        # Set once a server answered at this address: from then on a call
        # waits for it (within its deadline) while it restarts.
        self._reached = False

    def _kwargs(self, timeout: float | None, request: Message | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"timeout": self.timeout if timeout is None else timeout, "metadata": self._metadata}
        if self._waits(request):
            kwargs["wait_for_ready"] = True
        return kwargs

    def _waits(self, request: Message | None) -> bool:
        """Whether a call waits for a connection: retries on, a server answered before, not a health check."""
        retry = self.retry
        return (
            retry is not None
            and retry.wait_for_ready
            and self._reached
            and not isinstance(request, health_pb2.HealthCheckRequest)
        )

    def _answered(self, exc: grpc.RpcError | None = None) -> None:
        if exc is None or exc.code() not in _NO_ANSWER:  # type: ignore[attr-defined]
            self._reached = True

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def _stream_kwargs(self, deadline: float, request: pb.SampleRequest) -> dict[str, Any]:
        return self._kwargs(max(0.0, deadline - time.monotonic()), request)

    def _resumable(self, exc: grpc.RpcError, done: int, deadline: float) -> bool:
        """Whether a stream cut after ``done`` images goes on from the next one.

        Only with retries on, for their status codes, once images arrived
        (before that, gRPC's own retries apply), and within the deadline.
        """
        retry, code = self.retry, exc.code()  # type: ignore[attr-defined]
        if retry is None or not done or code is None or code.name not in retry.status_codes:
            return False
        return time.monotonic() < deadline

    def _error(self, exc: grpc.RpcError) -> APIError:
        return from_rpc_error(exc, self.server, tls=self.tls)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.server!r}, tls={self.tls}, token={'set' if self._metadata else 'none'}, "
            f"retries={'on' if self.retry else 'off'})"
        )


class GanClient(_BaseClient):
    """Blocking client; takes the arguments of :class:`~gan_client._config.ClientConfig`:
    ``GanClient(server=None, *, timeout=, token=, tls=, root_certificates=,
    client_cert=, client_key=, tls_server_name=, retry=, max_message_bytes=)``."""

    _grpc = grpc

    def _call(self, request: Message, timeout: float | None) -> Any:
        try:
            response = self._methods[type(request)](request, **self._kwargs(timeout, request))
        except grpc.RpcError as exc:
            self._answered(exc)
            raise self._error(exc) from None
        self._answered()
        return response

    def _run(self, plan: _core.Plan[T], timeout: float | None) -> T:
        """Execute a plan: each step's requests one after another."""
        step = _core.advance(plan, None)
        while not isinstance(step, _core.Done):
            try:
                outcome: list[Any] | APIError = [self._call(req, timeout) for req in step]
            except APIError as exc:
                outcome = exc
            step = _core.advance(plan, outcome)
        return step.value

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """grpc.health.v1 Check: "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN", ...

        ``service`` "" is the whole server; "gan.v1.Generator" the sampling API.
        Servers answer health checks without a token.
        """
        return self._run(_core.health_plan(service), timeout)

    def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        return self._run(_core.list_models_plan(), timeout)

    def model_info(self, name: str, version: str | None = None, *, timeout: float | None = None) -> ModelInfo:
        return self._run(_core.model_info_plan(name, version), timeout)

    @takes(SampleOptions)
    def sample(self, opts: SampleOptions) -> SampleResult:
        """``n`` images (default 1, or one per row of ``latents``): image i is
        stream (seed, first_index + i). Arguments: see :class:`SampleOptions`."""
        return self._run(_core.sample_plan(opts), opts.timeout)

    @takes(SampleOptions)
    def sample_stream(self, opts: SampleOptions) -> Iterator[SampleResult]:
        """The same images as :meth:`sample`, as consecutive chunks (each message
        < 1 MiB); ``chunk.start`` is the index of its first image. Arguments are
        checked at once; the call starts on the first ``next()``."""
        return self._stream(_core.build_sample_request(opts), opts.timeout)

    def _stream(self, req: pb.SampleRequest, timeout: float | None) -> Iterator[SampleResult]:
        deadline, part, done, version = self._deadline(timeout), req, 0, ""
        while True:
            call = self._sample_stream(part, **self._stream_kwargs(deadline, part))
            try:
                for resp in call:
                    self._answered()
                    version = version or resp.version
                    done += resp.count
                    yield _core.decode_sample(req, resp)
                return
            except grpc.RpcError as exc:
                self._answered(exc)
                if not self._resumable(exc, done, deadline):
                    raise self._error(exc) from None
                if done >= req.count:
                    return  # every image had arrived
                # the same images from the next one on, on the same version: none twice, none lost
                part = _core.resume_request(req, done, version)
            finally:
                call.cancel()

    @takes(InterpolateOptions)
    def interpolate(self, opts: InterpolateOptions) -> SampleResult:
        """``steps`` images whose ``z`` goes from ``start`` to ``end`` ("lerp" or "slerp").

        An endpoint is a seed (its image 0's ``z``, as the server draws it) or a
        latent vector. Everything but ``z`` is the same in every frame:
        conditional models need digit/label/category, and InfoGAN continuous
        codes default to the middle of their range. So the first and last
        frames equal ``sample(model, 1, seed=start/end, <same conditioning>)``.
        """
        return self._run(_core.interpolate_plan(opts), opts.timeout)

    def encode(
        self, model: str, images: Any, *, version: str | None = None, timeout: float | None = None
    ) -> np.ndarray:
        """Latents (N, latent_dim) float32 for uint8 images (N, H, W, C) or (N, H, W),
        from the model's encoder (BiGAN, VAE-GAN). Models without one give InvalidArgument.

        Large inputs take several calls, one after another, all on the version
        the first one used."""
        return self._run(_core.encode_plan(model, images, version), timeout)

    def reconstruct(
        self, model: str, images: Any, *, version: str | None = None, timeout: float | None = None
    ) -> SampleResult:
        """Encode the images, then generate from those latents (``.latents`` holds them)."""
        return self._run(_core.reconstruct_plan(model, images, version), timeout)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GanClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncGanClient(_BaseClient):
    """asyncio client (grpc.aio) with the same methods and arguments as
    :class:`GanClient`; ``sample_stream`` returns an async iterator."""

    _grpc = grpc.aio

    async def _call(self, request: Message, timeout: float | None) -> Any:
        try:
            response = await self._methods[type(request)](request, **self._kwargs(timeout, request))
        except grpc.RpcError as exc:
            self._answered(exc)
            raise self._error(exc) from None
        self._answered()
        return response

    async def _run(self, plan: _core.Plan[T], timeout: float | None) -> T:
        """Execute a plan: each step's requests concurrently; the first of their
        errors in request order is the one raised, as in :class:`GanClient`."""
        step = _core.advance(plan, None)
        while not isinstance(step, _core.Done):
            results: list[Any] = await asyncio.gather(*(self._call(r, timeout) for r in step), return_exceptions=True)
            error = next((r for r in results if isinstance(r, BaseException)), None)
            if error is not None and not isinstance(error, APIError):
                raise error
            step = _core.advance(plan, error or results)
        return step.value

    async def health(self, service: str = "", *, timeout: float | None = None) -> str:
        return await self._run(_core.health_plan(service), timeout)

    async def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        return await self._run(_core.list_models_plan(), timeout)

    async def model_info(self, name: str, version: str | None = None, *, timeout: float | None = None) -> ModelInfo:
        return await self._run(_core.model_info_plan(name, version), timeout)

    @takes(SampleOptions)
    async def sample(self, opts: SampleOptions) -> SampleResult:
        return await self._run(_core.sample_plan(opts), opts.timeout)

    @takes(SampleOptions)
    def sample_stream(self, opts: SampleOptions) -> AsyncIterator[SampleResult]:
        """``async for chunk in client.sample_stream(...)``: see :meth:`GanClient.sample_stream`."""
        return self._stream(_core.build_sample_request(opts), opts.timeout)

    async def _stream(self, req: pb.SampleRequest, timeout: float | None) -> AsyncIterator[SampleResult]:
        deadline, part, done, version = self._deadline(timeout), req, 0, ""
        while True:
            call = self._sample_stream(part, **self._stream_kwargs(deadline, part))
            try:
                async for resp in call:
                    self._answered()
                    version = version or resp.version
                    done += resp.count
                    yield _core.decode_sample(req, resp)
                return
            except grpc.RpcError as exc:
                self._answered(exc)
                if not self._resumable(exc, done, deadline):
                    raise self._error(exc) from None
                if done >= req.count:
                    return
                part = _core.resume_request(req, done, version)
            finally:
                call.cancel()

    @takes(InterpolateOptions)
    async def interpolate(self, opts: InterpolateOptions) -> SampleResult:
        return await self._run(_core.interpolate_plan(opts), opts.timeout)

    async def encode(
        self, model: str, images: Any, *, version: str | None = None, timeout: float | None = None
    ) -> np.ndarray:
        return await self._run(_core.encode_plan(model, images, version), timeout)

    async def reconstruct(
        self, model: str, images: Any, *, version: str | None = None, timeout: float | None = None
    ) -> SampleResult:
        return await self._run(_core.reconstruct_plan(model, images, version), timeout)

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncGanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
