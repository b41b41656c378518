"""``gan-server``: serve a model repository over gRPC.

    gan-server --models models --port 50051

Every flag has a ``GAN_SERVER_*`` environment equivalent (e.g.
``GAN_SERVER_PORT``). The default bind address is 127.0.0.1; serving on all
interfaces takes an explicit ``--host 0.0.0.0``.
"""

from __future__ import annotations

import sys
from functools import partial

import click
from gan_contract.cli_options import build, options

from .config import ENV_PREFIX, ServerConfig
from .logs import setup as _setup_logging
from .server import run


@click.command(
    context_settings={"auto_envvar_prefix": ENV_PREFIX, "help_option_names": ["-h", "--help"], "show_default": True}
)
@options(ServerConfig)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
def main(log_level: str, log_format: str, **settings) -> None:
    """Serve GAN generators from a model repository over gRPC."""
    _setup_logging(log_level, log_format)
    # --processes: each process sets up its logging the same way.
    sys.exit(run(build(ServerConfig, settings), log_setup=partial(_setup_logging, log_level, log_format)))


if __name__ == "__main__":  # pragma: no cover
    main()
