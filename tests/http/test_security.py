"""The bearer token and TLS on the HTTP side: the same --token-file and --tls-*
files as gRPC; the token is checked before a body is read."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException

from ..conftest import start_server, stop_server
from ..sdk.test_security import _make_certs
from .conftest import call

TOKEN = "s3cret-http-token"
RIGHT = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def token_server(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("http-token")
    (d / "token").write_text(TOKEN + "\n")
    srv = start_server(bundled_models, d / "server.log", "--http-port", "0", "--token-file", str(d / "token"))
    yield srv
    assert stop_server(srv) == 0


def _first_bytes(address: str, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` (headers only: the promised body never comes) and read what the server says."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"HTTP/1.1 100"):
            return data
        try:
            while not data.rstrip().endswith(b"}"):  # the JSON body after the headers
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
        return data


def test_no_token_or_a_wrong_one_is_401_and_the_right_one_works(token_server) -> None:
    url = token_server.http_url
    for path in ("/v1/models", "/v1/models/dcgan/sample.png", "/v2", "/v2/models/dcgan", "/v1"):
        missing = call(url + path)
        assert missing.status == 401, path
        assert missing.json()["error"] == "missing bearer token"
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = call(url + path, headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401 and wrong.json()["error"] == "invalid bearer token"
        assert call(url + path, headers={"Authorization": TOKEN}).status == 401  # the scheme is part of it
        assert call(url + path, headers=RIGHT).status == 200, path
    # probes and the playground's own files stay open; the page asks for the token
    for path in ("/v2/health/live", "/v2/health/ready", "/", "/static/app.js", "/static/style.css"):
        assert call(url + path).status == 200, path
    assert call(url + "/v1", headers=RIGHT).json()["token_required"] is True


def test_the_playground_loads_nothing_from_elsewhere(token_server) -> None:
    page = call(token_server.http_url + "/")
    assert page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    html = page.body.decode()
    assert "http://" not in html and "https://" not in html and "//" not in html.replace("<!doctype", "")
    script = call(token_server.http_url + "/static/app.js").body.decode()
    assert "localStorage" not in script and "sessionStorage" not in script and "document.cookie" not in script


def test_tritonclient_http_with_the_token(token_server) -> None:
    client = thttp.InferenceServerClient(token_server.http_address)
    try:
        seed = thttp.InferInput("seed", [1], "UINT64")
        seed.set_data_from_numpy(np.array([3], np.uint64))
        with pytest.raises(InferenceServerException) as exc:
            client.infer("dcgan", [seed])
        assert exc.value.status() == "401"
        images = client.infer("dcgan", [seed], headers=RIGHT).as_numpy("images")
        assert images.shape == (1, 28, 28, 1)
        assert client.is_server_ready() is True
    finally:
        client.close()


def test_the_token_is_checked_before_the_body_is_read(token_server) -> None:
    promised = (
        b"POST /v2/models/dcgan/infer HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 10000000\r\n"
    )
    # 10 MB promised (under the 16 MiB body limit), none sent: without a token the answer comes at once
    answer = _first_bytes(token_server.http_address, promised + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"missing bearer token" in answer
    # Expect: 100-continue: a client that waits for the go-ahead gets 401 instead ...
    answer = _first_bytes(token_server.http_address, promised + b"Expect: 100-continue\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    # ... and with the token, the go-ahead to send the body
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    answer = _first_bytes(token_server.http_address, promised + auth + b"Expect: 100-continue\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 100 Continue"), answer[:200]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("http-certs")
    _make_certs(d)
    return d


def test_tls_files_apply_to_http_too(bundled_models: Path, certs: Path, tmp_path: Path) -> None:
    tls = ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")]
    srv = start_server(bundled_models, tmp_path / "log", "--http-port", "0", *tls)
    try:
        https = srv.http_url.replace("http://", "https://")
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        reply = call(https + "/v1/models/dcgan/sample.npy?n=2&seed=1", context=context)
        assert reply.status == 200 and len(reply.body) > 2 * 784
        assert call(https + "/v1", context=context).json()["tls"] is True
        with pytest.raises(ssl.SSLCertVerificationError):
            call(https + "/v2", context=ssl.create_default_context(cafile=str(certs / "other.pem")))
        with pytest.raises((http.client.HTTPException, OSError)):
            call(srv.http_url + "/v2", timeout=10)  # plaintext to the TLS port: no HTTP answer
    finally:
        assert stop_server(srv) == 0


def test_mtls_needs_a_client_certificate_on_http_too(bundled_models: Path, certs: Path, tmp_path: Path) -> None:
    tls = ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")]
    srv = start_server(
        bundled_models, tmp_path / "log", "--http-port", "0", *tls, "--tls-client-ca", str(certs / "ca.pem")
    )
    try:
        https = srv.http_url.replace("http://", "https://")
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            call(https + "/v2", context=context)
        context.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
        assert call(https + "/v2", context=context).status == 200
    finally:
        assert stop_server(srv) == 0
