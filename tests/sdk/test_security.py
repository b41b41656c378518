"""Bearer tokens, TLS and mTLS: real servers started with --token-file and
--tls-*, throwaway certificates made with the openssl command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gan_client import (
    AsyncGanClient,
    ConnectionFailed,
    GanClient,
    TLSError,
    Unauthenticated,
)

from ..conftest import start_server, stop_server

GAN_CLIENT = str(Path(sys.executable).parent / "gan-client")
TOKEN = "s3cret-token-for-tests"
NO_RETRY = {"retry": False}  # failures here are not transient: fail at once


def cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("GAN_TOKEN", "GAN_SERVER")}
    return subprocess.run([GAN_CLIENT, *args], capture_output=True, text=True, timeout=60, env={**clean, **(env or {})})


# -- bearer token ------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_server(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("token")
    (d / "token").write_text(TOKEN + "\n")
    srv = start_server(bundled_models, d / "server.log", "--token-file", str(d / "token"))
    yield srv
    stop_server(srv)


def test_token_missing_or_wrong_is_unauthenticated_right_token_works(token_server, monkeypatch) -> None:
    monkeypatch.delenv("GAN_TOKEN", raising=False)
    with GanClient(token_server.address, **NO_RETRY) as anonymous:
        with pytest.raises(Unauthenticated) as err:
            anonymous.list_models()
        assert err.value.code == "UNAUTHENTICATED" and "GAN_TOKEN" in str(err.value)
        with pytest.raises(Unauthenticated):
            list(anonymous.sample_stream("dcgan", 3))
        assert anonymous.health() == "SERVING"  # probes need no token
    with GanClient(token_server.address, token="wrong", **NO_RETRY) as wrong:
        with pytest.raises(Unauthenticated, match="invalid bearer token"):
            wrong.sample("dcgan", 1)
    with GanClient(token_server.address, token=TOKEN) as right:
        assert len(right.sample("dcgan", 2, seed=1)) == 2
        assert sum(len(c) for c in right.sample_stream("dcgan", 600, seed=1)) == 600
    monkeypatch.setenv("GAN_TOKEN", TOKEN)
    with GanClient(token_server.address) as from_env:
        assert {m.name for m in from_env.list_models()} >= {"dcgan", "cgan", "infogan"}


def test_async_client_sends_the_token_too(token_server) -> None:
    import asyncio

    async def run() -> tuple[int, str]:
        async with AsyncGanClient(token_server.address, token="nope", **NO_RETRY) as bad:
            with pytest.raises(Unauthenticated):
                await bad.sample("dcgan", 1)
            status = await bad.health()
        async with AsyncGanClient(token_server.address, token=TOKEN) as good:
            return len(await good.sample("dcgan", 3)), status

    assert asyncio.run(run()) == (3, "SERVING")


def test_cli_auth_failure_is_exit_7_and_health_needs_no_token(token_server) -> None:
    r = cli(["--server", token_server.address, "list"])
    assert r.returncode == 7, r.stderr
    assert r.stderr.count("\n") == 1 and "missing bearer token" in r.stderr and "--token" in r.stderr
    r = cli(["--server", token_server.address, "--token", "wrong", "list"])
    assert r.returncode == 7 and "invalid bearer token" in r.stderr
    r = cli(["--server", token_server.address, "list", "--json"], env={"GAN_TOKEN": TOKEN})
    assert r.returncode == 0, r.stderr
    r = cli(["--server", token_server.address, "health"])
    assert (r.returncode, r.stdout.strip()) == (0, "SERVING")


# -- TLS and mTLS --------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_certs(d: Path) -> None:
    """A CA, a server certificate for localhost/127.0.0.1, a client certificate, and an unrelated CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca", cwd=d)
    _openssl(
        "req", "-x509", *ec, "-keyout", "other.key", "-out", "other.pem", "-days", "2", "-subj", "/CN=other", cwd=d
    )
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who, cn in (("server", "localhost"), ("client", "gan-client-test")):
        _openssl("req", *ec, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={cn}", cwd=d)
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{who}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{who}.pem",
            "-days",
            "2",
            "-extfile",
            f"{who}.ext",
            cwd=d,
        )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("certs")
    _make_certs(d)
    return d


