"""DynamicBatcher and Dispatcher without a server: merging, splitting, order, cancellation, delay, close.

Real bundled models (ONNX Runtime through ModelRepository/LoadedModel) check that batched
results are the bytes of each request run alone. A small pure-Python generator stands in
for the network where a test must count, hold or fail backend calls.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gan_contract.errors import Unavailable
from gan_contract.manifest import (
    Conditioning,
    FileEntry,
    ImageSpec,
    LatentSpec,
    Manifest,
    TensorSpec,
    expected_inputs,
    write_manifest,
)
from gan_contract.request import Plan, SampleSpec
from gan_server.batching import Dispatcher, DynamicBatcher
from gan_server.repository import ModelRepository
from gan_server.sampling import LoadedModel, SampleOutput

TIMEOUT = 20.0  # no test here should come near it; a hang fails instead of blocking the run


class ToyGenerator:
    """A backend computing images = tanh(z[:, :4]) as 2x2 pictures.

    Records the batch size of every call; ``gate`` (set by default) holds calls
    while cleared, ``error`` makes calls fail.
    """

    name = "toy"

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.error: Exception | None = None
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        z = feeds["z"]
        with self._lock:
            self.sizes.append(len(z))
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if not self.gate.wait(TIMEOUT):
                raise TimeoutError("the test never opened the gate")
            if self.error is not None:
                raise self.error
            return np.tanh(z[:, :4]).reshape(-1, 1, 2, 2).astype(np.float32)
        finally:
            with self._lock:
                self.active -= 1


def _toy_manifest() -> Manifest:
    latent, cond = LatentSpec(dim=4), Conditioning()
    return Manifest(
        name="toy",
        version="1",
        variant="toy",
        dataset="none",
        image=ImageSpec(2, 2, 1),
        latent=latent,
        conditioning=cond,
        inputs=expected_inputs(latent, cond),
        output=TensorSpec("images", (-1, 1, 2, 2), "float32"),
        files={"onnx": FileEntry("model.onnx", "0" * 64)},  # never opened: the backend is ToyGenerator
    )


@pytest.fixture()
def toy(tmp_path: Path) -> Iterator[tuple[LoadedModel, ToyGenerator]]:
    directory = tmp_path / "toy" / "1"
    directory.mkdir(parents=True)
    manifest = _toy_manifest()
    write_manifest(directory, manifest)
    gen = ToyGenerator()
    yield LoadedModel(manifest, gen, directory), gen
    gen.gate.set()  # never leave an executor thread waiting


@pytest.fixture()
def reference(toy: tuple[LoadedModel, ToyGenerator]) -> LoadedModel:
    """The toy model on a backend of its own: runs a request alone, without touching the counts."""
    model, _ = toy
    return LoadedModel(model.manifest, ToyGenerator(), model.directory)


@pytest.fixture(scope="module")
def repo(bundled_models: Path) -> ModelRepository:
    repo = ModelRepository(bundled_models, threads=1)
    repo.load_all()
    return repo


@pytest.fixture()
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-infer")
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def run(body: Callable[[], object]):
    """Run the coroutine function ``body`` in a fresh event loop, failing on a hang."""

    async def main():
        return await asyncio.wait_for(body(), TIMEOUT)

    return asyncio.run(main())


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.002)


def plan(model: LoadedModel, count: int, seed: int = 0, **kw) -> Plan:
    return model.plan(SampleSpec(count=count, seed=seed, **kw))


def assert_same(out: SampleOutput, alone: SampleOutput) -> None:
    assert out.images.dtype == np.uint8
    assert out.images.shape == alone.images.shape
    assert out.images.tobytes() == alone.images.tobytes()
    np.testing.assert_array_equal(out.classes, alone.classes)


class Observed:
    """A BatchObserver that keeps what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[LoadedModel, int, list[float]]] = []

    def __call__(self, model: LoadedModel, images: int, queued: list[float]) -> None:
        self.calls.append((model, images, list(queued)))

    @property
    def sizes(self) -> list[int]:
        return [n for _, n, _ in self.calls]


# -- merging --------------------------------------------------------------------------------

