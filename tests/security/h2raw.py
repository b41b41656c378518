"""A raw HTTP/2 client for the attack suite: what a hostile peer sends, frame by frame.

Built on the ``h2`` protocol library (no I/O of its own) over a blocking
socket. It does what a well-behaved gRPC client never does: open streams that
send headers and nothing else, announce bodies it does not send, exceed the
server's advertised stream limit, keep a connection open doing nothing.
"""

from __future__ import annotations

import collections
import socket
import struct
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.settings


@dataclass
class StreamResult:
    headers: dict[str, str] = field(default_factory=dict)
    trailers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    reset: int | None = None  # RST_STREAM error code
    ended: bool = False

    @property
    def status(self) -> int | None:
        """grpc-status, from the trailers (or a trailers-only answer's headers)."""
        value = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        return int(value) if value is not None else None

    @property
    def message(self) -> str:
        return self.trailers.get("grpc-message", self.headers.get("grpc-message", ""))


class RawH2:
    """One HTTP/2 connection to ``host:port`` (plaintext, prior knowledge, as gRPC uses it)."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.initiate_connection()
        self.flush()
        self.streams: dict[int, StreamResult] = {}
        self.remote_settings: dict[int, int] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self.authority = address

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def open(self, path: str, metadata: tuple[tuple[str, str], ...] = (), end_stream: bool = False) -> int:
        """HEADERS for a gRPC call on ``path``; no body unless sent later. Returns the stream id."""
        sid = self.conn.get_next_available_stream_id()
        # h2 keeps to the server's SETTINGS_MAX_CONCURRENT_STREAMS; a hostile
        # peer does not (the server must enforce it): lift h2's own check.
        self.conn.remote_settings._settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = collections.deque(
            [1 << 30]
        )
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", self.authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            *metadata,
        ]
        self.conn.send_headers(sid, headers, end_stream=end_stream)
        self.streams[sid] = StreamResult()
        self.flush()
        return sid

    def send_message(self, sid: int, payload: bytes, end_stream: bool = True, declared: int | None = None) -> None:
        """A gRPC length-prefixed message; ``declared`` announces another length than the payload's."""
        prefix = struct.pack(">BI", 0, len(payload) if declared is None else declared)
        self.conn.send_data(sid, prefix + payload, end_stream=end_stream)
        self.flush()

    def pump(self, timeout: float) -> bool:
        """Read and handle what arrives within ``timeout`` seconds; False once the connection is closed."""
        if self.closed:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return True
        except OSError:
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            self._handle(event)
        try:
            self.flush()
        except OSError:
            self.closed = True
        return True

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            for code, setting in event.changed_settings.items():
                self.remote_settings[int(code)] = setting.new_value
        elif isinstance(event, h2.events.ResponseReceived):
            self.streams[event.stream_id].headers = dict(event.headers)
        elif isinstance(event, h2.events.TrailersReceived):
            self.streams[event.stream_id].trailers = dict(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            self.streams[event.stream_id].data += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.streams[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in self.streams:
                self.streams[event.stream_id].reset = int(event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event

    def wait(self, condition, timeout: float) -> bool:
        """Pump until ``condition()`` holds or ``timeout`` seconds pass; whether it holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0 or not self.pump(min(left, 0.2)):
                return bool(condition())
        return True

    def settings(self, timeout: float = 5.0) -> dict[int, int]:
        """The server's SETTINGS, once they have arrived."""
        self.wait(lambda: bool(self.remote_settings), timeout)
        return self.remote_settings


MAX_CONCURRENT_STREAMS = int(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
REFUSED_STREAM = 0x7
