"""GanClient and AsyncGanClient against the real server (bundled models)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import numpy as np
import pytest
from gan_client import AsyncGanClient, GanClient, InvalidArgument, ModelNotFound, SampleResult
from gan_contract.proto.gan.v1 import generator_pb2 as pb
from gan_contract.proto.gan.v1 import generator_pb2_grpc as pb_grpc
from PIL import Image

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def client(server):
    with GanClient(server.address) as c:
        yield c


def _same(a: SampleResult, b: SampleResult) -> None:
    assert a.images.tobytes() == b.images.tobytes()
    assert a.classes.tolist() == b.classes.tolist()
    assert (a.model, a.version, a.seed, a.start) == (b.model, b.version, b.seed, b.start)
    if a.latents is None or b.latents is None:
        assert a.latents is None and b.latents is None
    else:
        assert a.latents.tobytes() == b.latents.tobytes()


def test_async_and_sync_clients_give_identical_bytes(server, client) -> None:
    calls = [
        ("sample", ("infogan",), {"n": 40, "seed": 3, "digit": 7, "return_latents": True}),
        ("sample", ("cgan",), {"n": 9, "seed": 11, "label": "4", "first_index": 1000}),
        ("sample", ("dcgan",), {"n": 700, "seed": 5}),
        ("interpolate", ("dcgan", 1, 2, 6, "slerp"), {}),
        ("interpolate", ("cgan", 3, 4, 5), {"digit": 2}),
    ]
    sync = [getattr(client, name)(*args, **kwargs) for name, args, kwargs in calls]
    sync_stream = SampleResult.concatenate(list(client.sample_stream("dcgan", 700, seed=5)))

    async def run() -> tuple[list[SampleResult], SampleResult, list, str]:
        async with AsyncGanClient(server.address) as ac:
            results = await asyncio.gather(*(getattr(ac, name)(*args, **kwargs) for name, args, kwargs in calls))
            stream = SampleResult.concatenate([c async for c in ac.sample_stream("dcgan", 700, seed=5)])
            return list(results), stream, await ac.list_models(), await ac.health()

    async_results, async_stream, models, health = asyncio.run(run())
    for a, b in zip(sync, async_results, strict=True):
        _same(a, b)
    _same(sync_stream, async_stream)
    _same(sync_stream, sync[2])
    assert [m.name for m in models] == [m.name for m in client.list_models()]
    assert health == client.health() == "SERVING"


def test_async_and_sync_interpolate_agree_on_vectors_codes_and_errors(server, client) -> None:
    z = client.sample("dcgan", 2, seed=4, return_latents=True).latents
    calls = [
        (("dcgan", z[0], z[1], 4, "slerp"), {}),
        (("dcgan", 7, z[1], 3), {}),
        (("infogan", 1, 2, 5), {"digit": 3}),
        (
            ("infogan", 1, 2, 5),
            {"category": 1, "continuous": [0.5] * client.model_info("infogan").conditioning.num_continuous},
        ),
    ]
    failing = [(("nope", 1, 2), {}), (("cgan", 1, 2), {}), (("dcgan", 1, 2), {"steps": 1})]
    sync = [client.interpolate(*args, **kwargs) for args, kwargs in calls]
    sync_errors = []
    for args, kwargs in failing:
        with pytest.raises(Exception) as err:
            client.interpolate(*args, **kwargs)
        sync_errors.append((type(err.value), str(err.value)))

    async def run() -> tuple[list[SampleResult], list[tuple[type, str]]]:
        async with AsyncGanClient(server.address) as ac:
            results = await asyncio.gather(*(ac.interpolate(*args, **kwargs) for args, kwargs in calls))
            errors = await asyncio.gather(*(ac.interpolate(*a, **k) for a, k in failing), return_exceptions=True)
            return list(results), [(type(e), str(e)) for e in errors]

    async_results, async_errors = asyncio.run(run())
    for a, b in zip(sync, async_results, strict=True):
        _same(a, b)
        assert a.request == b.request
    assert sync[1].request["interpolate"]["from"] == 7 and sync[1].request["interpolate"]["to"] == "vector"
    assert async_errors == sync_errors
    assert [t.__name__ for t, _ in sync_errors] == ["ModelNotFound", "ValueError", "ValueError"]


@pytest.mark.parametrize(("model", "kwargs"), [("dcgan", {"return_latents": True}), ("infogan", {"digit": 3})])
def test_stream_chunks_concatenate_to_sample_and_stay_under_1_mib(server, client, model: str, kwargs: dict) -> None:
    n, first = 3000, 17
    whole = client.sample(model, n, seed=8, first_index=first, **kwargs)
    chunks = list(client.sample_stream(model, n, seed=8, first_index=first, **kwargs))
    assert len(chunks) > 1
    assert [c.start for c in chunks] == list(first + np.cumsum([0] + [len(c) for c in chunks[:-1]]))
    _same(SampleResult.concatenate(chunks), whole)
    assert whole.indices[0] == first and whole.indices[-1] == first + n - 1
    # the wire messages themselves, measured on a plain stub
    with grpc.insecure_channel(server.address) as channel:
        request = pb.SampleRequest(
            model=model, count=n, seed=8, first_index=first, return_latents=kwargs.get("return_latents", False)
        )
        sizes = [m.ByteSize() for m in pb_grpc.GeneratorStub(channel).SampleStream(request, timeout=60)]
    assert len(sizes) == len(chunks) and max(sizes) < MiB


def test_first_index_selects_a_window_of_the_seeds_sequence(client) -> None:
    whole = client.sample("cgan", 30, seed=2, digit=5)
    window = client.sample("cgan", 10, seed=2, digit=5, first_index=12)
    assert window.images.tobytes() == whole.images[12:22].tobytes()
    assert window.indices.tolist() == list(range(12, 22)) and window.seeds.tolist() == [2] * 10


def test_stream_closed_early_cancels_cleanly(client) -> None:
    stream = client.sample_stream("dcgan", 100_000, seed=1)
    first = next(stream)
    stream.close()  # cancels the call; the server keeps serving
    assert len(first) > 0
    assert len(client.sample("dcgan", 2, seed=1)) == 2


@pytest.mark.parametrize("method", ["lerp", "slerp"])
@pytest.mark.parametrize(("model", "cond"), [("dcgan", {}), ("cgan", {"digit": 6}), ("infogan", {"digit": 2})])
def test_interpolate_ends_equal_sample_at_the_two_seeds(client, model: str, cond: dict, method: str) -> None:
    strip = client.interpolate(model, 21, 22, 8, method, **cond)
    assert strip.images.shape[0] == 8
    if model == "infogan":  # codes are pinned (middle of the range) so that only z moves
        cond = {**cond, "continuous": strip.request["continuous"]}
    start = client.sample(model, 1, seed=21, **cond)
    end = client.sample(model, 1, seed=22, **cond)
    assert strip.images[0].tobytes() == start.images[0].tobytes()
    assert strip.images[-1].tobytes() == end.images[0].tobytes()
    assert strip.images[0].tobytes() != strip.images[-1].tobytes()
    assert len({img.tobytes() for img in strip.images}) > 2  # the middle frames differ
    assert strip.request["interpolate"] == {"from": 21, "to": 22, "steps": 8, "method": method}


def test_interpolate_between_latent_vectors_and_its_argument_checks(client) -> None:
    z = client.sample("dcgan", 2, seed=4, return_latents=True)
    strip = client.interpolate("dcgan", z.latents[0], z.latents[1], steps=3)
    assert strip.images[0].tobytes() == z.images[0].tobytes()
    assert strip.images[-1].tobytes() == z.images[1].tobytes()
    np.testing.assert_array_equal(strip.latents[1], (z.latents[0] + z.latents[1]) / 2)
    with pytest.raises(ValueError, match="digit= or label="):
        client.interpolate("cgan", 1, 2)
    with pytest.raises(ValueError, match="shape"):
        client.interpolate("dcgan", np.zeros(3), 2)
    with pytest.raises(ValueError, match="steps"):
        client.interpolate("dcgan", 1, 2, steps=1)
    with pytest.raises(ModelNotFound):
        client.interpolate("nope", 1, 2)


def test_encode_on_a_model_without_encoder_is_invalid_argument_naming_it(client) -> None:
    images = client.sample("dcgan", 2, seed=0).images
    with pytest.raises(InvalidArgument) as err:
        client.encode("dcgan", images)
    assert err.value.code == "INVALID_ARGUMENT" and "'dcgan'" in str(err.value) and "encoder" in str(err.value)
    with pytest.raises(InvalidArgument, match="dcgan"):
        client.reconstruct("dcgan", images[..., 0])  # (N, H, W) is accepted client-side too
    with pytest.raises(TypeError, match="uint8"):
        client.encode("dcgan", images.astype(np.float32))


def test_saved_pngs_carry_provenance_and_do_not_depend_on_chunking(client, tmp_path: Path) -> None:
    codes = [0.5, -0.5, 0.25, 0.0][: client.model_info("infogan").conditioning.num_continuous]
    r = client.sample("infogan", 4, seed=9, digit=1, continuous=codes, first_index=100, return_latents=True)
    paths = r.save(tmp_path / "a")
    assert [p.name for p in paths] == [f"infogan-s9-{i:05d}.png" for i in range(100, 104)]
    with Image.open(paths[2]) as img:
        meta = dict(img.text)
        np.testing.assert_array_equal(np.asarray(img)[..., None], r.images[2])
    assert meta["gan:model"] == "infogan" and meta["gan:version"] == r.version
    assert meta["gan:seed"] == "9" and meta["gan:index"] == "102" and meta["gan:class"] == str(r.classes[2])
    assert json.loads(meta["gan:request"]) == {"digit": 1, "continuous": codes}
    assert json.loads(meta["gan:latent"]) == r.latents[2].tolist()
    # the same image from a differently split request gives the same file
    other = client.sample("infogan", 1, seed=9, digit=1, continuous=codes, first_index=102, return_latents=True)
    assert other.save(tmp_path / "b")[0].read_bytes() == paths[2].read_bytes()
    grid = r.save_grid(tmp_path / "g.png", cols=2)
    with Image.open(grid) as img:
        assert img.size == (2 * 30 + 2, 2 * 30 + 2) and img.text["gan:count"] == "4"
    assert [p.size for p in r.to_pil()] == [(28, 28)] * 4
