"""What one connection, one call and the whole server may hold: gRPC core's limits, set in one place.

Each limit is a ``gan-server`` flag (see config.py); docs/security.md lists
them with their defaults and what the attack suite measured. Here they
become grpc core channel arguments:

- ``grpc.max_concurrent_streams``: advertised to every client in HTTP/2's
  SETTINGS_MAX_CONCURRENT_STREAMS; a client that opens more gets its extra
  streams refused (RST_STREAM REFUSED_STREAM) by core.
- ``grpc.max_allowed_incoming_connections``: core closes connections over it
  on arrival. By default it is kept 256 below the open-file limit, which
  :func:`raise_open_file_limit` raises to its hard limit first, so that the
  server never runs out of descriptors for its own files and the HTTP side.
- ``grpc.max_connection_idle_ms``: a connection with no call for that long
  gets a GOAWAY (clients reconnect on their next call), which also ends
  connections that completed their handshake and never send anything.
- ``grpc.max_connection_age_ms`` / ``..._grace_ms``: old connections are
  asked to go away, their calls get the grace to finish.
- ``grpc.max_receive_message_length`` (``--max-request-mb``) and
  ``grpc.max_send_message_length`` (``--max-message-mb``): core refuses an
  incoming message on its 5-byte length prefix, before its bytes arrive.
- ``grpc.server_handshake_timeout_ms``: a TLS handshake (or the HTTP/2
  preface) has this long to complete.

What core does not offer is done by the interceptor (interceptors.py): the
cap on calls in progress (logged and counted, unlike core's own
``maximum_concurrent_rpcs``), the timeout for a request message that does not
arrive, and refusing an unauthenticated call on its headers.

:class:`MemoryTrimmer` hands freed heap pages back to the system once the
server is idle after load (glibc's malloc keeps them otherwise).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import resource
from collections.abc import Callable

from .config import ServerConfig

log = logging.getLogger("gan_server")

# Descriptors kept back from --max-connections' default: model files, log
# and metrics files, the HTTP side's connections, the supervisor's pipes.
RESERVED_DESCRIPTORS = 256
# Raising the soft open-file limit past this is not useful to one process
# (and some systems report an "unlimited" hard limit).
_OPEN_FILES_CEILING = 1 << 20
HANDSHAKE_TIMEOUT_MS = 10_000


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (where allowed); the soft limit in effect."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _OPEN_FILES_CEILING if hard == resource.RLIM_INFINITY else min(hard, _OPEN_FILES_CEILING)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # pragma: no cover - a sandbox that forbids it
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft


def connection_limit(config: ServerConfig, open_files: int) -> int:
    """--max-connections, or by default the open-file limit less what the server keeps for itself."""
    if config.max_connections:
        if config.max_connections > open_files - RESERVED_DESCRIPTORS:
            log.warning(
                "--max-connections %d leaves fewer than %d of the %d open files for the server itself",
                config.max_connections,
                RESERVED_DESCRIPTORS,
                open_files,
            )
        return config.max_connections
    return max(16, open_files - RESERVED_DESCRIPTORS)


def grpc_options(config: ServerConfig, connections: int) -> list[tuple[str, int]]:
    """grpc core's channel arguments for the server (see the module docstring)."""
    options = [
        ("grpc.max_send_message_length", config.max_message_mb << 20),
        ("grpc.max_receive_message_length", config.max_request_mb << 20),
        ("grpc.max_concurrent_streams", config.max_streams_per_connection),
        ("grpc.max_allowed_incoming_connections", connections),
        ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
    ]
    if config.idle_timeout > 0:
        options.append(("grpc.max_connection_idle_ms", _ms(config.idle_timeout)))
    if config.max_connection_age > 0:
        options.append(("grpc.max_connection_age_ms", _ms(config.max_connection_age)))
        options.append(("grpc.max_connection_age_grace_ms", _ms(config.connection_age_grace)))
    return options


def _ms(seconds: float) -> int:
    return max(1, min(int(seconds * 1000), 2**31 - 1))


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class MemoryTrimmer:
    """After load, give the heap's free pages back to the system.

    glibc's malloc keeps the pages it freed (every arena's top and the free
    chunks inside) for later allocations, so after a burst of large messages
    the resident size stays near its peak. Every ``interval`` seconds, if
    calls were started since the last look and none is in progress now, this
    runs ``malloc_trim(0)`` (a few milliseconds, on a worker thread).
    """

    def __init__(self, calls_started: Callable[[], int], calls_active: Callable[[], int], interval: float = 5.0):
        self._started = calls_started
        self._active = calls_active
        self.interval = interval
        self.trims = 0
        self._trim = _malloc_trim()

    @property
    def available(self) -> bool:
        return self._trim is not None

    async def run(self) -> None:
        if self._trim is None:
            return
        loop = asyncio.get_running_loop()
        seen = self._started()
        while True:
            await asyncio.sleep(self.interval)
            started = self._started()
            if started == seen or self._active():
                continue
            seen = started
            await loop.run_in_executor(None, self._trim)
            self.trims += 1
