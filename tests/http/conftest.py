"""A real gan-server with ``--http-port 0`` for the HTTP tests, and a small HTTP helper."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ..conftest import RunningServer, start_server, stop_server


@pytest.fixture(scope="session")
def http_server(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(bundled_models, tmp_path_factory.mktemp("http") / "server.log", "--http-port", "0")
    yield srv
    code = stop_server(srv)
    assert code == 0, f"gan-server exited with {code}:\n{srv.log()[-2000:]}"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        assert self.headers.get("Content-Type", "").startswith("application/json"), (self.status, self.body[:200])
        return json.loads(self.body)


def call(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 60,
) -> Reply:
    """One request on a fresh connection; any status comes back (no exception for 4xx/5xx)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(parts.netloc, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.netloc, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()
