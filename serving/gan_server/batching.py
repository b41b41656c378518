"""Dynamic batching: concurrent requests for one model share backend runs, fairly.

Each request is split into chunks of at most ``max_batch`` images. When a
runner (one of ``max_in_flight``) is free, the queued chunks that fit in
``max_batch`` run as one backend call, after waiting at most ``delay``
seconds (from the oldest queued chunk) for more to join; each caller
gets its own slice back. Chunks that arrive while every runner is busy queue
up and form the next batch, so with ``delay`` 0 an idle server adds no
latency and a loaded one still batches. Every image's latent comes from its
own (seed, index) stream, so results do not depend on the grouping.

Fairness: the queue is not first-in first-out over chunks but start-time
fair queueing over callers (a caller is one planned request: one ``Sample``
call, or one ``SampleStream`` call over all its chunks). Each chunk gets a
virtual start tag, ``max(virtual time, the caller's last finish tag)``, and
its caller's finish tag grows by the chunk's images; chunks run in tag
order and the virtual time is the tag of the last chunk taken. A caller
that has had little recently (a new unary call) is served next; one that
keeps asking waits its turn behind the others, and each caller's own chunks
keep their order.

Requests of several chunks (streams, large Samples) are bulk work: such a
request starts one chunk behind the virtual time, among equal tags the
chunks of one-chunk calls go first (then arrival order), and with more than
one runner a bulk chunk does not take the last free runner. A unary call
therefore waits at most for another one-chunk batch, never behind a stream's
run, however many streams there are; the streams share the other runners,
and all runners when no one-chunk call is waiting at the moment one frees.

With batching off (``delay=None``) each chunk runs alone.

``close()`` lets running batches finish; chunks still queued then, and any
submitted later, fail with Unavailable (retry elsewhere) instead of waiting
for a loop that no longer runs.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import time
import weakref
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
    flow: _Flow
    bulk: bool  # part of a request of several chunks (a stream, a large Sample)
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class _Flow:
    """One caller (one planned request): its chunks' last finish tag and how many are queued."""

    plan: weakref.ref[Plan]
    finish: float = 0.0
    queued: int = 0


def _bulk(plan: Plan, count: int) -> bool:
    return plan.spec.count > count


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
        # (start tag, bulk, arrival number, chunk): a heap, the next chunk to run first
        self._pending: list[tuple[float, bool, int, _Chunk]] = []
        self._arrivals = itertools.count()
        self._flows: dict[int, _Flow] = {}  # id(plan) -> its caller's flow
        self._vtime = 0.0
        self._queued_images = 0
        self._wakeup = asyncio.Event()
        self.max_in_flight = max_in_flight
        self._running = 0
        self._runs: set[asyncio.Future] = set()
        self._closed = False
        self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    def _closed_error(self) -> Unavailable:
        return Unavailable(f"model {self.model.name!r} version {self.model.version!r} is being unloaded; retry")

    def _flow(self, plan: Plan, count: int) -> _Flow:
        flow = self._flows.get(id(plan))
        if flow is None or flow.plan() is not plan:
            if len(self._flows) >= 64 and len(self._flows) >= 2 * len(self._pending):
                self._forget()
            # A request of several chunks (a stream, a large Sample) starts one
            # chunk behind: it is bulk work, served after the callers that ask
            # for one chunk, even when many streams start at once.
            debt = self._vtime + count if _bulk(plan, count) else 0.0
            flow = self._flows[id(plan)] = _Flow(weakref.ref(plan), debt)
        return flow

    def _forget(self) -> None:
        """Drop the flows that can no longer matter: their request is gone, or they are not ahead."""
        vtime = self._vtime
        self._flows = {
            key: flow
            for key, flow in self._flows.items()
            if flow.queued or (flow.finish > vtime and flow.plan() is not None)
        }

    async def submit(self, plan: Plan, start: int, count: int) -> SampleOutput:
        if count > self.max_batch:
            raise ValueError(f"chunk of {count} exceeds max_batch {self.max_batch}")
        if self._closed:
            raise self._closed_error()
        flow = self._flow(plan, count)
        tag = max(self._vtime, flow.finish)
        flow.finish = tag + count
        flow.queued += 1
        bulk = _bulk(plan, count)
        chunk = _Chunk(plan, start, count, asyncio.get_running_loop().create_future(), flow, bulk)
        heapq.heappush(self._pending, (tag, bulk, next(self._arrivals), chunk))
        self._queued_images += count
        self._wakeup.set()
        return await chunk.future

    async def _wait(self, timeout: float | None = None) -> None:
        """Until something is submitted or a run ends (or ``timeout`` passes)."""
        self._wakeup.clear()
        if timeout is None:
            await self._wakeup.wait()
            return
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def _take(self) -> _Chunk:
        tag, _, _, chunk = heapq.heappop(self._pending)
        self._queued_images -= chunk.count
        chunk.flow.queued -= 1
        self._vtime = max(self._vtime, tag)
        return chunk

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        pending = self._pending
        while True:
            if not pending:
                await self._wait()
                continue
            # A free runner first: while every runner is busy, requests keep
            # queueing and join the next batch (batching under load costs an
            # idle server no latency).
            free = self.max_in_flight - self._running
            if free <= 0:
                await self._wait()
                continue
            # The last free runner is kept for calls of one chunk.
            if free == 1 and self.max_in_flight > 1 and pending[0][1]:
                await self._wait()
                continue
            # Then wait for a full batch, or until the oldest queued chunk has waited `delay`.
            if self.delay > 0 and self._queued_images < self.max_batch:
                oldest = min(entry[3].enqueued for entry in pending)
                remaining = oldest + self.delay - time.perf_counter()
                if remaining > 0:
                    await self._wait(remaining)
                    continue  # look again: the queue or the runners may have changed
            batch: list[_Chunk] = []
            total = 0
            while pending and (not batch or total + pending[0][3].count <= self.max_batch):
                chunk = self._take()
                if chunk.future.done():  # the caller went away
                    continue
                batch.append(chunk)
                total += chunk.count
            if not batch:
                continue
            # The run's result is handed out by a callback on the loop, not by a
            # task awaiting it: one task step less per batch.
            started = time.perf_counter()
            work = [(c.plan, c.start, c.count) for c in batch]
            self._running += 1
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
            self._running -= 1
            self._wakeup.set()

    async def close(self) -> None:
        """Stop batching: running batches finish, queued chunks fail with Unavailable."""
        self._closed = True
        self._loop_task.cancel()
        try:
            await self._loop_task
        except asyncio.CancelledError:
            pass
        while self._pending:
            chunk = self._take()
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
