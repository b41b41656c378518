"""gan-server under transport attacks: memory, CPU and normal callers' latency while a hostile peer works.

    .venv/bin/python bench/attacks.py                      # all six attacks, full size (about 7 minutes)
    .venv/bin/python bench/attacks.py --only headers reset --seconds 5 --requests 1000
    .venv/bin/python bench/attacks.py --scale 0.1 --out /tmp/attacks.json

Each attack gets a fresh gan-server on 127.0.0.1 (``--port 0``, a temporary
repository holding only the bundled ``dcgan``, ``--metrics-port 0``, text
logs) with the default limits; the flags an attack needs on top are printed
with it (``--token-file`` for the two upload attacks, ``--idle-timeout 10``
for the idle connections, so that they end within the bench). The hostile
peer is tests/security/h2raw.py (the ``h2`` library over plain sockets),
multiplexed over many connections with ``poll``; the normal callers are
``h2load`` as driven by bench/h2load.py (``-c 8 -m 8`` = 64 concurrent unary
``Sample`` calls of ``--count`` images, ``--requests`` of them).

Per attack, in order: a warm-up and a **baseline** run of the unary load on
the idle server; then the attack, with the unary load started once the
attack is in place (all its connections and streams are open); then 30 s of
rest. The attacks (their sizes are the ones a hostile peer used before the
limits existed; ``--scale`` shrinks the counts, and the table says what ran):

1. ``headers``: 40 connections x 100 streams (the advertised limit) that
   send HEADERS for Sample and nothing else, each re-opened as soon as it is
   answered, for ``--seconds`` (default 30).
2. ``reset``: 50,000 streams opened and at once reset (RST_STREAM CANCEL)
   over 10 connections, as fast as the peer can.
3. ``upload-no-token``: server with ``--token-file``; 24 connections, one
   call each without a token that announces a 4,000,000-byte message and
   sends 3,000,000 bytes of it (as far as HTTP/2 flow control lets it),
   then stalls.
4. ``upload-token``: the same 24 uploads with the token: they stall until the
   server answers them (DEADLINE_EXCEEDED after ``--message-timeout``, 10 s).
5. ``idle``: 1,008 connections that complete the HTTP/2 handshake (SETTINGS
   both ways) and then send nothing (server ``--idle-timeout 10``),
   watched for 20 s.
6. ``unread``: 200 SampleStream calls (1,000,000 images each) over 4
   connections whose peer sends the request and then never reads its
   socket again (no WINDOW_UPDATE, no recv), held for ``--seconds``.

What the figures mean:

- **RSS**: VmRSS of the server process (/proc/PID/status), MB: idle just
  before the attack, the peak sampled every 0.1 s during it, and 5 s, 15 s
  and 30 s after the attack ended (its connections closed). "back" says
  whether RSS at +30 s is within 20 % of idle; the server runs
  ``malloc_trim`` when it is idle after load.
- **CPU**: utime + stime of the server (/proc/PID/stat) during the attack, s.
- **unary p50 / p99**: latency of the normal calls from h2load's
  per-request log, ms, under attack and at baseline; **ratio** = p99 under
  attack / p99 at baseline (the target for ``unread`` is <= 2).
- **not OK**: normal calls that did not end OK: h2load's request count less
  the growth of ``gan_requests_total{method="Sample",model="dcgan",code="OK"}``
  (the attack's calls never end OK: their request is never read, or they
  are SampleStream). The codes of the not-OK normal calls come from the access
  log, where the normal calls carry their own ``x-request-id``; HTTP-level
  failures (refused or reset streams, which h2load sees) are listed apart.
  A gRPC client next to h2load (the probe) calls Sample one call after
  another while h2load runs and counts the codes and messages it gets,
  which h2load cannot see (it reads no trailers); its calls are taken off
  the OK count above.
  The metrics delta by code over the attack (all Sample calls, the attack's
  own included) is in the JSON.
- per attack: streams opened, refused (RST_STREAM REFUSED_STREAM) and
  answered by grpc-status (headers, reset); the rate reached (reset); the
  bytes the peer sent before the answer came (uploads); connections still
  open at 5/12/20 s, a new client's Sample while they are open and the
  server's open-file limit (idle); images the server generated for the
  unread streams per stream, i.e. how far each computed ahead of its
  reader (unread: gan_images_generated_total growth less the unary calls'
  images, / 200).

``--out FILE`` writes every number as JSON; a markdown table ends the
output. Every attack is bounded in time and count; the bench kills only the
servers it started. Needs ``h2load`` (Debian ``nghttp2-client``; ``make
bench-attacks`` installs it) and the ``h2`` package (dev dependencies).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import select
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _sub in ("sdk", "serving", "training"):
    sys.path.insert(0, str(ROOT / _sub))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import h2.errors  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402
import h2load as h2l  # noqa: E402
import procs  # noqa: E402
from gan_contract.proto.gan.v1 import generator_pb2 as pb  # noqa: E402
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc  # noqa: E402

from tests.security.h2raw import REFUSED_STREAM, RawH2  # noqa: E402

SAMPLE = "/gan.v1.Generator/Sample"
SAMPLE_STREAM = "/gan.v1.Generator/SampleStream"
TOKEN = "attack-bench-token"
STATUS = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    16: "UNAUTHENTICATED",
}
ATTACKS = ("headers", "reset", "upload-no-token", "upload-token", "idle", "unread")
AFTER = (5, 15, 30)  # seconds after the attack at which RSS is read


def status_name(code: int) -> str:
    return STATUS.get(code, str(code))


def reset_name(code: int) -> str:
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return str(code)


# --------------------------------------------------------------------------- server side readings


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def open_file_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return f"{soft} (hard {hard})"
    return "?"


_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([0-9.eE+-]+|NaN|[+-]Inf)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(server: h2l.Server) -> list[tuple[str, dict[str, str], float]]:
    text = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()
    out = []
    for line in text.splitlines():
        m = _SERIES.match(line)
        if m:
            out.append((m.group(1), dict(_LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def sample_codes(series, model: str | None = None, method: str = "Sample") -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for name, labels, value in series:
        if name == "gan_requests_total" and labels.get("method") == method:
            if model is None or labels.get("model") == model:
                out[labels.get("code", "?")] += int(value)
    return out


def images_generated(series) -> int:
    return int(sum(v for name, _, v in series if name == "gan_images_generated_total"))


def delta(after: collections.Counter, before: collections.Counter) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] - before.get(k, 0)}


def access_codes(server: h2l.Server, request_id: str, expected: int, timeout: float = 10.0) -> dict[str, int]:
    """Codes of the Sample calls logged with ``request_id`` (waits for ``expected`` lines)."""
    needle = f"request_id={request_id}\n"
    deadline = time.monotonic() + timeout
    while True:
        codes: collections.Counter = collections.Counter()
        for line in server.log_path.read_text(errors="replace").splitlines(keepends=True):
            if line.endswith(needle) and " rpc Sample " in line:
                m = re.search(r" code=(\w+) ", line)
                codes[m.group(1) if m else "?"] += 1
        if sum(codes.values()) >= expected or time.monotonic() > deadline:
            return dict(codes)
        time.sleep(0.2)


class Watch(threading.Thread):
    """Samples the server's RSS every ``interval`` s until stopped; the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, RuntimeError):
                return
            self._stop_event.wait(self.interval)

    def stop(self) -> float:
        self._stop_event.set()
        self.join(5)
        return self.peak


