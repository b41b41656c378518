"""Serving benchmarks: in-process ONNX Runtime vs the gRPC server.

    .venv/bin/python bench/serving.py --models models --model dcgan --rounds 5

Measures, interleaving the systems round by round (A B A B ...) because
these machines are noisy, and prints a Markdown report:

1. in-process images/s at batch 1, 64, 256 (LoadedModel.run, no gRPC);
2. gRPC images/s at n=256 and its ratio to in-process batch 256;
3. single-image p50/p99 latency, in process and through gRPC;
4. 64 concurrent clients asking 1 image each: throughput with dynamic
   batching on and off (two servers, same machine);
5. start-up: seconds from process start to SERVING with every bundled model,
   and resident memory after warm-up.

Each figure is the median over rounds with its min-max spread. Clients run
on the same machine as the server, so they compete for its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_client import AsyncGanClient, GanClient  # noqa: E402
from gan_contract.request import SampleSpec  # noqa: E402
from gan_server.repository import ModelRepository  # noqa: E402

from tests.conftest import start_server, stop_server  # noqa: E402


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):,.0f} ({min(xs):,.0f}–{max(xs):,.0f})"


def med_f(xs: list[float], digits: int = 2) -> str:
    return f"{statistics.median(xs):.{digits}f} ({min(xs):.{digits}f}–{max(xs):.{digits}f})"


def inprocess_rate(model, batch: int, seconds: float) -> float:
    plan = model.plan(SampleSpec(count=batch, seed=1))
    feeds, _ = model.feeds(plan, 0, batch)
    model.run(feeds)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model.run(feeds)
        n += batch
    return n / (time.perf_counter() - t0)


def inprocess_latencies(model, count: int) -> list[float]:
    out = []
    for i in range(count):
        t0 = time.perf_counter()
        plan = model.plan(SampleSpec(count=1, seed=i))
        model.generate(plan, 0, 1)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def grpc_rate(client: GanClient, model: str, n: int, seconds: float) -> float:
    client.sample(model, n=n, seed=0)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        done += len(client.sample(model, n=n, seed=done))
    return done / (time.perf_counter() - t0)


def grpc_latencies(client: GanClient, model: str, count: int) -> list[float]:
    out = []
    for i in range(count):
        t0 = time.perf_counter()
        client.sample(model, n=1, seed=i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def concurrent_rate(address: str, model: str, clients: int, seconds: float) -> float:
    async with AsyncGanClient(address) as ac:
        await ac.sample(model, n=1)
        stop = time.perf_counter() + seconds
        counts = [0] * clients

        async def worker(k: int) -> None:
            while time.perf_counter() < stop:
                await ac.sample(model, n=1, seed=k)
                counts[k] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        return sum(counts) / (time.perf_counter() - t0)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--model", default="dcgan")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="duration of each throughput measurement")
    ap.add_argument("--clients", type=int, default=64)
    args = ap.parse_args()
    logdir = Path(os.environ.get("TMPDIR", "/tmp"))

    repo = ModelRepository(args.models)
    repo.load_all()
    model = repo.get(args.model)

    t0 = time.perf_counter()
    on = start_server(args.models, logdir / "bench-on.log", "--batch-delay-ms", "0")
    startup = time.perf_counter() - t0
    off = start_server(args.models, logdir / "bench-off.log", "--no-batching")
    try:
        rss = rss_mb(on.process.pid)
        res: dict[str, list[float]] = {
            k: []
            for k in (
                "ip1",
                "ip64",
                "ip256",
                "g256",
                "ratio256",
                "ip_p50",
                "ip_p99",
                "g_p50",
                "g_p99",
                "c_on",
                "c_off",
                "c_ratio",
            )
        }
        with GanClient(on.address) as client:
            for _ in range(args.rounds):
                res["ip1"].append(inprocess_rate(model, 1, args.seconds))
                res["ip64"].append(inprocess_rate(model, 64, args.seconds))
                a = inprocess_rate(model, 256, args.seconds)
                b = grpc_rate(client, args.model, 256, args.seconds)
                res["ip256"].append(a)
                res["g256"].append(b)
                res["ratio256"].append(b / a)
                lat_ip = inprocess_latencies(model, 300)
                lat_g = grpc_latencies(client, args.model, 300)
                res["ip_p50"].append(float(np.percentile(lat_ip, 50)))
                res["ip_p99"].append(float(np.percentile(lat_ip, 99)))
                res["g_p50"].append(float(np.percentile(lat_g, 50)))
                res["g_p99"].append(float(np.percentile(lat_g, 99)))
                c_on = asyncio.run(concurrent_rate(on.address, args.model, args.clients, args.seconds))
                c_off = asyncio.run(concurrent_rate(off.address, args.model, args.clients, args.seconds))
                res["c_on"].append(c_on)
                res["c_off"].append(c_off)
                res["c_ratio"].append(c_on / c_off)
    finally:
        stop_server(on)
        stop_server(off)

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line_.split(":", 1)[1].strip()
            for line_ in Path("/proc/cpuinfo").read_text().splitlines()
            if line_.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    print(f"### Serving `{args.model}` — {date.today().isoformat()}\n")
    print(
        f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"onnxruntime {__import__('onnxruntime').__version__}. Command: "
        f"`python bench/serving.py --model {args.model} --rounds {args.rounds} --seconds {args.seconds} "
        f"--clients {args.clients}`. Median (min–max) over {args.rounds} interleaved rounds.\n"
    )
    print("| measurement | value |\n|---|---|")
    print(f"| in-process images/s, batch 1 | {med(res['ip1'])} |")
    print(f"| in-process images/s, batch 64 | {med(res['ip64'])} |")
    print(f"| in-process images/s, batch 256 | {med(res['ip256'])} |")
    print(f"| gRPC images/s, n=256 | {med(res['g256'])} |")
    print(f"| gRPC / in-process at 256 | {med_f(res['ratio256'])} |")
    print(f"| single image p50 ms, in process | {med_f(res['ip_p50'], 3)} |")
    print(f"| single image p50 ms, gRPC | {med_f(res['g_p50'], 3)} |")
    print(f"| single image p99 ms, in process | {med_f(res['ip_p99'], 3)} |")
    print(f"| single image p99 ms, gRPC | {med_f(res['g_p99'], 3)} |")
    print(f"| {args.clients} clients × 1 image, batching on, images/s | {med(res['c_on'])} |")
    print(f"| {args.clients} clients × 1 image, batching off, images/s | {med(res['c_off'])} |")
    print(f"| batching on / off | {med_f(res['c_ratio'])} |")
    print(f"| start-up to SERVING, s (all bundled models) | {startup:.2f} |")
    print(f"| server RSS after warm-up, MiB | {rss:.0f} |")


if __name__ == "__main__":
    main()
