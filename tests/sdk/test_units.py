"""The SDK's pure parts, without a server: interpolation maths, the health
codec, request building, channel settings and batch sharding."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from gan_client import (
    AsyncGanClient,
    GanClient,
    ModelNotFound,
    RetryPolicy,
    SampleResult,
    _batch,
    _core,
    _images,
    _interp,
    lerp,
    slerp,
)
from gan_client._config import ENCODE_BATCH, ClientConfig
from gan_client._options import InterpolateOptions, SampleOptions
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from PIL import Image

# -- interpolation ------------------------------------------------------------


def _unit(rng: np.random.Generator, d: int) -> np.ndarray:
    v = rng.normal(size=d)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolate_ends_are_the_inputs_bit_for_bit(method: str) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=100).astype(np.float32), rng.normal(size=100).astype(np.float32)
    out = _interp.interpolate(a, b, 7, method)
    assert out.shape == (7, 100) and out.dtype == np.float32
    assert out[0].tobytes() == a.tobytes() and out[-1].tobytes() == b.tobytes()


def test_slerp_keeps_unit_vectors_on_the_sphere_and_lerp_does_not() -> None:
    rng = np.random.default_rng(1)
    a, b = _unit(rng, 64), _unit(rng, 64)
    ts = np.linspace(0, 1, 11)
    np.testing.assert_allclose(np.linalg.norm(slerp(a, b, ts), axis=1), 1.0, atol=1e-12)
    # lerp cuts through the ball: its midpoint of two near-orthogonal unit vectors is ~0.7 long
    assert np.linalg.norm(lerp(a, b, 0.5)[0]) < 0.8


def test_slerp_moves_at_constant_angular_speed() -> None:
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    pts = slerp(a, b, np.linspace(0, 1, 5))
    angles = np.degrees(np.arctan2(pts[:, 1], pts[:, 0]))
    np.testing.assert_allclose(angles, [0, 22.5, 45, 67.5, 90], atol=1e-9)
    np.testing.assert_allclose(slerp(a, b, [0.0, 1.0]), [a, b], atol=1e-12)


def test_slerp_falls_back_to_lerp_for_nearly_parallel_and_zero_vectors() -> None:
    a = np.array([1.0, 2.0, 3.0])
    b = a * 2.0 + np.array([1e-9, 0.0, 0.0])  # parallel up to 1e-9: the angle formula would divide by ~0
    ts = np.linspace(0, 1, 5)
    out = slerp(a, b, ts)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, lerp(a, b, ts))
    np.testing.assert_array_equal(slerp(np.zeros(3), a, ts), lerp(np.zeros(3), a, ts))
    opposite = slerp(a, -a, ts)  # the great circle is undefined: lerp, through the origin
    np.testing.assert_allclose(opposite[2], 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"steps": 1}, "steps"), ({"steps": 3, "method": "cubic"}, "method"), ({"steps": True}, "steps")],
)
def test_interpolate_rejects_bad_arguments(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        _interp.interpolate(np.zeros(3), np.ones(3), **kwargs)
    with pytest.raises(ValueError, match="same shape"):
        _interp.interpolate(np.zeros(3), np.ones(4), 3)


# -- health codec ---------------------------------------------------------------


# -- requests and channel settings ------------------------------------------------


def test_sample_request_carries_first_index_and_infers_n_from_latents() -> None:
    req = _core.sample_request("dcgan", None, 5, first_index=2**63, latents=np.zeros((3, 4)))
    assert (req.count, req.seed, req.first_index, len(req.latents)) == (3, 5, 2**63, 12)
    assert _core.sample_request("dcgan", None, 0).count == 1
    for bad in ({"first_index": -1}, {"first_index": 2**64}, {"seed": -1}):
        with pytest.raises(ValueError):
            _core.sample_request("dcgan", 1, **{"seed": 0, **bad})
    with pytest.raises(ValueError, match="latents"):
        _core.sample_request("dcgan", 2, 0, latents=np.zeros((3, 4)))


def test_encode_requests_take_nhw_and_nhwc_uint8_and_split_large_inputs() -> None:
    reqs = _core.encode_requests("bigan", np.zeros((5, 28, 28), np.uint8), batch=2)
    assert [r.count for r in reqs] == [2, 2, 1]
    assert (reqs[0].image.height, reqs[0].image.width, reqs[0].image.channels) == (28, 28, 1)
    assert len(reqs[0].images) == 2 * 28 * 28
    with pytest.raises(TypeError, match="uint8"):
        _core.encode_requests("bigan", np.zeros((1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="shape"):
        _core.encode_requests("bigan", np.zeros((28, 28), np.uint8).ravel())


def test_service_config_is_a_retry_policy_for_the_generator_service() -> None:
    options = dict(_core.channel_options(retry=RetryPolicy(max_attempts=4, initial_backoff=0.25, max_backoff=3)))
    assert options["grpc.enable_retries"] == 1
    config = json.loads(options["grpc.service_config"])
    (method,) = config["methodConfig"]
    assert method["name"] == [{"service": "gan.v1.Generator"}]
    assert method["retryPolicy"] == {
        "maxAttempts": 4,
        "initialBackoff": "0.25s",
        "maxBackoff": "3s",
        "backoffMultiplier": 2.0,
        "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
    }
    off = dict(_core.channel_options(retry=None))
    assert off["grpc.enable_retries"] == 0 and "grpc.service_config" not in off
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=6)


def test_tls_settings_need_cert_and_key_together_and_name_unreadable_files(tmp_path) -> None:
    assert _core.channel_credentials(False) is None
    assert _core.channel_credentials(True) is not None
    with pytest.raises(ValueError, match="client_cert and client_key"):
        _core.channel_credentials(True, client_cert=b"x")
    with pytest.raises(ValueError, match="root_certificates: cannot read"):
        _core.channel_credentials(False, root_certificates=tmp_path / "missing.pem")
    assert _core.call_metadata("s3cret") == (("authorization", "Bearer s3cret"),)
    assert _core.call_metadata(None) == ()


def test_both_clients_take_each_argument_list_as_declared_once() -> None:
    for name, options in (
        ("sample", SampleOptions),
        ("sample_stream", SampleOptions),
        ("interpolate", InterpolateOptions),
    ):
        declared = list(inspect.signature(options).parameters.values())
        for cls in (GanClient, AsyncGanClient):
            params = list(inspect.signature(getattr(cls, name)).parameters.values())
            assert params[0].name == "self" and params[1:] == declared, (cls, name)
    config = list(inspect.signature(ClientConfig).parameters.values())
    assert list(inspect.signature(GanClient).parameters.values()) == config
    assert list(inspect.signature(AsyncGanClient).parameters.values()) == config
    assert inspect.iscoroutinefunction(AsyncGanClient.sample) and inspect.iscoroutinefunction(
        AsyncGanClient.interpolate
    )
    assert "first_index" in GanClient.sample.__doc__ and GanClient.sample.__name__ == "sample"
    with pytest.raises(TypeError, match="dgit"):
        SampleOptions("dcgan", 1, dgit=3)  # type: ignore[call-arg]


def test_client_config_checks_the_tls_options_once_made() -> None:
    with pytest.raises(ValueError, match="client_cert and client_key"):
        ClientConfig(client_key=b"k")
    with pytest.raises(ValueError, match="tls_server_name"):
        ClientConfig(tls_server_name="gan-server")
    with pytest.raises(TypeError, match="retry"):
        ClientConfig(retry="often")  # type: ignore[arg-type]
    assert ClientConfig(root_certificates=b"ca", tls_server_name="gan-server").tls_server_name == "gan-server"


# -- plans: what each client method sends, without a server ---------------------


def test_encode_plan_sends_batches_in_order_on_the_version_the_first_answered_with() -> None:
    plan = _core.encode_plan("bigan", np.zeros((ENCODE_BATCH + 1, 2, 2), np.uint8), None)
    (first,) = _core.advance(plan, None)
    assert (first.version, first.count) == ("", ENCODE_BATCH)
    reply = pb.EncodeResponse(
        model="bigan", version="7", count=ENCODE_BATCH, latent_dim=1, latents=[0.5] * ENCODE_BATCH
    )
    (second,) = _core.advance(plan, [reply])
    assert (second.version, second.count) == ("7", 1)
    done = _core.advance(plan, [pb.EncodeResponse(model="bigan", version="7", count=1, latent_dim=1, latents=[2.0])])
    assert isinstance(done, _core.Done)
    assert done.value.shape == (ENCODE_BATCH + 1, 1) and done.value[0, 0] == 0.5 and done.value[-1, 0] == 2.0


def test_interpolate_plan_asks_for_seed_endpoints_in_one_step_and_none_for_vectors() -> None:
    info = pb.ModelInfo(name="dcgan", version="2", latent_dim=3, image=pb.ImageSpec(height=1, width=1, channels=1))
    plan = _core.interpolate_plan(InterpolateOptions("dcgan", 5, 6, steps=3))
    (get,) = _core.advance(plan, None)
    assert (get.name, get.version) == ("dcgan", "")
    ends = _core.advance(plan, [info])
    assert [(r.seed, r.count, r.version, r.return_latents) for r in ends] == [(5, 1, "2", True), (6, 1, "2", True)]
    plan = _core.interpolate_plan(InterpolateOptions("dcgan", np.zeros(3), np.ones(3), steps=3))
    _core.advance(plan, None)
    (strip,) = _core.advance(plan, [info])
    assert (strip.count, strip.seed) == (3, 0)
    np.testing.assert_array_equal(np.reshape(strip.latents, (3, 3)), [[0, 0, 0], [0.5, 0.5, 0.5], [1, 1, 1]])


def test_health_plan_answers_service_unknown_for_not_found() -> None:
    plan = _core.health_plan("no.such.Service")
    (req,) = _core.advance(plan, None)
    assert req.service == "no.such.Service"
    assert _core.advance(plan, ModelNotFound("unknown service", "NOT_FOUND", "")) == _core.Done("SERVICE_UNKNOWN")


# -- files -------------------------------------------------------------------------


def test_a_result_is_written_by_the_name_of_its_output(tmp_path) -> None:
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
    r = SampleResult("m", "1", 3, images, np.array([-1, 2], np.int32), start=5)
    assert r.write(tmp_path / "a.npy") == [tmp_path / "a.npy"]
    assert np.load(tmp_path / "a.npy").tobytes() == images.tobytes()
    (grid,) = r.write(tmp_path / "g.png", cols=1)
    with Image.open(grid) as img:
        assert img.size == (4 + 4, 2 * 6 + 2) and img.text["gan:count"] == "2"
    files = r.write(tmp_path / "d")
    assert [f.name for f in files] == ["m-s3-00005.png", "m-s3-00006.png"]
    with Image.open(files[1]) as img:
        assert img.text["gan:index"] == "6" and img.text["gan:class"] == "2"
    with pytest.raises(ValueError, match="does not exist"):
        r.write(tmp_path / "missing" / "x.png")
    (tmp_path / "plain").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        _images.output_kind(tmp_path / "plain")
    assert not list(tmp_path.glob(".*.tmp"))


# -- batch sharding ---------------------------------------------------------------


@pytest.mark.parametrize(("total", "count"), [(10_000, 4), (10, 3), (7, 7), (1, 1), (1001, 16)])
def test_shards_cover_every_index_exactly_once(total: int, count: int) -> None:
    shards = [_batch.Shard(i, count, total) for i in range(count)]
    assert shards[0].start == 0 and shards[-1].end == total
    for left, right in zip(shards, shards[1:], strict=False):
        assert left.end == right.start
    assert sum(s.end - s.start for s in shards) == total
    with pytest.raises(ValueError):
        _batch.Shard(count, count, total)


def test_runs_group_consecutive_missing_indices_into_bounded_requests() -> None:
    assert _batch.runs([5, 1, 2, 3, 7, 8], chunk=2) == [(1, 2), (3, 1), (5, 1), (7, 2)]
    assert _batch.runs(range(10), chunk=256) == [(0, 10)]
    assert _batch.runs([], chunk=4) == []
    assert _batch.image_name(1234, 10_000) == "img-00001234.png"
    assert _batch.image_name(5, 10**9 + 1) == "img-0000000005.png"


def test_public_names_resolve_lazily_and_match_all() -> None:
    import gan_client

    assert set(gan_client.__all__) == set(gan_client._EXPORTS)
    for name in gan_client.__all__:
        assert getattr(gan_client, name) is not None
    with pytest.raises(AttributeError):
        gan_client.NoSuchName  # noqa: B018
