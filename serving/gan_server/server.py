"""The asyncio gRPC server: model loading, health, reflection, graceful stop.

Run it with ``gan-server --models models --port 50051`` (see cli.py). Health
(grpc.health.v1) reports NOT_SERVING until every model is loaded and has
produced one warm-up image, then SERVING; on SIGTERM/SIGINT it goes back to
NOT_SERVING, refuses new calls and lets in-flight calls finish within the
grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gan_client._proto.gan.v1 import generator_pb2, generator_pb2_grpc

from .repository import ModelRepository
from .sampling import SampleSpec
from .servicer import GeneratorServicer

log = logging.getLogger("gan_server")

SERVICE_NAME = generator_pb2.DESCRIPTOR.services_by_name["Generator"].full_name


@dataclass(frozen=True)
class ServerConfig:
    models: Path
    host: str = "127.0.0.1"
    port: int = 50051
    backend: str = "onnx"
    device: str = "cpu"
    threads: int = 0  # 0 = the runtime's default
    workers: int = 2  # inference threads running backend calls
    max_count: int = 4096
    max_batch: int = 256
    max_message_mb: int = 64
    grace: float = 10.0


def _warm_up(repo: ModelRepository) -> None:
    for versions in repo.models.values():
        for model in versions.values():
            model.generate(model.plan(SampleSpec(count=1)), 0, 1)


async def serve(config: ServerConfig, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set or SIGTERM/SIGINT arrives."""
    log.info("configuration: %s", {k: str(v) for k, v in asdict(config).items()})
    repo = ModelRepository(config.models, backend=config.backend, device=config.device, threads=config.threads)
    loop = asyncio.get_running_loop()
    # Loading reads files and builds sessions: keep it off the event loop.
    await loop.run_in_executor(None, repo.load_all)
    if not repo.models:
        problems = "; ".join(p.message for p in repo.problems) or "no <name>/<version>/manifest.json found"
        raise RuntimeError(f"no model could be loaded from {config.models}: {problems}")

    max_bytes = config.max_message_mb * 1024 * 1024
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", max_bytes),
            ("grpc.max_receive_message_length", max_bytes),
        ]
    )
    executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="infer")
    generator_pb2_grpc.add_GeneratorServicer_to_server(
        GeneratorServicer(repo, executor, config.max_count, config.max_batch), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    address = f"[{config.host}]" if ":" in config.host else config.host
    port = server.add_insecure_port(f"{address}:{config.port}")
    if port == 0:
        raise RuntimeError(f"cannot bind {config.host}:{config.port}")
    await server.start()

    await loop.run_in_executor(executor, _warm_up, repo)
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    names = ", ".join(f"{n}:{repo.versions(n)[-1]}" for n in repo.names())
    # Tests and scripts read this line to learn the port (``--port 0``).
    print(f"gan-server listening on {config.host}:{port} serving {names}", flush=True)

    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-main thread / Windows
            pass
    await stop.wait()
    log.info("stopping: draining in-flight calls for up to %.1f s", config.grace)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(config.grace)
    executor.shutdown(wait=True)
    log.info("stopped")


def run(config: ServerConfig) -> int:
    try:
        asyncio.run(serve(config))
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        print(f"gan-server: error: {exc}", file=sys.stderr)
        return 2
    return 0
