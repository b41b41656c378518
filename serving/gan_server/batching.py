"""Dynamic batching: concurrent requests for one model share backend runs.

Each request is split into chunks of at most ``max_batch`` images. When a
runner (one of ``max_in_flight``) is free, the queued chunks that fit in
``max_batch`` run as one backend call, after waiting at most ``delay``
seconds (from the oldest queued chunk) for more to join; each caller gets its
own slice back. Chunks that arrive while every runner is busy queue up and
form the next batch, so with ``delay`` 0 an idle server adds no latency and a
loaded one still batches. Every image's latent comes
from its own (seed, index) stream, so results do not depend on the grouping.

With batching off (``delay=None``) each chunk runs alone.

``close()`` lets running batches finish; chunks still queued then, and any
submitted later, fail with Unavailable (retry elsewhere) instead of waiting
for a loop that no longer runs.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from gan_contract.errors import Unavailable
from gan_contract.request import Plan

from .sampling import LoadedModel, SampleOutput

# Called after each backend run with (model, images in the run, queue seconds per chunk).
BatchObserver = Callable[[LoadedModel, int, list[float]], None]


@dataclass
class _Chunk:
    plan: Plan
    start: int
    count: int
    future: asyncio.Future[SampleOutput]
    enqueued: float = field(default_factory=time.perf_counter)


def run_chunks(model: LoadedModel, chunks: list[tuple[Plan, int, int]]) -> list[SampleOutput]:
    """Run the chunks stacked in one backend call (on the device where the backend can), split the output."""
    return model.run_chunks(chunks)


class DynamicBatcher:
    """One model's queue and its batching loop."""

    def __init__(
        self,
        model: LoadedModel,
        executor: Executor,
        max_batch: int,
        delay: float,
        max_in_flight: int,
        observer: BatchObserver | None = None,
    ) -> None:
        self.model = model
        self.executor = executor
        self.max_batch = max_batch
        self.delay = delay
        self.observer = observer
        self._pending: deque[_Chunk] = deque()
        self._queued_images = 0
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._runs: set[asyncio.Future] = set()
        self._closed = False
        self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    def _closed_error(self) -> Unavailable:
        return Unavailable(f"model {self.model.name!r} version {self.model.version!r} is being unloaded; retry")

    async def submit(self, plan: Plan, start: int, count: int) -> SampleOutput:
        if count > self.max_batch:
            raise ValueError(f"chunk of {count} exceeds max_batch {self.max_batch}")
        if self._closed:
            raise self._closed_error()
        chunk = _Chunk(plan, start, count, asyncio.get_running_loop().create_future())
        self._pending.append(chunk)
        self._queued_images += count
        self._wakeup.set()
        return await chunk.future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # A free runner first: while every runner is busy, requests keep
            # queueing and join the next batch (batching under load costs an
            # idle server no latency).
            await self._slots.acquire()
            # Then wait for a full batch, or until the oldest chunk has waited `delay`.
            while self._pending and self._queued_images < self.max_batch:
                remaining = self._pending[0].enqueued + self.delay - time.perf_counter()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch: list[_Chunk] = []
            total = 0
            while self._pending and (not batch or total + self._pending[0].count <= self.max_batch):
                chunk = self._pending.popleft()
                self._queued_images -= chunk.count
                if chunk.future.done():  # the caller went away
                    continue
                batch.append(chunk)
                total += chunk.count
            if not batch:
                self._slots.release()
                continue
            # The run's result is handed out by a callback on the loop, not by a
            # task awaiting it: one task step less per batch.
            started = time.perf_counter()
            work = [(c.plan, c.start, c.count) for c in batch]
            try:
                run = loop.run_in_executor(self.executor, run_chunks, self.model, work)
            except Exception as exc:  # noqa: BLE001 - e.g. the executor is shut down: handed to every caller
                run = loop.create_future()
                run.set_exception(exc)
            self._runs.add(run)
            run.add_done_callback(functools.partial(self._finish, batch, started))

    def _finish(self, batch: list[_Chunk], started: float, run: asyncio.Future) -> None:
        self._runs.discard(run)
        try:
            if run.cancelled():
                for chunk in batch:
                    if not chunk.future.done():
                        chunk.future.cancel()
                return
            exc = run.exception()
            if exc is not None:  # handed to every caller
                for chunk in batch:
                    if not chunk.future.done():
                        chunk.future.set_exception(exc)
                return
            for chunk, out in zip(batch, run.result()):
                if not chunk.future.done():
                    chunk.future.set_result(out)
            if self.observer:
                self.observer(self.model, sum(c.count for c in batch), [started - c.enqueued for c in batch])
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Stop batching: running batches finish, queued chunks fail with Unavailable."""
        self._closed = True
        self._loop_task.cancel()
        try:
            await self._loop_task
        except asyncio.CancelledError:
            pass
        while self._pending:
            chunk = self._pending.popleft()
            if not chunk.future.done():
                chunk.future.set_exception(self._closed_error())
        self._queued_images = 0
        if self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)


class Dispatcher:
    """Runs planned requests on their model, batched or not. Shared by all APIs."""

    def __init__(
        self,
        executor: Executor,
        max_batch: int,
        delay: float | None,
        max_in_flight: int,
        observer: BatchObserver | None = None,
    ) -> None:
        self.executor = executor
        self.max_batch = max_batch
        self.delay = delay
        self.max_in_flight = max_in_flight
        self.observer = observer
        self._batchers: dict[int, DynamicBatcher] = {}

    def _batcher(self, model: LoadedModel) -> DynamicBatcher:
        key = id(model)
        batcher = self._batchers.get(key)
        if batcher is None or batcher.model is not model:
            batcher = DynamicBatcher(
                model, self.executor, self.max_batch, self.delay or 0.0, self.max_in_flight, self.observer
            )
            self._batchers[key] = batcher
        return batcher

    async def run_chunk(self, model: LoadedModel, plan: Plan, start: int, count: int) -> SampleOutput:
        """Images ``start .. start+count-1`` (count <= max_batch)."""
        if self.delay is None:
            (out,) = await asyncio.get_running_loop().run_in_executor(
                self.executor, run_chunks, model, [(plan, start, count)]
            )
            if self.observer:
                self.observer(model, count, [0.0])
            return out
        return await self._batcher(model).submit(plan, start, count)

    async def call(self, fn, *args):
        """Run a blocking backend call on the inference threads."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def chunks(self, count: int, start: int = 0) -> list[tuple[int, int]]:
        return [(s, min(self.max_batch, start + count - s)) for s in range(start, start + count, self.max_batch)]

    async def run(self, model: LoadedModel, plan: Plan) -> list[SampleOutput]:
        """The whole request, split into chunks that run concurrently."""
        model.in_flight += 1
        try:
            count = plan.spec.count
            if count <= self.max_batch:  # one chunk: no gather, no extra task
                return [await self.run_chunk(model, plan, 0, count)]
            return list(await asyncio.gather(*(self.run_chunk(model, plan, s, n) for s, n in self.chunks(count))))
        finally:
            model.in_flight -= 1

    async def retire(self, model: LoadedModel, poll: float = 0.05) -> None:
        """Stop an unloaded model's batcher once its in-flight calls have finished."""
        while model.in_flight:
            await asyncio.sleep(poll)
        batcher = self._batchers.pop(id(model), None)
        if batcher is not None:
            await batcher.close()

    async def close(self) -> None:
        for batcher in list(self._batchers.values()):
            await batcher.close()
        self._batchers.clear()
