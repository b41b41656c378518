"""GPU serving benchmark: the torchscript backend's device path, in process and through gan-server.

    bench/gpu.sh                                   # on the GPU machine: checks the environment, runs this
    python bench/gpu.py --device cpu --quick       # a dry run anywhere (tiny rounds)

The model is the bundled ``dcgan`` (MNIST 28x28) copied into a temporary
repository twice: as ``dcgan`` (per-image latent scheme, numpy draws) and as
``dcgan-v`` (``"latent_scheme": "philox4x32-vectorised"``, drawn on the
device). Measurements, each the median (min-max) over ``--rounds`` rounds,
the cases interleaved within a round:

1. in process, images/s of ``LoadedModel.run_chunks`` on ``dcgan-v`` (codes
   drawn on the device, inputs, generator, uint8 on the device, the copy to
   the host, synchronised) at each ``--batches`` and ``--precisions``, and of
   the generator alone on inputs already on the device; ``dcgan`` (numpy
   codes copied over) at fp32 for comparison;
2. end to end through ``gan-server --backend torchscript --device D
   --max-batch 4096``: images/s at n = each ``--e2e-batches``, with
   ``--clients`` client processes on the real SDK (``GanClient.sample``);
3. ``--concurrency`` (64) concurrent single-image requests (AsyncGanClient,
   spread over the client processes): requests/s with batching on
   (``--batch-delay-ms 0`` and ``2``) and off (``--no-batching``), and the
   ratio on / off.

Writes ``gpu.json`` and ``gpu.md`` to ``--out`` (default: $OUT, else
bench/out/) after every section, so a run cut short keeps what it measured.
Clients and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _sub in ("sdk", "serving", "training"):
    if str(ROOT / _sub) not in sys.path:
        sys.path.insert(0, str(ROOT / _sub))

VECTORISED = "philox4x32-vectorised"
TARGET_E2E = 300_000  # MNIST images/s end to end at batch 4096
TARGET_BATCHING = 5.0  # batching on / off, concurrent single-image requests


# -- the model repository ------------------------------------------------------------


def make_repo(models: Path, dest: Path, source: str = "dcgan") -> Path:
    """``dest`` with ``dcgan`` as bundled and ``dcgan-v`` under the vectorised scheme."""
    src = models / source / "1"
    shutil.copytree(src, dest / "dcgan" / "1")
    shutil.copytree(src, dest / "dcgan-v" / "1")
    path = dest / "dcgan-v" / "1" / "manifest.json"
    data = json.loads(path.read_text())
    data["latent_scheme"] = VECTORISED
    data["name"] = "dcgan-v"
    path.write_text(json.dumps(data, indent=2))
    return dest


# -- statistics ----------------------------------------------------------------------


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


def fmt(s: dict | None) -> str:
    if not s:
        return "–"
    return f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})"


# -- 1. in process -------------------------------------------------------------------


def _rate(fn, sync, seconds: float, per_call: int, min_calls: int = 3) -> float:
    sync()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        if n >= min_calls and time.perf_counter() - t0 >= seconds:
            break
    sync()
    return n * per_call / (time.perf_counter() - t0)


def inprocess(args, repo: Path, report: dict, save) -> None:
    import torch
    from gan_contract.request import SampleSpec, batch_inputs
    from gan_server.repository import ModelRepository

    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    cases = []  # (label, model, precision, batch, kind)
    for precision in args.precisions:
        repo_p = ModelRepository(repo, backend="torchscript", device=args.device, precision=precision)
        for name in ("dcgan-v", "dcgan"):
            if name == "dcgan" and precision != "fp32":
                continue
            model = repo_p.load_version(repo / name / "1")
            for batch in args.batches:
                plans = [model.plan(SampleSpec(count=batch, seed=s)) for s in range(8)]
                kinds = ("device path", "generator only") if name == "dcgan-v" else ("device path",)
                for kind in kinds:
                    cases.append((name, model, precision, batch, kind, plans))
    results: dict[tuple, list[float]] = {}

    def call(case):
        name, model, precision, batch, kind, plans = case
        if kind == "generator only":
            feeds, _ = batch_inputs(model.manifest, [(plans[0], 0, batch)], device=model.backend.device)
            return lambda: model.backend.forward(feeds)
        counter = iter(range(10**12))
        return lambda: model.run_chunks([(plans[next(counter) % len(plans)], 0, batch)])

    calls = [call(c) for c in cases]
    for fn in calls:  # warm-up: kernels chosen and loaded for every shape
        for _ in range(3):
            fn()
    sync()
    for _ in range(args.rounds):
        for case, fn in zip(cases, calls):
            name, _, precision, batch, kind, _ = case
            rate = _rate(fn, sync, args.seconds, batch)
            results.setdefault((name, precision, batch, kind), []).append(rate)
    report["inprocess"] = [
        {"model": k[0], "precision": k[1], "batch": k[2], "what": k[3], "images_per_s": summary(v)}
        for k, v in results.items()
    ]
    if device.type == "cuda":
        report["environment"]["inprocess_peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    save()


# -- servers and clients -------------------------------------------------------------


class Server:
    def __init__(self, repo: Path, log: Path, *flags: str, timeout: float = 180.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / s) for s in ("sdk", "serving", "training")] + [env.get("PYTHONPATH", "")]
        )
        cmd = [sys.executable, "-m", "gan_server", "--models", str(repo), "--host", "127.0.0.1", "--port", "0", *flags]
        self.flags = flags
        self.log = log
        self._log_file = open(log, "wb")
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log_file, env=env)
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith(b"gan-server listening on ") or self.process.poll() is not None:
                break
        if not line.startswith(b"gan-server listening on "):
            self.stop()
            raise RuntimeError(f"gan-server {' '.join(flags)} did not start: {log.read_text(errors='replace')[-1500:]}")
        self.address = line.split()[3].decode()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self._log_file.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _client_init() -> None:
    import gan_client  # noqa: F401  (imports paid before the first measurement)


def _bulk_worker(address: str, model: str, n: int, seconds: float, seed: int) -> tuple[int, float, float]:
    """Images received in about ``seconds`` of back-to-back ``sample(n)`` calls: (images, start, end)."""
    from gan_client import GanClient

    with GanClient(address) as client:
        done, t0 = 0, time.time()
        while time.time() - t0 < seconds:
            result = client.sample(model, n=n, seed=seed + done)
            assert result.images.shape[0] == n
            done += n
        return done, t0, time.time()


def _concurrent_worker(address: str, model: str, coroutines: int, seconds: float) -> tuple[int, float, float]:
    """Single-image requests answered with ``coroutines`` in flight for about ``seconds``."""
    from gan_client import AsyncGanClient

    async def go() -> tuple[int, float, float]:
        async with AsyncGanClient(address) as client:
            await client.sample(model, n=1)
            counts = [0] * coroutines
            t0 = time.time()
            stop = t0 + seconds

            async def one(k: int) -> None:
                while time.time() < stop:
                    await client.sample(model, n=1, seed=k * 1_000_000 + counts[k])
                    counts[k] += 1

            await asyncio.gather(*(one(k) for k in range(coroutines)))
            return sum(counts), t0, time.time()

    return asyncio.run(go())


def _spread(pool: ProcessPoolExecutor, workers: int, fn, *args) -> float:
    """Run ``fn`` in ``workers`` client processes at once; the total per second, over the whole span."""
    futures = [pool.submit(fn, *args) for _ in range(workers)]
    parts = [f.result() for f in futures]
    total = sum(p[0] for p in parts)
    return total / (max(p[2] for p in parts) - min(p[1] for p in parts))


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# -- 2. end to end, large requests ----------------------------------------------------


def end_to_end(args, repo: Path, logdir: Path, pool: ProcessPoolExecutor, report: dict, save) -> None:
    report["end_to_end"] = []
    max_batch = max(args.e2e_batches)
    for precision in args.e2e_precisions:
        flags = ["--backend", "torchscript", "--device", args.device, "--precision", precision]
        flags += ["--max-batch", str(max_batch), "--max-count", str(max_batch), "--workers", str(args.server_workers)]
        with Server(repo, logdir / f"e2e-{precision}.log", *flags) as srv:
            for n in args.e2e_batches:  # warm-up: each batch shape once, and every client process up
                _spread(pool, args.clients, _bulk_worker, srv.address, "dcgan-v", n, 0.2, 0)
            rates: dict[int, list[float]] = {n: [] for n in args.e2e_batches}
            for _ in range(args.rounds):
                for n in args.e2e_batches:
                    rates[n].append(
                        _spread(pool, args.clients, _bulk_worker, srv.address, "dcgan-v", n, args.e2e_seconds, 0)
                    )
        for n, values in rates.items():
            report["end_to_end"].append(
                {
                    "model": "dcgan-v",
                    "precision": precision,
                    "batch": n,
                    "clients": args.clients,
                    "server_flags": " ".join(flags),
                    "images_per_s": summary(values),
                }
            )
        save()


# -- 3. concurrent single images, batching on and off ----------------------------------


def concurrency(args, repo: Path, logdir: Path, pool: ProcessPoolExecutor, report: dict, save) -> None:
    base = ["--backend", "torchscript", "--device", args.device, "--workers", str(args.server_workers)]
    settings = {
        "batching on, --batch-delay-ms 0": ["--batch-delay-ms", "0"],
        "batching on, --batch-delay-ms 2": ["--batch-delay-ms", "2"],
        "batching off (--no-batching)": ["--no-batching"],
    }
    procs = min(args.clients, args.concurrency)
    servers = {}
    try:
        for label, flags in settings.items():
            servers[label] = Server(repo, logdir / f"conc-{len(servers)}.log", *base, *flags)
        rates: dict[str, list[float]] = {label: [] for label in settings}
        per_proc = _split(args.concurrency, procs)

        def measure(srv: Server, seconds: float) -> float:
            futures = [pool.submit(_concurrent_worker, srv.address, "dcgan-v", c, seconds) for c in per_proc if c]
            parts = [f.result() for f in futures]
            return sum(p[0] for p in parts) / (max(p[2] for p in parts) - min(p[1] for p in parts))

        for srv in servers.values():
            measure(srv, 0.3)  # warm-up
        for _ in range(args.rounds):
            for label, srv in servers.items():
                rates[label].append(measure(srv, args.e2e_seconds))
    finally:
        for srv in servers.values():
            srv.stop()
    off = rates["batching off (--no-batching)"]
    report["concurrent"] = {
        "model": "dcgan-v",
        "concurrency": args.concurrency,
        "client_processes": procs,
        "server_flags": " ".join(base),
        "requests_per_s": {label: summary(v) for label, v in rates.items()},
        "on_over_off": {
            label: summary([a / b for a, b in zip(v, off)]) for label, v in rates.items() if "off" not in label
        },
    }
    save()


# -- report ----------------------------------------------------------------------------


def environment(args) -> dict:
    import numpy
    import torch

    env = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "device": args.device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cpu_cores": os.cpu_count(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    try:
        import grpc

        env["grpcio"] = grpc.__version__
    except ImportError:
        pass
    if args.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = props.name
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    try:
        env["commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return env


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [f"### GPU serving, `dcgan` (MNIST 28×28) — {env['date']}", ""]
    machine = env.get("gpu", "CPU only")
    lines.append(
        f"Machine: {machine}, {env['cpu_cores']} cores; Python {env['python']}, torch {env['torch']}"
        + (f", CUDA {env['cuda']}, cuDNN {env['cudnn']}" if "cuda" in env else "")
        + f". Command: `{env['command']}`. Median (min–max) over rounds."
    )
    lines.append("")
    if report.get("inprocess"):
        lines += ["In process (`LoadedModel.run_chunks`, synchronised), images/s:", ""]
        lines += ["| model | what | precision | batch | images/s |", "|---|---|---|---|---|"]
        for r in report["inprocess"]:
            lines.append(f"| {r['model']} | {r['what']} | {r['precision']} | {r['batch']} | {fmt(r['images_per_s'])} |")
        lines.append("")
    if report.get("end_to_end"):
        lines += ["End to end through gan-server (SDK clients), images/s:", ""]
        lines += ["| precision | n per request | client processes | images/s |", "|---|---|---|---|"]
        for r in report["end_to_end"]:
            lines.append(f"| {r['precision']} | {r['batch']} | {r['clients']} | {fmt(r['images_per_s'])} |")
        lines.append("")
    conc = report.get("concurrent")
    if conc:
        lines += [
            f"{conc['concurrency']} concurrent single-image requests ({conc['client_processes']} client processes), "
            "requests/s:",
            "",
            "| server | requests/s | on / off |",
            "|---|---|---|",
        ]
        for label, s in conc["requests_per_s"].items():
            ratio = conc["on_over_off"].get(label)
            ratio_text = f"{ratio['median']:.2f} ({ratio['min']:.2f}–{ratio['max']:.2f})" if ratio else "–"
            lines.append(f"| {label} | {fmt(s)} | {ratio_text} |")
        lines.append("")
    lines += ["Targets:", ""]
    for t in report.get("targets", []):
        lines.append(f"- {t}")
    if report.get("errors"):
        lines += ["", "Errors:", ""] + [f"- {e}" for e in report["errors"]]
    return "\n".join(lines) + "\n"


def targets(report: dict) -> list[str]:
    out = []
    e2e = [r for r in report.get("end_to_end", []) if r["batch"] == 4096]
    if e2e:
        best = max(e2e, key=lambda r: r["images_per_s"]["median"])
        got = best["images_per_s"]["median"]
        verdict = "met" if got >= TARGET_E2E else "missed"
        out.append(f"end to end at batch 4096 ≥ {TARGET_E2E:,} images/s: {verdict} ({got:,.0f}, {best['precision']})")
    else:
        out.append(f"end to end at batch 4096 ≥ {TARGET_E2E:,} images/s: not measured in this run")
    conc = report.get("concurrent")
    if conc and conc["on_over_off"]:
        label, best = max(conc["on_over_off"].items(), key=lambda kv: kv[1]["median"])
        verdict = "met" if best["median"] >= TARGET_BATCHING else "missed"
        out.append(f"batching on / off ≥ {TARGET_BATCHING:g}×: {verdict} ({best['median']:.2f}×, {label})")
    else:
        out.append(f"batching on / off ≥ {TARGET_BATCHING:g}×: not measured in this run")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument(
        "--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "bench" / "out"
    )
    ap.add_argument("--quick", action="store_true", help="tiny rounds and batches: a dry run (CPU)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.6, help="per in-process measurement")
    ap.add_argument("--e2e-seconds", type=float, default=2.5, help="per end-to-end measurement")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 256, 4096])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "fp16"])
    ap.add_argument("--e2e-batches", type=int, nargs="+", default=[256, 4096])
    ap.add_argument("--e2e-precisions", nargs="+", default=["fp32", "fp16"])
    ap.add_argument("--clients", type=int, default=max(2, min(8, (os.cpu_count() or 4) // 2)), help="client processes")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--server-workers", type=int, default=2, help="gan-server --workers")
    ap.add_argument("--skip", nargs="*", default=[], choices=["inprocess", "e2e", "concurrent"])
    ap.add_argument("--budget-s", type=float, default=360.0, help="skip sections that would start after this")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.e2e_seconds = 2, 0.2, 0.6
        args.batches, args.e2e_batches, args.clients = [1, 64, 256], [64, 256], 2
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"environment": environment(args), "errors": []}

    def save() -> None:
        report["targets"] = targets(report)
        report["seconds"] = round(time.monotonic() - started, 1)
        (args.out / "gpu.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / "gpu.md").write_text(markdown(report))

    save()
    with tempfile.TemporaryDirectory(prefix="gan-gpu-bench-") as tmp:
        repo = make_repo(args.models, Path(tmp) / "models")
        logdir = args.out / "logs"
        logdir.mkdir(exist_ok=True)
        sections = [("inprocess", lambda: inprocess(args, repo, report, save))]
        pool = ProcessPoolExecutor(max_workers=args.clients, mp_context=get_context("spawn"), initializer=_client_init)
        sections += [
            ("e2e", lambda: end_to_end(args, repo, logdir, pool, report, save)),
            ("concurrent", lambda: concurrency(args, repo, logdir, pool, report, save)),
        ]
        try:
            for name, run in sections:
                if name in args.skip:
                    continue
                elapsed = time.monotonic() - started
                if elapsed > args.budget_s:
                    report["errors"].append(
                        f"{name}: skipped, {elapsed:.0f} s of the {args.budget_s:.0f} s budget used"
                    )
                    continue
                t0 = time.monotonic()
                print(f"[gpu bench] {name} ...", flush=True)
                try:
                    run()
                except Exception as exc:  # noqa: BLE001 - one failed section must not lose the others
                    report["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
                print(f"[gpu bench] {name} done in {time.monotonic() - t0:.0f} s", flush=True)
                save()
        finally:
            pool.shutdown(cancel_futures=True)
    save()
    print(markdown(report))
    print(f"[gpu bench] wrote {args.out / 'gpu.json'} and {args.out / 'gpu.md'}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
