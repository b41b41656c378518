"""The batcher's fairness between callers (start-time fair queueing), without a server.

The toy backend of test_batching_unit holds runs while its gate is closed, so
each test sees exactly which chunks were queued when a runner came free.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from gan_server.batching import Dispatcher, DynamicBatcher
from gan_server.sampling import LoadedModel

from .test_batching_unit import ToyGenerator, assert_same, executor, plan, reference, run, toy, until  # noqa: F401


def test_a_new_caller_runs_before_the_rest_of_a_long_request(
    toy: tuple[LoadedModel, ToyGenerator],  # noqa: F811
    reference: LoadedModel,  # noqa: F811
    executor: ThreadPoolExecutor,  # noqa: F811
) -> None:
    model, gen = toy
    first, long, short = plan(model, 4, seed=1), plan(model, 16, seed=2), plan(model, 2, seed=3)
    finished: list[str] = []

    async def body():
        dispatcher = Dispatcher(executor, max_batch=4, delay=0.0, max_in_flight=1)

        async def ask(tag, p):
            parts = await dispatcher.run(model, p)
            finished.append(tag)
            return parts

        gen.gate.clear()
        a = asyncio.create_task(ask("first", first))
        await until(lambda: len(gen.sizes) == 1)  # "first" holds the only runner
        b = asyncio.create_task(ask("long", long))  # four chunks of 4, queued at once
        await asyncio.sleep(0.02)
        c = asyncio.create_task(ask("short", short))  # arrives after all four
        await asyncio.sleep(0.02)
        gen.gate.set()
        return await asyncio.gather(a, b, c)

    _, long_parts, short_parts = run(body)
    # First in, first out would run 4, 4, 4, 4, 4, 2: "short" waits for all of "long".
    # Fair: "long", a request of several chunks, starts one chunk behind: "short" goes first.
    assert gen.sizes == [4, 2, 4, 4, 4, 4]
    assert finished == ["first", "short", "long"]
    whole = reference.generate(long, 0, 16)
    assert b"".join(p.images.tobytes() for p in long_parts) == whole.images.tobytes()  # in order
    assert_same(short_parts[0], reference.generate(short, 0, 2))


def test_chunks_of_a_stream_and_of_new_callers_alternate(
    toy: tuple[LoadedModel, ToyGenerator],  # noqa: F811
    executor: ThreadPoolExecutor,  # noqa: F811
) -> None:
    # A stream submits its next chunk when the previous one is back; new callers keep arriving.
    model, gen = toy
    stream = plan(model, 40, seed=7)
    order: list[str] = []

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=4, delay=0.0, max_in_flight=1)

        async def streamer():
            for start in range(0, 40, 4):
                await batcher.submit(stream, start, 4)
                order.append("s")

        async def unary(i: int):
            await batcher.submit(plan(model, 4, seed=100 + i), 0, 4)
            order.append("u")

        gen.gate.clear()
        s = asyncio.create_task(streamer())
        await until(lambda: len(gen.sizes) == 1)
        callers = [asyncio.create_task(unary(i)) for i in range(5)]
        await asyncio.sleep(0.02)
        gen.gate.set()
        await asyncio.gather(s, *callers)
        await batcher.close()

    run(body)
    # The unary callers do not wait for the stream's remaining nine chunks.
    assert order.index("u") <= 2 and len(order) - order[::-1].index("u") <= 8, order


def test_the_last_runner_stays_for_callers_within_their_share(
    toy: tuple[LoadedModel, ToyGenerator],  # noqa: F811
    reference: LoadedModel,  # noqa: F811
    executor: ThreadPoolExecutor,  # noqa: F811
) -> None:
    model, gen = toy
    long, short = plan(model, 12, seed=1), plan(model, 1, seed=2)

    async def body():
        dispatcher = Dispatcher(executor, max_batch=4, delay=0.0, max_in_flight=2)
        gen.gate.clear()
        a = asyncio.create_task(dispatcher.run(model, long))
        await until(lambda: len(gen.sizes) == 1)
        await asyncio.sleep(0.05)
        assert gen.sizes == [4] and gen.active == 1  # its next chunks leave the second runner free
        b = asyncio.create_task(dispatcher.run(model, short))
        await until(lambda: len(gen.sizes) == 2)
        assert gen.sizes == [4, 1] and gen.active == 2  # taken at once by the new caller
        gen.gate.set()
        parts = await a
        short_parts = await b
        await dispatcher.close()
        return parts, short_parts

    parts, short_parts = run(body)
    assert sorted(gen.sizes) == [1, 4, 4, 4]
    assert b"".join(p.images.tobytes() for p in parts) == reference.generate(long, 0, 12).images.tobytes()
    assert_same(short_parts[0], reference.generate(short, 0, 1))


def test_one_runner_is_never_held_back(
    toy: tuple[LoadedModel, ToyGenerator],  # noqa: F811
    executor: ThreadPoolExecutor,  # noqa: F811
) -> None:
    model, gen = toy

    async def body():
        dispatcher = Dispatcher(executor, max_batch=4, delay=0.0, max_in_flight=1)
        parts = await dispatcher.run(model, plan(model, 20, seed=3))
        await dispatcher.close()
        return parts

    assert [len(p.images) for p in run(body)] == [4] * 5
    assert gen.sizes == [4] * 5


def test_finished_callers_are_forgotten(
    toy: tuple[LoadedModel, ToyGenerator],  # noqa: F811
    executor: ThreadPoolExecutor,  # noqa: F811
) -> None:
    model, _ = toy

    async def body():
        batcher = DynamicBatcher(model, executor, max_batch=8, delay=0.0, max_in_flight=2)
        for i in range(500):
            await batcher.submit(plan(model, 2, seed=i), 0, 2)
        flows = len(batcher._flows)
        await batcher.close()
        return flows

    assert run(body) <= 128  # not one entry per call ever made
