"""Image URLs: ``/v1/models/{name}/sample.png|.npy`` and ``interpolate.png|.npy``
give the files ``gan-client`` writes for the same request, byte for byte, PNG
text chunks included; and ``/v1/models`` lists what gan.v1 ListModels does."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gan_client import GanClient
from PIL import Image

from .conftest import call

GAN_CLIENT = str(Path(sys.executable).parent / "gan-client")


def gan_client(server, *args: str) -> None:
    done = subprocess.run([GAN_CLIENT, "--server", server.address, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def sdk(http_server):
    with GanClient(http_server.address) as client:
        yield client


# (URL query, the same request as gan-client arguments)
REQUESTS = [
    ("dcgan", "n=16&seed=3", ["-n", "16", "--seed", "3"]),
    ("infogan", "n=16&seed=3&digit=7", ["-n", "16", "--seed", "3", "--digit", "7"]),
    (
        "infogan",
        "n=9&seed=5&code=0.3&code=-0.7&first_index=4&cols=2",
        ["-n", "9", "--seed", "5", "--code", "0.3,-0.7", "--first-index", "4", "--cols", "2"],
    ),
    ("cgan-fashion", "n=5&seed=11&label=sneaker", ["-n", "5", "--seed", "11", "--label", "sneaker"]),
    ("cgan", "n=3&seed=18446744073709551615&digit=1", ["-n", "3", "--seed", str(2**64 - 1), "--digit", "1"]),
]


@pytest.mark.parametrize(("model", "query", "args"), REQUESTS, ids=[r[1] for r in REQUESTS])
def test_sample_png_is_the_file_gan_client_writes(http_server, tmp_path: Path, model, query, args) -> None:
    reply = call(f"{http_server.http_url}/v1/models/{model}/sample.png?{query}")
    assert reply.status == 200, reply.body[:300]
    assert reply.headers["Content-Type"] == "image/png"
    out = tmp_path / "x.png"
    gan_client(http_server, "sample", "--model", model, *args, "--out", str(out))
    with Image.open(io.BytesIO(reply.body)) as served, Image.open(out) as written:
        assert served.text == written.text  # model, version, seed, conditioning, first index, count
        assert served.text["gan:model"] == model
        assert np.array_equal(np.asarray(served), np.asarray(written))
    assert reply.body == out.read_bytes()


def test_sample_npy_is_the_sdks_images(http_server, sdk, tmp_path: Path) -> None:
    reply = call(f"{http_server.http_url}/v1/models/infogan/sample.npy?n=12&seed=9&digit=3&code=0.5,0")
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/octet-stream"
    got = np.load(io.BytesIO(reply.body), allow_pickle=False)
    want = sdk.sample("infogan", n=12, seed=9, digit=3, continuous=[0.5, 0.0]).images
    assert got.dtype == np.uint8 and got.shape == want.shape == (12, 28, 28, 1)
    assert got.tobytes() == want.tobytes()
    out = tmp_path / "x.npy"
    gan_client(
        http_server,
        "sample",
        "--model",
        "infogan",
        "-n",
        "12",
        "--seed",
        "9",
        "--digit",
        "3",
        "--code",
        "0.5,0",
        "--out",
        str(out),
    )
    assert reply.body == out.read_bytes()


def test_interpolate_png_is_the_strip_gan_client_writes(http_server, tmp_path: Path) -> None:
    url = f"{http_server.http_url}/v1/models/infogan/interpolate.png?seed_a=1&seed_b=2&steps=8&digit=7&method=slerp"
    reply = call(url)
    assert reply.status == 200, reply.body[:300]
    out = tmp_path / "strip.png"
    gan_client(
        http_server,
        "interpolate",
        "--model",
        "infogan",
        "--from",
        "1",
        "--to",
        "2",
        "--steps",
        "8",
        "--digit",
        "7",
        "--method",
        "slerp",
        "--out",
        str(out),
    )
    with Image.open(io.BytesIO(reply.body)) as served:
        assert served.size == (8 * 30 + 2, 32)
        assert '"interpolate"' in served.text["gan:request"]
    assert reply.body == out.read_bytes()


def test_interpolate_npy_ends_are_the_two_seeds_images(http_server, sdk) -> None:
    reply = call(f"{http_server.http_url}/v1/models/cgan/interpolate.npy?seed_a=4&seed_b=9&steps=5&label=3")
    frames = np.load(io.BytesIO(reply.body))
    assert frames.shape == (5, 28, 28, 1)
    assert frames[0].tobytes() == sdk.sample("cgan", n=1, seed=4, label="3").images[0].tobytes()
    assert frames[-1].tobytes() == sdk.sample("cgan", n=1, seed=9, label="3").images[0].tobytes()


def test_scale_is_a_nearest_neighbour_upscale_of_the_grid(http_server) -> None:
    base = call(f"{http_server.http_url}/v1/models/dcgan/sample.png?n=6&seed=1&cols=3")
    big = call(f"{http_server.http_url}/v1/models/dcgan/sample.png?n=6&seed=1&cols=3&scale=4")
    with Image.open(io.BytesIO(base.body)) as a, Image.open(io.BytesIO(big.body)) as b:
        small, large = np.asarray(a), np.asarray(b)
        assert a.text == b.text
    assert small.shape == (2 * 30 + 2, 3 * 30 + 2)
    assert large.shape == (small.shape[0] * 4, small.shape[1] * 4)
    assert np.array_equal(large[::4, ::4], small)
    assert np.array_equal(large, np.repeat(np.repeat(small, 4, axis=0), 4, axis=1))
    reply = call(f"{http_server.http_url}/v1/models/dcgan/sample.png?n=4096&scale=3")
    assert reply.status == 400 and reply.json()["error"].startswith("scale: ")


def test_head_and_unknown_parameters(http_server) -> None:
    head = call(f"{http_server.http_url}/v1/models/dcgan/sample.png?n=2", "HEAD")
    assert head.status == 200 and head.body == b"" and head.headers["Content-Type"] == "image/png"
    reply = call(f"{http_server.http_url}/v1/models/dcgan/sample.png?count=2")
    assert reply.status == 400
    assert reply.json()["error"].startswith("count: unknown parameter; this URL takes n, seed, ")
    reply = call(f"{http_server.http_url}/v1/models/dcgan/sample.npy?scale=2")
    assert reply.status == 400 and reply.json()["field"] == "scale"


def test_list_and_get_models_are_gan_v1_as_json(http_server, sdk) -> None:
    listed = call(f"{http_server.http_url}/v1/models").json()["models"]
    infos = sdk.list_models()
    assert [m["name"] for m in listed] == [i.name for i in infos]
    infogan = next(m for m in listed if m["name"] == "infogan")
    info = sdk.model_info("infogan")
    assert infogan["conditioning"]["kind"] == "CONDITIONING_KIND_INFOGAN"
    assert infogan["conditioning"]["num_continuous"] == info.conditioning.num_continuous
    assert infogan["image"] == {"height": 28, "width": 28, "channels": 1}
    assert infogan["versions"] == list(info.versions)
    one = call(f"{http_server.http_url}/v1/models/infogan?version={info.version}").json()
    assert one == infogan
    about = call(f"{http_server.http_url}/v1").json()
    assert about["grpc_port"] == int(http_server.address.rsplit(":", 1)[1])
    assert about["token_required"] is False and about["tls"] is False
