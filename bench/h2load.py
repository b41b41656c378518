"""Per-request cost of gan-server under h2load: req/s, latency and server CPU per request.

    .venv/bin/python bench/h2load.py --model dcgan --rounds 3
    .venv/bin/python bench/h2load.py --system before=/path/to/other/checkout --system after=. --floor

Builds the gRPC body of one gan.v1 ``Sample`` call (a ``SampleRequest`` for
``--model``, ``--count`` images, framed as gRPC: flag byte 0, 4-byte
big-endian length, message) as an h2load data file, starts one gan-server per
system on 127.0.0.1 (``--port 0``, ``--server-args``, by default with metrics
and the access log on) and runs ``h2load`` against
``/gan.v1.Generator/Sample`` with ``content-type: application/grpc`` and
``te: trailers`` at each concurrency (c <= 8: c connections x 1 stream;
higher: ``--connections`` connections x c/connections streams). Systems are
interleaved run by run (A B A B ...) because these machines are noisy.

For every run it reports req/s (h2load), mean and p99 latency (from h2load's
per-request log) and the server's CPU per request: utime + stime of the
server process from /proc/<pid>/stat before and after the run, divided by the
number of requests. A run counts only if every request succeeded: h2load
sees HTTP 200 (gRPC's status travels in trailers, which h2load does not
read), so the server's ``gan_requests_total{code="OK"}`` must also have grown
by exactly the number of requests and the access log must hold one OK line
per request; a few calls through the SDK (``GanClient``) must succeed too.

``--floor`` adds a reference server: grpc.aio with one handler that parses
the request and returns a prebuilt response of the same size (no model, no
interceptors, no logs): what grpc.aio itself costs per call in Python.
``--profile DIR`` then samples each server with py-spy during one extra run
at the highest concurrency and prints the top functions (self and
inclusive). Needs ``h2load`` (Debian ``nghttp2-client``; ``make
bench-h2load`` installs it) and, for ``--profile``, ``py-spy``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _sub in ("sdk", "serving", "training"):
    sys.path.insert(0, str(ROOT / _sub))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import procs  # noqa: E402
from gan_contract.proto.gan.v1 import generator_pb2 as pb  # noqa: E402
from procs import machine  # noqa: E402

METHOD = "/gan.v1.Generator/Sample"
LISTENING = "gan-server listening on "
PY_SPY_RATE = 200  # samples per second


def grpc_frame(message: bytes) -> bytes:
    """One uncompressed gRPC message: flag 0, big-endian length, bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def request_body(model: str, count: int, seed: int = 0) -> bytes:
    return grpc_frame(pb.SampleRequest(model=model, count=count, seed=seed).SerializeToString())


# --------------------------------------------------------------------------- floor server