REAL_REQUESTS = {
    "dcgan": [dict(count=5, seed=1), dict(count=7, seed=2), dict(count=9, seed=3, first_index=40)],
    "cgan": [dict(count=5, seed=1, digit=3), dict(count=7, seed=1), dict(count=9, seed=2, label="8")],
    "infogan": [
        dict(count=5, seed=4, category=2),
        dict(count=7, seed=4, continuous=(0.5, -0.5)),
        dict(count=9, digit=4),
    ],
}


@pytest.mark.parametrize("name", sorted(REAL_REQUESTS))
def test_concurrent_requests_that_fit_run_as_one_call(
    repo: ModelRepository, executor: ThreadPoolExecutor, name: str
) -> None:
    model = repo.get(name)
    plans = [plan(model, **kw) for kw in REAL_REQUESTS[name]]  # 5 + 7 + 9 = 21 images
    seen = Observed()

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=21, delay=5.0, max_in_flight=1, observer=seen)
        started = time.perf_counter()
        outs = await asyncio.gather(*(batcher.submit(p, 0, p.spec.count) for p in plans))
        elapsed = time.perf_counter() - started
        await batcher.close()
        return outs, elapsed

    outs, elapsed = run(body)
    assert seen.sizes == [21]
    assert seen.calls[0][0] is model
    assert len(seen.calls[0][2]) == 3  # one queue time per request
    assert elapsed < 5.0  # a full batch does not wait for the delay
    for p, out in zip(plans, outs):
        assert_same(out, model.generate(p, 0, p.spec.count))
    if name == "cgan":
        np.testing.assert_array_equal(outs[0].classes, np.full(5, 3))
        np.testing.assert_array_equal(outs[2].classes, np.full(9, 8))
    if name == "dcgan":
        assert all(np.all(out.classes == -1) for out in outs)


def test_backend_sees_one_call_of_the_summed_size(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    plans = [plan(model, n, seed=n) for n in (3, 1, 4)]

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=8, delay=0.0, max_in_flight=1)
        outs = await asyncio.gather(*(batcher.submit(p, 0, p.spec.count) for p in plans))
        await batcher.close()
        return outs

    outs = run(body)
    assert gen.sizes == [8]
    for p, out in zip(plans, outs):
        assert_same(out, reference.generate(p, 0, p.spec.count))


def test_chunks_that_do_not_fit_wait_for_the_next_call(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    plans = [plan(model, 10, seed=1), plan(model, 10, seed=2), plan(model, 6, seed=3)]

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=16, delay=0.0, max_in_flight=1)
        outs = await asyncio.gather(*(batcher.submit(p, 0, p.spec.count) for p in plans))
        await batcher.close()
        return outs

    outs = run(body)
    assert gen.sizes == [10, 16]  # 10 + 10 > 16; the second and third together fit
    for p, out in zip(plans, outs):
        assert_same(out, reference.generate(p, 0, p.spec.count))


# -- splitting ----------------------------------------------------------------------------


def test_dispatcher_chunks() -> None:
    d = Dispatcher(ThreadPoolExecutor(1), max_batch=16, delay=0.0, max_in_flight=1)
    try:
        assert d.chunks(50) == [(0, 16), (16, 16), (32, 16), (48, 2)]
        assert d.chunks(16) == [(0, 16)]
        assert d.chunks(1) == [(0, 1)]
        assert d.chunks(10, start=5) == [(5, 10)]
        assert d.chunks(40, start=8) == [(8, 16), (24, 16), (40, 8)]
        assert d.chunks(0) == []
    finally:
        d.executor.shutdown()


@pytest.mark.parametrize("name", ["dcgan", "cgan", "infogan"])
def test_large_request_is_split_and_reassembled_in_order(
    repo: ModelRepository, executor: ThreadPoolExecutor, name: str
) -> None:
    model = repo.get(name)
    p = plan(model, 50, seed=8)
    seen = Observed()

    async def body():
        dispatcher = Dispatcher(executor, max_batch=16, delay=0.0, max_in_flight=1, observer=seen)
        parts = await dispatcher.run(model, p)
        await dispatcher.close()
        return parts

    parts = run(body)
    assert [len(part.images) for part in parts] == [16, 16, 16, 2]
    assert seen.sizes == [16, 16, 16, 2]
    whole = model.generate(p, 0, 50)
    assert np.concatenate([part.images for part in parts]).tobytes() == whole.images.tobytes()
    np.testing.assert_array_equal(np.concatenate([part.classes for part in parts]), whole.classes)
    assert model.in_flight == 0


