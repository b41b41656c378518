"""A real TorchServe on loopback ports, for tests/interop and bench/torchserve.py.

Everything TorchServe writes stays in one work directory:

- ``config.properties``: inference, management, metrics and both gRPC APIs on
  127.0.0.1 with free ports, ``model_store`` in the work directory, the model
  API enabled (models are registered over the management API);
- its launcher's pid file (``$TMPDIR/.model_server.pid``) and the JVM's temp
  dir (``$TEMP``, where the worker sockets live) point into the work
  directory, so this instance never sees, reuses or stops another TorchServe
  on the machine, and ``torchserve --stop`` stops exactly this one;
- ``key_file.json``: token authorization is left ON (TorchServe's default
  since 0.11) and the generated management / inference keys are read from
  it, as a real deployment would use them;
- ``logs/``: ts_log.log, model_log.log (shown when something fails).

``torchserve --start`` exits 0 even when its workers crash at start (e.g.
without PyYAML), so readiness is the management API's ``describe`` saying
every worker is READY, never the exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


class TorchServeError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def java_available() -> str | None:
    """Why TorchServe cannot run here, or None when it can."""
    java_home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (java_home and Path(java_home, "bin", "java").exists())):
        return "java is not on PATH (TorchServe's frontend is a Java program)"
    if not (BIN / "torchserve").exists():
        return "torchserve is not installed (pip install torchserve torch-model-archiver pyyaml)"
    try:
        import yaml  # noqa: F401  - TorchServe's workers crash without it
    except ImportError:
        return "PyYAML is not installed; TorchServe's workers need it"
    return None


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class TorchServe:
    workdir: Path
    process: subprocess.Popen
    ports: dict[str, int]
    management_key: str = ""
    inference_key: str = ""
    log_file: object = None
    registered: list[str] = field(default_factory=list)
    # Environment for the launcher, and so for the frontend and its workers; None removes a variable.
    extra_env: dict[str, str | None] = field(default_factory=dict)

    # -- addresses ----------------------------------------------------------

    @property
    def inference_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['inference']}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['management']}"

    @property
    def grpc_inference_address(self) -> str:
        return f"127.0.0.1:{self.ports['grpc_inference']}"

    @property
    def model_store(self) -> Path:
        return self.workdir / "model-store"

    def env(self) -> dict[str, str]:
        tmp = str(self.workdir / "tmp")
        env = {**os.environ, "TMPDIR": tmp, "TEMP": tmp, "TMP": tmp}
        for key, value in self.extra_env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def logs(self, chars: int = 4000) -> str:
        out = []
        for name in ("ts_log.log", "model_log.log"):
            path = self.workdir / "logs" / name
            if path.exists():
                out.append(f"--- {name} ---\n" + path.read_text(errors="replace")[-chars:])
        launcher = self.workdir / "launcher.log"
        if launcher.exists():
            out.append("--- launcher ---\n" + launcher.read_text(errors="replace")[-chars:])
        return "\n".join(out)

    # -- HTTP -----------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        key: str | None,
        body: bytes | None = None,
        content_type: str | None = None,
        timeout: float = 60.0,
    ) -> HttpResponse:
        req = urllib.request.Request(url, data=body, method=method)
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return HttpResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
        except urllib.error.HTTPError as exc:
            return HttpResponse(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def management(self, method: str, path: str, **params) -> HttpResponse:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        return self.request(method, f"{self.management_url}{path}{query}", self.management_key)

    def predict(
        self, model: str, payload: dict | bytes, key: str | None = "default", timeout: float = 60.0
    ) -> HttpResponse:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request(
            "POST",
            f"{self.inference_url}/predictions/{model}",
            self.inference_key if key == "default" else key,
            body,
            "application/json",
            timeout,
        )

    # -- models ---------------------------------------------------------------

    def register(
        self,
        mar_name: str,
        model_name: str | None = None,
        workers: int = 1,
        batch_size: int = 1,
        max_batch_delay_ms: int = 100,
        timeout: float = 180.0,
        wait: bool = True,
    ) -> str:
        """Register ``model_store/<mar_name>``; with ``wait``, until every worker is READY."""
        name = model_name or Path(mar_name).stem
        resp = self.management(
            "POST",
            "/models",
            url=mar_name,
            model_name=name,
            initial_workers=workers,
            batch_size=batch_size,
            max_batch_delay=max_batch_delay_ms,
            synchronous="false",
        )
        if resp.status not in (200, 202):
            raise TorchServeError(f"registering {mar_name} failed: {resp.status} {resp.body!r}\n{self.logs()}")
        self.registered.append(name)
        if wait:
            self.wait_ready(name, workers, timeout)
        return name

    def unregister(self, model: str, timeout: float = 60.0) -> None:
        resp = self.management("DELETE", f"/models/{model}")
        if resp.status != 200:
            raise TorchServeError(f"unregistering {model}: {resp.status} {resp.body!r}")
        if model in self.registered:
            self.registered.remove(model)

    def describe(self, model: str) -> list[dict]:
        resp = self.management("GET", f"/models/{model}")
        if resp.status != 200:
            raise TorchServeError(f"describe {model}: {resp.status} {resp.body!r}")
        return resp.json()

    def wait_ready(self, model: str, workers: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        status: list[str] = []
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TorchServeError(f"TorchServe exited ({self.process.returncode})\n{self.logs()}")
            status = [w.get("status", "?") for d in self.describe(model) for w in d.get("workers", [])]
            if len(status) >= workers and all(s == "READY" for s in status):
                return
            time.sleep(0.25)
        raise TorchServeError(f"{model}: workers not READY after {timeout:.0f} s ({status})\n{self.logs()}")

    def worker_pids(self) -> list[int]:
        pids = []
        for model in self.registered:
            try:
                pids += [int(w["pid"]) for d in self.describe(model) for w in d.get("workers", []) if w.get("pid")]
            except (TorchServeError, OSError, KeyError, ValueError):
                pass
        return pids

    # -- stop -----------------------------------------------------------------

    def stop(self, timeout: float = 60.0) -> None:
        """``torchserve --stop`` (this instance's pid file only), then wait; kill only our own leftovers."""
        workers = self.worker_pids()
        if self.process.poll() is None:
            subprocess.run(
                [str(BIN / "torchserve"), "--stop"],
                check=False,
                cwd=self.workdir,
                env=self.env(),
                capture_output=True,
                timeout=60,
            )
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        java = _java_pid(self.workdir)
        for pid in [p for p in [java, *workers] if p]:
            _kill_if_alive(pid)
        if self.log_file:
            self.log_file.close()


def _java_pid(workdir: Path) -> int | None:
    pid_file = workdir / "tmp" / ".model_server.pid"
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _kill_if_alive(pid: int, wait: float = 10.0) -> None:
    """SIGKILL one process of ours (the JVM or a worker) if it is still running and not a zombie."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with torchserve
        return
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return
        proc.wait(timeout=wait)
    except psutil.TimeoutExpired:
        proc.kill()
    except psutil.Error:
        pass


def start_torchserve(
    workdir: Path,
    *,
    extra_config: dict[str, str] | None = None,
    extra_env: dict[str, str | None] | None = None,
    timeout: float = 120.0,
) -> TorchServe:
    """Start TorchServe (``--foreground`` in a child process we own) and wait for its management API.

    ``extra_env``: variables set (or, with None, removed) for TorchServe and its workers, e.g.
    ``{"OMP_NUM_THREADS": "1"}`` for one intra-op thread per worker.
    """
    workdir = Path(workdir)
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    (workdir / "model-store").mkdir(exist_ok=True)
    ports = {k: free_port() for k in ("inference", "management", "metrics", "grpc_inference", "grpc_management")}
    config = {
        "inference_address": f"http://127.0.0.1:{ports['inference']}",
        "management_address": f"http://127.0.0.1:{ports['management']}",
        "metrics_address": f"http://127.0.0.1:{ports['metrics']}",
        "grpc_inference_address": "127.0.0.1",
        "grpc_management_address": "127.0.0.1",
        "grpc_inference_port": str(ports["grpc_inference"]),
        "grpc_management_port": str(ports["grpc_management"]),
        "model_store": str(workdir / "model-store"),
        # Registration over the management API (off by default since 0.11).
        "enable_model_api": "true",
        "default_workers_per_model": "1",
        "disable_system_metrics": "true",
        "install_py_dep_per_model": "false",
        **(extra_config or {}),
    }
    (workdir / "config.properties").write_text("".join(f"{k}={v}\n" for k, v in config.items()))
    log = open(workdir / "launcher.log", "wb")  # noqa: SIM115 - closed by TorchServe.stop()
    cmd = [
        str(BIN / "torchserve"),
        "--start",
        "--foreground",
        "--ncs",
        "--ts-config",
        str(workdir / "config.properties"),
        "--model-store",
        str(workdir / "model-store"),
    ]
    ts = TorchServe(workdir, None, ports, log_file=log, extra_env=dict(extra_env or {}))  # type: ignore[arg-type]
    ts.process = subprocess.Popen(cmd, cwd=workdir, env=ts.env(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        key_file = workdir / "key_file.json"
        while time.monotonic() < deadline:
            if ts.process.poll() is not None:
                raise TorchServeError(f"torchserve exited with {ts.process.returncode}\n{ts.logs()}")
            if key_file.exists():
                try:
                    keys = json.loads(key_file.read_text())
                    ts.management_key = keys["management"]["key"]
                    ts.inference_key = keys["inference"]["key"]
                except (ValueError, KeyError):
                    keys = None
                try:
                    if keys and ts.management("GET", "/models").status == 200:
                        return ts
                except OSError:  # not listening yet
                    pass
            time.sleep(0.2)
        raise TorchServeError(f"TorchServe's management API did not answer within {timeout:.0f} s\n{ts.logs()}")
    except BaseException:
        ts.stop()
        raise


# -- gRPC ---------------------------------------------------------------------------


def grpc_stubs(dest: Path):
    """TorchServe's inference gRPC stubs, generated at run time into ``dest``.

    The .proto files ship inside TorchServe's frontend jar (``proto/inference.proto``),
    not in the Python package; grpc_tools compiles them. The only change made:
    the optional ``google.rpc.Status status = 3`` field (streaming errors) and
    its import are dropped, so googleapis-common-protos is not needed and no
    ``google/rpc/status.proto`` can collide with another copy in the protobuf
    descriptor pool. On the wire the field is then an unknown field, skipped.
    Returns the modules (pb2, pb2_grpc).
    """
    import importlib

    import ts
    from grpc_tools import protoc

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    jar = Path(ts.__file__).parent / "frontend" / "model-server.jar"
    with zipfile.ZipFile(jar) as z:
        text = z.read("proto/inference.proto").decode()
    kept = [
        line for line in text.splitlines() if "google/rpc/status.proto" not in line and "google.rpc.Status" not in line
    ]
    if len(kept) != len(text.splitlines()) - 2:
        raise TorchServeError("TorchServe's inference.proto changed; check grpc_stubs() in tests/interop/tsserve.py")
    (dest / "torchserve_inference.proto").write_text("\n".join(kept) + "\n")
    include = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(
        [
            "protoc",
            f"-I{dest}",
            f"-I{include}",
            f"--python_out={dest}",
            f"--grpc_python_out={dest}",
            str(dest / "torchserve_inference.proto"),
        ]
    )
    if rc != 0:
        raise TorchServeError(f"grpc_tools.protoc failed ({rc}) on TorchServe's inference.proto")
    sys.path.insert(0, str(dest))
    try:
        pb2 = importlib.import_module("torchserve_inference_pb2")
        pb2_grpc = importlib.import_module("torchserve_inference_pb2_grpc")
    finally:
        sys.path.remove(str(dest))
    return pb2, pb2_grpc
