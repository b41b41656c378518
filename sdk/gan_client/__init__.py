"""gan_client: the Python SDK and CLI for the GAN sampling service.

    from gan_client import GanClient
    with GanClient("localhost:50051") as client:
        sevens = client.sample("infogan", n=16, seed=0, digit=7).images  # uint8 (16, 28, 28, 1)

Only grpcio, protobuf, numpy, pillow and click are needed: no torch, no
onnxruntime.
"""

from ._client import AsyncGanClient, GanClient
from ._config import DEFAULT_SERVER, SERVER_ENV
from ._exceptions import (
    APIError,
    ConnectionFailed,
    DeadlineExceeded,
    GanError,
    InternalError,
    InvalidArgument,
    ModelNotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from ._images import make_grid
from ._types import Conditioning, ModelInfo, SampleResult

__all__ = [
    "APIError",
    "AsyncGanClient",
    "Conditioning",
    "ConnectionFailed",
    "DEFAULT_SERVER",
    "DeadlineExceeded",
    "GanClient",
    "GanError",
    "InternalError",
    "InvalidArgument",
    "ModelInfo",
    "ModelNotFound",
    "ResourceExhausted",
    "SERVER_ENV",
    "SampleResult",
    "Unauthenticated",
    "Unavailable",
    "make_grid",
]