def test_submit_refuses_a_chunk_larger_than_max_batch(
    toy: tuple[LoadedModel, ToyGenerator], executor: ThreadPoolExecutor
) -> None:
    model, gen = toy

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=4, delay=0.0, max_in_flight=1)
        try:
            with pytest.raises(ValueError, match="chunk of 5 exceeds max_batch 4"):
                await batcher.submit(plan(model, 5), 0, 5)
        finally:
            await batcher.close()

    run(body)
    assert gen.sizes == []


@pytest.mark.parametrize(("max_batch", "delay"), [(1, 0.0), (4, 0.0), (7, 0.005), (64, 0.0), (64, None), (5, None)])
def test_grouping_never_changes_the_bytes(
    repo: ModelRepository, executor: ThreadPoolExecutor, max_batch: int, delay: float | None
) -> None:
    # The same requests, run concurrently under every batching setting, give the bytes of each run alone.
    model = repo.get("cgan")
    plans = [plan(model, 13, seed=5), plan(model, 6, seed=5, digit=2), plan(model, 9, seed=2**64 - 1)]

    async def body():
        dispatcher = Dispatcher(executor, max_batch=max_batch, delay=delay, max_in_flight=2)
        results = await asyncio.gather(*(dispatcher.run(model, p) for p in plans))
        await dispatcher.close()
        return results

    for p, parts in zip(plans, run(body)):
        alone = model.generate(p, 0, p.spec.count)
        assert np.concatenate([part.images for part in parts]).tobytes() == alone.images.tobytes()
        np.testing.assert_array_equal(np.concatenate([part.classes for part in parts]), alone.classes)


# -- order ----------------------------------------------------------------------------------


def test_queued_chunks_run_first_in_first_out(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    plans = {"a": plan(model, 4, seed=1), "b": plan(model, 3, seed=2), "c": plan(model, 2, seed=3)}
    plans["d"] = plan(model, 1, seed=4)
    finished: list[str] = []

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=4, delay=0.0, max_in_flight=1)

        async def ask(tag: str) -> SampleOutput:
            out = await batcher.submit(plans[tag], 0, plans[tag].spec.count)
            finished.append(tag)
            return out

        gen.gate.clear()
        first = asyncio.create_task(ask("a"))
        await until(lambda: len(gen.sizes) == 1)  # "a" holds the only runner
        rest = [asyncio.create_task(ask(tag)) for tag in "bcd"]
        await asyncio.sleep(0.05)
        assert gen.sizes == [4]  # the others queue while the runner is busy
        gen.gate.set()
        outs = await asyncio.gather(first, *rest)
        await batcher.close()
        return dict(zip("abcd", outs))

    outs = run(body)
    # b (3) runs alone: c (2) does not fit beside it, and d (1) may not jump ahead of c
    assert gen.sizes == [4, 3, 3]
    assert finished == ["a", "b", "c", "d"]
    for tag, out in outs.items():
        assert_same(out, reference.generate(plans[tag], 0, plans[tag].spec.count))


# -- cancellation -----------------------------------------------------------------------------


def test_cancelled_queued_caller_is_dropped(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    pa, pb, pc, pd = plan(model, 4, seed=1), plan(model, 2, seed=2), plan(model, 2, seed=3), plan(model, 1, seed=4)

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=4, delay=0.0, max_in_flight=1)
        gen.gate.clear()
        a = asyncio.create_task(batcher.submit(pa, 0, 4))
        await until(lambda: len(gen.sizes) == 1)
        b = asyncio.create_task(batcher.submit(pb, 0, 2))
        c = asyncio.create_task(batcher.submit(pc, 0, 2))
        await asyncio.sleep(0.02)
        assert not b.done() and not c.done()
        b.cancel()
        gen.gate.set()
        out_a, out_c = await a, await c
        with pytest.raises(asyncio.CancelledError):
            await b
        out_d = await batcher.submit(pd, 0, 1)  # the loop still serves
        await batcher.close()
        return out_a, out_c, out_d

    out_a, out_c, out_d = run(body)
    assert gen.sizes == [4, 2, 1]  # b's two images were never computed
    assert_same(out_a, reference.generate(pa, 0, 4))
    assert_same(out_c, reference.generate(pc, 0, 2))
    assert_same(out_d, reference.generate(pd, 0, 1))