# --------------------------------------------------------------------------- the normal callers


class Load:
    """One h2load run of unary Sample calls (bench/h2load.py's h2load()), in a thread."""

    def __init__(self, server: h2l.Server, data: Path, requests: int, tmp: Path, tag: str, headers=()) -> None:
        self.server, self.data, self.requests, self.tag = server, data, requests, tag
        self.logfile = tmp / f"h2load-{tag}.log"
        self.headers = (f"x-request-id: {tag}", *headers)
        self.stdout = ""
        self.error: str | None = None
        self.started = self.ended = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.probe_thread = threading.Thread(target=self._probe, daemon=True)
        self.probe: collections.Counter = collections.Counter()
        self.probe_ok = 0

    def _probe(self) -> None:
        """One gRPC client's calls, one after another, while h2load runs: the codes and messages it gets."""
        import grpc

        metadata = [("x-request-id", f"probe-{self.tag}")]
        metadata += [tuple(h.split(": ", 1)) for h in self.headers if h.startswith("authorization")]
        request = pb.SampleRequest(model="dcgan", count=1)
        with grpc.insecure_channel(self.server.address) as channel:
            stub = pb_grpc.GeneratorStub(channel)
            while self.thread.is_alive():
                try:
                    stub.Sample(request, timeout=15, metadata=metadata)
                    self.probe["OK"] += 1
                    self.probe_ok += 1
                except grpc.RpcError as exc:
                    self.probe[f"{exc.code().name}: {(exc.details() or '')[:100]}"] += 1
                time.sleep(0.1)

    def _run(self) -> None:
        self.started = time.monotonic()
        try:
            self.stdout = h2l.h2load(
                self.server.address, self.data, self.requests, 64, 8, self.logfile, headers=self.headers, timeout=180
            )
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            self.error = str(exc)[-500:]
        self.ended = time.monotonic()

    def start(self) -> Load:
        self.before = scrape(self.server)
        self.thread.start()
        self.probe_thread.start()
        return self

    def finish(self) -> dict:
        self.thread.join(200)
        self.probe_thread.join(30)
        out: dict = {"requests": self.requests, "seconds": round(self.ended - self.started, 2)}
        if self.error:
            out["h2load_error"] = self.error
        rows = []
        if self.logfile.exists():
            for row in self.logfile.read_text().splitlines():
                cols = row.split("\t")
                if len(cols) >= 3:
                    rows.append((cols[1], int(cols[2]) / 1000.0))
        ms = sorted(d for status, d in rows if status == "200")
        http = collections.Counter(status for status, _ in rows)
        try:  # every request an HTTP 200: bench/h2load.py's own reading
            rps, mean, p99 = h2l.parse(self.stdout, self.logfile, self.requests)
            out.update(rps=round(rps, 1), mean_ms=round(mean, 2), p99_ms=round(p99, 2))
        except (RuntimeError, AttributeError, IndexError, ValueError):
            m = re.search(r"(\d+) succeeded, (\d+) failed", self.stdout)
            out["h2load_failed"] = int(m.group(2)) if m else self.requests - len(ms)
            out["http"] = dict(http)
            if ms:
                out["p99_ms"] = round(ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))], 2)
        if ms:
            out["p50_ms"] = round(ms[(len(ms) - 1) // 2], 2)
        after = scrape(self.server)
        # the probe's OK calls are counted in the metrics too
        ok = delta(sample_codes(after, "dcgan"), sample_codes(self.before, "dcgan")).get("OK", 0) - self.probe_ok
        out["ok"] = ok
        out["probe"] = dict(self.probe)
        out["probe_ok"] = self.probe_ok
        out["not_ok"] = self.requests - ok
        out["images"] = images_generated(after) - images_generated(self.before) - self.probe_ok
        codes = access_codes(self.server, self.tag, self.requests - out.get("h2load_failed", 0), timeout=10)
        out["codes"] = codes
        return out


# --------------------------------------------------------------------------- the hostile peer


class Peer(RawH2):
    """RawH2 that notes the streams that finished (ended or reset) since the last look."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        super().__init__(address, timeout)
        self.finished: list[int] = []

    def _handle(self, event: h2.events.Event) -> None:
        super()._handle(event)
        if isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
            self.finished.append(event.stream_id)

    def send(self) -> None:
        """Flush with a blocking timeout (pump leaves the socket on a very short one)."""
        self.sock.settimeout(10)
        self.flush()


def pump_ready(conns: list[Peer], timeout: float) -> None:
    """Read what has arrived on any open connection within ``timeout`` s (poll: no 1024-descriptor limit)."""
    poller = select.poll()
    by_fd = {}
    for c in conns:
        if not c.closed:
            by_fd[c.sock.fileno()] = c
            poller.register(c.sock.fileno(), select.POLLIN)
    if not by_fd:
        time.sleep(timeout)
        return
    for fd, _ in poller.poll(timeout * 1000):
        c = by_fd[fd]
        try:
            c.pump(0.001)
        except h2.exceptions.H2Error:
            c.closed = True


def connect(address: str) -> Peer:
    peer = Peer(address)
    peer.settings()  # SETTINGS both ways (h2 acknowledges the server's)
    peer.sock.settimeout(10)
    return peer


def classify(result, stats: collections.Counter, messages: collections.Counter | None = None) -> None:
    if result.status is not None:
        stats[f"answered {status_name(result.status)}"] += 1
        if messages is not None:
            messages[f"{status_name(result.status)}: {result.message[:100]}"] += 1
    elif result.reset == REFUSED_STREAM:
        stats["refused (RST_STREAM REFUSED_STREAM)"] += 1
    elif result.reset is not None:
        stats[f"reset {reset_name(result.reset)}"] += 1
    else:
        stats["other"] += 1


def attack_headers(server: h2l.Server, a: argparse.Namespace, ready) -> dict:
    """Attack 1: connections x streams of HEADERS only, re-opened as answered."""
    meta = (("x-request-id", "attack-headers"),)
    conns: list[Peer] = []
    live: dict[Peer, set[int]] = {}
    stats: collections.Counter = collections.Counter()
    messages: collections.Counter = collections.Counter()

    def fill(c: Peer) -> None:
        while len(live[c]) < a.streams_per_connection and not c.closed:
            try:
                sid = c.open(SAMPLE, meta)
            except (OSError, h2.exceptions.H2Error):
                c.closed = True
                return
            live[c].add(sid)
            stats["opened"] += 1

    def add() -> Peer:
        c = connect(server.address)
        conns.append(c)
        live[c] = set()
        stats["connections"] += 1
        return c

    started = time.monotonic()
    for _ in range(a.headers_connections):
        fill(add())
    ready()
    while time.monotonic() - started < a.seconds:
        pump_ready(conns, 0.05)
        for c in list(conns):
            for sid in c.finished:
                if sid in live[c]:
                    live[c].discard(sid)
                    classify(c.streams[sid], stats, messages)
            c.finished.clear()
            if c.closed or c.goaway is not None:
                stats["connections closed by the server" if c.goaway is None else "GOAWAY"] += 1
                c.close()
                conns.remove(c)
                stats["still open when closed"] += len(live.pop(c))
                c = add()
            c.sock.settimeout(10)
            fill(c)
    stats["held at the end"] = sum(len(s) for s in live.values())
    for c in conns:
        c.close()
    return {"seconds": round(time.monotonic() - started, 1), **dict(stats), "messages": messages.most_common(8)}


def attack_reset(server: h2l.Server, a: argparse.Namespace, ready) -> dict:
    """Attack 2: streams opened and reset at once, over a few connections, as fast as the peer can."""
    conns = [connect(server.address) for _ in range(a.reset_connections)]
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", SAMPLE),
        (":authority", server.address),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("x-request-id", "attack-reset"),
    ]
    stats: collections.Counter = collections.Counter()
    ready()
    started = time.monotonic()
    sent, batch = 0, 50
    while sent < a.resets and time.monotonic() - started < a.max_seconds:
        for i, c in enumerate(conns):
            if c.closed or c.goaway is not None:
                stats["GOAWAY" if c.goaway is not None else "connections closed by the server"] += 1
                if c.goaway is not None:
                    stats[f"GOAWAY {reset_name(int(c.goaway.error_code))}"] += 1
                c.close()
                c = conns[i] = connect(server.address)
                stats["reconnects"] += 1
            try:
                for _ in range(min(batch, a.resets - sent)):
                    sid = c.conn.get_next_available_stream_id()
                    c.conn.send_headers(sid, headers)
                    c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                    sent += 1
                c.send()
            except (OSError, h2.exceptions.H2Error):
                c.closed = True
            if sent >= a.resets:
                break
        pump_ready(conns, 0)
    elapsed = time.monotonic() - started
    for c in conns:
        c.close()
    return {"streams": sent, "seconds": round(elapsed, 2), "streams_per_s": round(sent / elapsed), **dict(stats)}


def attack_upload(server: h2l.Server, a: argparse.Namespace, ready, token: bool) -> dict:
    """Attacks 3 and 4: calls that announce a large message, send most of it and stall."""
    meta = [("x-request-id", "attack-upload")]
    if token:
        meta.append(("authorization", f"Bearer {TOKEN}"))
    conns = [connect(server.address) for _ in range(a.uploads)]
    sids, sent, at_answer = {}, {}, {}
    started = time.monotonic()
    for c in conns:
        sid = sids[c] = c.open(SAMPLE, tuple(meta))
        c.conn.send_data(sid, struct.pack(">BI", 0, a.announce), end_stream=False)
        c.send()
        sent[c] = 0
    ready()
    chunk = b"\x00" * 16384
    answer_at: dict[Peer, float] = {}

    def answered(c: Peer) -> bool:
        r = c.streams[sids[c]]
        if c not in at_answer and (r.status is not None or r.reset is not None or c.closed):
            at_answer[c] = sent[c]
            answer_at[c] = time.monotonic() - started
        return c in at_answer

    # Send as far as flow control lets each call, until its share is sent or it is answered;
    # each connection is read before each of its frames, so an answer is seen as it comes.
    while time.monotonic() - started < a.max_seconds:
        progress = False
        for c in conns:
            pump_ready([c], 0)
            if answered(c) or sent[c] >= a.upload_bytes:
                continue
            sid = sids[c]
            try:
                window = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size)
                n = min(window, a.upload_bytes - sent[c])
                if n > 0:
                    c.conn.send_data(sid, chunk[:n] if n <= len(chunk) else b"\x00" * n, end_stream=False)
                    c.send()
                    sent[c] += n
                    progress = True
            except (OSError, h2.exceptions.H2Error):
                c.closed = True
        if not progress:
            pump_ready(conns, 0.05)
        if all(answered(c) or sent[c] >= a.upload_bytes for c in conns):
            break
    stalled_at = time.monotonic()
    # Stall: wait for the answers (or the cap on the attack's time).
    while time.monotonic() - started < a.max_seconds:
        if all(answered(c) for c in conns):
            break
        pump_ready(conns, 0.1)
    stats: collections.Counter = collections.Counter()
    for c in conns:
        classify(c.streams[sids[c]], stats)
    for c in conns:
        c.close()
    total = sum(sent.values())
    return {
        "calls": len(conns),
        "announced_bytes": a.announce,
        "bytes_to_send": a.upload_bytes,
        "bytes_sent_total": total,
        "bytes_sent_per_call_max": max(sent.values()),
        "bytes_sent_before_answer_max": max(at_answer.values(), default=None),
        "bytes_sent_before_answer_min": min(at_answer.values(), default=None),
        "seconds_sending": round(stalled_at - started, 2),
        "seconds_to_first_answer": round(min(answer_at.values(), default=float("nan")), 3),
        "seconds_to_last_answer": round(max(answer_at.values(), default=float("nan")), 3),
        **dict(stats),
    }


def attack_idle(server: h2l.Server, a: argparse.Namespace, ready) -> dict:
    """Attack 5: connections that complete the handshake and then do nothing."""
    conns = []
    started = time.monotonic()
    failed = 0
    for _ in range(a.idle_connections):
        try:
            conns.append(connect(server.address))
        except OSError:
            failed += 1
    opened = time.monotonic()
    out: dict = {"connections": len(conns), "failed_to_connect": failed, "seconds_to_open": round(opened - started, 2)}
    handshaken = sum(1 for c in conns if c.remote_settings)
    out["handshake_completed"] = handshaken
    out["open_file_limit"] = open_file_limit(server.pid)
    # A new, well-behaved client while they are open (before the unary load, which it would count in).
    from gan_client import GanClient

    time.sleep(1.0)
    t = time.monotonic()
    try:
        with GanClient(server.address, timeout=10, retry=False) as client:
            n = len(client.sample("dcgan", n=1, seed=1))
        out["new_client_sample"] = f"OK ({n} image) in {1000 * (time.monotonic() - t):.0f} ms"
    except Exception as exc:  # noqa: BLE001 - reported as it is
        out["new_client_sample"] = f"failed after {1000 * (time.monotonic() - t):.0f} ms: {exc!r}"[:300]
    ready()
    for at in a.idle_checks:
        while time.monotonic() - opened < at:
            pump_ready(conns, min(0.2, max(0.0, at - (time.monotonic() - opened))))
        pump_ready(conns, 0)
        out[f"open_at_{at:g}s"] = sum(1 for c in conns if not c.closed and c.goaway is None)
        out[f"goaway_at_{at:g}s"] = sum(1 for c in conns if c.goaway is not None)
        out[f"closed_at_{at:g}s"] = sum(1 for c in conns if c.closed)
    for c in conns:
        c.close()
    return out


def attack_unread(server: h2l.Server, a: argparse.Namespace, ready) -> dict:
    """Attack 6: SampleStream calls whose peer never reads what the server sends."""
    per = -(-a.unread_streams // a.unread_connections)
    conns = [connect(server.address) for _ in range(a.unread_connections)]
    request = pb.SampleRequest(model="dcgan", count=a.stream_count, seed=0).SerializeToString()
    images0 = images_generated(scrape(server))
    opened = 0
    for c in conns:
        for _ in range(min(per, a.unread_streams - opened)):
            sid = c.open(SAMPLE_STREAM, (("x-request-id", "attack-unread"),))
            c.send_message(sid, request, end_stream=True)
            opened += 1
        c.send()
    started = time.monotonic()
    ready()
    # From here on the peer never reads its sockets: no recv, no WINDOW_UPDATE.
    marks = {}
    while time.monotonic() - started < a.seconds:
        time.sleep(0.5)
        marks[round(time.monotonic() - started)] = images_generated(scrape(server)) - images0
    images = images_generated(scrape(server)) - images0
    for c in conns:
        c.close()
    return {
        "streams": opened,
        "connections": len(conns),
        "images_per_stream_requested": a.stream_count,
        "seconds": round(time.monotonic() - started, 1),
        "images_generated_total": images,  # the unary calls' images are taken off in run_attack
        "images_by_second": {k: marks[k] for k in sorted(marks) if k % 5 == 0 or k == max(marks)},
    }


# --------------------------------------------------------------------------- one attack, end to end


def run_attack(name: str, a: argparse.Namespace, tmp: Path) -> dict:
    flags = ["--metrics-port", "0", "--log-format", "text"]
    extra: list[str] = []
    token_headers: tuple[str, ...] = ()
    if name.startswith("upload"):
        (tmp / "token").write_text(TOKEN)
        extra += ["--token-file", str(tmp / "token")]
        token_headers = (f"authorization: Bearer {TOKEN}",)
    if name == "idle":
        extra += ["--idle-timeout", str(a.idle_timeout)]
    models = tmp / f"models-{name}"
    models.mkdir()
    shutil.copytree(a.models / "dcgan", models / "dcgan")
    data = tmp / "sample.bin"
    data.write_bytes(h2l.request_body("dcgan", a.count))
    print(f"\n== {name}: gan-server {' '.join(extra) or '(defaults)'}", file=sys.stderr, flush=True)
    server = h2l.start(name, ROOT, models, flags + extra, tmp, a.count)
    result: dict = {"attack": name, "server_flags": " ".join(extra)}
    try:
        Load(server, data, a.warmup, tmp, f"warmup-{name}", token_headers).start().finish()
        base = Load(server, data, a.requests, tmp, f"baseline-{name}", token_headers).start().finish()
        result["baseline"] = base
        print(f"   baseline: p50 {base.get('p50_ms')} ms, p99 {base.get('p99_ms')} ms", file=sys.stderr, flush=True)
        time.sleep(a.settle)
        series0 = scrape(server)
        result["rss_idle_mb"] = round(rss_mb(server.pid), 1)
        cpu0 = procs.cpu_seconds(server.pid)
        watch = Watch(server.pid)
        watch.start()
        load: list[Load] = []

        def ready() -> None:
            if not load:
                load.append(Load(server, data, a.requests, tmp, f"load-{name}", token_headers).start())

        attack_started = time.monotonic()
        if name == "headers":
            result["peer"] = attack_headers(server, a, ready)
        elif name == "reset":
            result["peer"] = attack_reset(server, a, ready)
        elif name == "upload-no-token":
            result["peer"] = attack_upload(server, a, ready, token=False)
        elif name == "upload-token":
            result["peer"] = attack_upload(server, a, ready, token=True)
        elif name == "idle":
            result["peer"] = attack_idle(server, a, ready)
        elif name == "unread":
            result["peer"] = attack_unread(server, a, ready)
        ended = time.monotonic()
        result["attack_seconds"] = round(ended - attack_started, 2)
        result["rss_peak_mb"] = round(watch.stop(), 1)
        result["cpu_s"] = round(procs.cpu_seconds(server.pid) - cpu0, 2)
        ready()  # an attack that never got in place still gets its load
        under = load[0].finish()
        result["load"] = under
        result["load_within_attack"] = load[0].ended <= ended
        for after in AFTER:
            time.sleep(max(0.0, ended + after - time.monotonic()))
            result[f"rss_after_{after}s_mb"] = round(rss_mb(server.pid), 1)
        series1 = scrape(server)
        result["metrics_delta_sample"] = delta(sample_codes(series1), sample_codes(series0))
        result["metrics_delta_samplestream"] = delta(
            sample_codes(series1, method="SampleStream"), sample_codes(series0, method="SampleStream")
        )
        if name == "unread":
            unary_images = (under["ok"] + under["probe_ok"]) * a.count
            peer = result["peer"]
            peer["unary_images"] = unary_images
            # images of the unary calls that ran while the streams were held; all of them if the load ended first
            peer["images_per_unread_stream"] = round(
                (peer["images_generated_total"] - unary_images) / max(1, peer["streams"]), 1
            )
        idle = result["rss_idle_mb"]
        result["rss_back_within_20pct"] = result["rss_after_30s_mb"] <= 1.2 * idle
        if base.get("p99_ms") and under.get("p99_ms"):
            result["p99_ratio"] = round(under["p99_ms"] / base["p99_ms"], 2)
        result["server_alive"] = server.process.poll() is None
    finally:
        h2l.stop(server)
        result["server_exit"] = server.process.returncode
        log = server.log_path.read_text(errors="replace")
        if a.logs:
            a.logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(server.log_path, a.logs / f"{name}.log")
        result["server_log_problems"] = [
            line[:300]
            for line in log.splitlines()
            if re.search(r"\b(ERROR|CRITICAL|Traceback|Exception)\b", line) and " rpc " not in line
        ][:20]
        result["server_warnings"] = collections.Counter(
            re.sub(r"\d+", "N", line.split(" WARNING ", 1)[1])[:160] for line in log.splitlines() if " WARNING " in line
        ).most_common(10)
    print("   " + json.dumps({k: v for k, v in result.items() if k != "baseline"}), file=sys.stderr, flush=True)
    return result


# --------------------------------------------------------------------------- report


def _codes(load: dict) -> str:
    bad = {k: v for k, v in load.get("codes", {}).items() if k != "OK"}
    parts = [f"{v} {k}" for k, v in sorted(bad.items())]
    if load.get("h2load_failed"):
        parts.append(f"{load['h2load_failed']} failed in h2load")
    text = f"{load.get('not_ok', '?')} of {load['requests']}" + (f" ({', '.join(parts)})" if parts else "")
    probe = load.get("probe", {})
    failed = collections.Counter(k.split(":", 1)[0] for k in probe for _ in range(probe[k]) if k != "OK")
    if probe:
        text += f"; gRPC probe: {probe.get('OK', 0)} OK" + "".join(f", {v} {k}" for k, v in sorted(failed.items()))
    return text


def _detail(r: dict) -> str:
    p = r.get("peer", {})
    name = r["attack"]
    if name == "headers":
        answered = ", ".join(f"{v:,} {k.split(' ', 1)[1]}" for k, v in p.items() if k.startswith("answered"))
        others = [f"{v:,} {k}" for k, v in p.items() if k.startswith(("refused", "reset", "GOAWAY", "connections c"))]
        return f"{p.get('opened', 0):,} streams opened in {p.get('seconds')} s; answered: {answered}; " + (
            ", ".join(others) or "none refused"
        )
    if name == "reset":
        extra = [f"{v} {k}" for k, v in p.items() if k.startswith(("GOAWAY", "reconnects", "connections c"))]
        return f"{p.get('streams', 0):,} streams in {p.get('seconds')} s = {p.get('streams_per_s', 0):,}/s" + (
            f"; {', '.join(extra)}" if extra else ""
        )
    if name.startswith("upload"):
        answered = ", ".join(f"{v} {k.split(' ', 1)[1]}" for k, v in p.items() if k.startswith(("answered", "reset")))
        return (
            f"{p.get('calls')} calls; bytes sent per call before its answer: {p.get('bytes_sent_before_answer_min'):,}"
            f"–{p.get('bytes_sent_before_answer_max'):,} ({p.get('bytes_sent_total', 0):,} in all); {answered} "
            f"{p.get('seconds_to_first_answer')}–{p.get('seconds_to_last_answer')} s after the attack began"
        )
    if name == "idle":
        opens = ", ".join(f"{p.get(f'open_at_{t:g}s')} at {t:g} s" for t in (5, 12, 20) if f"open_at_{t:g}s" in p)
        return (
            f"{p.get('handshake_completed')} of {p.get('connections')} handshaken; still open: {opens}; new client: "
            f"{p.get('new_client_sample')}; open files {p.get('open_file_limit')}"
        )
    if name == "unread":
        return (
            f"{p.get('streams')} streams x {p.get('images_per_stream_requested'):,} images over "
            f"{p.get('connections')} connections for {p.get('seconds')} s; computed ahead "
            f"{p.get('images_per_unread_stream')} images per stream"
        )
    return ""


def table(results: list[dict]) -> str:
    rows = [
        "| attack | server flags | RSS MB idle → peak → +5/+15/+30 s | back ≤ 1.2× idle | server CPU s | "
        "unary p50/p99 ms (baseline) | p99 ratio | normal calls not OK | peer |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "load" not in r:
            rows.append(f"| {r['attack']} | {r['server_flags'] or 'defaults'} | failed: {r.get('error', '?')} |||||||")
            continue
        b, u = r["baseline"], r["load"]
        after = "/".join(f"{r[f'rss_after_{t}s_mb']:.0f}" for t in AFTER)
        rows.append(
            f"| {r['attack']} | {r['server_flags'] or 'defaults'} | "
            f"{r['rss_idle_mb']:.0f} → {r['rss_peak_mb']:.0f} → {after} | "
            f"{'yes' if r['rss_back_within_20pct'] else 'no'} | {r['cpu_s']:.1f} | "
            f"{u.get('p50_ms', '-')}/{u.get('p99_ms', '-')} ({b.get('p50_ms', '-')}/{b.get('p99_ms', '-')}) | "
            f"{r.get('p99_ratio', '-')}{'' if r.get('load_within_attack') else ' ¹'} | {_codes(u)} | {_detail(r)} |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--only", nargs="+", choices=ATTACKS, default=list(ATTACKS), metavar="NAME", help=", ".join(ATTACKS)
    )
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the headers and unread attacks")
    ap.add_argument("--requests", type=int, default=4000, help="unary Sample calls per h2load run (64 concurrent)")
    ap.add_argument("--warmup", type=int, default=500, help="unary calls before the baseline")
    ap.add_argument("--count", type=int, default=1, help="images per unary call")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the attacks' connection and stream counts")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds between the baseline and the attack")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="cap on any one attack")
    ap.add_argument("--out", type=Path, default=None, help="write every number as JSON here")
    ap.add_argument("--logs", type=Path, default=None, help="copy each server's log into this directory")
    a = ap.parse_args()
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install nghttp2-client (or `make bench-attacks` as root)")

    def scaled(n: int, least: int = 1) -> int:
        return max(least, int(round(n * a.scale)))

    a.headers_connections = scaled(40)
    a.streams_per_connection = 100  # the advertised limit, not scaled
    a.reset_connections = scaled(10)
    a.resets = scaled(50_000)
    a.uploads = scaled(24)
    a.announce = 4_000_000
    a.upload_bytes = 3_000_000
    a.idle_connections = scaled(1008)
    a.idle_timeout = 10
    a.idle_checks = (5, 12, 20)
    a.unread_streams = scaled(200)
    a.unread_connections = max(1, -(-a.unread_streams // 50))
    a.stream_count = 1_000_000
    a.models = a.models.resolve()

    used = {
        "headers": f"{a.headers_connections} connections x {a.streams_per_connection} streams, {a.seconds:g} s",
        "reset": f"{a.resets:,} streams over {a.reset_connections} connections",
        "upload-no-token": f"{a.uploads} calls x {a.upload_bytes:,} of {a.announce:,} bytes, no token",
        "upload-token": f"{a.uploads} calls x {a.upload_bytes:,} of {a.announce:,} bytes, with the token",
        "idle": f"{a.idle_connections} idle connections, checked at {', '.join(f'{t} s' for t in a.idle_checks)}",
        "unread": f"{a.unread_streams} unread SampleStream calls over {a.unread_connections} connections, "
        f"{a.seconds:g} s",
    }
    tmp = Path(tempfile.mkdtemp(prefix="attacks-"))
    results = []
    load_start = os.getloadavg()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        for name in a.only:
            try:
                r = run_attack(name, a, tmp)
            except Exception as exc:  # noqa: BLE001 - one attack's failure is reported, the others still run
                r = {"attack": name, "server_flags": "", "error": repr(exc)[:500]}
                print(f"   {name} failed: {exc!r}", file=sys.stderr, flush=True)
            r["used"] = used[name]
            r["server_flags"] = r["server_flags"].replace(str(tmp) + "/", "")
            results.append(r)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_end = os.getloadavg()
    command = "python bench/attacks.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    print(f"### gan-server under attack — {when}\n")
    print(
        f"Machine: {procs.machine()}. Command: `{command}`. Unary load: h2load -c 8 -m 8 (64 concurrent), "
        f"{a.requests} Sample calls of {a.count} image(s) per run. Load average (1/5/15 min) "
        f"{'/'.join(f'{x:.1f}' for x in load_start)} at the start, "
        f"{'/'.join(f'{x:.1f}' for x in load_end)} at the end.\n"
    )
    for r in results:
        print(f"- {r['attack']}: {r['used']}")
    print()
    print(table(results))
    if any("load" in r and not r.get("load_within_attack") for r in results):
        print("\n¹ the unary load outlasted the attack (it ran partly after the attack ended).")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(
            json.dumps({"when": when, "command": command, "machine": procs.machine(), "results": results}, indent=1)
        )


if __name__ == "__main__":
    main()