@pytest.fixture(scope="module")
def tls_server(bundled_models: Path, certs: Path, tmp_path_factory: pytest.TempPathFactory):
    srv = start_server(
        bundled_models,
        tmp_path_factory.mktemp("tls") / "server.log",
        "--tls-cert",
        str(certs / "server.pem"),
        "--tls-key",
        str(certs / "server.key"),
    )
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def mtls_server(bundled_models: Path, certs: Path, tmp_path_factory: pytest.TempPathFactory):
    srv = start_server(
        bundled_models,
        tmp_path_factory.mktemp("mtls") / "server.log",
        "--tls-cert",
        str(certs / "server.pem"),
        "--tls-key",
        str(certs / "server.key"),
        "--tls-client-ca",
        str(certs / "ca.pem"),
    )
    yield srv
    stop_server(srv)


def test_tls_with_the_right_ca_works_and_mistakes_fail_clearly(tls_server, certs: Path) -> None:
    with GanClient(tls_server.address, root_certificates=certs / "ca.pem") as client:  # a path
        plain = client.sample("cgan", 4, seed=2, digit=1)
    with GanClient(tls_server.address, tls=True, root_certificates=(certs / "ca.pem").read_bytes()) as client:
        assert client.sample("cgan", 4, seed=2, digit=1).images.tobytes() == plain.images.tobytes()
        assert client.health() == "SERVING"
    with GanClient(tls_server.address, root_certificates=certs / "other.pem", **NO_RETRY) as wrong_ca:
        with pytest.raises(TLSError, match="TLS handshake .* failed.*CERTIFICATE_VERIFY_FAILED"):
            wrong_ca.list_models()
    with GanClient(tls_server.address, **NO_RETRY) as plaintext:
        with pytest.raises(ConnectionFailed, match="--tls"):
            plaintext.list_models()


def test_tls_client_against_a_plaintext_server_says_so(server, certs: Path) -> None:
    with GanClient(server.address, root_certificates=certs / "ca.pem", **NO_RETRY) as client:
        with pytest.raises(TLSError, match="does not speak TLS"):
            client.list_models()


def test_mtls_needs_a_client_certificate_signed_by_the_client_ca(mtls_server, certs: Path) -> None:
    ca = certs / "ca.pem"
    with GanClient(
        mtls_server.address, root_certificates=ca, client_cert=certs / "client.pem", client_key=certs / "client.key"
    ) as client:
        assert len(client.sample("dcgan", 2)) == 2
    with GanClient(mtls_server.address, root_certificates=ca, **NO_RETRY) as no_cert:
        with pytest.raises(TLSError, match="client_cert"):
            no_cert.list_models()
    with GanClient(
        mtls_server.address,
        root_certificates=ca,
        client_cert=certs / "other.pem",
        client_key=certs / "other.key",
        **NO_RETRY,
    ) as foreign:
        with pytest.raises(ConnectionFailed):
            foreign.list_models()
    with pytest.raises(ValueError, match="client_cert and client_key"):
        GanClient(mtls_server.address, client_cert=certs / "client.pem")


def test_cli_over_mtls(mtls_server, certs: Path) -> None:
    base = ["--server", mtls_server.address, "--ca-cert", str(certs / "ca.pem")]
    r = cli(
        [*base, "--client-cert", str(certs / "client.pem"), "--client-key", str(certs / "client.key"), "list", "--json"]
    )
    assert r.returncode == 0, r.stderr
    r = cli([*base, "--no-retries", "list"])
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "--client-cert" in r.stderr, r.stderr
    r = cli([*base, "--client-cert", str(certs / "client.pem"), "list"])
    assert r.returncode == 2 and "--client-key" in r.stderr