def test_caller_cancelled_during_its_run_does_not_hurt_the_others(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    pa, pb, pc = plan(model, 5, seed=1), plan(model, 6, seed=2), plan(model, 3, seed=3)

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=16, delay=0.0, max_in_flight=1)
        gen.gate.clear()
        a = asyncio.create_task(batcher.submit(pa, 0, 5))
        b = asyncio.create_task(batcher.submit(pb, 0, 6))
        await until(lambda: len(gen.sizes) == 1)
        assert gen.sizes == [11]  # a and b share the call
        a.cancel()
        await asyncio.sleep(0.01)
        gen.gate.set()
        out_b = await b
        with pytest.raises(asyncio.CancelledError):
            await a
        out_c = await batcher.submit(pc, 0, 3)
        await batcher.close()
        return out_b, out_c

    out_b, out_c = run(body)
    assert gen.sizes == [11, 3]
    assert_same(out_b, reference.generate(pb, 0, 6))
    assert_same(out_c, reference.generate(pc, 0, 3))


def test_backend_error_reaches_every_caller_of_that_run(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    pa, pb, pc = plan(model, 2, seed=1), plan(model, 3, seed=2), plan(model, 4, seed=3)

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=16, delay=0.0, max_in_flight=1)
        gen.error = RuntimeError("the runtime fell over")
        failed = await asyncio.gather(batcher.submit(pa, 0, 2), batcher.submit(pb, 0, 3), return_exceptions=True)
        gen.error = None
        out = await batcher.submit(pc, 0, 4)
        await batcher.close()
        return failed, out

    failed, out = run(body)
    assert gen.sizes == [5, 4]
    assert [type(e) for e in failed] == [RuntimeError, RuntimeError]
    assert all(str(e) == "the runtime fell over" for e in failed)
    assert_same(out, reference.generate(pc, 0, 4))


# -- delay -------------------------------------------------------------------------------------


def test_zero_delay_idle_batcher_runs_at_once(
    toy: tuple[LoadedModel, ToyGenerator], executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    seen = Observed()

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=64, delay=0.0, max_in_flight=1, observer=seen)
        await batcher.submit(plan(model, 1, seed=1), 0, 1)
        await asyncio.sleep(0.05)
        await batcher.submit(plan(model, 1, seed=2), 0, 1)
        await batcher.close()

    run(body)
    assert gen.sizes == [1, 1]  # nobody waited for the batch to fill
    assert all(q < 0.25 for _, _, queued in seen.calls for q in queued)


def test_zero_delay_still_batches_under_load(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    plans = [plan(model, 2, seed=1), plan(model, 3, seed=2), plan(model, 5, seed=3)]

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=64, delay=0.0, max_in_flight=1)
        gen.gate.clear()
        first = asyncio.create_task(batcher.submit(plans[0], 0, 2))
        await until(lambda: len(gen.sizes) == 1)
        rest = [asyncio.create_task(batcher.submit(p, 0, p.spec.count)) for p in plans[1:]]
        await asyncio.sleep(0.02)
        gen.gate.set()
        outs = await asyncio.gather(first, *rest)
        await batcher.close()
        return outs

    outs = run(body)
    assert gen.sizes == [2, 8]
    for p, out in zip(plans, outs):
        assert_same(out, reference.generate(p, 0, p.spec.count))


def test_late_arrival_joins_within_the_delay(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    pa, pb = plan(model, 4, seed=1), plan(model, 4, seed=2)

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=8, delay=10.0, max_in_flight=1)
        started = time.perf_counter()
        a = asyncio.create_task(batcher.submit(pa, 0, 4))
        await asyncio.sleep(0.1)
        assert gen.sizes == []  # a waits for company
        b = asyncio.create_task(batcher.submit(pb, 0, 4))
        outs = await asyncio.gather(a, b)
        elapsed = time.perf_counter() - started
        await batcher.close()
        return outs, elapsed

    (out_a, out_b), elapsed = run(body)
    assert gen.sizes == [8]
    assert elapsed < 10.0  # the batch filled up, so nobody waited out the delay
    assert_same(out_a, reference.generate(pa, 0, 4))
    assert_same(out_b, reference.generate(pb, 0, 4))


