"""gan_client: the Python SDK and CLI for the GAN sampling service.

    from gan_client import GanClient
    with GanClient("localhost:50051") as client:
        sevens = client.sample("infogan", n=16, seed=0, digit=7).images  # uint8 (16, 28, 28, 1)

Only grpcio, protobuf, numpy, pillow and click are needed: no torch, no
onnxruntime. Names are imported on first use, so that the CLI can configure
gRPC (its log verbosity) before grpc is loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "AsyncGanClient": "._client",
    "GanClient": "._client",
    "DEFAULT_RETRY": "._config",
    "DEFAULT_SERVER": "._config",
    "SERVER_ENV": "._config",
    "TOKEN_ENV": "._config",
    "RetryPolicy": "._config",
    "APIError": "._exceptions",
    "ConnectionFailed": "._exceptions",
    "DeadlineExceeded": "._exceptions",
    "GanError": "._exceptions",
    "InternalError": "._exceptions",
    "InvalidArgument": "._exceptions",
    "ModelNotFound": "._exceptions",
    "PermissionDenied": "._exceptions",
    "ResourceExhausted": "._exceptions",
    "ModelUnavailable": "._exceptions",
    "TLSError": "._exceptions",
    "Unauthenticated": "._exceptions",
    "Unavailable": "._exceptions",
    "make_grid": "._images",
    "lerp": "._interp",
    "slerp": "._interp",
    "Conditioning": "._types",
    "ModelInfo": "._types",
    "SampleResult": "._types",
}

__all__ = [
    "APIError",
    "AsyncGanClient",
    "Conditioning",
    "ConnectionFailed",
    "DEFAULT_RETRY",
    "DEFAULT_SERVER",
    "DeadlineExceeded",
    "GanClient",
    "GanError",
    "InternalError",
    "InvalidArgument",
    "ModelInfo",
    "ModelNotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ModelUnavailable",
    "RetryPolicy",
    "SERVER_ENV",
    "SampleResult",
    "TLSError",
    "TOKEN_ENV",
    "Unauthenticated",
    "Unavailable",
    "lerp",
    "make_grid",
    "slerp",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from ._client import AsyncGanClient, GanClient
    from ._config import DEFAULT_RETRY, DEFAULT_SERVER, SERVER_ENV, TOKEN_ENV, RetryPolicy
    from ._exceptions import (
        APIError,
        ConnectionFailed,
        DeadlineExceeded,
        GanError,
        InternalError,
        InvalidArgument,
        ModelNotFound,
        ModelUnavailable,
        PermissionDenied,
        ResourceExhausted,
        TLSError,
        Unauthenticated,
        Unavailable,
    )
    from ._images import make_grid
    from ._interp import lerp, slerp
    from ._types import Conditioning, ModelInfo, SampleResult
