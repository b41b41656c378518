"""The asyncio gRPC server: model loading, health, reflection, graceful stop.

Run it with ``gan-server --models models --port 50051`` (see cli.py). Health
(grpc.health.v1) reports NOT_SERVING until every model is loaded and has
produced one warm-up image, then SERVING; on SIGTERM/SIGINT it goes back to
NOT_SERVING, refuses new calls and lets in-flight calls finish within the
grace period.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
from gan_contract.proto.gan.v1 import generator_pb2
from gan_contract.request import SampleSpec
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .batching import Dispatcher
from .errors import add_lenient_service
from .interceptors import RpcInterceptor
from .metrics import Metrics
from .repository import ModelRepository
from .sampling import LoadedModel
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
    max_stream_count: int = 1_000_000
    max_batch: int = 256
    batch_delay_ms: float = 0.0
    batching: bool = True
    max_message_mb: int = 64
    grace: float = 10.0
    reload_interval: float = 0.0  # seconds between repository scans; 0 = off
    metrics_port: int | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # set: clients must present a cert it signed (mTLS)
    token: str | None = field(default=None, repr=False)

    def public(self) -> dict[str, str]:
        """The configuration as logged: secrets masked."""
        out = {k: str(v) for k, v in asdict(self).items()}
        out["token"] = "set" if self.token else "none"
        return out


def _warm_up(models: list[LoadedModel]) -> None:
    for model in models:
        model.generate(model.plan(SampleSpec(count=1)), 0, 1)


def _credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if not config.tls_cert and not config.tls_key:
        if config.tls_client_ca:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if not (config.tls_cert and config.tls_key):
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    try:
        key, cert = config.tls_key.read_bytes(), config.tls_cert.read_bytes()
        ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
    except OSError as exc:
        raise ValueError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


def _freeze() -> None:
    """Keep what exists now (modules, models, sessions) out of the garbage
    collector's scans, which every request's allocations trigger."""
    gc.collect()
    gc.freeze()


class _Reloader:
    """Polls the repository; warms new versions; retires removed ones after their calls."""

    def __init__(self, repo: ModelRepository, dispatcher: Dispatcher, executor, metrics: Metrics | None) -> None:
        self.repo = repo
        self.dispatcher = dispatcher
        self.executor = executor
        self.metrics = metrics
        self._lock = asyncio.Lock()

    async def scan(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            loaded, removed = await loop.run_in_executor(self.executor, self.repo.rescan)
            if loaded:
                await loop.run_in_executor(self.executor, _warm_up, loaded)
            if removed:
                # Objects frozen at start (see serve) are never collected: thaw
                # them so that the removed versions' cycles can be; refreeze
                # once they are retired.
                gc.unfreeze()
                loop.create_task(self._retire(removed))
            self._count()

    async def _retire(self, removed: list[LoadedModel]) -> None:
        await asyncio.gather(*(self.dispatcher.retire(model) for model in removed))
        del removed
        _freeze()

    def _count(self) -> None:
        if self.metrics is not None:
            self.metrics.models_loaded.set(sum(len(v) for v in self.repo.models.values()))

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.scan()
            except Exception:  # noqa: BLE001 - keep serving what is loaded
                log.exception("repository scan failed")


async def serve(config: ServerConfig, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set or SIGTERM/SIGINT arrives."""
    log.info("configuration: %s", config.public())
    credentials = _credentials(config)
    repo = ModelRepository(config.models, backend=config.backend, device=config.device, threads=config.threads)
    loop = asyncio.get_running_loop()
    # Loading reads files and builds sessions: keep it off the event loop.
    await loop.run_in_executor(None, repo.load_all)
    if not repo.models:
        problems = "; ".join(p.message for p in repo.problems) or "no <name>/<version>/manifest.json found"
        raise RuntimeError(f"no model could be loaded from {config.models}: {problems}")

    metrics = Metrics() if config.metrics_port is not None else None
    gate = RpcInterceptor(config.token, metrics, lambda name: name in repo.models)
    max_bytes = config.max_message_mb * 1024 * 1024
    server = grpc.aio.server(
        interceptors=[gate],
        options=[
            ("grpc.max_send_message_length", max_bytes),
            ("grpc.max_receive_message_length", max_bytes),
        ],
    )
    executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="infer")
    dispatcher = Dispatcher(
        executor,
        max_batch=config.max_batch,
        delay=config.batch_delay_ms / 1000.0 if config.batching else None,
        max_in_flight=config.workers,
        observer=metrics.observe_batch if metrics else None,
    )
    add_lenient_service(
        server,
        GeneratorServicer(repo, dispatcher, config.max_count, config.max_stream_count, max_bytes),
        generator_pb2,
        SERVICE_NAME,
    )
    # Imported here, not at module level: the OIP messages live in protobuf's
    # process-wide pool under the spec's package name `inference`, which stock
    # clients (tritonclient) also register; importing gan_server.cli must not
    # claim those names in a client's process.
    from .oip import SERVICE_NAME as OIP_SERVICE_NAME
    from .oip import add_oip_servicer

    add_oip_servicer(server, repo, dispatcher, config.max_count, max_bytes)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            OIP_SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    address = f"[{config.host}]:{config.port}" if ":" in config.host else f"{config.host}:{config.port}"
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot bind {address}: {exc}") from None
    await server.start()
    metrics_port = metrics.serve_http(config.host, config.metrics_port) if metrics else None

    reloader = _Reloader(repo, dispatcher, executor, metrics)
    await loop.run_in_executor(executor, _warm_up, [m for v in repo.models.values() for m in v.values()])
    reloader._count()
    repo.warmed = True
    _freeze()
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reload_task = loop.create_task(reloader.run(config.reload_interval)) if config.reload_interval > 0 else None
    names = ", ".join(f"{n}:{repo.versions(n)[-1]}" for n in repo.names())
    # Tests and scripts read this line to learn the ports (``--port 0``).
    extra = f" metrics on {config.host}:{metrics_port}" if metrics_port else ""
    print(f"gan-server listening on {config.host}:{port} serving {names}{extra}", flush=True)

    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-main thread / Windows
            pass
    if config.reload_interval > 0:
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reloader.scan()))
        except (NotImplementedError, RuntimeError):  # pragma: no cover
            pass
    await stop.wait()
    log.info("stopping: draining in-flight calls for up to %.1f s", config.grace)
    if reload_task:
        reload_task.cancel()
    await health_servicer.enter_graceful_shutdown()
    # Refuse new calls (UNAVAILABLE, retryable), let accepted ones finish,
    # then stop the transport with whatever grace is left.
    gate.draining = True
    started = loop.time()
    idle = await gate.wait_idle(config.grace)
    if not idle:
        log.warning("%d calls still in flight after %.1f s; cancelling them", gate.in_flight, config.grace)
    await server.stop(max(0.0, config.grace - (loop.time() - started)))
    await dispatcher.close()
    executor.shutdown(wait=True)
    log.info("stopped")


def run(config: ServerConfig) -> int:
    try:
        asyncio.run(serve(config))
    except (RuntimeError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"gan-server: error: {exc}", file=sys.stderr)
        return 2
    return 0
