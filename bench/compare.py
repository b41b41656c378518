"""gan-server against TorchServe under h2load, in one interleaved run.

    .venv/bin/python bench/compare.py --models models --model dcgan --rounds 3 --floor \
        --variant nobatch=--no-batching --variant 'processes2=--processes 2'     # make bench-compare

Every system is driven by the same load generator, ``h2load`` (nghttp2, C),
over gRPC on 127.0.0.1, with bodies built as in bench/h2load.py (flag byte,
4-byte big-endian length, message):

- **gan-server** (this checkout, ``--server-args``, by default metrics and
  the access log on): ``/gan.v1.Generator/Sample``, ``SampleRequest(model,
  count=1, seed=0)``;
- **TorchServe** (the archive of gan_training.interop.torchserve.build_mar,
  token authorization on, as tests/interop/tsserve.py starts it):
  ``/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions``,
  ``PredictionsRequest(model_name, input={"data": b'{"n":1,"seed":0,
  "format":"raw"}'})`` with ``authorization: Bearer <inference key>``; the
  message classes are generated from the inference.proto inside TorchServe's
  jar;
- **floor** (``--floor``): bench/h2load.py's grpc.aio server with one handler
  returning a prebuilt response, what grpc.aio costs per call in Python;
- **variants** (``--variant LABEL=FLAGS``): more gan-servers with extra flags,
  in the single-image rounds only.

Steps:

1. TorchServe tuning: one TorchServe per ``--ts-threads`` value (its workers'
   intra-op threads: ``default``, or N through ``OMP_NUM_THREADS``), each
   with every ``--ts-settings`` registration (workers, batch_size,
   max_batch_delay ms). Each registration is warmed up, then at each
   concurrency run once for about ``--tune-seconds`` (sized by a short probe
   run, so that bad settings cost little time). Each instance keeps its best
   registration per concurrency for the rounds (the others are
   unregistered); the better of the instances is "TorchServe's best", which
   the targets are judged against.
2. Rounds, systems interleaved with the order reversed every other round: at
   each concurrency (c <= 8: c connections x 1 stream; above: ``--connections``
   connections), req/s, mean and p99 latency (h2load's per-request log) and
   server CPU per request: utime + stime summed over the server's process
   tree from /proc (gan-server: one process; TorchServe: the launcher, its
   Java frontend and the Python workers).
3. Per round, images/s of ``Sample`` with n = ``--bulk-count`` through gRPC
   (h2load at each ``--bulk-concurrency``) against in process
   (``LoadedModel.generate`` over ``plan`` in a loop on the ONNX backend, the
   latent draws included), for the bundled model and for a copy of it under
   the vectorised latent scheme (``<model>-v``, ``"latent_scheme":
   "philox4x32-vectorised"``); gan-server serves both from a temporary
   repository holding copies of ``<models>/<model>/1``.
4. Per round, the in-process time of one single-image ``plan`` +
   ``generate`` (mean of ``--latency-requests`` calls), against gan-server's
   mean latency at c=1.

A run counts only if every request succeeded. h2load counts HTTP 2xx, but
gRPC's status travels in trailers, which h2load does not read, so also: the
DATA bytes h2load received must be exactly requests x the size of one
response message (measured by a real gRPC call, whose status must be OK);
the server's own count of OK calls must have grown by exactly the requests
(gan-server: ``gan_requests_total{code="OK"}`` and its access log; TorchServe:
its access log's gRPC status 0 lines); and after every run three calls
through a real gRPC client must succeed and decode (gan-server:
``GanClient``; TorchServe: the generated stub, an NPY array of the model's
shape).

Prints a Markdown report (stdout); progress goes to stderr. Needs h2load
(Debian nghttp2-client), Java 17 and torchserve + torch-model-archiver.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _sub in ("sdk", "serving", "training"):
    sys.path.insert(0, str(ROOT / _sub))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import h2load as H
import procs
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.request import SampleSpec
from gan_server.repository import ModelRepository
from gan_training.interop.torchserve import build_mar

from tests.interop.tsserve import TorchServe, grpc_stubs, java_available, start_torchserve

TS_METHOD = "/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions"
VECTORISED = "philox4x32-vectorised"
TS_OK_LINE = re.compile(rb'"gRPC org\.pytorch\.serve\.grpc\.inference\.InferenceAPIsService/Predictions HTTP/2\.0" 0 ')


# --------------------------------------------------------------------------- systems


@dataclass
class Body:
    """One h2load request body and the size of the answer it must get."""

    path: Path
    message: bytes  # the request message, unframed
    frame: int = 0  # bytes of one response message with its 5-byte prefix (from a real call)


@dataclass
class Run:
    rps: float
    mean_ms: float
    p99_ms: float
    cpu_ms: float  # server CPU per request, whole process tree
    client_ms: float  # h2load's CPU per request
    busy: float  # share of all cores busy during the run (every process on the machine)
    parts: dict[str, float] = field(default_factory=dict)  # CPU ms per request by part


class System:
    label: str
    address: str
    path: str
    headers: tuple[str, ...] = ()

    def cpu(self) -> dict[str, float]:
        raise NotImplementedError

    calls = 0  # calls sent so far that must have succeeded

    def ok_counts(self) -> dict[str, int]:
        """The server's own counts of successful calls so far, by source (none: it keeps none)."""
        return {}

    def verify(self) -> None:
        """Every count of ok_counts() equals the calls sent (waiting up to 10 s for logs to be written)."""
        deadline = time.monotonic() + 10
        while True:
            counts = self.ok_counts()
            if all(n == self.calls for n in counts.values()):
                return
            if any(n > self.calls for n in counts.values()) or time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: {self.calls} calls sent, the server counted OK: {counts}")
            time.sleep(0.05)

    def sent(self, calls: int) -> None:
        self.calls += calls

    def check(self, body: Body, seeds: range = range(3)) -> bytes:
        """Real gRPC calls; each must end OK and decode. Returns the last raw response."""
        raise NotImplementedError


