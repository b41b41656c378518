"""A real TorchServe serving our archives gives gan-server's images, byte for byte.

TorchServe (Java frontend + Python workers) starts once for the module on
127.0.0.1 with token authorization on (see tests/interop/tsserve.py), with
one .mar per bundled model built by build_mar. The reference is our own
gan-server on the same models with ``--backend torchscript``: the same
TorchScript file and torch, and latents from the same code, so images must be
identical. Skipped, with the reason, without java or torchserve.
"""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from .tsserve import java_available

_why_not = java_available()
pytestmark = [pytest.mark.skipif(_why_not is not None, reason=_why_not or "")]

from gan_client import GanClient, make_grid

from ..conftest import start_server, stop_server
from .common import MODELS, latest
from .compare import assert_images_close, assert_same_images

# Conditional models get a digit; every model is also asked without one.
REQUESTS = [("dcgan", {}), ("cgan", {}), ("cgan", {"digit": 7}), ("infogan", {}), ("infogan", {"digit": 7})]


@pytest.fixture(scope="module")
def torchserve(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    from gan_training.interop.torchserve import build_mar

    from .tsserve import start_torchserve

    t0 = time.monotonic()
    ts = start_torchserve(tmp_path_factory.mktemp("torchserve"))
    try:
        for name in MODELS:
            build_mar(latest(bundled_models, name), ts.model_store)
            ts.register(f"{name}.mar", wait=False)  # workers start in parallel
        for name in MODELS:
            ts.wait_ready(name, 1, timeout=180)
        print(f"TorchServe up with {len(MODELS)} models in {time.monotonic() - t0:.1f} s")
        yield ts
    finally:
        pids = ts.worker_pids()
        ts.stop()
    assert ts.process.returncode is not None
    import psutil

    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"TorchServe workers still running after --stop: {alive}"


@pytest.fixture(scope="module")
def gan_ts(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    """Our server on the TorchScript backend: the exact reference."""
    srv = start_server(bundled_models, tmp_path_factory.mktemp("gan-ts") / "server.log", "--backend", "torchscript")
    with GanClient(srv.address) as client:
        yield client
    assert stop_server(srv) == 0, srv.log()[-2000:]


def raw_images(resp) -> np.ndarray:
    assert resp.status == 200, resp.body[:500]
    assert resp.headers["content-type"] == "application/x-npy"
    return np.load(io.BytesIO(resp.body), allow_pickle=False)


@pytest.mark.parametrize(("name", "extra"), REQUESTS, ids=[f"{n}{'-digit' if e else ''}" for n, e in REQUESTS])
def test_same_images_as_gan_server(name: str, extra: dict, torchserve, gan_ts) -> None:
    resp = torchserve.predict(name, {"n": 8, "seed": 3, "format": "raw", **extra})
    got = raw_images(resp)
    want = gan_ts.sample(name, n=8, seed=3, **extra)
    assert_same_images(got, want.images, f"{name} {extra}")
    assert resp.headers["x-gan-classes"] == ",".join(str(int(c)) for c in want.classes)
    assert resp.headers["x-gan-shape"] == ",".join(str(d) for d in want.images.shape)
    if extra.get("digit") is not None:
        assert len(set(want.classes.tolist())) == 1
    # the comparison is not vacuous: another seed gives other images
    other = raw_images(torchserve.predict(name, {"n": 8, "seed": 4, "format": "raw", **extra}))
    assert not np.array_equal(other, got)


def test_png_is_the_clients_grid(torchserve, gan_ts) -> None:
    from PIL import Image

    resp = torchserve.predict("infogan", {"n": 8, "seed": 3, "digit": 7})
    assert resp.status == 200 and resp.headers["content-type"] == "image/png"
    grid = np.asarray(Image.open(io.BytesIO(resp.body)))
    want = make_grid(gan_ts.sample("infogan", n=8, seed=3, digit=7).images)
    np.testing.assert_array_equal(grid, want[..., 0])


def test_grpc_inference_api(torchserve, gan_ts, tmp_path: Path) -> None:
    import grpc

    from .tsserve import grpc_stubs

    pb2, pb2_grpc = grpc_stubs(tmp_path / "stubs")
    metadata = [("authorization", f"Bearer {torchserve.inference_key}")]
    with grpc.insecure_channel(torchserve.grpc_inference_address) as channel:
        stub = pb2_grpc.InferenceAPIsServiceStub(channel)
        body = json.dumps({"n": 8, "seed": 3, "digit": 7, "format": "raw"}).encode()
        resp = stub.Predictions(
            pb2.PredictionsRequest(model_name="cgan", input={"data": body}), metadata=metadata, timeout=60
        )
        got = np.load(io.BytesIO(resp.prediction), allow_pickle=False)
        assert_same_images(got, gan_ts.sample("cgan", n=8, seed=3, digit=7).images)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predictions(
                pb2.PredictionsRequest(model_name="cgan", input={"data": b'{"digit": 12}'}),
                metadata=metadata,
                timeout=60,
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith("digit: must be in [0, 9], got 12")
        with pytest.raises(grpc.RpcError) as info:  # no token
            stub.Predictions(pb2.PredictionsRequest(model_name="cgan", input={"data": body}), timeout=60)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_bad_requests_get_400_naming_the_field(torchserve) -> None:
    resp = torchserve.predict("cgan", {"n": 8, "digit": 12})
    assert resp.status == 400
    assert resp.json()["message"] == "digit: must be in [0, 9], got 12"
    resp = torchserve.predict("dcgan", b'{"n": 8,')
    assert resp.status == 400 and resp.json()["message"].startswith("request: the body is not valid JSON")
    resp = torchserve.predict("dcgan", {"count": 8})
    assert resp.status == 400 and resp.json()["message"].startswith("count: unknown field")


def test_token_authorization_is_on(torchserve) -> None:
    for key in (None, "not-the-key", torchserve.management_key):
        resp = torchserve.predict("dcgan", {"n": 1}, key=key)
        assert resp.status in (400, 401, 403), resp.status
        assert "Token Authorization failed" in resp.json()["message"]
    assert torchserve.request("GET", f"{torchserve.management_url}/models", None).status != 200


def test_describe_returns_the_manifest(torchserve, bundled_models: Path) -> None:
    resp = torchserve.management("GET", "/models/infogan", customized="true")
    assert resp.status == 200, resp.body
    custom = resp.json()[0]["customizedMetadata"]  # TorchServe decodes the JSON the handler returns
    custom = json.loads(custom) if isinstance(custom, str) else custom
    assert custom == json.loads((latest(bundled_models, "infogan") / "manifest.json").read_text())


def test_torchserve_batching(torchserve, gan_ts) -> None:
    """Concurrent requests in one TorchServe batch: each gets its own images; a bad one fails alone."""
    name = torchserve.register("cgan.mar", model_name="cgan_batched", batch_size=8, max_batch_delay_ms=300)
    try:
        assert torchserve.describe(name)[0]["batchSize"] == 8
        bodies = [{"n": 4, "seed": s, "digit": s % 10, "format": "raw"} for s in range(5)] + [{"n": 4, "digit": 12}]
        with ThreadPoolExecutor(len(bodies)) as pool:
            responses = list(pool.map(lambda b: torchserve.predict(name, b), bodies))
        for body, resp in zip(bodies[:-1], responses[:-1]):
            want = gan_ts.sample("cgan", n=4, seed=body["seed"], digit=body["digit"]).images
            # computed inside a larger batch than the reference's: see compare.py
            assert_images_close(raw_images(resp), want, f"seed {body['seed']}")
        assert responses[-1].status == 400
        assert responses[-1].json()["message"] == "digit: must be in [0, 9], got 12"
    finally:
        torchserve.unregister(name)


def test_within_rounding_of_the_onnx_server(torchserve, bundled_models: Path, tmp_path: Path) -> None:
    """Against the default gan-server (ONNX Runtime): ≤ 1 level on ≤ 0.1 % of pixels (compare.py)."""
    srv = start_server(bundled_models, tmp_path / "server.log")
    try:
        with GanClient(srv.address) as client:
            for name, extra in REQUESTS:
                got = raw_images(torchserve.predict(name, {"n": 64, "seed": 3, "format": "raw", **extra}))
                assert_images_close(got, client.sample(name, n=64, seed=3, **extra).images, f"{name} {extra}")
    finally:
        assert stop_server(srv) == 0
