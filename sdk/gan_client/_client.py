"""GanClient (blocking) and AsyncGanClient (asyncio): the same methods, one core.

    from gan_client import GanClient
    with GanClient("localhost:50051") as client:
        result = client.sample("infogan", n=16, seed=0, digit=7)
        result.images  # uint8 (16, 28, 28, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np

from . import _core
from ._config import DEFAULT_TIMEOUT, MAX_MESSAGE_BYTES, resolve_server
from ._exceptions import from_rpc_error
from ._proto.gan.v1 import generator_pb2 as pb
from ._proto.gan.v1 import generator_pb2_grpc as pb_grpc
from ._types import ModelInfo, SampleResult


class _BaseClient:
    def __init__(self, server: str | None, timeout: float | None) -> None:
        self.server = resolve_server(server)
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout

    def _timeout(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout


class GanClient(_BaseClient):
    """Blocking client. ``server`` defaults to $GAN_SERVER, else localhost:50051."""

    def __init__(self, server: str | None = None, *, timeout: float | None = None) -> None:
        super().__init__(server, timeout)
        self._channel = grpc.insecure_channel(self.server, options=_core.channel_options(MAX_MESSAGE_BYTES))
        self._stub = pb_grpc.GeneratorStub(self._channel)

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return method(request, timeout=self._timeout(timeout))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.server) from None

    def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        resp = self._call(self._stub.ListModels, pb.ListModelsRequest(), timeout)
        return [_core.decode_model(m) for m in resp.models]

    def model_info(self, name: str, version: str | None = None, *, timeout: float | None = None) -> ModelInfo:
        resp = self._call(self._stub.GetModel, pb.GetModelRequest(name=name, version=version or ""), timeout)
        return _core.decode_model(resp)

    def sample(
        self,
        model: str,
        n: int = 1,
        seed: int = 0,
        *,
        digit: int | None = None,
        label: str | None = None,
        category: int | None = None,
        continuous: Sequence[float] | None = None,
        latents: np.ndarray | None = None,
        version: str | None = None,
        return_latents: bool = False,
        timeout: float | None = None,
    ) -> SampleResult:
        req = _core.sample_request(
            model, n, seed, digit=digit, label=label, category=category, continuous=continuous,
            latents=latents, version=version, return_latents=return_latents,
        )
        return _core.decode_sample(req, self._call(self._stub.Sample, req, timeout))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GanClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncGanClient(_BaseClient):
    """asyncio client (grpc.aio) with the same methods as :class:`GanClient`."""

    def __init__(self, server: str | None = None, *, timeout: float | None = None) -> None:
        super().__init__(server, timeout)
        self._channel = grpc.aio.insecure_channel(self.server, options=_core.channel_options(MAX_MESSAGE_BYTES))
        self._stub = pb_grpc.GeneratorStub(self._channel)

    async def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return await method(request, timeout=self._timeout(timeout))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.server) from None

    async def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        resp = await self._call(self._stub.ListModels, pb.ListModelsRequest(), timeout)
        return [_core.decode_model(m) for m in resp.models]

    async def model_info(self, name: str, version: str | None = None, *, timeout: float | None = None) -> ModelInfo:
        resp = await self._call(self._stub.GetModel, pb.GetModelRequest(name=name, version=version or ""), timeout)
        return _core.decode_model(resp)

    async def sample(
        self,
        model: str,
        n: int = 1,
        seed: int = 0,
        *,
        digit: int | None = None,
        label: str | None = None,
        category: int | None = None,
        continuous: Sequence[float] | None = None,
        latents: np.ndarray | None = None,
        version: str | None = None,
        return_latents: bool = False,
        timeout: float | None = None,
    ) -> SampleResult:
        req = _core.sample_request(
            model, n, seed, digit=digit, label=label, category=category, continuous=continuous,
            latents=latents, version=version, return_latents=return_latents,
        )
        return _core.decode_sample(req, await self._call(self._stub.Sample, req, timeout))

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncGanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
