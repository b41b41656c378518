"""``gan-server --processes N``: N server processes sharing one port.

The supervising process (the one the command started) reserves the port,
starts N worker processes and waits; each worker runs the ordinary
:func:`gan_server.server.serve` with its own models, batcher and inference
threads, and binds the same address with SO_REUSEPORT, so the kernel spreads
incoming *connections* over the workers (each connection stays on one).

- **Start.** ``--port 0`` (and ``--http-port 0``) is resolved here: the
  supervisor binds a SO_REUSEPORT socket to the address (never listening on
  it, so it takes no connections) and keeps it open while it runs; the
  workers bind that port. Each worker serves HTTP too, on its own event loop.
- **Readiness.** A worker reports to the supervisor over its pipe once its
  models are warm, and keeps health NOT_SERVING until the supervisor answers
  that every worker is warm: a health check that lands on any worker sees
  SERVING only when all can serve. The supervisor prints the usual
  ``gan-server listening on HOST:PORT ...`` line once every worker is SERVING.
- **Stop.** SIGTERM/SIGINT to the supervisor is forwarded (as SIGTERM) to every
  worker, which drains as a single server does; the supervisor exits 0 when
  all of them exited 0. SIGHUP is forwarded when hot reload is on; each worker
  also runs its own ``--reload-interval`` scans.
- **A worker that dies** is not restarted: the supervisor logs it, drains the
  others and exits 1 (2 when a worker failed to start), so that the
  orchestrator restarts the whole server, whose health went NOT_SERVING on
  the way. A worker whose supervisor disappears drains and exits by itself.
- **Metrics.** With ``--metrics-port``, the workers record into
  prometheus-client's multiprocess files in a fresh temporary directory
  (``PROMETHEUS_MULTIPROC_DIR``, set before the workers start) and the
  supervisor alone serves /metrics: the sum over the workers, plus
  ``gan_worker_requests_total{worker,pid}``, the finished RPCs of each worker
  (read from its own files at scrape time, so it costs the request path
  nothing), which shows how evenly the connections are spread.

Workers are started with multiprocessing's ``spawn`` context: each is a
fresh interpreter, so it inherits no gRPC core state, ONNX Runtime thread
pools, logging threads or the supervisor's metrics HTTP thread, which forking
a process that has imported grpc and started threads would copy in an
undefined state. Spawning costs an interpreter start and the imports, paid
once per worker next to loading and warming the models.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection, wait

from .config import ServerConfig

log = logging.getLogger("gan_server")


class WorkerLink:
    """A worker's side of its pipe to the supervisor (see :func:`gan_server.server.serve`)."""

    def __init__(self, index: int, conn: Connection) -> None:
        self.index = index
        self.conn = conn

    def _send(self, *message: object) -> None:
        try:
            self.conn.send(message)
        except OSError:  # the supervisor is gone; the reader below sees the EOF
            pass

    async def wait_for_siblings(self, stop: asyncio.Event) -> None:
        """Say this worker is warm; return when every worker is, or when ``stop`` is set.

        Also watches the pipe for good: its end means the supervisor died, and
        the worker then stops (drains) by itself instead of serving on alone.
        """
        loop = asyncio.get_running_loop()
        go = loop.create_future()

        def readable() -> None:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                loop.remove_reader(self.conn.fileno())
                if not stop.is_set():
                    log.warning("worker %d: the supervising process is gone; stopping", self.index)
                stop.set()
                return
            if message == "go" and not go.done():
                go.set_result(None)

        loop.add_reader(self.conn.fileno(), readable)
        self._send("warm", self.index, os.getpid())
        stopped = loop.create_task(stop.wait())
        try:
            await asyncio.wait([go, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()

    def report_serving(self, port: int, names: str, http_port: int | None = None) -> None:
        log.info("worker %d (pid %d) serving on port %d", self.index, os.getpid(), port)
        self._send("serving", self.index, os.getpid(), port, names, http_port)


def _worker(index: int, config: ServerConfig, log_setup: Callable[[], None] | None, conn: Connection) -> None:
    """A worker process's entry point (spawned: nothing is inherited but these arguments)."""
    if log_setup is not None:
        log_setup()
    # Ctrl-C reaches the whole process group; the supervisor forwards it as
    # SIGTERM. serve() installs its own handlers once it can drain.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .server import run_one

    code = run_one(config, WorkerLink(index, conn))
    conn.close()
    sys.exit(code)


def reserve_port(host: str, port: int) -> socket.socket:
    """A SO_REUSEPORT socket bound (not listening) to ``host:port``; port 0 picks a free one."""
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - Windows
        raise ValueError("--processes needs SO_REUSEPORT (Linux)")
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise OSError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    return sock


class _PerWorkerRequests:
    """``gan_worker_requests_total{worker,pid}``: each worker's finished RPCs, from its own counter file."""

    def __init__(self, path: str, pids: dict[int, int]) -> None:
        self.path = path
        self.pids = pids

    def collect(self):
        from prometheus_client.core import CounterMetricFamily
        from prometheus_client.multiprocess import MultiProcessCollector

        family = CounterMetricFamily(
            "gan_worker_requests", "Finished RPCs per server process (--processes).", labels=["worker", "pid"]
        )
        for index, pid in sorted(self.pids.items()):
            path = os.path.join(self.path, f"counter_{pid}.db")
            total = 0.0
            if os.path.exists(path):
                for metric in MultiProcessCollector.merge([path], accumulate=False):
                    total += sum(s.value for s in metric.samples if s.name == "gan_requests_total")
            family.add_metric([str(index), str(pid)], total)
        yield family


class _Supervisor:
    def __init__(
        self, config: ServerConfig, log_setup: Callable[[], None] | None, port: int, http_port: int | None = None
    ) -> None:
        self.config = config
        self.log_setup = log_setup
        self.port = port
        self.http_port = http_port
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.pids: dict[int, int] = {}  # worker index -> pid, for the per-worker metric
        self.alive: set[int] = set()  # started and not yet seen exiting (so their pids are not reused)
        self.stopping = False

    def _signal(self, signum: int, frame: object = None) -> None:
        if signum == signal.SIGHUP:
            self._kill(signal.SIGHUP)
            return
        if not self.stopping:
            log.info("stopping: draining %d processes for up to %.1f s", len(self.alive), self.config.grace)
        self.stopping = True
        self._kill(signal.SIGTERM)

    def _kill(self, signum: int) -> None:
        for index in list(self.alive):
            try:
                os.kill(self.pids[index], signum)
            except (KeyError, ProcessLookupError):
                pass

    def run(self) -> int:
        config, n = self.config, self.config.processes
        metrics_dir = None
        metrics_port = None
        if config.metrics_port is not None:
            # Before any worker starts, so that their prometheus_client records
            # into files there; a fresh directory, so no stale process counts.
            metrics_dir = tempfile.mkdtemp(prefix="gan-server-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            from .metrics import multiprocess_registry, serve_registry_http

            registry = multiprocess_registry(metrics_dir)
            registry.register(_PerWorkerRequests(metrics_dir, self.pids))
            try:
                metrics_port = serve_registry_http(registry, config.host, config.metrics_port)
            except OSError as exc:
                shutil.rmtree(metrics_dir, ignore_errors=True)
                raise OSError(f"cannot serve metrics on {config.host}:{config.metrics_port}: {exc.strerror}") from None
        try:
            return self._supervise(n, metrics_dir, metrics_port)
        finally:
            if metrics_dir:
                shutil.rmtree(metrics_dir, ignore_errors=True)

    def _supervise(self, n: int, metrics_dir: str | None, metrics_port: int | None) -> int:
        config = self.config
        handled = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if config.reload_interval > 0 else [])
        previous = {sig: signal.signal(sig, self._signal) for sig in handled}
        context = multiprocessing.get_context("spawn")
        worker_config = replace(config, port=self.port, http_port=self.http_port)
        conns: dict[int, Connection] = {}
        try:
            for index in range(n):
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=_worker,
                    args=(index, worker_config, self.log_setup, theirs),
                    name=f"gan-server-worker-{index}",
                )
                process.start()
                theirs.close()
                self.processes.append(process)
                self.pids[index] = process.pid
                self.alive.add(index)
                conns[index] = ours
            log.info("started %d processes on port %d: pids %s", n, self.port, [p.pid for p in self.processes])
            if self.stopping:  # a signal came while starting them
                self._kill(signal.SIGTERM)
            return self._watch(n, conns, metrics_dir, metrics_port)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for conn in conns.values():
                conn.close()

    def _watch(self, n: int, conns: dict[int, Connection], metrics_dir: str | None, metrics_port: int | None) -> int:
        config = self.config
        warm: set[int] = set()
        serving: dict[int, str] = {}
        announced = False
        code = 0
        sentinels = {p.sentinel: i for i, p in enumerate(self.processes)}
        while self.alive:
            waiting = [c for i, c in conns.items() if i in self.alive] + [
                s for s, i in sentinels.items() if i in self.alive
            ]
            for ready in wait(waiting, timeout=1.0):
                if ready in sentinels:
                    index = sentinels[ready]
                    self.alive.discard(index)  # first, so that _kill no longer signals this pid
                    process = self.processes[index]
                    process.join()
                    if metrics_dir:
                        from prometheus_client import multiprocess

                        multiprocess.mark_process_dead(process.pid, metrics_dir)
                    exit_code = process.exitcode
                    clean = exit_code == 0 or (self.stopping and exit_code == -signal.SIGTERM)
                    if clean and self.stopping:
                        log.info("worker %d (pid %d) stopped", index, process.pid)
                        continue
                    if not announced:
                        log.error("worker %d (pid %d) failed to start (exit code %s)", index, process.pid, exit_code)
                        code = code or 2
                    else:
                        log.error(
                            "worker %d (pid %d) exited unexpectedly (exit code %s); stopping the others",
                            index,
                            process.pid,
                            exit_code,
                        )
                        code = code or 1
                    if not self.stopping:
                        self.stopping = True
                        self._kill(signal.SIGTERM)
                    continue
                index = next(i for i, c in conns.items() if c is ready)
                try:
                    message = ready.recv()
                except (EOFError, OSError):
                    del conns[index]
                    continue
                if message[0] == "warm":
                    warm.add(index)
                    if len(warm) == n:
                        for conn in conns.values():
                            try:
                                conn.send("go")
                            except OSError:
                                pass
                elif message[0] == "serving":
                    _, _, _, port, names, http_port = message
                    serving[index] = names
                    if len(serving) == n and not announced and not self.stopping:
                        announced = True
                        # Tests and scripts read this line to learn the ports (``--port 0``).
                        extra = f" http on {config.host}:{http_port}" if http_port is not None else ""
                        extra += f" metrics on {config.host}:{metrics_port}" if metrics_port else ""
                        print(f"gan-server listening on {config.host}:{port} serving {serving[0]}{extra}", flush=True)
        if code == 0:
            log.info("stopped")
        return code


def supervise(config: ServerConfig, log_setup: Callable[[], None] | None = None) -> int:
    """Run ``config.processes`` servers on one port until SIGTERM; the exit status."""
    reserved: list[socket.socket] = []
    try:
        reserved.append(reserve_port(config.host, config.port))
        if config.http_port is not None:
            reserved.append(reserve_port(config.host, config.http_port))
    except (OSError, ValueError) as exc:
        for sock in reserved:
            sock.close()
        print(f"gan-server: error: {exc}", file=sys.stderr)
        return 2
    ports = [sock.getsockname()[1] for sock in reserved]
    try:
        return _Supervisor(config, log_setup, ports[0], ports[1] if len(ports) > 1 else None).run()
    except OSError as exc:
        print(f"gan-server: error: {exc}", file=sys.stderr)
        return 2
    finally:
        for sock in reserved:
            sock.close()