def raw_call(address: str, path: str, message: bytes, metadata: tuple = ()) -> bytes:
    import grpc

    with grpc.insecure_channel(address) as channel:
        method = channel.unary_unary(path)  # bytes in, bytes out
        response, call = method.with_call(message, metadata=metadata, timeout=60)
        if call.code() != grpc.StatusCode.OK:
            raise RuntimeError(f"{path} on {address}: {call.code()} {call.details()}")
        return response


class GanSystem(System):
    """gan-server or the grpc.aio floor, one process started by bench/h2load.py."""

    def __init__(self, server: H.Server, image_bytes: int) -> None:
        self.server = server
        self.label = server.label
        self.address = server.address
        self.path = H.METHOD
        self.image_bytes = image_bytes

    def cpu(self) -> dict[str, float]:
        """The server process by thread; processes it started (``--processes``) as one part."""
        out = self.server.thread_cpu()
        children = [s for pid, (_, s) in procs.tree_cpu(self.server.pid).items() if pid != self.server.pid]
        if children:
            out["child processes"] = sum(children)
        return out

    @property
    def calls(self) -> int:  # type: ignore[override]
        return self.server.sample_calls

    def ok_counts(self) -> dict[str, int]:
        if self.server.floor:
            return {}
        return {"gan_requests_total": self.server.ok_calls(), "access log": self.server.ok_log_lines()}

    def sent(self, calls: int) -> None:
        self.server.sample_calls += calls

    def check(self, body: Body, seeds: range = range(3)) -> bytes:
        raw = b""
        request = pb.SampleRequest.FromString(body.message)
        for _ in seeds:
            raw = raw_call(self.address, self.path, body.message)
            self.sent(1)
            response = pb.SampleResponse.FromString(raw)
            if response.count != request.count or len(response.images) != request.count * self.image_bytes:
                raise RuntimeError(f"{self.label}: {response.count} images, {len(response.images)} bytes")
        if not self.server.floor:
            H.check_with_sdk(self.server, request.model, request.count)
        return raw


