"""The asyncio gRPC server: model loading, health, reflection, graceful stop.

Run it with ``gan-server --models models --port 50051`` (see cli.py). Every
model is loaded and makes one warm-up image before the port is bound (a
version that fails is left out and answers FAILED_PRECONDITION; the others
serve); health (grpc.health.v1) reports SERVING once the server listens. On
SIGTERM/SIGINT it goes back to NOT_SERVING, refuses new calls and stops as
soon as the calls in flight have finished, or when the grace period ends.

With ``--processes N`` (N > 1) the command runs :func:`gan_server.procs.supervise`
instead, which starts N processes that each run :func:`serve` on one port (and
one HTTP port with ``--http-port``, gan_server.http);
``worker`` then links :func:`serve` to the supervising process.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import grpc
from gan_contract.proto.gan.v1 import generator_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import transport
from .batching import Dispatcher
from .config import ServerConfig
from .errors import add_lenient_service
from .interceptors import RpcInterceptor
from .metrics import Metrics
from .repository import ModelRepository
from .sampling import LoadedModel
from .servicer import GeneratorServicer

if TYPE_CHECKING:
    from .http import HttpFront
    from .procs import WorkerLink

log = logging.getLogger("gan_server")

SERVICE_NAME = generator_pb2.DESCRIPTOR.services_by_name["Generator"].full_name
# Once the counted calls are done, what may still be open is uncounted and
# mostly open-ended (health Watch, reflection streams): this long for them.
_UNCOUNTED_GRACE = 0.25


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
    """Polls the repository (which warms up new versions); retires removed ones after their calls."""

    def __init__(self, repo: ModelRepository, dispatcher: Dispatcher, executor, metrics: Metrics | None) -> None:
        self.repo = repo
        self.dispatcher = dispatcher
        self.executor = executor
        self.metrics = metrics
        self._lock = asyncio.Lock()

    async def scan(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            # A version that fails its checks or its warm-up is a problem of its
            # own (FAILED_PRECONDITION); the scan goes on with the others.
            _, removed = await loop.run_in_executor(self.executor, self.repo.rescan)
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


async def _start_http(
    config: ServerConfig,
    repo: ModelRepository,
    dispatcher: Dispatcher,
    metrics: Metrics | None,
    grpc_port: int,
    shared_port: bool,
) -> tuple[HttpFront | None, int | None]:
    """With --http-port: the HTTP side on the same host, TLS files, token and limits; (front, bound port)."""
    if config.http_port is None:
        return None, None
    from .http import HttpFront, ssl_context

    context = None
    if config.tls_cert and config.tls_key:
        context = ssl_context(
            str(config.tls_cert), str(config.tls_key), str(config.tls_client_ca) if config.tls_client_ca else None
        )
    front = HttpFront(
        repo,
        dispatcher,
        metrics,
        max_count=config.max_count,
        max_body_bytes=config.max_message_mb * 1024 * 1024,
        token=config.token,
        grpc_port=grpc_port,
        tls=context is not None,
    )
    return front, await front.start(config.host, config.http_port, context, reuse_port=shared_port)


def _handle_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, reloader: _Reloader, config: ServerConfig):
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


async def serve(config: ServerConfig, stop: asyncio.Event | None = None, worker: WorkerLink | None = None) -> None:
    """Serve until ``stop`` is set or SIGTERM/SIGINT arrives.

    As one of ``--processes`` (``worker`` given): bind the shared port with
    SO_REUSEPORT, leave /metrics to the supervisor, and report SERVING only
    once every sibling process is warmed up too.
    """
    log.info("configuration: %s", config.public())
    credentials = _credentials(config)
    repo = ModelRepository(
        config.models, backend=config.backend, device=config.device, threads=config.threads, precision=config.precision
    )
    loop = asyncio.get_running_loop()
    # Loading reads files, builds sessions and warms them up: keep it off the event loop.
    await loop.run_in_executor(None, repo.load_all)
    if not repo.models:
        problems = "; ".join(p.message for p in repo.problems) or "no <name>/<version>/manifest.json found"
        raise RuntimeError(f"no model could be loaded from {config.models}: {problems}")

    metrics = Metrics() if config.metrics_port is not None else None
    max_bytes = config.max_message_mb * 1024 * 1024
    gate = RpcInterceptor(
        config.token,
        metrics,
        lambda name: name in repo.models,
        max_calls=config.max_calls,
        message_timeout=config.message_timeout,
        max_send_bytes=max_bytes,
    )
    open_files = transport.raise_open_file_limit()
    connections = transport.connection_limit(config, open_files)
    log.info(
        "limits: %d open files, %d connections, %d streams per connection, %d calls in progress, "
        "requests up to %d MiB, answers up to %d MiB",
        open_files,
        connections,
        config.max_streams_per_connection,
        config.max_calls,
        config.max_request_mb,
        config.max_message_mb,
    )
    server_options = transport.grpc_options(config, connections)
    if worker is not None:  # every process binds the same port(s); the kernel spreads connections
        server_options.append(("grpc.so_reuseport", 1))
    server = grpc.aio.server(interceptors=[gate], options=server_options)
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
    try:
        http_front, http_port = await _start_http(config, repo, dispatcher, metrics, port, worker is not None)
    except OSError:  # the port is taken, or the TLS files do not load
        await server.stop(0)
        raise
    # With --processes, the supervisor serves /metrics for all of them.
    metrics_port = metrics.serve_http(config.host, config.metrics_port) if metrics and worker is None else None

    reloader = _Reloader(repo, dispatcher, executor, metrics)
    reloader._count()
    repo.warmed = True
    stop = stop or asyncio.Event()
    if worker is not None:
        # A health check may reach any process: none says SERVING before all
        # of them can serve. A SIGTERM while waiting drains as usual.
        _handle_signals(loop, stop, reloader, config)
        await worker.wait_for_siblings(stop)
    if not stop.is_set():
        _freeze()
        for service in ("", SERVICE_NAME):
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        if http_front is not None:
            http_front.serving = True
    reload_task = loop.create_task(reloader.run(config.reload_interval)) if config.reload_interval > 0 else None
    trimmer = transport.MemoryTrimmer(lambda: gate.started, lambda: gate.active + gate.waiting)
    trim_task = loop.create_task(trimmer.run())
    names = ", ".join(f"{n}:{repo.versions(n)[-1]}" for n in repo.names())
    if worker is not None:
        if not stop.is_set():
            worker.report_serving(port, names, http_port)  # the supervisor prints the listening line
    else:
        # Drain on SIGTERM from the moment anyone can know the server is up.
        _handle_signals(loop, stop, reloader, config)
        # Tests and scripts read this line to learn the ports (``--port 0``).
        extra = f" http on {config.host}:{http_port}" if http_port is not None else ""
        extra += f" metrics on {config.host}:{metrics_port}" if metrics_port else ""
        print(f"gan-server listening on {config.host}:{port} serving {names}{extra}", flush=True)
    await stop.wait()
    log.info("stopping: draining in-flight calls for up to %.1f s", config.grace)
    if reload_task:
        reload_task.cancel()
    trim_task.cancel()
    await health_servicer.enter_graceful_shutdown()
    # Refuse new calls (UNAVAILABLE, retryable), let accepted ones finish,
    # then stop the transport with whatever grace is left.
    gate.draining = True
    if http_front is not None:
        http_front.draining = True
    started = loop.time()
    idle = await _drained(gate, config.grace)
    if not idle:
        log.warning("%d calls still in flight after %.1f s; cancelling them", gate.in_flight, config.grace)
    if http_front is not None:
        left = max(0.0, config.grace - (loop.time() - started))
        if not await http_front.wait_idle(left):
            log.warning(
                "%d HTTP requests still in flight after %.1f s; closing them", http_front.in_flight, config.grace
            )
        await http_front.stop()
    # The gate counts every sampling call; what else is open now is a health
    # Watch or a reflection stream, which never end by themselves (waiting
    # for them would always take the whole grace period) or a health check,
    # which takes microseconds.
    left = max(0.0, config.grace - (loop.time() - started))
    await server.stop(min(left, _UNCOUNTED_GRACE))
    await dispatcher.close()
    executor.shutdown(wait=True)
    log.info("stopped")


async def _drained(gate: RpcInterceptor, grace: float) -> bool:
    """Wait until no counted call is in flight (at most ``grace`` seconds).

    A call accepted just before draining began is counted only once its
    handler runs: after an idle gate, yield to the loop briefly and look again.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while True:
        if not await gate.wait_idle(max(0.0, deadline - loop.time())):
            return False
        await asyncio.sleep(0.02)
        if not gate.in_flight:
            return True


def run(config: ServerConfig, log_setup: Callable[[], None] | None = None) -> int:
    """Serve ``config``; the exit status. ``log_setup`` configures logging in each ``--processes`` process."""
    if config.processes > 1:
        from .procs import supervise

        return supervise(config, log_setup)
    return run_one(config)


def run_one(config: ServerConfig, worker: WorkerLink | None = None) -> int:
    try:
        asyncio.run(serve(config, worker=worker))
    except (RuntimeError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"gan-server: error: {exc}", file=sys.stderr)
        return 2
    return 0
