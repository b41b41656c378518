"""`gan-client batch`: sharded, resumable generation as a Kubernetes Indexed Job runs it.

10,000 dcgan images in 4 shards; one shard is killed mid-way, then every shard
is (re)run. The result must equal, byte for byte, one uninterrupted
single-shard run.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from gan_client import GanClient
from PIL import Image

from ..conftest import start_server, stop_server

GAN_CLIENT = str(Path(sys.executable).parent / "gan-client")
TOTAL, SHARDS, SEED = 10_000, 4, 7


@pytest.fixture(scope="module")
def batch_server(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory):
    """A server of its own with one inference thread: ONNX Runtime's default
    pool spins on idle cores, which starves the several CLI processes here."""
    srv = start_server(bundled_models, tmp_path_factory.mktemp("batch") / "server.log", "--threads", "1")
    yield srv
    stop_server(srv)


@pytest.fixture()
def files_dir(tmp_path: Path):
    """Where the 20,000 PNGs go: RAM (/dev/shm) when there is one, since creating
    that many files on some disks costs several seconds of system time."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="gan-batch-test-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JOB_COMPLETION_INDEX", "GAN_SHARD_COUNT")}
    return {**env, **extra}


def _cmd(server: str, out: Path, *extra: str) -> list[str]:
    return [
        GAN_CLIENT,
        "--server",
        server,
        "batch",
        "--model",
        "dcgan",
        "--total",
        str(TOTAL),
        "--seed",
        str(SEED),
        "--out",
        str(out),
        *extra,
    ]


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.glob("img-*.png")}


def test_killed_shard_resumes_and_all_shards_equal_one_uninterrupted_run(batch_server, files_dir: Path) -> None:
    out, single = files_dir / "sharded", files_dir / "single"
    lo, hi = 1 * TOTAL // SHARDS, 2 * TOTAL // SHARDS

    # shard 1 of 4 is killed (SIGKILL, like a lost pod) as soon as its first images exist
    victim = subprocess.Popen(
        _cmd(batch_server.address, out, "--shard-index", "1", "--shard-count", str(SHARDS)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and victim.poll() is None:
        if out.is_dir() and any(out.glob("img-*.png")):
            break
        time.sleep(0.005)
    victim.kill()
    victim.communicate()
    done_before = len(list(out.glob("img-*.png")))
    assert 0 < done_before < hi - lo, f"the shard was not interrupted mid-way ({done_before} files)"
    assert not (out / f"shard-1-of-{SHARDS}.json").exists()

    # every shard, as the Job's pods: index and count from the environment, all at once
    pods = [
        subprocess.Popen(
            _cmd(batch_server.address, out),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(JOB_COMPLETION_INDEX=str(i), GAN_SHARD_COUNT=str(SHARDS)),
        )
        for i in range(SHARDS)
    ]
    results = [p.communicate(timeout=120) for p in pods]
    for p, (_, stderr) in zip(pods, results, strict=True):
        assert p.returncode == 0, stderr
        assert "img/s" not in stderr  # no progress bar when not on a terminal
    assert [r[0].strip() for r in results] == [str(out / f"shard-{i}-of-{SHARDS}.json") for i in range(SHARDS)]
    resumed = results[1][1]
    assert f"{hi - lo - done_before} written, {done_before} already there" in resumed, resumed

    # one uninterrupted run of the whole range, elsewhere
    r = subprocess.run(
        _cmd(batch_server.address, single, "--shard-index", "0", "--shard-count", "1"),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr

    sharded, reference = _digests(out), _digests(single)
    assert len(sharded) == TOTAL
    assert set(sharded) == {f"img-{i:08d}.png" for i in range(TOTAL)}
    assert sharded == reference  # every image byte-identical
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp files left

    # the manifests agree with the files and cover every index once
    covered: dict[str, str] = {}
    for i in range(SHARDS):
        m = json.loads((out / f"shard-{i}-of-{SHARDS}.json").read_text())
        assert (m["model"], m["seed"], m["total"]) == ("dcgan", SEED, TOTAL)
        assert (m["shard_index"], m["shard_count"]) == (i, SHARDS)
        assert (m["first_index"], m["end_index"], m["count"]) == (i * TOTAL // SHARDS, (i + 1) * TOTAL // SHARDS, 2500)
        assert not set(m["files"]) & set(covered)
        covered.update(m["files"])
    assert covered == sharded

    # and the files are the SDK's images, with their index in the metadata
    with GanClient(batch_server.address) as client:
        want = client.sample("dcgan", 3, seed=SEED, first_index=lo + 5)
    for k in range(3):
        with Image.open(out / f"img-{lo + 5 + k:08d}.png") as img:
            np.testing.assert_array_equal(np.asarray(img)[..., None], want.images[k])
            assert img.text["gan:index"] == str(lo + 5 + k) and img.text["gan:seed"] == str(SEED)


def test_batch_refuses_to_mix_settings_and_needs_its_shard(batch_server, tmp_path: Path) -> None:
    out = tmp_path / "b"
    base = [
        GAN_CLIENT,
        "--server",
        batch_server.address,
        "batch",
        "--model",
        "dcgan",
        "--total",
        "40",
        "--out",
        str(out),
    ]
    r = subprocess.run(
        [*base, "--seed", "1", "--shard-index", "0", "--shard-count", "2"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [*base, "--seed", "2", "--shard-index", "1", "--shard-count", "2"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert r.returncode == 2 and "pins another batch" in r.stderr and "seed 1" in r.stderr
    r = subprocess.run([*base, "--seed", "1"], capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 2 and "JOB_COMPLETION_INDEX" in r.stderr
    r = subprocess.run(
        [*base, "--seed", "1"], capture_output=True, text=True, env=_env(JOB_COMPLETION_INDEX="1"), timeout=60
    )
    assert r.returncode == 2 and "GAN_SHARD_COUNT" in r.stderr
    r = subprocess.run(
        [*base, "--seed", "1", "--shard-index", "2", "--shard-count", "2"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert r.returncode == 2 and "--shard-index" in r.stderr
    assert len(list(out.glob("img-*.png"))) == 20


def test_progress_bar_with_rate_and_eta_on_a_terminal(batch_server, tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [
            GAN_CLIENT,
            "--server",
            batch_server.address,
            "batch",
            "--model",
            "dcgan",
            "--total",
            "1200",
            "--seed",
            "1",
            "--shard-index",
            "0",
            "--shard-count",
            "1",
            "--chunk",
            "20",
            "--out",
            str(tmp_path / "p"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=_env(COLUMNS="100"),
    )
    os.close(secondary)
    chunks = []
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "shard 0/1" in text and "img/s" in text and "eta 0:00:0" in text and "1200/1200" in text, text[-500:]
    assert "#" in text and "%" in text
