"""GanClient (blocking) and AsyncGanClient (asyncio): the same methods, one core.

    from gan_client import GanClient
    with GanClient("localhost:50051") as client:
        result = client.sample("infogan", n=16, seed=0, digit=7)
        result.images  # uint8 (16, 28, 28, 1)

Everything that is not I/O (channel settings, requests, decoding, the
interpolation maths) lives in ``_core``/``_interp``; the two classes below only
send and receive.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import grpc
import numpy as np
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from . import _core
from ._config import DEFAULT_TIMEOUT, MAX_MESSAGE_BYTES, RetryPolicy, resolve_server, resolve_token
from ._exceptions import APIError, ModelNotFound, from_rpc_error
from ._types import ModelInfo, SampleResult

PemSource = str | os.PathLike[str] | bytes


class _BaseClient:
    """Settings shared by both clients; see :class:`GanClient` for the arguments."""

    def __init__(
        self,
        server: str | None,
        timeout: float | None,
        token: str | None,
        tls: bool,
        root_certificates: PemSource | None,
        client_cert: PemSource | None,
        client_key: PemSource | None,
        tls_server_name: str | None,
        retry: RetryPolicy | bool | None,
        max_message_bytes: int,
    ) -> None:
        self.server = resolve_server(server)
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.retry = _core.resolve_retry(retry)
        self._credentials = _core.channel_credentials(tls, root_certificates, client_cert, client_key)
        self.tls = self._credentials is not None
        if tls_server_name and not self.tls:
            raise ValueError("tls_server_name only applies to TLS channels: pass tls=True as well")
        self._options = _core.channel_options(max_message_bytes, self.retry, tls_server_name)
        self._metadata = _core.call_metadata(resolve_token(token))

    def _timeout(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    def _error(self, exc: grpc.RpcError) -> APIError:
        return from_rpc_error(exc, self.server, tls=self.tls)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.server!r}, tls={self.tls}, token={'set' if self._metadata else 'none'}, "
            f"retries={'on' if self.retry else 'off'})"
        )


class GanClient(_BaseClient):
    """Blocking client.

    Args:
        server: HOST:PORT; default $GAN_SERVER, else localhost:50051.
        timeout: default per-call deadline in seconds (60); every method also
            takes ``timeout=``. A stream's deadline covers the whole stream.
        token: bearer token sent as ``authorization: Bearer <token>``; default
            $GAN_TOKEN. Works on plaintext and TLS channels.
        tls: use TLS, trusting the system's CAs unless ``root_certificates``
            is given. Any certificate argument turns TLS on.
        root_certificates: PEM CA bundle (path or bytes) to verify the server.
        client_cert, client_key: PEM client certificate and key (path or
            bytes) for servers that require mTLS.
        tls_server_name: the name to verify in the server's certificate when
            it differs from the address's host (e.g. dialling an IP).
        retry: gRPC's own retries of UNAVAILABLE with exponential backoff
            (True: :data:`DEFAULT_RETRY`; a :class:`RetryPolicy`; False: off).
        max_message_bytes: the largest message either side may send.
    """

    def __init__(
        self,
        server: str | None = None,
        *,
        timeout: float | None = None,
        token: str | None = None,
        tls: bool = False,
        root_certificates: PemSource | None = None,
        client_cert: PemSource | None = None,
        client_key: PemSource | None = None,
        tls_server_name: str | None = None,
        retry: RetryPolicy | bool | None = True,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(
            server,
            timeout,
            token,
            tls,
            root_certificates,
            client_cert,
            client_key,
            tls_server_name,
            retry,
            max_message_bytes,
        )
        if self._credentials is not None:
            self._channel = grpc.secure_channel(self.server, self._credentials, options=self._options)
        else:
            self._channel = grpc.insecure_channel(self.server, options=self._options)
        self._stub = pb_grpc.GeneratorStub(self._channel)

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return method(request, timeout=self._timeout(timeout), metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """grpc.health.v1 Check: "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN", ...

        ``service`` "" is the whole server; "gan.v1.Generator" the sampling API.
        Servers answer health checks without a token.
        """
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            resp = self._call(stub.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        except ModelNotFound:
            return "SERVICE_UNKNOWN"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        resp = self._call(self._stub.ListModels, pb.ListModelsRequest(), timeout)
        return [_core.decode_model(m) for m in resp.models]

    def model_info(self, name: str, version: str | None = None, *, timeout: float | None = None) -> ModelInfo:
        resp = self._call(self._stub.GetModel, pb.GetModelRequest(name=name, version=version or ""), timeout)
        return _core.decode_model(resp)

    def sample(
        self,
        model: str,
        n: int | None = None,
        seed: int = 0,
        *,
        digit: int | None = None,
        label: str | None = None,
        category: int | None = None,
        continuous: Sequence[float] | None = None,
        latents: np.ndarray | None = None,
        version: str | None = None,
        return_latents: bool = False,
        first_index: int = 0,
        timeout: float | None = None,
    ) -> SampleResult:
        """``n`` images (default 1, or one per row of ``latents``): image i is
        stream (seed, first_index + i)."""
        req = _core.sample_request(
            model,
            n,
            seed,
            digit=digit,
            label=label,
            category=category,
            continuous=continuous,
            latents=latents,
            version=version,
            return_latents=return_latents,
            first_index=first_index,
        )
        return _core.decode_sample(req, self._call(self._stub.Sample, req, timeout))

    def sample_stream(
        self,
        model: str,
        n: int | None = None,
        seed: int = 0,
        *,
        digit: int | None = None,
        label: str | None = None,
        category: int | None = None,
        continuous: Sequence[float] | None = None,
        latents: np.ndarray | None = None,
        version: str | None = None,
        return_latents: bool = False,
        first_index: int = 0,
        timeout: float | None = None,
    ) -> Iterator[SampleResult]:
        """The same images as :meth:`sample`, as consecutive chunks (each message
        < 1 MiB); ``chunk.start`` is the index of its first image. Arguments are
        checked at once; the call starts on the first ``next()``."""
        req = _core.sample_request(
            model,
            n,
            seed,
            digit=digit,
            label=label,
            category=category,
            continuous=continuous,
            latents=latents,
            version=version,
            return_latents=return_latents,
            first_index=first_index,
        )
        return self._stream(req, timeout)

    def _stream(self, req: pb.SampleRequest, timeout: float | None) -> Iterator[SampleResult]:
        call = self._stub.SampleStream(req, timeout=self._timeout(timeout), metadata=self._metadata)
        try:
            for resp in call:
                yield _core.decode_sample(req, resp)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        finally:
            call.cancel()

    def interpolate(
        self,
        model: str,
        start: int | np.ndarray,
        end: int | np.ndarray,
        steps: int = 10,
        method: str = "lerp",
        *,
        digit: int | None = None,
        label: str | None = None,
        category: int | None = None,
        continuous: Sequence[float] | None = None,
        version: str | None = None,
        timeout: float | None = None,
    ) -> SampleResult:
        """``steps`` images whose ``z`` goes from ``start`` to ``end`` ("lerp" or "slerp").

        An endpoint is a seed (its image 0's ``z``, as the server draws it) or a
        latent vector. Everything but ``z`` is the same in every frame:
        conditional models need digit/label/category, and InfoGAN continuous
        codes default to the middle of their range. So the first and last
        frames equal ``sample(model, 1, seed=start/end, <same conditioning>)``.
        """
        _core.check_interpolation_args(steps, method)
        info = self.model_info(model, version, timeout=timeout)
        cond = _core.interpolation_conditioning(info, digit, label, category, continuous)
        zs: list[np.ndarray] = []
        for name, value in (("start", start), ("end", end)):
            z = _core.endpoint_vector(name, value, info.latent_dim)
            if z is None:
                fetched = self.sample(
                    model, 1, seed=int(value), return_latents=True, version=info.version, timeout=timeout, **cond
                )
                z = _core.first_latent(fetched)
            zs.append(z)
        req, summary = _core.interpolation_request(model, info.version, start, end, zs[0], zs[1], steps, method, cond)
        result = _core.decode_sample(req, self._call(self._stub.Sample, req, timeout))
        result.request = summary
        return result

    def encode(
        self, model: str, images: Any, *, version: str | None = None, timeout: float | None = None
    ) -> np.ndarray:
        """Latents (N, latent_dim) float32 for uint8 images (N, H, W, C) or (N, H, W),
        from the model's encoder (BiGAN, VAE-GAN). Models without one give InvalidArgument."""
        reqs = _core.encode_requests(model, images, version)
        return _core.decode_encode([self._call(self._stub.Encode, r, timeout) for r in reqs])

    def reconstruct(
        self, model: str, images: Any, *, version: str | None = None, timeout: float | None = None
    ) -> SampleResult:
        """Encode the images, then generate from those latents (``.latents`` holds them)."""
        parts, offset = [], 0
        for req in _core.encode_requests(model, images, version):
            resp = self._call(self._stub.Encode, req, timeout)
            latents = _core.decode_encode([resp])
            parts.append(
                self.sample(
                    model,
                    latents=latents,
                    version=resp.version,
                    return_latents=True,
                    first_index=offset,
                    timeout=timeout,
                )
            )
            offset += len(latents)
        return SampleResult.concatenate(parts)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GanClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncGanClient(_BaseClient):
    """asyncio client (grpc.aio) with the same methods and arguments as
    :class:`GanClient`; ``sample_stream`` returns an async iterator."""

    def __init__(
        self,
        server: str | None = None,
        *,
        timeout: float | None = None,
        token: str | None = None,
        tls: bool = False,
        root_certificates: PemSource | None = None,
        client_cert: PemSource | None = None,
        client_key: PemSource | None = None,
        tls_server_name: str | None = None,
        retry: RetryPolicy | bool | None = True,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(
            server,
            timeout,
            token,
            tls,
            root_certificates,
            client_cert,
            client_key,
            tls_server_name,
            retry,
            max_message_bytes,
        )
        if self._credentials is not None:
            self._channel = grpc.aio.secure_channel(self.server, self._credentials, options=self._options)
        else:
            self._channel = grpc.aio.insecure_channel(self.server, options=self._options)
        self._stub = pb_grpc.GeneratorStub(self._channel)

    async def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return await method(request, timeout=self._timeout(timeout), metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    async def health(self, service: str = "", *, timeout: float | None = None) -> str:
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            resp = await self._call(stub.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        except ModelNotFound:
            return "SERVICE_UNKNOWN"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    async def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        resp = await self._call(self._stub.ListModels, pb.ListModelsRequest(), timeout)
        return [_core.decode_model(m) for m in resp.models]

    async def model_info(self, name: str, version: str | None = None, *, timeout: float | None = None) -> ModelInfo:
        resp = await self._call(self._stub.GetModel, pb.GetModelRequest(name=name, version=version or ""), timeout)
        return _core.decode_model(resp)

    async def sample(
        self,
        model: str,
        n: int | None = None,
        seed: int = 0,
        *,
        digit: int | None = None,
        label: str | None = None,
        category: int | None = None,
        continuous: Sequence[float] | None = None,
        latents: np.ndarray | None = None,
        version: str | None = None,
        return_latents: bool = False,
        first_index: int = 0,
        timeout: float | None = None,
    ) -> SampleResult:
        req = _core.sample_request(
            model,
            n,
            seed,
            digit=digit,
            label=label,
            category=category,
            continuous=continuous,
            latents=latents,
            version=version,
            return_latents=return_latents,
            first_index=first_index,
        )
        return _core.decode_sample(req, await self._call(self._stub.Sample, req, timeout))

    def sample_stream(
        self,
        model: str,
        n: int | None = None,
        seed: int = 0,
        *,
        digit: int | None = None,
        label: str | None = None,
        category: int | None = None,
        continuous: Sequence[float] | None = None,
        latents: np.ndarray | None = None,
        version: str | None = None,
        return_latents: bool = False,
        first_index: int = 0,
        timeout: float | None = None,
    ) -> AsyncIterator[SampleResult]:
        """``async for chunk in client.sample_stream(...)``: see :meth:`GanClient.sample_stream`."""
        req = _core.sample_request(
            model,
            n,
            seed,
            digit=digit,
            label=label,
            category=category,
            continuous=continuous,
            latents=latents,
            version=version,
            return_latents=return_latents,
            first_index=first_index,
        )
        return self._stream(req, timeout)

    async def _stream(self, req: pb.SampleRequest, timeout: float | None) -> AsyncIterator[SampleResult]:
        call = self._stub.SampleStream(req, timeout=self._timeout(timeout), metadata=self._metadata)
        try:
            async for resp in call:
                yield _core.decode_sample(req, resp)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        finally:
            call.cancel()

    async def interpolate(
        self,
        model: str,
        start: int | np.ndarray,
        end: int | np.ndarray,
        steps: int = 10,
        method: str = "lerp",
        *,
        digit: int | None = None,
        label: str | None = None,
        category: int | None = None,
        continuous: Sequence[float] | None = None,
        version: str | None = None,
        timeout: float | None = None,
    ) -> SampleResult:
        _core.check_interpolation_args(steps, method)
        info = await self.model_info(model, version, timeout=timeout)
        cond = _core.interpolation_conditioning(info, digit, label, category, continuous)

        async def endpoint(name: str, value: Any) -> np.ndarray:
            z = _core.endpoint_vector(name, value, info.latent_dim)
            if z is not None:
                return z
            fetched = await self.sample(
                model, 1, seed=int(value), return_latents=True, version=info.version, timeout=timeout, **cond
            )
            return _core.first_latent(fetched)

        z_start, z_end = await asyncio.gather(endpoint("start", start), endpoint("end", end))
        req, summary = _core.interpolation_request(model, info.version, start, end, z_start, z_end, steps, method, cond)
        result = _core.decode_sample(req, await self._call(self._stub.Sample, req, timeout))
        result.request = summary
        return result

    async def encode(
        self, model: str, images: Any, *, version: str | None = None, timeout: float | None = None
    ) -> np.ndarray:
        reqs = _core.encode_requests(model, images, version)
        return _core.decode_encode(await asyncio.gather(*(self._call(self._stub.Encode, r, timeout) for r in reqs)))

    async def reconstruct(
        self, model: str, images: Any, *, version: str | None = None, timeout: float | None = None
    ) -> SampleResult:
        parts, offset = [], 0
        for req in _core.encode_requests(model, images, version):
            resp = await self._call(self._stub.Encode, req, timeout)
            latents = _core.decode_encode([resp])
            parts.append(
                await self.sample(
                    model,
                    latents=latents,
                    version=resp.version,
                    return_latents=True,
                    first_index=offset,
                    timeout=timeout,
                )
            )
            offset += len(latents)
        return SampleResult.concatenate(parts)

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncGanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