async def _serve_floor(host: str, count: int) -> None:
    import grpc

    response = pb.SampleResponse(
        model="floor",
        version="1",
        count=count,
        image=pb.ImageSpec(height=28, width=28, channels=1),
        images=bytes(784 * count),
        classes=[-1] * count,
    )

    async def sample(request: pb.SampleRequest, context: grpc.aio.ServicerContext) -> pb.SampleResponse:
        return response

    handler = grpc.unary_unary_rpc_method_handler(
        sample,
        request_deserializer=pb.SampleRequest.FromString,
        response_serializer=pb.SampleResponse.SerializeToString,
    )
    server = grpc.aio.server()
    handlers = {"Sample": handler}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("gan.v1.Generator", handlers),))
    server.add_registered_method_handlers("gan.v1.Generator", handlers)
    port = server.add_insecure_port(f"{host}:0")
    await server.start()
    print(f"{LISTENING}{host}:{port} serving floor", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    label: str
    process: subprocess.Popen
    address: str
    line: str
    log_path: Path
    floor: bool = False
    sample_calls: int = 0  # Sample calls sent so far (each must leave one OK access-log line)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def metrics_url(self) -> str | None:
        words = self.line.split()
        if "metrics" in words:
            return f"http://{words[words.index('metrics') + 2]}/metrics"
        return None

    def cpu_seconds(self) -> float:
        return procs.cpu_seconds(self.pid)

    def thread_cpu(self) -> dict[str, float]:
        """CPU seconds by thread: the main thread, then by OS thread name (digits dropped)."""
        out: dict[str, float] = collections.defaultdict(float)
        for name, seconds in procs.thread_cpu(self.pid, main="main (event loop)").items():
            if name == "python":
                name = "other Python threads (inference, ORT, logs, metrics)"
            out[name] += seconds
        return out

    def ok_calls(self) -> int | None:
        if self.metrics_url is None:
            return None
        text = urllib.request.urlopen(self.metrics_url, timeout=10).read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("gan_requests_total{") and 'code="OK"' in line and 'method="Sample"' in line:
                total += float(line.rpartition(" ")[2])
        return int(total)

    def ok_log_lines(self) -> int:
        n = 0
        with open(self.log_path, "rb") as f:
            for line in f:
                if b"rpc Sample " in line and b"code=OK" in line:
                    n += 1
        return n


def start(label: str, root: Path | None, models: Path, server_args: list[str], logdir: Path, count: int) -> Server:
    log_path = logdir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', label)}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if root is None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-floor", "--count", str(count)]
    else:
        env["PYTHONPATH"] = os.pathsep.join(str(root / s) for s in ("sdk", "serving", "training"))
        cmd = [sys.executable, "-m", "gan_server", "--models", str(models), "--host", "127.0.0.1", "--port", "0"]
        cmd += server_args
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env, cwd=root or ROOT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    line = b""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(LISTENING.encode()) or proc.poll() is not None:
            break
    if not line.startswith(LISTENING.encode()):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{label}: server did not start: {log_path.read_text(errors='replace')[-2000:]}")
    text = line.decode().strip()
    return Server(label, proc, text.split()[3], text, log_path, floor=root is None)


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    if server.process.stdout:
        server.process.stdout.close()


# --------------------------------------------------------------------------- h2load


@dataclass
class Run:
    rps: float
    mean_ms: float
    p99_ms: float
    cpu_ms: float  # server CPU per request
    threads: dict[str, float] = field(default_factory=dict)  # CPU ms per request by thread name


def shape(concurrency: int, connections: int) -> tuple[int, int]:
    """(connections, streams per connection) for a concurrency."""
    if concurrency <= 8:
        return concurrency, 1
    conns = min(connections, concurrency)
    if concurrency % conns:
        raise SystemExit(f"--concurrency {concurrency} is not a multiple of --connections {connections}")
    return conns, concurrency // conns


def h2load(
    address: str,
    data: Path,
    requests: int,
    concurrency: int,
    connections: int,
    logfile: Path,
    path: str = METHOD,
    headers: tuple[str, ...] = (),
    timeout: float = 600,
) -> str:
    """One h2load run of ``requests`` gRPC calls to ``path`` (body from ``data``); its stdout."""
    conns, streams = shape(concurrency, connections)
    logfile.unlink(missing_ok=True)  # h2load appends
    cmd = [
        "h2load",
        "-n",
        str(requests),
        "-c",
        str(conns),
        "-m",
        str(streams),
        "-d",
        str(data),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        *(arg for h in headers for arg in ("-H", h)),
        "--log-file",
        str(logfile),
        f"http://{address}{path}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"h2load failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    return out.stdout


def parse(stdout: str, logfile: Path, requests: int) -> tuple[float, float, float]:
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", stdout)
    s = re.search(r"status codes: (\d+) 2xx", stdout)
    if not m or not s or int(m.group(4)) != requests or int(s.group(1)) != requests:
        raise RuntimeError(f"not every request succeeded:\n{stdout}")
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", stdout).group(1))
    durations = []
    for row in logfile.read_text().splitlines():
        cols = row.split("\t")
        if cols[1] != "200":
            raise RuntimeError(f"a request answered HTTP {cols[1]}")
        durations.append(int(cols[2]) / 1000.0)
    durations.sort()
    p99 = durations[min(len(durations) - 1, int(round(0.99 * (len(durations) - 1))))]
    return rps, statistics.fmean(durations), p99


def data_bytes(stdout: str) -> int:
    """Bytes of DATA frame payload h2load received (gRPC messages with their 5-byte prefixes)."""
    return int(re.search(r"traffic: .*?, [\d.]+[KMG]?B \((\d+)\) data", stdout).group(1))


def check_with_sdk(server: Server, model: str, count: int) -> None:
    if server.floor:
        return
    from gan_client import GanClient

    with GanClient(server.address, timeout=30, retry=False) as client:
        for seed in range(3):
            server.sample_calls += 1
            result = client.sample(model, n=count, seed=seed)
            if len(result) != count:
                raise RuntimeError(f"{server.label}: the SDK got {len(result)} images, asked for {count}")


def wait_for_log(server: Server, expected: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        n = server.ok_log_lines()
        if n >= expected or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def measure(server: Server, data: Path, args: argparse.Namespace, concurrency: int, tmp: Path) -> Run:
    ok_before = server.ok_calls()
    # The lines of earlier calls (warm-up, SDK checks) are written first.
    log_before = wait_for_log(server, server.sample_calls) if not server.floor and args.check_log else 0
    server.sample_calls += args.requests
    logfile = tmp / "h2load.log"
    threads0, cpu0 = server.thread_cpu(), server.cpu_seconds()
    stdout = h2load(server.address, data, args.requests, concurrency, args.connections, logfile)
    cpu1, threads1 = server.cpu_seconds(), server.thread_cpu()
    threads = {k: (v - threads0.get(k, 0.0)) * 1000.0 / args.requests for k, v in threads1.items()}
    rps, mean_ms, p99_ms = parse(stdout, logfile, args.requests)
    if ok_before is not None:
        got = server.ok_calls() - ok_before
        if got != args.requests:
            raise RuntimeError(f"{server.label}: {got} OK calls counted by the server, h2load sent {args.requests}")
    if not server.floor and args.check_log:
        got = wait_for_log(server, server.sample_calls) - log_before
        if got != args.requests:
            raise RuntimeError(f"{server.label}: {got} OK access-log lines, h2load sent {args.requests}")
    check_with_sdk(server, args.model, args.count)
    return Run(rps, mean_ms, p99_ms, (cpu1 - cpu0) * 1000.0 / args.requests, threads)


# --------------------------------------------------------------------------- profile


def profile(server: Server, data: Path, args: argparse.Namespace, tmp: Path, outdir: Path) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    raw = outdir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', server.label)}.folded"
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    cmd = [
        spy,
        "record",
        "-p",
        str(server.pid),
        "-r",
        "200",
        "--nolineno",
        "--gil",
        *args.py_spy_flags,
        "-f",
        "raw",
        "-o",
        str(raw),
    ]
    rec = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    h2load(server.address, data, args.profile_requests, max(args.concurrency), args.connections, tmp / "p.log")
    server.sample_calls += args.profile_requests
    rec.send_signal(signal.SIGINT)
    _, err = rec.communicate(timeout=60)
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-2000:]}")
    return raw


def summarize_profile(raw: Path, top: int, rate: int = PY_SPY_RATE, requests: int | None = None) -> str:
    """Top functions of py-spy's folded stacks: self time, then inclusive time.

    The samples are taken only while a thread holds the GIL (``--gil``), so
    they measure Python (and Cython) work; ``Handle._run`` self time is
    grpc's Cython code run from the event loop. Frames on nearly every stack
    (the event loop's own, click, runpy) are left out of the inclusive table.
    """
    self_counts: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        self_counts[_short(frames[-1])] += count
        for name in {_short(f) for f in frames}:
            incl[name] += count
    per_request = f", {1000 * total / rate / requests:.3f} ms per request" if requests else ""
    lines = [f"GIL-holding samples: {total} at {rate} Hz{per_request}", "", "| self % | function |", "|---|---|"]
    lines += [f"| {100 * c / total:.1f} | `{name}` |" for name, c in self_counts.most_common(top)]
    lines += ["", "| inclusive % | function |", "|---|---|"]
    below = [(name, c) for name, c in incl.most_common() if c < 0.9 * total]
    lines += [f"| {100 * c / total:.1f} | `{name}` |" for name, c in below[:top]]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``fn (path/to/site-packages/pkg/mod.py)`` -> ``fn (pkg/mod.py)``."""
    m = re.match(r"(.*) \((.*)\)$", frame)
    if not m:
        return frame
    fn, path = m.groups()
    parts = Path(path).parts
    for anchor in ("site-packages", "serving", "sdk", "lib"):
        if anchor in parts:
            parts = parts[len(parts) - parts[::-1].index(anchor) :]
            break
    return f"{fn} ({'/'.join(parts[-3:])})"


# --------------------------------------------------------------------------- report


def med(xs: list[float], digits: int) -> str:
    return f"{statistics.median(xs):,.{digits}f} ({min(xs):,.{digits}f}–{max(xs):,.{digits}f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--model", default="dcgan")
    ap.add_argument("--count", type=int, default=1, help="images per request")
    ap.add_argument("--requests", type=int, default=4000, help="requests per h2load run")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--connections", type=int, default=4, help="connections for concurrency above 8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--system",
        action="append",
        default=[],
        metavar="LABEL=CHECKOUT",
        help="a checkout whose sdk/serving/training go on PYTHONPATH (repeat to compare; default: this one)",
    )
    ap.add_argument(
        "--system-args",
        action="append",
        default=[],
        metavar="LABEL=FLAGS",
        help="extra gan-server flags for one system's label (e.g. quiet='--log-level warning')",
    )
    ap.add_argument("--floor", action="store_true", help="add the empty-handler grpc.aio reference server")
    ap.add_argument("--server-args", default="--metrics-port 0", help="gan-server flags for every system")
    ap.add_argument("--no-check-log", dest="check_log", action="store_false", help="skip the access-log count")
    ap.add_argument("--warmup", type=int, default=1000, help="requests per server before measuring")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR", help="py-spy each server; folded stacks here")
    ap.add_argument("--profile-requests", type=int, default=20000)
    ap.add_argument(
        "--py-spy-flag", dest="py_spy_flags", action="append", default=[], help="extra py-spy record flag (--native)"
    )
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.serve_floor:
        asyncio.run(_serve_floor("127.0.0.1", args.count))
        return
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install nghttp2-client (or `make bench-h2load` as root)")

    systems: list[tuple[str, Path | None]] = []
    for spec in args.system or [f"this={ROOT}"]:
        label, _, path = spec.partition("=")
        systems.append((label, Path(path or ".").resolve()))
    if args.floor:
        systems.append(("floor", None))

    tmp = Path(tempfile.mkdtemp(prefix="h2load-"))
    data = tmp / "sample.bin"
    data.write_bytes(request_body(args.model, args.count))
    server_args = shlex.split(args.server_args)
    extra = {label: shlex.split(flags) for label, _, flags in (a.partition("=") for a in args.system_args)}
    servers: list[Server] = []
    results: dict[tuple[str, int], list[Run]] = collections.defaultdict(list)
    profiles: dict[str, Path] = {}
    try:
        for label, root in systems:
            servers.append(
                start(label, root, args.models.resolve(), server_args + extra.get(label, []), tmp, args.count)
            )
        load_start = os.getloadavg()[0]
        for s in servers:
            check_with_sdk(s, args.model, args.count)
            h2load(s.address, data, args.warmup, max(args.concurrency), args.connections, tmp / "w.log")
            s.sample_calls += args.warmup
        for r in range(args.rounds):
            for c in args.concurrency:
                order = servers if r % 2 == 0 else servers[::-1]
                for s in order:
                    run = measure(s, data, args, c, tmp)
                    results[(s.label, c)].append(run)
                    print(
                        f"round {r + 1} c={c} {s.label}: {run.rps:,.0f} req/s, mean {run.mean_ms:.2f} ms, "
                        f"p99 {run.p99_ms:.2f} ms, CPU {run.cpu_ms:.3f} ms/req",
                        file=sys.stderr,
                        flush=True,
                    )
        if args.profile:
            for s in servers:
                profiles[s.label] = profile(s, data, args, tmp, args.profile)
    finally:
        for s in servers:
            stop(s)
        shutil.rmtree(tmp, ignore_errors=True)

    load_end = os.getloadavg()[0]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python bench/h2load.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"### gan-server under h2load — {when}\n")
    print(
        f"Machine: {machine()}. Command: `{command}`. Model `{args.model}`, {args.count} image(s) per request, "
        f"{args.requests} requests per run, server flags `{args.server_args}`. Median (min–max) over "
        f"{args.rounds} rounds, systems interleaved. CPU = server utime+stime per request. "
        f"Load average (1 min) {load_start:.1f} at the start, {load_end:.1f} at the end.\n"
    )
    print("| system | c | req/s | mean ms | p99 ms | server CPU ms/request |\n|---|---|---|---|---|---|")
    for c in args.concurrency:
        for label, _ in systems:
            runs = results[(label, c)]
            print(
                f"| {label} | {c} | {med([x.rps for x in runs], 0)} | {med([x.mean_ms for x in runs], 2)} | "
                f"{med([x.p99_ms for x in runs], 2)} | {med([x.cpu_ms for x in runs], 3)} |"
            )
    c = max(args.concurrency)
    names = sorted({k for label, _ in systems for x in results[(label, c)] for k in x.threads})
    print(f"\nServer CPU ms/request by thread at c={c} (median over rounds; threads that exited are not counted):\n")
    print("| thread | " + " | ".join(label for label, _ in systems) + " |")
    print("|---|" + "---|" * len(systems))
    for name in names:
        cells = [statistics.median([x.threads.get(name, 0.0) for x in results[(label, c)]]) for label, _ in systems]
        if max(cells) >= 0.0005:
            print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    for label, raw in profiles.items():
        print(f"\n#### py-spy: {label}, c={max(args.concurrency)}, {args.profile_requests} requests\n")
        print(summarize_profile(raw, args.top, requests=args.profile_requests))


if __name__ == "__main__":
    main()