class TorchServeSystem(System):
    """One TorchServe instance (its workers' intra-op threads are set per instance, by environment)."""

    def __init__(self, ts: TorchServe, pb2, shape: tuple[int, ...], threads: str) -> None:
        self.ts = ts
        self.pb2 = pb2
        self.label = ts_label(threads)
        self.threads = threads
        self.address = ts.grpc_inference_address
        self.path = TS_METHOD
        self.headers = (f"authorization: Bearer {ts.inference_key}",)
        self.shape = shape

    def cpu(self) -> dict[str, float]:
        """The launcher, the Java frontend, and the Python workers split into main and other threads."""
        main, other = "workers (Python): main threads", "workers (Python): other threads (torch intra-op)"
        out = {"frontend (Java)": 0.0, main: 0.0, other: 0.0, "launcher": 0.0}
        for pid, (comm, seconds) in procs.tree_cpu(self.ts.process.pid).items():
            if pid == self.ts.process.pid:
                out["launcher"] += seconds
            elif comm == "java":
                out["frontend (Java)"] += seconds
            else:
                try:
                    threads = procs.thread_cpu(pid)
                except OSError:  # exited meanwhile
                    continue
                out[main] += threads.pop("main", 0.0)
                out[other] += sum(threads.values())
        return out

    def ok_counts(self) -> dict[str, int]:
        path = self.ts.workdir / "logs" / "access_log.log"
        if not path.exists():
            return {"access log": 0}
        with open(path, "rb") as f:
            return {"access log": sum(1 for line in f if TS_OK_LINE.search(line))}

    def check(self, body: Body, seeds: range = range(3)) -> bytes:
        raw = b""
        metadata = (("authorization", f"Bearer {self.ts.inference_key}"),)
        for _ in seeds:
            raw = raw_call(self.address, self.path, body.message, metadata)
            self.sent(1)
            prediction = self.pb2.PredictionResponse.FromString(raw).prediction
            if not prediction.startswith(b"\x93NUMPY"):
                raise RuntimeError(f"TorchServe: not an NPY prediction: {prediction[:200]!r}")
            images = np.load(io.BytesIO(prediction), allow_pickle=False)
            if images.shape != self.shape or images.dtype != np.uint8:
                raise RuntimeError(f"TorchServe: got {images.dtype} {images.shape}, expected uint8 {self.shape}")
        return raw


def measure(system: System, body: Body, requests: int, concurrency: int, args: argparse.Namespace, tmp: Path) -> Run:
    """One h2load run; raises unless every request demonstrably succeeded."""
    if not body.frame:
        body.frame = len(system.check(body)) + 5
    system.verify()
    cpu0, client0, machine0 = system.cpu(), procs.children_cpu(), procs.machine_jiffies()
    logfile = tmp / "h2load.log"
    stdout = H.h2load(
        system.address,
        body.path,
        requests,
        concurrency,
        args.connections,
        logfile,
        path=system.path,
        headers=system.headers,
        timeout=args.run_timeout,
    )
    cpu1, client1, machine1 = system.cpu(), procs.children_cpu(), procs.machine_jiffies()
    system.sent(requests)
    rps, mean_ms, p99_ms = H.parse(stdout, logfile, requests)
    got = H.data_bytes(stdout)
    if got != requests * body.frame:
        raise RuntimeError(f"{system.label}: h2load got {got} DATA bytes, {requests} x {body.frame} expected")
    system.verify()
    system.check(body)
    parts = {k: (v - cpu0.get(k, 0.0)) * 1000.0 / requests for k, v in cpu1.items()}
    total = (sum(cpu1.values()) - sum(cpu0.values())) * 1000.0 / requests
    client = (client1 - client0) * 1000.0 / requests
    busy = (machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1])
    return Run(rps, mean_ms, p99_ms, total, client, busy, parts)


# --------------------------------------------------------------------------- in process


def inprocess_rate(model, count: int, seconds: float) -> tuple[float, float]:
    """(images/s, CPU ms per image) of plan + generate (latents, graph, pixels) for ``count`` images, in a loop."""
    model.generate(model.plan(SampleSpec(count=count, seed=0)), 0, count)
    done, seed, t0, cpu0 = 0, 1, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        done += len(model.generate(model.plan(SampleSpec(count=count, seed=seed)), 0, count).images)
        seed += 1
    return done / (time.perf_counter() - t0), (time.process_time() - cpu0) * 1000.0 / done


def inprocess_latency(model, calls: int) -> tuple[float, float, float]:
    """(mean, p50, CPU) ms of one single-image plan + generate."""
    for seed in range(20):
        model.generate(model.plan(SampleSpec(count=1, seed=seed)), 0, 1)
    out = []
    cpu0 = time.process_time()
    for seed in range(calls):
        t0 = time.perf_counter()
        model.generate(model.plan(SampleSpec(count=1, seed=seed)), 0, 1)
        out.append((time.perf_counter() - t0) * 1000.0)
    cpu = (time.process_time() - cpu0) * 1000.0 / calls
    return statistics.fmean(out), statistics.median(out), cpu


