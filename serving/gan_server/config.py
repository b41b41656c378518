"""The server's settings: each one's default, help text and ``gan-server`` flag, written once.

``gan-server``'s options are generated from these fields (see cli.py and
gan_contract.cli_options); every flag also reads ``GAN_SERVER_<FLAG>``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import click
from gan_contract.cli_options import setting

from .backends import BACKENDS, DEVICES, PRECISIONS

ENV_PREFIX = "GAN_SERVER"


class _TokenFile(click.Path):
    """--token-file: a path on the command line, the token it holds in the configuration."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx) -> str:
        path = super().convert(value, param, ctx)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            self.fail(f"cannot read {path}: {exc.strerror}", param, ctx)
        if not token:
            self.fail(f"{path} is empty", param, ctx)
        return token


def _token_from_env(ctx: click.Context, param: click.Parameter, token: str | None) -> str | None:
    """Without --token-file, the token itself may come in $GAN_SERVER_TOKEN."""
    return token if token is not None else os.environ.get(f"{ENV_PREFIX}_TOKEN") or None


_FILE = click.Path(dir_okay=False, path_type=Path)


@dataclass(frozen=True)
class ServerConfig:
    models: Path = setting(
        Path("models"),
        "Model repository: <models>/<name>/<version>/manifest.json.",
        type=click.Path(file_okay=False, path_type=Path),
    )
    host: str = setting("127.0.0.1", "Bind address (0.0.0.0 for all interfaces).")
    port: int = setting(50051, "gRPC port; 0 picks a free one (printed at start).", type=click.IntRange(0, 65535))
    backend: str = setting("onnx", type=click.Choice(BACKENDS))
    device: str = setting("cpu", "cuda fails at start when no CUDA runtime is present.", type=click.Choice(DEVICES))
    precision: str = setting(
        "fp32",
        "Generator arithmetic (--backend torchscript): fp32; tf32 (TF32 convolutions on CUDA); "
        "fp16 or bf16 (autocast). Pixels may move by a level or more against fp32.",
        type=click.Choice(PRECISIONS),
    )
    threads: int = setting(0, "Intra-op threads per model (0 = runtime default).", type=click.IntRange(0))
    workers: int = setting(2, "Threads running inference concurrently.", type=click.IntRange(1))
    processes: int = setting(
        1,
        "Server processes sharing the port (SO_REUSEPORT), each with its own models, batcher and "
        "--workers threads: for CPU-bound traffic of small requests on a multi-core host. "
        "Memory grows with the count (every process loads the models).",
        type=click.IntRange(1),
    )
    max_count: int = setting(4096, "Most images one request may ask for.", type=click.IntRange(1))
    max_stream_count: int = setting(1_000_000, "Most images one SampleStream call may ask for.", type=click.IntRange(1))
    max_batch: int = setting(256, "Most images in one backend run; larger requests are split.", type=click.IntRange(1))
    batch_delay_ms: float = setting(
        0.0,
        "Dynamic batching: how long a request may wait for others when a runner is free "
        "(0: none; requests that arrive while the runners are busy are batched anyway).",
        type=click.FloatRange(0),
    )
    batching: bool = setting(True, "Merge concurrent requests into one backend run (per model).")
    max_message_mb: int = setting(
        16,
        "Largest message sent (gRPC answers, stream messages) and largest HTTP body, in MiB. The largest "
        "answer of the bundled models, 4096 images with their latents, is 4.9 MB.",
        type=click.IntRange(1),
    )
    max_request_mb: int = setting(
        4,
        "Largest gRPC request message accepted, in MiB (more is RESOURCE_EXHAUSTED on its length prefix, "
        "before the bytes arrive). The largest request the bundled models take, Encode of 4096 images, is 3.2 MB.",
        type=click.IntRange(1),
    )
    max_calls: int = setting(
        512,
        "Calls in progress at once over all connections (health checks aside); more are answered "
        "RESOURCE_EXHAUSTED at once, logged and counted.",
        type=click.IntRange(1),
    )
    max_streams_per_connection: int = setting(
        100,
        "HTTP/2 streams one connection may have open (advertised as SETTINGS_MAX_CONCURRENT_STREAMS).",
        type=click.IntRange(1),
    )
    max_connections: int = setting(
        0,
        "Open client connections at once (gRPC); more are closed on arrival. 0: the open-file limit "
        "(raised to its hard limit at start) less 256 descriptors kept for models, logs and HTTP.",
        type=click.IntRange(0),
    )
    message_timeout: float = setting(
        10.0,
        "Seconds a call's request message may take to arrive after its headers; then DEADLINE_EXCEEDED. 0 = no limit.",
        type=click.FloatRange(0),
    )
    idle_timeout: float = setting(
        120.0,
        "Seconds a connection with no call may stay open before the server closes it (GOAWAY; clients "
        "reconnect on their next call). 0 = never.",
        type=click.FloatRange(0),
    )
    max_connection_age: float = setting(
        1800.0,
        "Seconds after which a connection is asked to close (GOAWAY), so that clients spread over new "
        "replicas; its calls get --connection-age-grace more to finish. 0 = never.",
        type=click.FloatRange(0),
    )
    connection_age_grace: float = setting(
        300.0, "Seconds a connection past --max-connection-age keeps for its calls in flight.", type=click.FloatRange(0)
    )
    grace: float = setting(10.0, "Seconds in-flight calls get to finish on SIGTERM.", type=click.FloatRange(0))
    reload_interval: float = setting(
        0.0,
        "Seconds between model-repository scans (hot reload; SIGHUP also scans). 0 = off.",
        type=click.FloatRange(0),
    )
    http_port: int | None = setting(
        None,
        "Also serve HTTP on this port (0 = a free one): the Open Inference Protocol's REST binding (/v2), "
        "image URLs (/v1/models/NAME/sample.png) and a playground page at /. Same host, TLS, token and "
        "limits as gRPC. Default: off.",
        type=click.IntRange(0, 65535),
    )
    metrics_port: int | None = setting(
        None,
        "Serve Prometheus metrics over HTTP on this port (0 = a free one). Default: off.",
        type=click.IntRange(0, 65535),
    )
    tls_cert: Path | None = setting(None, "PEM server certificate.", type=_FILE)
    tls_key: Path | None = setting(None, "PEM server private key.", type=_FILE)
    tls_client_ca: Path | None = setting(
        None, "PEM CA bundle; when set, clients must present a certificate it signed (mTLS).", type=_FILE
    )
    token: str | None = setting(
        None,
        f"Require 'authorization: Bearer <token>' with the token in this file (or in ${ENV_PREFIX}_TOKEN). "
        "Health checks stay open.",
        flag="--token-file",
        param="token_file",
        type=_TokenFile(),
        callback=_token_from_env,
        repr=False,
    )

    def public(self) -> dict[str, str]:
        """The configuration as logged: secrets masked."""
        out = {k: str(v) for k, v in asdict(self).items()}
        out["token"] = "set" if self.token else "none"
        return out