def test_delay_is_counted_from_the_oldest_chunk(
    toy: tuple[LoadedModel, ToyGenerator], executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    seen = Observed()
    delay, gap = 0.5, 0.4

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=64, delay=delay, max_in_flight=1, observer=seen)
        a = asyncio.create_task(batcher.submit(plan(model, 3, seed=1), 0, 3))
        await asyncio.sleep(gap)
        b = asyncio.create_task(batcher.submit(plan(model, 2, seed=2), 0, 2))
        await asyncio.gather(a, b)
        await batcher.close()

    run(body)
    assert gen.sizes == [5]  # the late one joined
    ((_, images, (queued_a, queued_b)),) = seen.calls
    assert images == 5
    assert queued_a >= delay  # the oldest waited its delay...
    assert queued_a < delay + gap  # ...and not a delay counted from the newest
    assert queued_b < queued_a


@pytest.mark.parametrize("max_in_flight", [1, 2])
def test_max_in_flight_runners(
    toy: tuple[LoadedModel, ToyGenerator], executor: ThreadPoolExecutor, max_in_flight: int
) -> None:
    model, gen = toy

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=4, delay=0.0, max_in_flight=max_in_flight)
        gen.gate.clear()
        a = asyncio.create_task(batcher.submit(plan(model, 4, seed=1), 0, 4))
        await until(lambda: len(gen.sizes) == 1)
        b = asyncio.create_task(batcher.submit(plan(model, 2, seed=2), 0, 2))
        if max_in_flight == 2:
            await until(lambda: len(gen.sizes) == 2)  # a second runner takes b at once
        else:
            await asyncio.sleep(0.1)
            assert gen.sizes == [4]  # b waits for the only runner
        gen.gate.set()
        await asyncio.gather(a, b)
        await batcher.close()

    run(body)
    assert gen.sizes == [4, 2]
    assert gen.max_active == max_in_flight


# -- close --------------------------------------------------------------------------------------


def test_close_waits_for_the_running_call(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    p = plan(model, 3, seed=9)

    async def body():
        baseline = len(asyncio.all_tasks())
        batcher = DynamicBatcher(model, executor, max_batch=4, delay=0.0, max_in_flight=1)
        gen.gate.clear()
        caller = asyncio.create_task(batcher.submit(p, 0, 3))
        await until(lambda: len(gen.sizes) == 1)
        closing = asyncio.create_task(batcher.close())
        await asyncio.sleep(0.05)
        assert not closing.done()  # a run is still in flight
        gen.gate.set()
        await closing
        out = await caller
        return out, len(asyncio.all_tasks()) - baseline

    out, left = run(body)
    assert_same(out, reference.generate(p, 0, 3))
    assert left == 0  # the batching loop and its runs are gone


def test_close_does_not_strand_a_queued_caller(
    toy: tuple[LoadedModel, ToyGenerator], executor: ThreadPoolExecutor
) -> None:
    model, gen = toy

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=64, delay=10.0, max_in_flight=1)
        caller = asyncio.create_task(batcher.submit(plan(model, 1), 0, 1))
        await asyncio.sleep(0.05)  # queued, waiting out the delay
        await batcher.close()
        with pytest.raises(Unavailable):
            await asyncio.wait_for(caller, 2.0)
        with pytest.raises(Unavailable):
            await asyncio.wait_for(batcher.submit(plan(model, 1), 0, 1), 2.0)

    run(body)
    assert gen.sizes == []


# -- Dispatcher -------------------------------------------------------------------------------------


