"""Client defaults, in one place."""

from __future__ import annotations

import os

DEFAULT_SERVER = "localhost:50051"
SERVER_ENV = "GAN_SERVER"
# Default per-call deadline, seconds. Sampling thousands of images on a CPU
# can take a while; pass timeout= to tighten it.
DEFAULT_TIMEOUT = 60.0
# Responses carry raw uint8 images: 4096 MNIST images are ~3.2 MB, above
# gRPC's 4 MB default once larger images are served.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def resolve_server(server: str | None) -> str:
    """The explicit address, else $GAN_SERVER, else localhost:50051."""
    return server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER
