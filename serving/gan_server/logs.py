"""gan-server's logging: records are formatted and written by a background thread.

A call on the event loop (the access log line of every RPC included) only
creates the record and puts it on a queue (:class:`_Handoff`); a writer
thread formats it (text or JSON) and writes it to stderr. The writer takes
what has queued up in one go, writes it with one system call and then waits
``interval`` seconds before looking again, so under load it wakes up at most
about ``1 / interval`` times a second instead of once per call; an idle
server's writer sleeps until the next record. :func:`setup` registers
:func:`stop` with :mod:`atexit`, which writes what is still queued.
"""

from __future__ import annotations

import atexit
import io
import json
import logging
import logging.handlers
import queue
import sys
import threading
import time

_EXTRA_FIELDS = ("request_id", "method", "model", "code", "ms")
_IMMUTABLE = (str, int, float, bool, type(None), bytes)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRA_FIELDS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _Handoff(logging.handlers.QueueHandler):
    """Queues the record itself: formatting happens on the writer thread.

    (The stock QueueHandler formats and copies every record on the caller's
    thread.) A message whose arguments could change before the writer gets
    to it (anything but str/int/float/bool/bytes/None) is rendered here.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        args = record.args
        if args and not (isinstance(args, tuple) and all(isinstance(a, _IMMUTABLE) for a in args)):
            record.msg = record.getMessage()
            record.args = None
        return record


class _Writer:
    """The thread that formats queued records and writes them, in batches."""

    _STOP = object()

    def __init__(self, handler: logging.Handler, stream: io.TextIOBase, interval: float) -> None:
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.handler = handler
        self.stream = stream
        self.interval = interval
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def _write(self, record: logging.LogRecord) -> None:
        handler = self.handler
        if record.levelno < handler.level:
            return
        try:
            self.stream.write(handler.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must not kill the writer
            handler.handleError(record)

    def _flush(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone
            pass

    def _run(self) -> None:
        q = self.queue
        while True:
            record = q.get()  # idle: sleep until a record comes
            while True:
                if record is self._STOP:
                    self._flush()
                    return
                self._write(record)
                try:
                    record = q.get_nowait()
                    continue
                except queue.Empty:
                    pass
                self._flush()
                # Let the next records gather: one wake-up per interval under load.
                time.sleep(self.interval)
                try:
                    record = q.get_nowait()
                except queue.Empty:
                    break

    def stop(self) -> None:
        if self._thread.is_alive():
            self.queue.put(self._STOP)
            self._thread.join(timeout=10)


_writer: _Writer | None = None


def _stderr_stream() -> io.TextIOBase:
    """A buffered text stream on fd 2 (flushed by the writer after each batch), else sys.stderr."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.stderr
    raw = io.FileIO(fd, "w", closefd=False)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    return io.TextIOWrapper(io.BufferedWriter(raw, 1 << 16), encoding=encoding, errors="backslashreplace")


def setup(level: str, fmt: str, interval: float = 0.01) -> None:
    """Log at ``level`` (debug/info/warning/error) as ``fmt`` (text/json) to stderr, from a writer thread."""
    global _writer
    stop()
    # Nothing the formats use needs the caller's frame, thread or process name:
    # skip collecting them for every record (logging's documented switches).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False  # Python 3.12+
    handler = logging.Handler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    _writer = _Writer(handler, _stderr_stream(), interval)
    root = logging.getLogger()
    root.handlers[:] = [_Handoff(_writer.queue)]
    root.setLevel(level.upper())
    atexit.register(stop)


def stop() -> None:
    """Write what is queued and stop the writer thread (idempotent).

    Records logged afterwards (at interpreter exit) are written directly.
    """
    global _writer
    if _writer is None:
        return
    writer, _writer = _writer, None
    root = logging.getLogger()
    direct = logging.StreamHandler(sys.stderr)
    direct.setFormatter(writer.handler.formatter)
    root.handlers[:] = [direct if isinstance(h, _Handoff) else h for h in root.handlers]
    writer.stop()