def make_repo(models: Path, model: str, dest: Path) -> tuple[Path, str]:
    """``dest`` with ``<model>`` (a copy of its version 1) and ``<model>-v`` under the vectorised scheme."""
    versions = sorted(p for p in (models / model).iterdir() if p.is_dir() and (p / "manifest.json").exists())
    src = versions[-1]
    shutil.copytree(src, dest / model / src.name)
    shutil.copytree(src, dest / f"{model}-v" / src.name)
    path = dest / f"{model}-v" / src.name / "manifest.json"
    data = json.loads(path.read_text())
    data["latent_scheme"] = VECTORISED
    data["name"] = f"{model}-v"
    path.write_text(json.dumps(data, indent=2))
    return src, f"{model}-v"


# --------------------------------------------------------------------------- report helpers


def med(xs: list[float], digits: int) -> str:
    if not xs:
        return "–"
    return f"{statistics.median(xs):,.{digits}f} ({min(xs):,.{digits}f}–{max(xs):,.{digits}f})"


def mid(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


Setting = tuple[str, int, int, int]  # worker intra-op threads ("default" or N), workers, batch_size, max_batch_delay


def parse_settings(text: str, threads: list[str]) -> list[Setting]:
    grid = [tuple(int(x) for x in item.split(":")) for item in text.split(",") if item]
    return [(t, *g) for t in threads for g in grid]  # type: ignore[misc]


def setting_name(model: str, s: Setting) -> str:
    return f"{model}_t{s[0]}_w{s[1]}_b{s[2]}_d{s[3]}"


def ts_label(threads: str) -> str:
    return "TorchServe, default threads" if threads == "default" else f"TorchServe, OMP_NUM_THREADS={threads}"


def describe_setting(s: Setting) -> str:
    threads = "default intra-op threads" if s[0] == "default" else f"OMP_NUM_THREADS={s[0]}"
    return f"workers {s[1]}, batch_size {s[2]}, max_batch_delay {s[3]} ms, {threads}"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--model", default="dcgan")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument(
        "--requests", type=int, nargs="+", default=[1000, 2000, 4000], help="per run, one per --concurrency"
    )
    ap.add_argument("--connections", type=int, default=4, help="connections for concurrency above 8")
    ap.add_argument(
        "--ts-settings",
        default="1:1:1,2:1:1,1:8:1,1:8:5,2:8:5,1:32:5,2:32:5",
        help="TorchServe registrations to tune over, workers:batch_size:max_batch_delay_ms, comma separated",
    )
    ap.add_argument(
        "--ts-threads",
        nargs="+",
        default=["default", "1"],
        help="intra-op threads of TorchServe's workers to tune over: one TorchServe per value, 'default' "
        "(OMP_NUM_THREADS unset: torch's default, one per core) or N (OMP_NUM_THREADS=N)",
    )
    ap.add_argument(
        "--tune-requests", type=int, nargs="+", default=[300, 800, 2000], help="at most, one per --concurrency"
    )
    ap.add_argument(
        "--tune-seconds", type=float, default=1.5, help="tuning runs are sized from a probe to last about this long"
    )
    ap.add_argument("--warmup", type=int, default=1000, help="requests per gan-server / floor before measuring")
    ap.add_argument("--ts-warmup", type=int, default=100, help="requests per TorchServe registration before tuning")
    ap.add_argument("--floor", action="store_true", help="add the empty-handler grpc.aio server")
    ap.add_argument("--server-args", default="--metrics-port 0", help="gan-server flags")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=FLAGS",
        help="another gan-server for the single-image rounds: --server-args plus FLAGS (nobatch=--no-batching)",
    )
    ap.add_argument("--bulk-count", type=int, default=256, help="images per request of the bulk measurement")
    ap.add_argument("--bulk-requests", type=int, default=64, help="requests per bulk h2load run")
    ap.add_argument("--bulk-concurrency", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--bulk-seconds", type=float, default=2.0, help="seconds of each in-process bulk loop")
    ap.add_argument("--latency-requests", type=int, default=2000, help="in-process single-image calls per round")
    ap.add_argument("--run-timeout", type=float, default=180.0, help="seconds any one h2load run may take")
    ap.add_argument("--keep-logs", action="store_true", help="keep the work directory (server and TorchServe logs)")
    args = ap.parse_args()
    if len(args.requests) != len(args.concurrency) or len(args.tune_requests) != len(args.concurrency):
        raise SystemExit("--requests and --tune-requests need one count per --concurrency")
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install nghttp2-client (or `make bench-compare` as root)")
    why = java_available()
    if why:
        raise SystemExit(f"cannot run TorchServe: {why}")
    requests = dict(zip(args.concurrency, args.requests))
    tune_requests = dict(zip(args.concurrency, args.tune_requests))
    settings = parse_settings(args.ts_settings, args.ts_threads)
    command = "python bench/compare.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    started = time.monotonic()
    load = [os.getloadavg()]

    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    repo = work / "models"
    src, vmodel = make_repo(args.models.resolve(), args.model, repo)
    servers: list[H.Server] = []
    instances: dict[str, TorchServe] = {}
    tuning: dict[tuple[Setting, int], Run] = {}
    results: dict[tuple[str, int], list[Run]] = {}
    bulk: dict[tuple[str, str], list[float]] = {}  # (model, "in process" | "gRPC c=N") -> images/s
    bulk_cpu: dict[tuple[str, int], list[float]] = {}  # (model, c) -> server CPU ms per image
    lat_ip: list[tuple[float, float]] = []
    pixel_diff = None
    try:
        # TorchServe first (one instance per worker thread count): its workers load while the rest starts.
        for threads in args.ts_threads:
            log(f"starting TorchServe (worker threads: {threads}) ...")
            env = {"OMP_NUM_THREADS": None if threads == "default" else threads}
            ts = instances[threads] = start_torchserve(work / f"torchserve-t{threads}", extra_env=env)
            build_mar(src, ts.model_store, model_name=args.model)
        names = {
            s: instances[s[0]].register(
                f"{args.model}.mar",
                setting_name(args.model, s),
                workers=s[1],
                batch_size=s[2],
                max_batch_delay_ms=s[3],
                wait=False,
            )
            for s in settings
        }
        log("starting gan-server ...")
        gan_srv = H.start("gan-server", ROOT, repo, shlex.split(args.server_args), work, 1)
        servers.append(gan_srv)
        models = ModelRepository(repo)
        inproc = {m: models.load_version(repo / m / src.name) for m in (args.model, vmodel)}
        img = inproc[args.model].manifest.image
        image_bytes = img.height * img.width * img.channels
        gan = GanSystem(gan_srv, image_bytes)
        systems: list[System] = [gan]
        for spec in args.variant:
            label, _, flags = spec.partition("=")
            srv = H.start(label, ROOT, repo, shlex.split(args.server_args) + shlex.split(flags), work, 1)
            servers.append(srv)
            systems.append(GanSystem(srv, image_bytes))
        if args.floor:
            floor_srv = H.start("floor", None, repo, [], work, 1)
            servers.append(floor_srv)
            systems.append(GanSystem(floor_srv, image_bytes))
        for s, name in names.items():
            instances[s[0]].wait_ready(name, s[1], timeout=300)
        pb2, _ = grpc_stubs(work / "stubs")
        shape = (1, img.height, img.width, img.channels)
        tsys = {t: TorchServeSystem(ts, pb2, shape, t) for t, ts in instances.items()}
        systems[1:1] = list(tsys.values())  # each on its best setting at each c
        log(f"servers up after {time.monotonic() - started:.0f} s")

        def body(name: str, message: bytes) -> Body:
            path = work / f"{name}.bin"
            path.write_bytes(H.grpc_frame(message))
            return Body(path, message)

        gan_body = body("gan", pb.SampleRequest(model=args.model, count=1, seed=0).SerializeToString())
        floor_body = body("floor", gan_body.message)
        ts_json = json.dumps({"n": 1, "seed": 0, "format": "raw"}).encode()
        ts_bodies = {
            s: body(name, pb2.PredictionsRequest(model_name=name, input={"data": ts_json}).SerializeToString())
            for s, name in names.items()
        }
        bulk_bodies = {
            m: body(f"bulk-{m}", pb.SampleRequest(model=m, count=args.bulk_count, seed=0).SerializeToString())
            for m in (args.model, vmodel)
        }

        # The same image from both: TorchScript in TorchServe, ONNX Runtime in gan-server.
        first = next(iter(ts_bodies))
        ts_raw = tsys[first[0]].check(ts_bodies[first], range(1))
        ts_img = np.load(io.BytesIO(pb2.PredictionResponse.FromString(ts_raw).prediction))
        gan_img = np.frombuffer(pb.SampleResponse.FromString(gan.check(gan_body, range(1))).images, np.uint8)
        pixel_diff = int(np.abs(ts_img.reshape(-1).astype(int) - gan_img.astype(int)).max())

        # Warm-up, then TorchServe tuning.
        for s in systems:
            if isinstance(s, GanSystem):
                measure(s, floor_body if s.server.floor else gan_body, args.warmup, max(args.concurrency), args, work)
                if not s.server.floor:  # what the variant gets right, pixel for pixel
                    got = pb.SampleResponse.FromString(s.check(gan_body, range(1))).images
                    if np.frombuffer(got, np.uint8).tobytes() != gan_img.tobytes():
                        raise RuntimeError(f"{s.label}: not the image gan-server returns for the same request")
        for setting, b in ts_bodies.items():
            measure(tsys[setting[0]], b, args.ts_warmup, 8, args, work)
        log(f"tuning TorchServe over {len(settings)} settings x c={args.concurrency} ...")
        for c in args.concurrency:
            for setting, b in ts_bodies.items():
                # A probe (a warm-up at this concurrency) sizes the run: bad settings are very slow.
                floor_n = max(32, 2 * c)
                probe = measure(tsys[setting[0]], b, floor_n, c, args, work)
                n = int(min(tune_requests[c], max(floor_n, probe.rps * args.tune_seconds)))
                tuning[(setting, c)] = run = measure(tsys[setting[0]], b, n, c, args, work)
                log(f"  {names[setting]} c={c}: {run.rps:,.0f} req/s, mean {run.mean_ms:.2f} ms ({n} requests)")
        best = {c: max(settings, key=lambda s, c=c: tuning[(s, c)].rps) for c in args.concurrency}
        best_t = {
            (t, c): max((s for s in settings if s[0] == t), key=lambda s, c=c: tuning[(s, c)].rps)
            for t in args.ts_threads
            for c in args.concurrency
        }
        for setting, name in names.items():
            if setting not in best_t.values():
                instances[setting[0]].unregister(name)
        load.append(os.getloadavg())

        for r in range(args.rounds):
            order = systems if r % 2 == 0 else systems[::-1]
            for c in args.concurrency:
                for s in order:
                    if isinstance(s, TorchServeSystem):
                        b = ts_bodies[best_t[(s.threads, c)]]
                    else:
                        b = floor_body if s.server.floor else gan_body
                    run = measure(s, b, requests[c], c, args, work)
                    results.setdefault((s.label, c), []).append(run)
                    log(
                        f"round {r + 1} c={c} {s.label}: {run.rps:,.0f} req/s, mean {run.mean_ms:.2f} ms, "
                        f"p99 {run.p99_ms:.2f} ms, CPU {run.cpu_ms:.3f} ms/req, h2load {run.client_ms:.3f}, "
                        f"machine busy {100 * run.busy:.0f} %"
                    )
            for m in (args.model, vmodel) if r % 2 == 0 else (vmodel, args.model):
                steps = ["ip", *args.bulk_concurrency]
                for step in steps if r % 2 == 0 else steps[::-1]:
                    if step == "ip":
                        rate, cpu = inprocess_rate(inproc[m], args.bulk_count, args.bulk_seconds)
                        bulk.setdefault((m, "in process"), []).append(rate)
                        bulk_cpu.setdefault((m, "ip"), []).append(cpu)
                    else:
                        run = measure(gan, bulk_bodies[m], args.bulk_requests, step, args, work)
                        rate = run.rps * args.bulk_count
                        bulk.setdefault((m, f"gRPC c={step}"), []).append(rate)
                        bulk_cpu.setdefault((m, step), []).append(run.cpu_ms / args.bulk_count)
                    log(f"round {r + 1} {m} n={args.bulk_count} {step}: {rate:,.0f} images/s")
            lat_ip.append(inprocess_latency(inproc[args.model], args.latency_requests))
            log(f"round {r + 1} in-process single image: mean {lat_ip[-1][0]:.3f} ms")
            load.append(os.getloadavg())
    finally:
        for srv in servers:
            H.stop(srv)
        for ts in instances.values():
            ts.stop()
        if args.keep_logs:
            log(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    report(args, command, settings, tuning, best, best_t, results, bulk, bulk_cpu, lat_ip, load, elapsed, pixel_diff)


def report(args, command, settings, tuning, best, best_t, results, bulk, bulk_cpu, lat_ip, load, elapsed, pixel_diff):
    import grpc
    import onnxruntime
    import torch
    import ts as ts_pkg

    vmodel = f"{args.model}-v"
    labels = list(dict.fromkeys(label for label, _ in results))
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    h2v = os.popen("h2load --version").read().split()[-1]
    loads1 = [x[0] for x in load]
    print(f"### gan-server vs TorchServe under h2load — {when}\n")
    print(
        f"Machine: `nproc` {os.cpu_count()}, {procs.cpu_name()}; {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"torch {torch.__version__}, TorchServe {ts_pkg.__version__}, {h2v}. Command: `{command}` "
        f"({elapsed:.0f} s). Load average (1 min) {loads1[0]:.2f} at the start, {loads1[-1]:.2f} at the end, "
        f"{max(loads1):.2f} at most between rounds (5 min: {load[0][1]:.2f} → {load[-1][1]:.2f}).\n"
    )
    print(
        f"Model `{args.model}`, 1 image per request (seed 0, raw uint8), requests per run "
        + ", ".join(f"{n:,} at c={c}" for c, n in zip(args.concurrency, args.requests))
        + f"; c > 8 is {args.connections} connections. gan-server flags: defaults + `{args.server_args}`. "
        "TorchServe: one instance per worker thread setting, each on its best tuned registration per "
        "concurrency; TorchServe's best overall ("
        + "; ".join(f"c={c}: {describe_setting(best[c])}" for c in args.concurrency)
        + "); the best with default threads ("
        + "; ".join(
            f"c={c}: {describe_setting(best_t[('default', c)])}"
            for c in args.concurrency
            if "default" in args.ts_threads
        )
        + "). Median (min–max) over "
        f"{args.rounds} rounds, systems interleaved, order reversed every other round. Server CPU = utime+stime "
        f"of the server's process tree per request. Same seed, both servers: the images differ by at most "
        f"{pixel_diff} uint8 level(s) (TorchScript vs ONNX Runtime).\n"
    )
    print(
        "| system | c | req/s | mean ms | p99 ms | server CPU ms/request | h2load CPU ms/request "
        "| machine busy % |\n|---|---|---|---|---|---|---|---|"
    )
    for c in args.concurrency:
        for label in labels:
            runs = results[(label, c)]
            print(
                f"| {label} | {c} | {med([x.rps for x in runs], 0)} | {med([x.mean_ms for x in runs], 2)} | "
                f"{med([x.p99_ms for x in runs], 2)} | {med([x.cpu_ms for x in runs], 3)} | "
                f"{med([x.client_ms for x in runs], 3)} | {med([100 * x.busy for x in runs], 0)} |"
            )
    ratios = {}
    ts_labels = [x for x in labels if x.startswith("TorchServe")]
    best_label = {c: ts_label(best[c][0]) for c in args.concurrency}
    print(
        "\nRatios per round (interleaved runs), then the median (min–max). TorchServe's best at each c: "
        + "; ".join(f"c={c} {best_label[c]}" for c in args.concurrency)
        + ".\n"
    )
    print(
        "| system | c | "
        + " | ".join(f"req/s ÷ {t} | CPU/request {t} ÷ system" for t in ts_labels)
        + " |\n|---|---|"
        + "---|---|" * len(ts_labels)
    )
    for label in (x for x in labels if x not in ts_labels):
        for c in args.concurrency:
            cells = []
            for t in ts_labels:
                g, ts_runs = results[(label, c)], results[(t, c)]
                rr = [a.rps / b.rps for a, b in zip(g, ts_runs)]
                cr = [b.cpu_ms / a.cpu_ms for a, b in zip(g, ts_runs)]
                if t == best_label[c]:
                    ratios[(label, c)] = rr
                mark = "**" if t == best_label[c] else ""
                cells += [f"{mark}{med(rr, 2)}{mark}", med(cr, 2)]
            print(f"| {label} | {c} | " + " | ".join(cells) + " |")

    print("\nServer CPU ms/request by part (median over rounds):\n")
    parts = {
        label: sorted({k for c in args.concurrency for x in results[(label, c)] for k in x.parts}) for label in labels
    }
    print("| system | part | " + " | ".join(f"c={c}" for c in args.concurrency) + " |")
    print("|---|---|" + "---|" * len(args.concurrency))
    for label in labels:
        for part in parts[label]:
            cells = [mid([x.parts.get(part, 0.0) for x in results[(label, c)]]) for c in args.concurrency]
            if max(cells) >= 0.0005:
                print(f"| {label} | {part} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")

    print(f"\nImages/s at n={args.bulk_count} per request (latent draws included on both sides):\n")
    cols = ["in process", *(f"gRPC c={c}" for c in args.bulk_concurrency)]
    print(
        "| model (latent scheme) | "
        + " | ".join(cols)
        + " | "
        + " | ".join(f"gRPC c={c} / in process" for c in args.bulk_concurrency)
        + " | CPU ms/image in process | "
        + " | ".join(f"server CPU ms/image c={c}" for c in args.bulk_concurrency)
        + " |"
    )
    print("|---|" + "---|" * (len(cols) + 2 * len(args.bulk_concurrency) + 1))
    bulk_ratio = {}
    for m, scheme in ((args.model, "per image"), (vmodel, "vectorised")):
        ip = bulk[(m, "in process")]
        cells = [med(bulk[(m, col)], 0) for col in cols]
        rs = []
        for c in args.bulk_concurrency:
            rr = [g / i for g, i in zip(bulk[(m, f"gRPC c={c}")], ip)]
            bulk_ratio[(m, c)] = rr
            rs.append(med(rr, 2))
        cpu = [med(bulk_cpu[(m, c)], 3) for c in ["ip", *args.bulk_concurrency]]
        print(f"| `{m}` ({scheme}) | " + " | ".join(cells + rs + cpu) + " |")

    ip_mean = [x[0] for x in lat_ip]
    c1 = min(args.concurrency)
    g1 = results[("gan-server", c1)]
    floor1 = ""
    if "floor" in labels:
        floor1 = f"; floor (grpc.aio, empty handler) {med([x.mean_ms for x in results[('floor', c1)]], 3)} ms"
    print(
        f"\nSingle image, in process (`plan` + `generate`, {args.latency_requests} calls per round): mean "
        f"{med(ip_mean, 3)} ms, p50 {med([x[1] for x in lat_ip], 3)} ms, CPU {med([x[2] for x in lat_ip], 3)} ms; "
        f"gan-server at c={c1}: mean {med([x.mean_ms for x in g1], 3)} ms, server CPU "
        f"{med([x.cpu_ms for x in g1], 3)} ms" + floor1 + ".\n"
    )

    print(
        f"TorchServe tuning (gRPC under h2load, req/s; one run each of about {args.tune_seconds:g} s, sized by a "
        "probe run at the same concurrency; mean latency ms in brackets):\n"
    )
    print(
        "| worker threads | workers:batch_size:max_batch_delay_ms | "
        + " | ".join(f"c={c}" for c in args.concurrency)
        + " |"
    )
    print("|---|---|" + "---|" * len(args.concurrency))
    for s in settings:
        cells = [
            f"{tuning[(s, c)].rps:,.0f} ({tuning[(s, c)].mean_ms:,.1f})" + (" **best**" if best[c] == s else "")
            for c in args.concurrency
        ]
        threads = "default" if s[0] == "default" else f"OMP_NUM_THREADS={s[0]}"
        print(f"| {threads} | {s[1]}:{s[2]}:{s[3]} | " + " | ".join(cells) + " |")

    print("\nTargets (medians of the per-round ratios):\n")
    for c, want in ((64, 3.0), (8, 2.0), (1, 3.0)):
        if ("gan-server", c) in ratios:
            got = mid(ratios[("gan-server", c)])
            print(f"- c={c} single-image req/s ≥ {want:g}× TorchServe's best: {verdict(got >= want)} ({got:.2f}×)")
    lat = mid([x.mean_ms for x in g1])
    ipm = mid(ip_mean)
    print(
        f"- c=1 mean latency ≤ in process + 0.5 ms: {verdict(lat <= ipm + 0.5)} "
        f"({lat:.3f} ms against {ipm:.3f} + 0.5 = {ipm + 0.5:.3f} ms)"
    )
    for m in (args.model, vmodel):
        for c in args.bulk_concurrency:
            got = mid(bulk_ratio[(m, c)])
            print(
                f"- gRPC n={args.bulk_count} ≥ 90 % of in-process images/s, `{m}`, c={c}: "
                f"{verdict(got >= 0.9)} ({100 * got:.0f} %)"
            )


if __name__ == "__main__":
    main()
