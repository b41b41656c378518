"""TorchServe vs gan-server on the same generator and machine (a benchmark, not a test).

    .venv/bin/python bench/torchserve.py --models models --model dcgan

Systems, all on 127.0.0.1 and stopped at the end:

- in-process TorchScript (gan_server LoadedModel, TorchScript backend): the
  floor, single-image latency only;
- gan-server gRPC (gan_client.GanClient), dynamic batching on (its defaults:
  --workers 2, --batch-delay-ms 0, --max-batch 256), once per backend in
  --gan-backends (onnx is what we ship; torchscript runs the very file
  TorchServe runs);
- TorchServe REST (``POST /predictions/<model>``) and TorchServe gRPC
  (``InferenceAPIsService/Predictions``, stubs generated at run time from the
  inference.proto inside TorchServe's jar), serving the archive built by
  gan_training.interop.torchserve.build_mar, token authorization on.

Measurements (every request: 1 image, a different seed, raw uint8 output):

1. TorchServe tuning: each --ts-settings registration (workers, batch_size,
   max_batch_delay) at each --concurrency over REST; the best per concurrency
   is used below. Tuning runs once, before the rounds.
2. Per round, systems interleaved with their order reversed every other round
   (A B C, C B A, ...): p50/p99 latency of --latency-requests sequential
   requests (concurrency 1; TorchServe on its batch_size 1 registration, as
   batching would only add its delay there), and throughput in images/s with
   N client threads for --seconds each (N in --concurrency).

Every figure is the median over rounds with the min-max spread. Clients are
Python threads on the same machine as the servers, so they compete for its
cores; compare systems with each other, not with other machines.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_client import GanClient
from gan_contract.request import SampleSpec
from gan_server.repository import ModelRepository, version_key
from gan_training.interop.torchserve import build_mar

from tests.conftest import start_server, stop_server
from tests.interop.tsserve import TorchServe, grpc_stubs, java_available, start_torchserve

Caller = Callable[[int], None]  # one request for 1 image with this seed; raises on failure


# -- callers -------------------------------------------------------------------------------


def ts_rest_factory(ts: TorchServe, model: str) -> Callable[[], Caller]:
    """One keep-alive HTTP/1.1 connection per client thread."""
    headers = {"Authorization": f"Bearer {ts.inference_key}", "Content-Type": "application/json"}

    def make() -> Caller:
        conn = http.client.HTTPConnection("127.0.0.1", ts.ports["inference"], timeout=60)

        def call(seed: int) -> None:
            conn.request("POST", f"/predictions/{model}", json.dumps({"n": 1, "seed": seed, "format": "raw"}), headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"TorchServe REST {resp.status}: {body[:300]!r}")

        return call

    return make


def ts_grpc_factory(stub, pb2, model: str, key: str) -> Callable[[], Caller]:
    metadata = [("authorization", f"Bearer {key}")]

    def make() -> Caller:
        def call(seed: int) -> None:
            body = json.dumps({"n": 1, "seed": seed, "format": "raw"}).encode()
            resp = stub.Predictions(
                pb2.PredictionsRequest(model_name=model, input={"data": body}), metadata=metadata, timeout=60
            )
            if not resp.prediction.startswith(b"\x93NUMPY"):
                raise RuntimeError(f"TorchServe gRPC: {resp.prediction[:300]!r}")

        return call

    return make


def gan_factory(client: GanClient, model: str) -> Callable[[], Caller]:
    def make() -> Caller:
        def call(seed: int) -> None:
            client.sample(model, n=1, seed=seed, timeout=60)

        return call

    return make


# -- measurements ----------------------------------------------------------------------------


def latencies(make: Callable[[], Caller], count: int) -> tuple[float, float]:
    call = make()
    for seed in range(5):  # warm the connection
        call(seed)
    out = []
    for seed in range(count):
        t0 = time.perf_counter()
        call(seed)
        out.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(out, 50)), float(np.percentile(out, 99))


def inprocess_latencies(model, count: int) -> tuple[float, float]:
    out = []
    for seed in range(count + 5):
        t0 = time.perf_counter()
        model.generate(model.plan(SampleSpec(count=1, seed=seed)), 0, 1)
        out.append((time.perf_counter() - t0) * 1000)
    out = out[5:]
    return float(np.percentile(out, 50)), float(np.percentile(out, 99))


def throughput(make: Callable[[], Caller], clients: int, seconds: float) -> float:
    """Images/s with ``clients`` threads each sending 1-image requests back to back for ``seconds``."""
    counts = [0] * clients
    errors: list[BaseException] = []
    ready = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(k: int) -> None:
        try:
            call = make()
            call(k)  # connect and warm before the clock starts
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            ready.abort()
            return
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
        seed = k * 1_000_000
        try:
            while time.perf_counter() < stop_at[0]:
                call(seed)
                counts[k] += 1
                seed += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    try:
        stop_at[0] = time.perf_counter() + 3600  # set for real once all are ready
        ready.wait(timeout=120)
    except threading.BrokenBarrierError:
        raise RuntimeError(f"a client failed to start: {errors[:1]}") from None
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    for t in threads:
        t.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} client errors, first: {errors[0]!r}")
    return sum(counts) / elapsed


# -- report helpers --------------------------------------------------------------------------


def med(xs: list[float], digits: int = 0) -> str:
    if not xs:
        return "–"
    return f"{statistics.median(xs):,.{digits}f} ({min(xs):,.{digits}f}–{max(xs):,.{digits}f})"


def cpu_name() -> str:
    try:
        return next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def parse_settings(text: str) -> list[tuple[int, int, int]]:
    out = []
    for item in text.split(","):
        workers, batch, delay = (int(x) for x in item.split(":"))
        out.append((workers, batch, delay))
    return out


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--model", default="dcgan")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput measurement")
    ap.add_argument("--latency-requests", type=int, default=300)
    ap.add_argument("--concurrency", default="8,64", help="client threads for the throughput measurements")
    ap.add_argument(
        "--ts-settings",
        default="1:1:0,1:8:5,1:32:5,2:8:5,2:32:5",
        help="TorchServe registrations to try, workers:batch_size:max_batch_delay_ms, comma separated",
    )
    ap.add_argument("--gan-backends", default="onnx,torchscript", help="gan-server backends to run")
    ap.add_argument("--keep-logs", action="store_true", help="keep the work directory (server and TorchServe logs)")
    args = ap.parse_args()
    why = java_available()
    if why:
        sys.exit(f"cannot run TorchServe: {why}")
    concurrency = [int(c) for c in args.concurrency.split(",")]
    settings = parse_settings(args.ts_settings)
    backends = [b for b in args.gan_backends.split(",") if b]
    command = "python bench/torchserve.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    version_dir = max(
        (p for p in (args.models / args.model).iterdir() if p.is_dir()), key=lambda p: version_key(p.name)
    )
    reference = ModelRepository(args.models, backend="torchscript").load_version(version_dir)

    work = Path(tempfile.mkdtemp(prefix="bench-torchserve-"))
    servers = []
    ts = None
    try:
        # gan-server, one per backend
        gan_clients: dict[str, GanClient] = {}
        for backend in backends:
            srv = start_server(args.models, work / f"gan-{backend}.log", "--backend", backend)
            servers.append(srv)
            gan_clients[backend] = GanClient(srv.address)
        # TorchServe with one registration per setting
        ts = start_torchserve(work / "torchserve")
        build_mar(version_dir, ts.model_store, model_name=args.model)
        names = {}
        for workers, batch, delay in settings:
            names[(workers, batch, delay)] = ts.register(
                f"{args.model}.mar",
                f"{args.model}_w{workers}_b{batch}_d{delay}",
                workers=workers,
                batch_size=batch,
                max_batch_delay_ms=delay,
                wait=False,
            )
        for key, name in names.items():
            ts.wait_ready(name, key[0], timeout=300)
        pb2, pb2_grpc = grpc_stubs(work / "stubs")
        import grpc

        channel = grpc.insecure_channel(ts.grpc_inference_address)
        stub = pb2_grpc.InferenceAPIsServiceStub(channel)

        # 1. tuning
        print(f"tuning TorchServe over {len(settings)} settings x {concurrency} ...", file=sys.stderr)
        tuning: dict[tuple[tuple[int, int, int], int], float] = {}
        for c in concurrency:
            for setting, name in names.items():
                tuning[(setting, c)] = throughput(ts_rest_factory(ts, name), c, args.seconds)
                print(f"  {name} x{c}: {tuning[(setting, c)]:.0f} images/s", file=sys.stderr)
        best = {c: max(settings, key=lambda s: tuning[(s, c)]) for c in concurrency}
        unbatched = next((s for s in settings if s[1] == 1), min(settings, key=lambda s: s[1]))

        # 2. rounds
        systems: dict[str, dict[str, Callable]] = {}
        for backend, client in gan_clients.items():
            factory = gan_factory(client, args.model)
            systems[f"gan-server gRPC ({backend})"] = {"lat": factory, **{c: factory for c in concurrency}}
        systems["TorchServe REST"] = {
            "lat": ts_rest_factory(ts, names[unbatched]),
            **{c: ts_rest_factory(ts, names[best[c]]) for c in concurrency},
        }
        systems["TorchServe gRPC"] = {
            "lat": ts_grpc_factory(stub, pb2, names[unbatched], ts.inference_key),
            **{c: ts_grpc_factory(stub, pb2, names[best[c]], ts.inference_key) for c in concurrency},
        }
        res: dict[str, dict[str, list[float]]] = {
            s: {k: [] for k in ["p50", "p99", *(f"c{c}" for c in concurrency)]}
            for s in ["in-process TorchScript", *systems]
        }
        order = list(systems)
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr)
            p50, p99 = inprocess_latencies(reference, args.latency_requests)
            res["in-process TorchScript"]["p50"].append(p50)
            res["in-process TorchScript"]["p99"].append(p99)
            for system in order if r % 2 == 0 else order[::-1]:
                p50, p99 = latencies(systems[system]["lat"], args.latency_requests)
                res[system]["p50"].append(p50)
                res[system]["p99"].append(p99)
            for c in concurrency:
                for system in order if r % 2 == 0 else order[::-1]:
                    res[system][f"c{c}"].append(throughput(systems[system][c], c, args.seconds))
        channel.close()
        for client in gan_clients.values():
            client.close()
    finally:
        if ts is not None:
            ts.stop()
        for srv in servers:
            stop_server(srv)
        if args.keep_logs:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    # -- report
    import onnxruntime
    import torch
    import ts as ts_pkg

    print(f"### TorchServe vs gan-server: `{args.model}` version {version_dir.name} — {date.today().isoformat()}\n")
    print(
        f"Machine: {os.cpu_count()} cores ({cpu_name()}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"TorchServe {ts_pkg.__version__}, Java {java_version()}.\n"
    )
    print(f"Command: `{command}`\n")
    print(
        f"Median (min–max) over {args.rounds} interleaved rounds; {args.latency_requests} sequential requests per "
        f"latency figure, {args.seconds:g} s per throughput figure; 1 image per request, raw uint8 output.\n"
    )
    header = ["measurement", *res]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    print("| p50 latency, ms (concurrency 1) | " + " | ".join(med(res[s]["p50"], 2) for s in res) + " |")
    print("| p99 latency, ms (concurrency 1) | " + " | ".join(med(res[s]["p99"], 2) for s in res) + " |")
    for c in concurrency:
        print(f"| images/s, {c} concurrent clients | " + " | ".join(med(res[s][f"c{c}"]) for s in res) + " |")
    print()
    fmt = "workers {}, batch_size {}, max_batch_delay {} ms".format
    print(
        f"TorchServe latency rows: {fmt(*unbatched)}. Throughput rows: "
        + "; ".join(f"{c} clients: {fmt(*best[c])}" for c in concurrency)
        + ".\n"
    )
    print("TorchServe tuning (REST, images/s, one run each):\n")
    print("| workers:batch_size:max_batch_delay_ms | " + " | ".join(f"{c} clients" for c in concurrency) + " |")
    print("|---|" + "---|" * len(concurrency))
    for s in settings:
        print(f"| {s[0]}:{s[1]}:{s[2]} | " + " | ".join(f"{tuning[(s, c)]:,.0f}" for c in concurrency) + " |")
    print("\ngan-server: default flags (--workers 2, batching on, --batch-delay-ms 0, --max-batch 256).")


def java_version() -> str:
    import subprocess

    try:
        out = subprocess.run(["java", "-version"], check=False, capture_output=True, text=True, timeout=30).stderr
        return out.splitlines()[0].split('"')[1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


if __name__ == "__main__":
    main()
