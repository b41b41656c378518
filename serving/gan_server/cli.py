"""``gan-server``: serve a model repository over gRPC.

    gan-server --models models --port 50051

Every flag has a ``GAN_SERVER_*`` environment equivalent (e.g.
``GAN_SERVER_PORT``). The default bind address is 127.0.0.1; serving on all
interfaces takes an explicit ``--host 0.0.0.0``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .backends import BACKENDS, DEVICES
from .logs import setup as _setup_logging
from .server import ServerConfig, run


@click.command(context_settings={"auto_envvar_prefix": "GAN_SERVER", "help_option_names": ["-h", "--help"]})
@click.option(
    "--models",
    type=click.Path(file_okay=False, path_type=Path),
    default="models",
    show_default=True,
    help="Model repository: <models>/<name>/<version>/manifest.json.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (0.0.0.0 for all interfaces).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=50051,
    show_default=True,
    help="gRPC port; 0 picks a free one (printed at start).",
)
@click.option("--backend", type=click.Choice(BACKENDS), default="onnx", show_default=True)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="cpu",
    show_default=True,
    help="cuda fails at start when no CUDA runtime is present.",
)
@click.option(
    "--threads",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Intra-op threads per model (0 = runtime default).",
)
@click.option(
    "--workers", type=click.IntRange(1), default=2, show_default=True, help="Threads running inference concurrently."
)
@click.option(
    "--max-count", type=click.IntRange(1), default=4096, show_default=True, help="Most images one request may ask for."
)
@click.option(
    "--max-stream-count",
    type=click.IntRange(1),
    default=1_000_000,
    show_default=True,
    help="Most images one SampleStream call may ask for.",
)
@click.option(
    "--max-batch",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Most images in one backend run; larger requests are split.",
)
@click.option(
    "--batch-delay-ms",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Dynamic batching: how long a request may wait for others when a runner is free "
    "(0: none; requests that arrive while the runners are busy are batched anyway).",
)
@click.option(
    "--batching/--no-batching",
    default=True,
    show_default=True,
    help="Merge concurrent requests into one backend run (per model).",
)
@click.option(
    "--max-message-mb",
    type=click.IntRange(1),
    default=64,
    show_default=True,
    help="Largest gRPC message accepted or sent, in MiB.",
)
@click.option(
    "--grace",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds in-flight calls get to finish on SIGTERM.",
)
@click.option(
    "--reload-interval",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Seconds between model-repository scans (hot reload; SIGHUP also scans). 0 = off.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics over HTTP on this port (0 = a free one). Default: off.",
)
@click.option(
    "--tls-cert", type=click.Path(dir_okay=False, path_type=Path), default=None, help="PEM server certificate."
)
@click.option(
    "--tls-key", type=click.Path(dir_okay=False, path_type=Path), default=None, help="PEM server private key."
)
@click.option(
    "--tls-client-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA bundle; when set, clients must present a certificate it signed (mTLS).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Require 'authorization: Bearer <token>' with the token in this file "
    "(or in $GAN_SERVER_TOKEN). Health checks stay open.",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def main(
    models: Path,
    host: str,
    port: int,
    backend: str,
    device: str,
    threads: int,
    workers: int,
    max_count: int,
    max_stream_count: int,
    max_batch: int,
    batch_delay_ms: float,
    batching: bool,
    max_message_mb: int,
    grace: float,
    reload_interval: float,
    metrics_port: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    token_file: Path | None,
    log_level: str,
    log_format: str,
) -> None:
    """Serve GAN generators from a model repository over gRPC."""
    _setup_logging(log_level, log_format)
    token = os.environ.get("GAN_SERVER_TOKEN") or None
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {token_file}: {exc.strerror}", param_hint="--token-file") from None
        if not token:
            raise click.BadParameter(f"{token_file} is empty", param_hint="--token-file")
    config = ServerConfig(
        models=models,
        host=host,
        port=port,
        backend=backend,
        device=device,
        threads=threads,
        workers=workers,
        max_count=max_count,
        max_stream_count=max_stream_count,
        max_batch=max_batch,
        batch_delay_ms=batch_delay_ms,
        batching=batching,
        max_message_mb=max_message_mb,
        grace=grace,
        reload_interval=reload_interval,
        metrics_port=metrics_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_client_ca=tls_client_ca,
        token=token,
    )
    sys.exit(run(config))


if __name__ == "__main__":  # pragma: no cover
    main()
