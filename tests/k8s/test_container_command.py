"""Run the Deployment's exact container command outside a container.

The command is rebuilt from the rendered manifests (image ENTRYPOINT from the
Dockerfile + the container's args + its ConfigMap environment). Only what
cannot work on a test machine is changed: the models path becomes the repo's
models/, ports become 0 (free ones) and the bind address 127.0.0.1.
"""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .manifests import (
    DOCKERFILE,
    DOCKERFILE_GPU,
    Invocation,
    clean_env,
    container,
    dockerfile_healthcheck,
    find,
    flag_values,
    job_invocation,
    local_argv,
    rewrite_flags,
    server_invocation,
)

LISTENING = "gan-server listening on "


def _localize(inv: Invocation, models: Path) -> tuple[list[str], dict[str, str]]:
    argv = rewrite_flags(
        inv.argv,
        {"--models": str(models), "--host": "127.0.0.1", "--port": "0", "--http-port": "0", "--metrics-port": "0"},
    )
    return local_argv(argv), clean_env(inv.env)


def _start(argv: list[str], env: dict[str, str], log: Path, timeout: float = 60.0):
    """Start the server; return (process, listening line). Mirrors tests/conftest.py."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if line.startswith(LISTENING) or proc.poll() is not None:
            break
    if not line.startswith(LISTENING):
        proc.kill()
        proc.wait()
        pytest.fail(f"{' '.join(argv)} did not start:\n{log.read_text(errors='replace')[-3000:]}")
    return proc, line.strip()


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
    return proc.returncode


def _health(address: str, service: str) -> int:
    with grpc.insecure_channel(address) as channel:
        return (
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        )


def _logged_configuration(log: Path) -> dict[str, str]:
    """The server's configuration line; it must be JSON (GAN_SERVER_LOG_FORMAT=json)."""
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # e.g. a native library's own warning
        if entry.get("message", "").startswith("configuration: "):
            return ast.literal_eval(entry["message"].removeprefix("configuration: "))
    raise AssertionError(f"no JSON configuration line in the log:\n{log.read_text(errors='replace')[-2000:]}")


def _same(logged: str, configured: str) -> bool:
    try:
        return float(logged) == float(configured)
    except ValueError:
        return logged.lower() == configured.lower()


def test_deployment_command_serves_and_reports_healthy(
    cpu, bundled_models: Path, tmp_path: Path, unused_port: int
) -> None:
    inv = server_invocation(cpu, DOCKERFILE)
    argv, env = _localize(inv, bundled_models)
    log = tmp_path / "server.log"
    proc, line = _start(argv, env, log)
    try:
        words = line.split()
        address = words[3]
        assert "metrics" in words, f"--metrics-port from the manifest did not take effect: {line}"
        metrics_address = words[words.index("metrics") + 2]

        # The probes of the manifest, as the kubelet would send them.
        c = container(find(cpu, "Deployment", "gan-server"), "gan-server")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            service = c[probe]["grpc"].get("service", "")
            assert _health(address, service) == health_pb2.HealthCheckResponse.SERVING, (probe, service)

        text = urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10).read().decode()
        assert "gan_models_loaded" in text

        # --http-port from the manifest: REST readiness agrees with the gRPC probes.
        assert "http" in words, f"--http-port from the manifest did not take effect: {line}"
        http_address = words[words.index("http") + 2]
        ready = urllib.request.urlopen(f"http://{http_address}/v2/health/ready", timeout=10)
        assert ready.status == 200 and json.loads(ready.read()) == {"ready": True}

        # The image's HEALTHCHECK, exactly as written in the Dockerfile.
        hc = dockerfile_healthcheck(DOCKERFILE)
        port = address.rsplit(":", 1)[1]
        ok = subprocess.run(
            local_argv(hc), check=False, env=clean_env({"GAN_SERVER_PORT": port}), capture_output=True, timeout=30
        )
        assert ok.returncode == 0, ok.stderr.decode()[-2000:]
        down = subprocess.run(
            local_argv(hc),
            check=False,
            env=clean_env({"GAN_SERVER_PORT": str(unused_port)}),
            capture_output=True,
            timeout=30,
        )
        assert down.returncode != 0, "HEALTHCHECK passed with no server listening"

        # The ConfigMap's settings reached the server.
        config = _logged_configuration(log)
        for key, value in inv.env.items():
            if key.startswith("GAN_SERVER_") and key not in ("GAN_SERVER_LOG_FORMAT", "GAN_SERVER_LOG_LEVEL"):
                field = key.removeprefix("GAN_SERVER_").lower()
                assert field in config, f"{key} is not a server setting"
                assert _same(config[field], value), f"{key}={value} but the server uses {config[field]}"
    finally:
        code = _stop(proc)
    assert code == 0, f"gan-server exited with {code} on SIGTERM:\n{log.read_text(errors='replace')[-2000:]}"


@pytest.mark.gpu
def test_gpu_deployment_command_serves_on_cuda(gpu, bundled_models: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDAExecutionProvider here (install the `gpu` extra on a CUDA machine)")
    inv = server_invocation(gpu, DOCKERFILE_GPU)
    argv, env = _localize(inv, bundled_models)
    log = tmp_path / "server.log"
    proc, line = _start(argv, env, log, timeout=180)
    try:
        address = line.split()[3]
        assert _health(address, "gan.v1.Generator") == health_pb2.HealthCheckResponse.SERVING
        assert _logged_configuration(log)["device"] == "cuda"
    finally:
        assert _stop(proc) == 0


def test_batch_job_command_writes_the_full_disjoint_set(job_objects, server, tmp_path: Path) -> None:
    """Each shard runs the Job's exact container command, with JOB_COMPLETION_INDEX
    set as Kubernetes sets it, against a real server on loopback; together the
    shards write every index of the seed exactly once, matching one request."""
    import hashlib

    import numpy as np
    from gan_client import GanClient
    from PIL import Image

    job = next(o for o in job_objects if o["kind"] == "Job")
    inv = job_invocation(job, job_objects)
    total = 96  # the manifest asks for 10,000; the test keeps the same command with a small total
    out = tmp_path / "out"
    argv = local_argv(rewrite_flags(inv.argv, {"--total": str(total), "--out": str(out)}))
    shards = int(inv.env["GAN_SHARD_COUNT"])
    assert shards == job["spec"]["completions"]
    env = clean_env({**inv.env, "GAN_SERVER": server.address})
    for index in range(shards):
        done = subprocess.run(
            argv, env={**env, "JOB_COMPLETION_INDEX": str(index)}, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    files = sorted(out.glob("*.png"))
    assert len(files) == total
    seed = int(flag_values(inv.argv, "--seed")[-1])
    model = flag_values(inv.argv, "--model")[-1]
    with GanClient(server.address) as c:
        expected = c.sample(model, n=total, seed=seed).images
    seen = set()
    for f in files:
        with Image.open(f) as img:
            index = int(img.text["gan:index"])
            np.testing.assert_array_equal(np.asarray(img)[..., None], expected[index])
        seen.add(index)
    assert seen == set(range(total))
    digests = {hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert len(digests) == total
