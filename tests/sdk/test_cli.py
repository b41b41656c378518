"""gan-client end to end, as a subprocess against the real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

GAN_CLIENT = str(Path(sys.executable).parent / "gan-client")


def run(args: list[str], cwd: Path, server: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full = [GAN_CLIENT] + (["--server", server] if server else []) + args
    return subprocess.run(full, cwd=cwd, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def test_same_seed_gives_identical_npy(server, tmp_path: Path) -> None:
    for name in ("a.npy", "b.npy"):
        r = run(
            ["sample", "--model", "infogan", "--digit", "7", "-n", "64", "--seed", "3", "--out", name],
            tmp_path,
            server.address,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == name
    a, b = (tmp_path / "a.npy").read_bytes(), (tmp_path / "b.npy").read_bytes()
    assert a == b
    arr = np.load(tmp_path / "a.npy")
    assert arr.shape == (64, 28, 28, 1) and arr.dtype == np.uint8


def test_grid_png_default_name_and_metadata(server, tmp_path: Path) -> None:
    r = run(["sample", "--model", "cgan", "--digit", "2", "-n", "16", "--seed", "4"], tmp_path, server.address)
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip())
    assert path.parent == tmp_path and path.suffix == ".png"
    with Image.open(path) as img:
        # 4x4 grid of 28 px images with 2 px padding: 4*30 + 2 = 122
        assert img.size == (122, 122) and img.mode == "L"
        assert img.text["gan:model"] == "cgan" and img.text["gan:seed"] == "4"
        assert '"digit": 2' in img.text["gan:request"]


def test_directory_output_one_png_per_image(server, tmp_path: Path) -> None:
    r = run(["sample", "-m", "dcgan", "-n", "3", "--seed", "8", "--out", "imgs"], tmp_path, server.address)
    assert r.returncode == 0, r.stderr
    files = sorted((tmp_path / "imgs").glob("*.png"))
    assert len(files) == 3
    r2 = run(["sample", "-m", "dcgan", "-n", "3", "--seed", "8", "--out", "ref.npy"], tmp_path, server.address)
    assert r2.returncode == 0
    ref = np.load(tmp_path / "ref.npy")
    for i, f in enumerate(files):
        with Image.open(f) as img:
            np.testing.assert_array_equal(np.asarray(img)[..., None], ref[i])
            assert img.text["gan:index"] == str(i)


def test_server_address_from_environment(server, tmp_path: Path) -> None:
    r = run(["list"], tmp_path, env={"GAN_SERVER": server.address})
    assert r.returncode == 0, r.stderr
    assert "infogan" in r.stdout and "cgan" in r.stdout


def test_info_shows_digit_map(server, tmp_path: Path) -> None:
    r = run(["info", "infogan"], tmp_path, server.address)
    assert r.returncode == 0, r.stderr
    assert "digit map:" in r.stdout and "category" in r.stdout


def test_server_not_running_is_one_line_exit_3(tmp_path: Path, unused_port: int) -> None:
    r = run(["sample", "--model", "infogan", "--digit", "7", "--seed", "1"], tmp_path, f"127.0.0.1:{unused_port}")
    assert r.returncode == 3
    assert r.stderr.count("\n") == 1 and "cannot reach a gan-server" in r.stderr
    assert "Traceback" not in r.stderr
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["sample", "--model", "nope", "--seed", "1"], 4, "not found"),
        (["sample", "--model", "dcgan", "--digit", "7", "--seed", "1"], 5, "takes no digit"),
        (["sample", "--model", "cgan", "--digit", "11"], 2, "--digit"),
        (["sample", "--model", "cgan", "--seed", "-1"], 2, "--seed"),
        (["sample", "--model", "cgan", "-n", "0"], 2, "--count"),
        (["sample", "--model", "cgan", "--digit", "1", "--label", "1"], 2, "at most one"),
        (["sample", "--model", "infogan", "--code", "x,1"], 2, "--code"),
        (["sample", "--model", "cgan", "--seed", "1", "--out", "missing/dir/x.png"], 2, "does not exist"),
    ],
)
def test_errors_have_distinct_exit_codes(server, tmp_path: Path, args, code: int, needle: str) -> None:
    r = run(args, tmp_path, server.address)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr


def test_list_json_is_machine_readable(server, tmp_path: Path) -> None:
    r = run(["list", "--json"], tmp_path, server.address)
    assert r.returncode == 0, r.stderr
    models = {m["name"]: m for m in json.loads(r.stdout)}
    assert {"dcgan", "cgan", "infogan"} <= set(models)
    assert models["cgan"]["conditioning"]["kind"] == "class"
    assert models["dcgan"]["image"] == [28, 28, 1] and models["dcgan"]["latent_dim"] > 0


def test_health_prints_the_status(server, tmp_path: Path) -> None:
    r = run(["health"], tmp_path, server.address)
    assert (r.returncode, r.stdout.strip()) == (0, "SERVING"), r.stderr
    r = run(["health", "--service", "gan.v1.Generator"], tmp_path, server.address)
    assert (r.returncode, r.stdout.strip()) == (0, "SERVING")
    r = run(["health", "--service", "no.such.Service"], tmp_path, server.address)
    assert (r.returncode, r.stdout.strip()) == (4, "SERVICE_UNKNOWN")


def test_interpolate_writes_a_one_row_strip_whose_ends_are_the_seeds(server, tmp_path: Path) -> None:
    r = run(
        [
            "interpolate",
            "--model",
            "cgan",
            "--from",
            "3",
            "--to",
            "9",
            "--steps",
            "10",
            "--method",
            "slerp",
            "--digit",
            "4",
            "--out",
            "strip.png",
        ],
        tmp_path,
        server.address,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "strip.png"
    with Image.open(tmp_path / "strip.png") as img:
        assert img.size == (10 * 30 + 2, 30 + 2)  # one row of ten 28 px frames, 2 px padding
        strip = np.asarray(img)
        meta = json.loads(img.text["gan:request"])
    assert meta["interpolate"] == {"from": 3, "to": 9, "steps": 10, "method": "slerp"} and meta["digit"] == 4
    for seed, x in ((3, 2), (9, 2 + 9 * 30)):
        r = run(
            ["sample", "--model", "cgan", "-n", "1", "--seed", str(seed), "--digit", "4", "--out", f"e{seed}.npy"],
            tmp_path,
            server.address,
        )
        assert r.returncode == 0, r.stderr
        np.testing.assert_array_equal(strip[2:30, x : x + 28], np.load(tmp_path / f"e{seed}.npy")[0, ..., 0])
    r = run(["interpolate", "--model", "dcgan", "--from", "1", "--to", "2", "--steps", "4"], tmp_path, server.address)
    assert r.returncode == 0 and Path(r.stdout.strip()).name == "dcgan-lerp-s1-s2.png"


def test_sample_streams_large_counts_and_saves_latents(server, tmp_path: Path) -> None:
    r = run(
        [
            "sample",
            "-m",
            "dcgan",
            "-n",
            "5000",
            "--seed",
            "2",
            "--first-index",
            "10",
            "--out",
            "big.npy",
            "--save-latents",
            "z.npy",
        ],
        tmp_path,
        server.address,
    )  # over the server's 4096 per Sample call
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["big.npy", "z.npy"]
    images, z = np.load(tmp_path / "big.npy"), np.load(tmp_path / "z.npy")
    assert images.shape == (5000, 28, 28, 1) and z.shape[0] == 5000
    r = run(["sample", "-m", "dcgan", "--latents", "z.npy", "--out", "again.npy"], tmp_path, server.address)
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "again.npy").tobytes() == images.tobytes()


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["interpolate", "--model", "cgan", "--from", "1", "--to", "2"], 2, "--digit"),
        (["interpolate", "--model", "dcgan", "--from", "1", "--to", "2", "--steps", "1"], 2, "--steps"),
        (["interpolate", "--model", "dcgan", "--from", "1", "--to", "2", "--method", "cubic"], 2, "--method"),
        (["interpolate", "--model", "nope", "--from", "1", "--to", "2"], 4, "not found"),
        (["encode", "--model", "dcgan", "IMG", "--out", "z.npy"], 5, "no encoder"),
        (["--client-cert", "IMG", "list"], 2, "--client-key"),
        (["batch", "--model", "dcgan", "--total", "10", "--seed", "1", "--out", "b"], 2, "JOB_COMPLETION_INDEX"),
    ],
)
def test_new_commands_errors_have_distinct_exit_codes(server, tmp_path: Path, args, code: int, needle: str) -> None:
    Image.new("L", (28, 28)).save(tmp_path / "img.png")
    args = [str(tmp_path / "img.png") if a == "IMG" else a for a in args]
    env = {k: "" for k in ("JOB_COMPLETION_INDEX", "GAN_SHARD_COUNT")}
    r = run(args, tmp_path, server.address, env=env)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_unreachable_server_is_exit_3_for_every_command(tmp_path: Path, unused_port: int) -> None:
    for args in (["list"], ["health"], ["interpolate", "--model", "dcgan", "--from", "1", "--to", "2"]):
        r = run(["--no-retries", *args], tmp_path, f"127.0.0.1:{unused_port}")
        assert r.returncode == 3, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "cannot reach" in r.stderr
