"""asyncio: ``await runner.asubmit(...)`` and ``async for x in runner.amap(...)``.

Plain pytest tests, each running its own event loop with ``asyncio.run``, on
real threads and real worker processes. That the loop is never blocked is shown
by a task that can only finish if a coroutine runs while the map waits for it;
what ran is counted in files the tasks write. Every wait has a limit.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import pytest

from parallelize import ConfigError, Parallelize, TaskFailure
from parallelize.backends import BackendName
from parallelize.engine.dispatch import window_for

# Longest a test waits for anything: a guard against hanging, never a speed requirement.
LIMIT = 30.0

T = TypeVar("T")


# -- helpers (module level, so the process backend can import them) ----------------


class Boom(Exception):
    """The user's own exception type, to check it arrives as itself."""


def square(x: int) -> int:
    return x * x


def fail_on_odd(x: int) -> int:
    if x % 2:
        raise Boom(f"odd {x}")
    return x


def logged(x: int, log: str, pause: float = 0.0) -> int:
    """x * x, appending x to ``log`` first, so a test can count what ran."""
    with open(log, "a") as fh:
        fh.write(f"{x}\n")
    if pause:
        time.sleep(pause)
    return x * x


def calls(log: Path) -> list[int]:
    return [int(s) for s in log.read_text().split()] if log.exists() else []


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` in a fresh event loop, with a limit on the whole."""

    async def limited() -> T:
        return await asyncio.wait_for(main(), LIMIT * 2)

    return asyncio.run(limited())


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait, without blocking the loop, until ``predicate()`` holds."""
    deadline = time.monotonic() + LIMIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.005)


def _submitted_reaches(runner: Parallelize, count: int) -> bool:
    return runner.statistics().submitted == count


def async_stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "parallelize-async-stream"]


def wait_for_threads(count: int) -> None:
    deadline = time.monotonic() + LIMIT
    while threading.active_count() > count and time.monotonic() < deadline:
        time.sleep(0.01)


# -- asubmit -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_awaiting_asubmit_gives_the_value(backend: BackendName) -> None:
    async def main() -> tuple[int, list[int]]:
        with Parallelize(2, backend=backend) as runner:
            one = await runner.asubmit(pow, 2, 10)
            many = await asyncio.gather(*(runner.asubmit(square, i) for i in range(10)))
            return one, list(many)

    assert run(main) == (1024, [i * i for i in range(10)])


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_asubmit_raises_the_users_exception_as_its_own_type(backend: BackendName) -> None:
    async def main() -> None:
        with Parallelize(2, backend=backend) as runner:
            with pytest.raises(Boom, match="odd 3"):
                await runner.asubmit(fail_on_odd, 3)
            assert await runner.asubmit(fail_on_odd, 4) == 4

    run(main)


def test_asubmit_needs_a_running_loop_and_schedules_nothing_without_one() -> None:
    with Parallelize(1) as runner:
        with pytest.raises(RuntimeError, match="no running event loop"):
            runner.asubmit(square, 3)
        assert runner.statistics().submitted == 0


def test_cancelling_the_task_awaiting_a_queued_call_cancels_the_call(tmp_path: Path) -> None:
    log = tmp_path / "log"
    started, release = threading.Event(), threading.Event()

    def blocker() -> str:
        started.set()
        release.wait(LIMIT)
        return "released"

    async def main() -> tuple[asyncio.Future[Any], int]:
        with Parallelize(1) as runner:
            # Once the engine has timed a batch, its window is window_for(1) batches.
            assert await runner.asubmit(square, 2) == 4
            blocked = runner.asubmit(blocker)
            await until(started.is_set, "the blocking call to start")
            # Fill the window: each call is taken alone, since nothing else waits,
            # and queues behind the blocker. A call submitted after them waits in
            # the runner's queue until the blocker ends.
            fillers = []
            for i in range(window_for(1) - 1):
                taken = functools.partial(_submitted_reaches, runner, runner.statistics().submitted + 1)
                fillers.append(runner.asubmit(logged, i, str(log)))
                await until(taken, f"filler {i} to be handed over")
            target = runner.asubmit(logged, 100, str(log))

            async def waiter() -> int:
                return await target

            task = asyncio.create_task(waiter())
            await asyncio.sleep(0)  # the task now awaits the call
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            release.set()
            assert await blocked == "released"
            assert await asyncio.gather(*fillers) == [i * i for i in range(window_for(1) - 1)]
            handed_over = runner.statistics().submitted
        return target, handed_over

    target, handed_over = run(main)
    assert target.cancelled()
    assert 100 not in calls(log), "the cancelled call ran"
    assert calls(log) == list(range(window_for(1) - 1))
    assert handed_over == 1 + 1 + (window_for(1) - 1)  # the cancelled call never reached a worker


# -- amap ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["thread", "process"])
@pytest.mark.parametrize("ordered", [True, False])
def test_async_for_over_amap_gives_what_map_gives(backend: BackendName, ordered: bool) -> None:
    items = range(300)

    async def main() -> tuple[list[int], list[int], list[int]]:
        with Parallelize(2, backend=backend) as runner:
            mapped = list(runner.map(square, items, ordered=ordered))
            amapped = [x async for x in runner.amap(square, items, ordered=ordered)]
            starred = [x async for x in runner.astarmap(pow, [(i, 2) for i in items], ordered=ordered)]
        return mapped, amapped, starred

    mapped, amapped, starred = run(main)
    expected = [i * i for i in items]
    if ordered:
        assert amapped == mapped == starred == expected
    else:
        assert sorted(amapped) == sorted(mapped) == sorted(starred) == expected


def test_amap_applies_the_error_policy_as_map_does() -> None:
    async def main() -> None:
        with Parallelize(2) as runner:
            with pytest.raises(Boom, match="odd"):
                async for _ in runner.amap(fail_on_odd, range(10)):
                    pass
            skipped = [x async for x in runner.amap(fail_on_odd, range(10), on_error="skip")]
            assert skipped == list(range(0, 10, 2))
            collected = [x async for x in runner.amap(fail_on_odd, range(4), on_error="collect")]
            assert collected[0::2] == [0, 2]
            assert all(isinstance(f, TaskFailure) for f in collected[1::2])

    run(main)


def test_the_event_loop_runs_while_amap_and_asubmit_wait() -> None:
    # Each task waits for an event that only a coroutine sets: were the loop
    # blocked while the engine waits, the task would give up and return False.
    async def main() -> tuple[list[bool], bool, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        with Parallelize(1) as runner:
            events = [threading.Event() for _ in range(4)]

            async def setter() -> None:
                for event in events:
                    await asyncio.sleep(0.1)
                    event.set()

            setting = asyncio.create_task(setter())
            mapped = [x async for x in runner.amap(lambda e: e.wait(LIMIT), events)]
            await setting
            ticks_during_map = ticks
            last = threading.Event()
            asyncio.get_running_loop().call_later(0.1, last.set)
            submitted = await runner.asubmit(last.wait, LIMIT)
        ticking.cancel()
        return mapped, submitted, ticks_during_map

    mapped, submitted, ticks = run(main)
    assert mapped == [True] * 4
    assert submitted is True
    # The map lasted at least 0.4 s: a loop blocked by it would tick about once per result.
    assert ticks >= 15, ticks


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_cancelling_the_iterating_task_closes_the_stream_and_queued_tasks_never_run(
    backend: BackendName, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    total = 200

    async def main() -> int:
        with Parallelize(1, backend=backend) as runner:
            stream = runner.amap(functools.partial(logged, log=str(log), pause=0.02), range(total))
            first: asyncio.Future[int] = asyncio.get_running_loop().create_future()

            async def consume() -> None:
                async for x in stream:
                    if not first.done():
                        first.set_result(x)

            task = asyncio.create_task(consume())
            assert await asyncio.wait_for(first, LIMIT) == 0
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(stream.aclose(), LIMIT)  # returns once the stream is closed
            await until(lambda: not async_stream_threads(), "the stream's thread to end")
            with pytest.raises(StopAsyncIteration):
                await stream.__anext__()
            completed = stream.statistics().completed
        return completed

    completed = run(main)
    ran = calls(log)  # the runner was shut down: nothing runs any more
    assert completed < total
    assert len(ran) < total // 4, f"{len(ran)} of {total} tasks ran after the stream was cancelled"


def test_breaking_out_and_closing_releases_the_thread(tmp_path: Path) -> None:
    log = tmp_path / "log"
    slow = functools.partial(logged, log=str(log), pause=0.01)

    async def main() -> None:
        with Parallelize(2) as runner:
            list(runner.map(square, range(10)))  # the worker threads are up
            baseline = threading.active_count()
            stream = runner.amap(slow, range(1000))
            async for x in stream:
                if x >= 25:
                    break
            assert threading.active_count() > baseline  # the stream's own thread
            await asyncio.wait_for(stream.aclose(), LIMIT)
            await until(lambda: threading.active_count() <= baseline, "the stream's thread to end")
            # Dropped without aclose: the stream is closed when it is collected.
            async for x in runner.amap(slow, range(1000)):
                if x >= 25:
                    break
            gc.collect()
            await until(lambda: threading.active_count() <= baseline, "a dropped stream's thread to end")

    run(main)
    assert len(calls(log)) < 1000  # both streams stopped early


def test_async_with_closes_and_a_stream_never_iterated_runs_nothing(tmp_path: Path) -> None:
    log = tmp_path / "log"

    async def main() -> None:
        with Parallelize(2) as runner:
            async with runner.amap(functools.partial(logged, log=str(log)), range(100)) as stream:
                assert stream.statistics().completed == 0
            assert not async_stream_threads()  # never iterated: no thread was started
            assert [x async for x in stream] == []
            async with runner.amap(square, range(100)) as stream:
                got = [x async for x in stream]
            assert got == [i * i for i in range(100)]
            assert stream.statistics().completed == 100

    run(main)
    assert calls(log) == []


def test_amap_with_a_checkpoint_resumes(tmp_path: Path) -> None:
    log, folder = tmp_path / "log", tmp_path / "checkpoint"
    func = functools.partial(logged, log=str(log))
    items = range(40)

    async def main() -> tuple[list[int], list[int], list[int]]:
        with Parallelize(2) as runner:
            seen: list[int] = []
            async with runner.amap(func, items, checkpoint=folder, chunksize=2) as stream:
                async for x in stream:
                    seen.append(x)
                    if len(seen) == 10:
                        break
            first_calls = len(calls(log))
            resumed = [x async for x in runner.amap(func, items, checkpoint=folder)]
            return seen, resumed, calls(log)[first_calls:]

    seen, resumed, second = run(main)
    assert seen == [i * i for i in range(10)]
    assert resumed == [i * i for i in items]
    # A result handed out was recorded first: the rerun never computes it again.
    assert not set(second) & set(range(10)), second
    assert len(second) < len(items)


def test_amap_on_the_serial_backend_runs_off_the_loop_and_refuses_a_timeout() -> None:
    async def main() -> list[str]:
        with Parallelize(1, backend="serial") as runner:
            with pytest.raises(ConfigError, match="timeout"):
                runner.amap(square, range(3), timeout=5)
            return [x async for x in runner.amap(lambda _: threading.current_thread().name, range(3))]

    assert run(main) == ["parallelize-async-stream"] * 3


def test_the_decorator_has_the_async_entry_points() -> None:
    from parallelize import parallel

    @parallel(backend="thread", workers=2)
    def add(a: int, b: int = 0) -> int:
        return a + b

    async def main() -> tuple[list[int], list[int], list[int], int]:
        mapped = [x async for x in add.amap(range(5))]
        starred = [x async for x in add.astarmap([(1, 2), (3, 4)])]
        grid = [x async for x in add.agrid(a=[1, 2], b=[10, 20])]
        return mapped, starred, grid, await add.asubmit(2, b=3)

    try:
        assert run(main) == ([0, 1, 2, 3, 4], [3, 7], [11, 21, 12, 22], 5)
    finally:
        add.shutdown()
