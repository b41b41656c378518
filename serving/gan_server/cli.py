"""``gan-server``: serve a model repository over gRPC.

    gan-server --models models --port 50051

Every flag has a ``GAN_SERVER_*`` environment equivalent (e.g.
``GAN_SERVER_PORT``). The default bind address is 127.0.0.1; serving on all
interfaces takes an explicit ``--host 0.0.0.0``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import click

from .backends import BACKENDS, DEVICES
from .server import ServerConfig, run


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@click.command(context_settings={"auto_envvar_prefix": "GAN_SERVER", "help_option_names": ["-h", "--help"]})
@click.option("--models", type=click.Path(file_okay=False, path_type=Path), default="models", show_default=True,
              help="Model repository: <models>/<name>/<version>/manifest.json.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (0.0.0.0 for all interfaces).")
@click.option("--port", type=click.IntRange(0, 65535), default=50051, show_default=True,
              help="gRPC port; 0 picks a free one (printed at start).")
@click.option("--backend", type=click.Choice(BACKENDS), default="onnx", show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="cpu", show_default=True,
              help="cuda fails at start when no CUDA runtime is present.")
@click.option("--threads", type=click.IntRange(0), default=0, show_default=True,
              help="Intra-op threads per model (0 = runtime default).")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Threads running inference concurrently.")
@click.option("--max-count", type=click.IntRange(1), default=4096, show_default=True,
              help="Most images one request may ask for.")
@click.option("--max-batch", type=click.IntRange(1), default=256, show_default=True,
              help="Most images in one backend run; larger requests are split.")
@click.option("--grace", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Seconds in-flight calls get to finish on SIGTERM.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def main(models: Path, host: str, port: int, backend: str, device: str, threads: int, workers: int,
         max_count: int, max_batch: int, grace: float, log_level: str, log_format: str) -> None:
    """Serve GAN generators from a model repository over gRPC."""
    _setup_logging(log_level, log_format)
    config = ServerConfig(
        models=models, host=host, port=port, backend=backend, device=device, threads=threads,
        workers=workers, max_count=max_count, max_batch=max_batch, grace=grace,
    )
    sys.exit(run(config))


if __name__ == "__main__":  # pragma: no cover
    main()