def test_batching_off_runs_each_chunk_alone(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    seen = Observed()
    pa, pb, big = plan(model, 5, seed=1), plan(model, 5, seed=2), plan(model, 40, seed=3)

    async def body():
        dispatcher = Dispatcher(executor, max_batch=16, delay=None, max_in_flight=1, observer=seen)
        results = await asyncio.gather(dispatcher.run(model, pa), dispatcher.run(model, pb), dispatcher.run(model, big))
        await dispatcher.close()
        return results

    (a,), (b,), parts = run(body)
    assert sorted(gen.sizes) == [5, 5, 8, 16, 16]  # never merged, even where they would fit
    assert sorted(seen.sizes) == [5, 5, 8, 16, 16]
    assert all(queued == [0.0] for _, _, queued in seen.calls)
    assert [len(part.images) for part in parts] == [16, 16, 8]
    assert_same(a, reference.generate(pa, 0, 5))
    assert_same(b, reference.generate(pb, 0, 5))
    assert np.concatenate([part.images for part in parts]).tobytes() == reference.generate(big, 0, 40).images.tobytes()


def test_dispatcher_shares_one_queue_per_model(tmp_path: Path, executor: ThreadPoolExecutor) -> None:
    models = []
    for i in range(2):
        directory = tmp_path / f"m{i}" / "1"
        directory.mkdir(parents=True)
        write_manifest(directory, _toy_manifest())
        gen = ToyGenerator()
        models.append((LoadedModel(_toy_manifest(), gen, directory), gen))
    (m0, g0), (m1, g1) = models

    async def body():
        dispatcher = Dispatcher(executor, max_batch=16, delay=0.0, max_in_flight=1)
        g0.gate.clear()
        g1.gate.clear()
        first = [asyncio.create_task(dispatcher.run(m, plan(m, 1))) for m in (m0, m1)]
        await until(lambda: g0.sizes == [1] and g1.sizes == [1])
        # two requests per model queue behind each model's busy runner
        rest = [asyncio.create_task(dispatcher.run(m, plan(m, n, seed=n))) for m in (m0, m1) for n in (2, 3)]
        await asyncio.sleep(0.02)
        assert (m0.in_flight, m1.in_flight) == (3, 3)
        g0.gate.set()
        g1.gate.set()
        await asyncio.gather(*first, *rest)
        await dispatcher.close()

    try:
        run(body)
    finally:
        g0.gate.set()
        g1.gate.set()
    assert g0.sizes == [1, 5] and g1.sizes == [1, 5]  # merged per model, never across models
    assert (m0.in_flight, m1.in_flight) == (0, 0)


def test_in_flight_is_released_on_error(toy: tuple[LoadedModel, ToyGenerator], executor: ThreadPoolExecutor) -> None:
    model, gen = toy
    gen.error = RuntimeError("boom")

    async def body():
        dispatcher = Dispatcher(executor, max_batch=4, delay=0.0, max_in_flight=1)
        with pytest.raises(RuntimeError, match="boom"):
            await dispatcher.run(model, plan(model, 10))
        await dispatcher.close()

    run(body)
    assert model.in_flight == 0


def test_retire_waits_for_in_flight_calls_then_stops_the_batcher(
    toy: tuple[LoadedModel, ToyGenerator], reference: LoadedModel, executor: ThreadPoolExecutor
) -> None:
    model, gen = toy
    p = plan(model, 6, seed=6)

    async def body():
        baseline = len(asyncio.all_tasks())
        dispatcher = Dispatcher(executor, max_batch=4, delay=0.0, max_in_flight=1)
        gen.gate.clear()
        call = asyncio.create_task(dispatcher.run(model, p))
        await until(lambda: len(gen.sizes) == 1)
        retiring = asyncio.create_task(dispatcher.retire(model, poll=0.01))
        await asyncio.sleep(0.05)
        assert not retiring.done()  # the request still holds the model
        gen.gate.set()
        parts = await call
        await retiring
        tasks_after_retire = len(asyncio.all_tasks()) - baseline
        # a later request (a model loaded again) gets a fresh batcher
        again = await dispatcher.run(model, p)
        await dispatcher.close()
        return parts, again, tasks_after_retire, len(asyncio.all_tasks()) - baseline

    parts, again, after_retire, after_close = run(body)
    assert after_retire == 0 and after_close == 0  # no batching loop left running
    assert gen.sizes == [4, 2, 4, 2]
    alone = reference.generate(p, 0, 6).images.tobytes()
    assert np.concatenate([x.images for x in parts]).tobytes() == alone
    assert np.concatenate([x.images for x in again]).tobytes() == alone


def test_dispatcher_close_stops_every_loop(repo: ModelRepository, executor: ThreadPoolExecutor) -> None:
    models = [repo.get(name) for name in ("dcgan", "cgan", "infogan")]

    async def body():
        baseline = len(asyncio.all_tasks())
        dispatcher = Dispatcher(executor, max_batch=8, delay=0.001, max_in_flight=2)
        await asyncio.gather(*(dispatcher.run(m, plan(m, 10)) for m in models))
        before = len(asyncio.all_tasks()) - baseline
        await dispatcher.close()
        return before, len(asyncio.all_tasks()) - baseline

    before, after = run(body)
    assert before == 3  # one batching loop per model
    assert after == 0
