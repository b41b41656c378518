"""Restarts that lose nothing: a server restarted on the same port, mid-call.

The SDK waits (within the call's deadline) for a server it has reached
before; a stream cut by the restart resumes from the next image, so every
image arrives exactly once.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gan_client import AsyncGanClient, GanClient, SampleResult

from ..conftest import BIN, RunningServer, start_server, stop_server

STREAM_IMAGES = 40_000  # ~31 MB of dcgan images: far more than flow control lets the server run ahead


@pytest.fixture(scope="module")
def dcgan_only(bundled_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("restarts") / "models"
    shutil.copytree(bundled_models / "dcgan", root / "dcgan")
    return root


@pytest.fixture(scope="module")
def reference(dcgan_only: Path, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The stream's images from an uninterrupted run."""
    srv = start_server(dcgan_only, tmp_path_factory.mktemp("ref") / "log")
    try:
        with GanClient(srv.address, timeout=120) as c:
            return SampleResult.concatenate(list(c.sample_stream("dcgan", STREAM_IMAGES, 11))).images
    finally:
        stop_server(srv)


class Restart:
    """SIGTERM the first server; once it has exited and ``gap`` seconds passed, start a second on its port."""

    def __init__(self, first: RunningServer, models: Path, port: int, log: Path, gap: float) -> None:
        self.first, self.models, self.port, self.log, self.gap = first, models, port, log, gap
        self.second: RunningServer | BaseException | None = None
        self.thread = threading.Thread(target=self._run)

    def start(self) -> None:
        self.first.process.send_signal(signal.SIGTERM)
        self.thread.start()

    def pace(self) -> None:
        """Read slowly until the second server is up, so that the first cannot finish the stream in its grace."""
        if self.thread.is_alive() and self.second is None:
            time.sleep(0.02)

    def _run(self) -> None:
        try:
            self.first.process.wait(30)
            time.sleep(self.gap)  # nothing listens on the port meanwhile
            self.second = start_server(self.models, self.log, "--port", str(self.port))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.second = exc

    def finish(self) -> RunningServer:
        if self.thread.ident is not None:
            self.thread.join(60)
        stop_server(self.first)
        assert isinstance(self.second, RunningServer), self.second
        return self.second


def _check_exactly_once(parts: list[SampleResult], reference: np.ndarray) -> None:
    starts = [p.start for p in parts]
    assert starts == list(np.cumsum([0] + [len(p) for p in parts[:-1]])), "an image came twice or not at all"
    images = SampleResult.concatenate(parts).images
    assert images.shape == reference.shape
    np.testing.assert_array_equal(images, reference)


def test_stream_resumes_across_a_restart(dcgan_only: Path, reference: np.ndarray, tmp_path: Path, unused_port: int):
    # Before: the stream failed with CANCELLED/UNAVAILABLE at the restart (gRPC does not retry a
    # stream once a message arrived), and the images already received were all a caller had.
    first = start_server(dcgan_only, tmp_path / "a.log", "--port", str(unused_port), "--grace", "0.5")
    restart = Restart(first, dcgan_only, unused_port, tmp_path / "b.log", gap=1.0)
    parts: list[SampleResult] = []
    try:
        with GanClient(first.address, timeout=120) as c:
            for part in c.sample_stream("dcgan", STREAM_IMAGES, 11):
                parts.append(part)
                if len(parts) == 5:
                    restart.start()  # mid-stream: the first server cuts it after its 0.5 s grace
                if len(parts) >= 5:
                    restart.pace()
    finally:
        second = restart.finish()
        stop_server(second)
    _check_exactly_once(parts, reference)
    assert "SampleStream" in second.log(), "the rest did not come from the second server"


@pytest.mark.slow
def test_async_stream_resumes_across_a_restart(
    dcgan_only: Path, reference: np.ndarray, tmp_path: Path, unused_port: int
) -> None:
    first = start_server(dcgan_only, tmp_path / "a.log", "--port", str(unused_port), "--grace", "0.5")
    restart = Restart(first, dcgan_only, unused_port, tmp_path / "b.log", gap=1.0)

    async def run() -> list[SampleResult]:
        parts: list[SampleResult] = []
        async with AsyncGanClient(first.address, timeout=120) as c:
            async for part in c.sample_stream("dcgan", STREAM_IMAGES, 11):
                parts.append(part)
                if len(parts) == 5:
                    restart.start()
                if len(parts) >= 5:
                    await asyncio.to_thread(restart.pace)
        return parts

    try:
        parts = asyncio.run(run())
    finally:
        second = restart.finish()
        stop_server(second)
    _check_exactly_once(parts, reference)
    assert "SampleStream" in second.log()


@pytest.mark.slow
def test_cli_batch_resumes_across_a_restart(
    dcgan_only: Path, reference: np.ndarray, tmp_path: Path, unused_port: int
) -> None:
    from PIL import Image

    total = 8000
    first = start_server(dcgan_only, tmp_path / "a.log", "--port", str(unused_port), "--grace", "0.5")
    restart = Restart(first, dcgan_only, unused_port, tmp_path / "b.log", gap=1.0)
    out = tmp_path / "out"
    command = [str(BIN / "gan-client"), "--server", first.address, "--timeout", "120", "batch", "-m", "dcgan"]
    command += ["--total", str(total), "--seed", "11", "--shard-index", "0", "--shard-count", "1"]
    command += ["--chunk", "4000", "-o", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not out.is_dir() or len(list(out.glob("img-*.png"))) < 300:  # well into the first stream
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        restart.start()
        _, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
        second = restart.finish()
        stop_server(second)
    assert proc.returncode == 0, err.decode()[-2000:]
    files = sorted(out.glob("img-*.png"))
    assert len(files) == total
    images = np.stack([np.asarray(Image.open(f)) for f in files]).reshape(total, 28, 28, 1)
    np.testing.assert_array_equal(images, reference[:total])
    assert "SampleStream" in second.log()


def test_unary_call_waits_for_a_server_that_restarts(dcgan_only: Path, tmp_path: Path, unused_port: int) -> None:
    # Before: with nothing listening, the default retry policy's five attempts were spent in
    # about 3 s of refused connections, and the call failed with ConnectionFailed.
    first = start_server(dcgan_only, tmp_path / "a.log", "--port", str(unused_port))
    restart = Restart(first, dcgan_only, unused_port, tmp_path / "b.log", gap=4.0)
    try:
        with GanClient(first.address, timeout=60) as c:
            expected = c.sample("dcgan", 3, seed=4).images  # the server is reached once
            restart.start()
            first.process.wait(30)
            t0 = time.monotonic()
            got = c.sample("dcgan", 3, seed=4).images  # while nothing listens
            waited = time.monotonic() - t0
    finally:
        second = restart.finish()
        stop_server(second)
    np.testing.assert_array_equal(got, expected)
    assert waited > 3.0, waited  # it did wait: longer than the retry budget alone


def test_resume_request_moves_on_and_keeps_the_version() -> None:
    from gan_client import _core

    latents = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    req = _core.sample_request("dcgan", 5, 9, latents=latents, first_index=100, return_latents=True, digit=None)
    rest = _core.resume_request(req, 2, "7")
    assert (rest.count, rest.first_index, rest.seed, rest.version, rest.return_latents) == (3, 102, 9, "7", True)
    np.testing.assert_array_equal(np.asarray(rest.latents, np.float32).reshape(3, 3), latents[2:])
    assert req.count == 5 and len(req.latents) == 15  # the original is left as it was
