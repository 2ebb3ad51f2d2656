"""``parallelize.Executor``: the ``concurrent.futures.Executor`` face of a runner.

Every test runs on real threads and real worker processes. CPython's own
executor tests, ported, are in ``test_executor_cpython.py``; these cover what is
ours: batched ``map``, the runner underneath, options, crash isolation, asyncio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import multiprocessing
import os
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any, Iterator

import pytest

from parallelize import Parallelize
from parallelize.errors import (
    ConfigError,
    RunnerClosedError,
    TaskExitError,
    TaskTimeoutError,
    WorkerCrashedError,
    WorkerInitError,
)
from parallelize.executor import Executor
from parallelize.worker.context import worker_context
from parallelize.worker.failure import RemoteTraceback

BACKENDS = ["thread", "process"]

# Waits that end as soon as the condition holds; the bound only keeps a broken
# executor from hanging the test.
WAIT_SECONDS = 30.0


def _eventually(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {WAIT_SECONDS} s")
        time.sleep(0.01)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def executor(backend: str) -> Iterator[Executor]:
    ex = Executor(2, backend=backend)
    yield ex
    ex.shutdown(wait=True, cancel_futures=True)


# -- task functions (module level: the process backend imports them by name) ----------


def inc(x: int) -> int:
    return x + 1


def add3(a: int, b: int, c: int) -> int:
    return a + b + c


def fail_on(x: int, bad: int = 3) -> int:
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def touch(path: str, seconds: float = 0.0) -> str:
    time.sleep(seconds)
    Path(path).touch()
    return path


def whoami(x: int) -> str:
    time.sleep(0.005)
    return f"{os.getpid()}-{threading.get_ident()}"


def whoami_slow(x: int) -> str:
    time.sleep(0.1)
    return f"{os.getpid()}-{threading.get_ident()}"


def exit_task(x: int) -> None:
    raise SystemExit(3)


def die_on(x: int, bad: int = 2) -> int:
    if x == bad:
        os._exit(7)
    return x


INIT_VALUE = "not initialized"


def set_init(value: str, suffix: str) -> str:
    global INIT_VALUE
    INIT_VALUE = value + suffix
    return f"returned {value}"


def read_init() -> tuple[str, Any]:
    return INIT_VALUE, worker_context().init_values


def read_init_item(_: int) -> tuple[str, Any]:
    return read_init()


def init_fails() -> None:
    raise OSError("no licence server")


def flaky(marker: str) -> str:
    # Fails the first time in any worker, succeeds the second: a file says which.
    path = Path(marker)
    if not path.exists():
        path.touch()
        raise OSError("first attempt fails")
    return "second attempt"


# -- map --------------------------------------------------------------------------------


def test_map_gives_results_in_input_order(executor: Executor) -> None:
    assert list(executor.map(inc, range(1000))) == list(range(1, 1001))
    assert list(executor.map(add3, [1, 2, 3], (10, 20, 30), range(100, 103))) == [111, 123, 135]


def test_map_over_many_tiny_tasks_matches_the_builtin(executor: Executor) -> None:
    assert list(executor.map(inc, range(100_000))) == list(map(inc, range(100_000)))


def test_map_stops_at_the_shortest_iterable_and_takes_any_iterable(executor: Executor) -> None:
    assert list(executor.map(add3, [1, 2, 3, 4], [10, 20], iter([100, 200, 300]))) == [111, 222]
    assert list(executor.map(inc, (x for x in range(5)))) == [1, 2, 3, 4, 5]
    assert list(executor.map(inc, [])) == []
    assert list(executor.map(inc)) == []


def test_map_reads_its_iterables_at_once(executor: Executor) -> None:
    items = [1, 2, 3]
    results = executor.map(inc, items)
    items.append(4)  # after the call: not part of the map
    items[0] = 100
    assert list(results) == [2, 3, 4]


def test_map_starts_work_at_the_call_without_iteration(executor: Executor, tmp_path: Path) -> None:
    paths = [str(tmp_path / f"f{i}") for i in range(8)]
    results = executor.map(touch, paths)  # never iterated until the files exist
    _eventually(lambda: all(Path(p).exists() for p in paths), "map running before iteration")
    assert list(results) == paths


def test_map_raises_the_first_failure_when_its_result_is_reached(executor: Executor) -> None:
    results = executor.map(fail_on, range(6))
    assert [next(results), next(results), next(results)] == [0, 1, 2]
    with pytest.raises(ValueError, match="bad item 3") as info:
        next(results)
    assert "in parallelize task 3 with arguments 3" in "".join(getattr(info.value, "__notes__", []))
    # The failure ended the iterator, as a generator's exception does.
    assert list(results) == []


def test_map_failure_keeps_the_worker_traceback_as_cause(backend: str) -> None:
    with Executor(2, backend=backend) as ex:
        with pytest.raises(ValueError) as info:
            list(ex.map(fail_on, [3]))
    if backend == "process":
        assert isinstance(info.value.__cause__, RemoteTraceback)
        assert "bad item" in info.value.__cause__.tb


def test_map_timeout_is_a_deadline_for_the_whole_iterator(executor: Executor) -> None:
    executor.submit(inc, 0).result(timeout=WAIT_SECONDS)  # workers up: the first result comes at once
    results = executor.map(time.sleep, [0, 1.5], timeout=0.5, chunksize=1)
    time.sleep(0.7)  # the deadline passes while nobody reads: a finished result still comes
    assert next(results) is None
    with pytest.raises(concurrent.futures.TimeoutError) as info:
        next(results)
    assert isinstance(info.value, concurrent.futures.TimeoutError)
    assert "timeout=0.5" in str(info.value)
    assert list(results) == []  # the timeout ended the iterator


def test_map_timeout_zero_and_none(executor: Executor) -> None:
    assert list(executor.map(inc, range(3), timeout=None)) == [1, 2, 3]
    results = executor.map(time.sleep, [1.0], timeout=0)
    with pytest.raises(concurrent.futures.TimeoutError):
        next(results)


# chunksize=1 in the tests of cancelling: the engine would size batches from what earlier
# runs of the same function took, and work already sent in one batch is not cancelled.


def test_closing_the_map_early_cancels_work_not_started(tmp_path: Path, backend: str) -> None:
    paths = [str(tmp_path / f"f{i}") for i in range(40)]
    with Executor(1, backend=backend) as ex:
        results = ex.map(touch, paths, [0.05] * len(paths), chunksize=1)
        assert next(results) == paths[0]
        results.close()  # type: ignore[attr-defined]
        assert list(results) == []
    ran = sum(Path(p).exists() for p in paths)
    assert ran < len(paths)


def test_dropping_the_map_iterator_cancels_work_not_started(tmp_path: Path, backend: str) -> None:
    paths = [str(tmp_path / f"f{i}") for i in range(40)]
    with Executor(1, backend=backend) as ex:
        results = ex.map(touch, paths, [0.05] * len(paths), chunksize=1)
        next(results)
        del results
        gc.collect()
    assert sum(Path(p).exists() for p in paths) < len(paths)


def test_an_iterator_never_read_runs_to_the_end(tmp_path: Path, backend: str) -> None:
    # As concurrent.futures: its generator, never started, cancels nothing when dropped.
    paths = [str(tmp_path / f"f{i}") for i in range(10)]
    with Executor(1, backend=backend) as ex:
        ex.map(touch, paths, [0.01] * len(paths))
        gc.collect()
        ex.map(touch, paths[:2]).close()  # type: ignore[attr-defined]
    assert all(Path(p).exists() for p in paths)


def test_a_failure_cancels_the_rest_of_the_map(tmp_path: Path, backend: str) -> None:
    paths = [str(tmp_path / f"f{i}") for i in range(40)]
    with Executor(1, backend=backend) as ex:
        results = ex.map(touch, ["/nonexistent-dir/x"] + paths, [0.0] + [0.05] * len(paths), chunksize=1)
        with pytest.raises(FileNotFoundError):
            next(results)
    assert sum(Path(p).exists() for p in paths) < len(paths)


def test_map_chunksize_fixes_the_batch_size(executor: Executor) -> None:
    # One batch of all 20 calls runs in one worker; default batches use both.
    assert len(set(executor.map(whoami, range(20), chunksize=20))) == 1
    assert list(executor.map(inc, range(50), chunksize=7)) == list(range(1, 51))
    assert list(executor.map(inc, range(50), chunksize=1)) == list(range(1, 51))


@pytest.mark.parametrize("chunksize", [0, -1, 1.5, "4"])
def test_map_refuses_a_bad_chunksize(executor: Executor, chunksize: Any) -> None:
    with pytest.raises(ConfigError, match="chunksize"):
        executor.map(inc, range(3), chunksize=chunksize)


@pytest.mark.parametrize("timeout", ["1", float("nan"), True])
def test_map_refuses_a_bad_timeout(executor: Executor, timeout: Any) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        executor.map(inc, range(3), timeout=timeout)


def test_map_after_shutdown_raises_runtime_error(backend: str) -> None:
    ex = Executor(1, backend=backend)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.map(inc, range(3))


# -- submit -------------------------------------------------------------------------------


def test_submit_returns_a_standard_future(executor: Executor) -> None:
    future = executor.submit(add3, 1, 2, c=3)
    assert isinstance(future, concurrent.futures.Future)
    assert future.result(timeout=WAIT_SECONDS) == 6
    futures = [executor.submit(inc, i) for i in range(2000)]
    assert [f.result(timeout=WAIT_SECONDS) for f in futures] == list(range(1, 2001))


def test_submit_after_shutdown_raises_runner_closed_error(backend: str) -> None:
    ex = Executor(1, backend=backend)
    ex.shutdown()
    with pytest.raises(RunnerClosedError) as info:
        ex.submit(inc, 1)
    assert isinstance(info.value, RuntimeError)


def test_submit_failure_and_exit_are_the_calls_own(executor: Executor) -> None:
    with pytest.raises(ValueError, match="bad item 3"):
        executor.submit(fail_on, 3).result(timeout=WAIT_SECONDS)
    with pytest.raises(TaskExitError) as info:
        executor.submit(exit_task, 0).result(timeout=WAIT_SECONDS)
    assert isinstance(info.value.exception, SystemExit)
    assert executor.submit(inc, 1).result(timeout=WAIT_SECONDS) == 2  # still usable


def test_slow_calls_after_tiny_ones_still_spread_over_the_workers() -> None:
    with Executor(2) as ex:
        assert [f.result(timeout=WAIT_SECONDS) for f in [ex.submit(inc, i) for i in range(200)]][-1] == 200
    with Executor(2) as ex:
        ex.submit(inc, 0).result(timeout=WAIT_SECONDS)
        workers = {f.result(timeout=WAIT_SECONDS) for f in [ex.submit(whoami_slow, i) for i in range(10)]}
    assert len(workers) == 2


class Token:
    pass


def test_a_done_future_does_not_keep_its_arguments_alive(executor: Executor) -> None:
    token = Token()
    collected = threading.Event()
    ref = weakref.ref(token, lambda _: collected.set())  # noqa: F841
    future = executor.submit(id, token)
    future.result(timeout=WAIT_SECONDS)
    del token
    gc.collect()
    assert collected.wait(timeout=5)
    del future


# -- crash isolation (process workers) ------------------------------------------------------


def test_a_worker_crash_fails_only_its_call_and_the_executor_stays_usable() -> None:
    with Executor(2) as ex:
        crashed = ex.submit(die_on, 2)
        fine = [ex.submit(die_on, i) for i in (0, 1, 3)]
        with pytest.raises(WorkerCrashedError) as info:
            crashed.result(timeout=WAIT_SECONDS)
        assert isinstance(info.value, concurrent.futures.BrokenExecutor)
        assert [f.result(timeout=WAIT_SECONDS) for f in fine] == [0, 1, 3]
        results = ex.map(die_on, range(5))
        assert [next(results), next(results)] == [0, 1]
        with pytest.raises(WorkerCrashedError):
            next(results)
        assert list(ex.map(inc, range(4))) == [1, 2, 3, 4]


# -- constructor ------------------------------------------------------------------------------


def test_initializer_is_called_with_initargs_in_each_worker(backend: str) -> None:
    with Executor(2, backend=backend, initializer=set_init, initargs=("ready", "!")) as ex:
        got = {ex.submit(read_init).result(timeout=WAIT_SECONDS) for _ in range(4)}
        got |= set(ex.map(read_init_item, range(4)))
    # The initializer's return value is also the worker's worker_context().init_values.
    assert got == {("ready!", "returned ready")}


def test_a_failing_initializer_fails_the_calls_but_breaks_nothing(backend: str) -> None:
    with Executor(1, backend=backend, initializer=init_fails) as ex:
        with pytest.raises(WorkerInitError) as info:
            ex.submit(inc, 1).result(timeout=WAIT_SECONDS)
        assert "no licence server" in str(info.value)
        with pytest.raises(WorkerInitError):
            list(ex.map(inc, range(3)))
        with pytest.raises(WorkerInitError):
            ex.submit(inc, 2).result(timeout=WAIT_SECONDS)  # submit still accepts calls


def test_options_reach_the_runner(tmp_path: Path) -> None:
    with Executor(1, timeout=0.5) as ex:
        with pytest.raises(TaskTimeoutError):
            ex.submit(time.sleep, 5).result(timeout=WAIT_SECONDS)
        with pytest.raises(TaskTimeoutError):
            list(ex.map(time.sleep, [5]))
    with Executor(1, retries=1) as ex:
        assert ex.submit(flaky, str(tmp_path / "m1")).result(timeout=WAIT_SECONDS) == "second attempt"
        assert list(ex.map(flaky, [str(tmp_path / "m2")])) == ["second attempt"]
        assert ex.runner.statistics().retried == 1


def test_defaults_are_the_process_backend_and_the_cpu_count() -> None:
    with Executor() as ex:
        assert ex.runner.backend.name == "process"
        assert ex.max_workers == len(os.sched_getaffinity(0))
        assert "max_workers=" in repr(ex)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_workers": 0}, "max_workers"),
        ({"on_error": "collect"}, "on_error"),
        ({"max_tasks_per_child": 3}, "max_tasks_per_child"),
        ({"initializer": 3}, "initializer"),
        ({"initializer": inc, "initargs": 5}, "initargs"),
        ({"backend": "proces"}, "proces"),
        ({"mp_context": "spawn"}, "multiprocessing context"),
        ({"mp_context": multiprocessing.get_context("fork")}, "'fork' is not supported"),
        ({"backend": "thread", "mp_context": multiprocessing.get_context("spawn")}, "thread"),
        ({"backend": "thread", "thread_name_prefix": "io"}, "thread_name_prefix"),
    ],
)
def test_bad_options_are_config_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        Executor(**kwargs)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_fresh_interpreter_mp_context_is_accepted(method: str) -> None:
    with Executor(1, mp_context=multiprocessing.get_context(method)) as ex:
        assert ex.submit(inc, 1).result(timeout=WAIT_SECONDS) == 2


# -- ownership of the runner -----------------------------------------------------------------


def test_an_executor_over_a_given_runner_leaves_it_open(backend: str) -> None:
    with Parallelize(2, backend=backend) as runner:
        ex = Executor(runner=runner)
        assert ex.runner is runner
        assert list(ex.map(inc, range(5))) == [1, 2, 3, 4, 5]
        future = ex.submit(time.sleep, 0.2)
        ex.shutdown(wait=True)
        assert future.done()  # shutdown waited for the executor's own work
        with pytest.raises(RuntimeError):
            ex.submit(inc, 1)
        assert list(runner.map(inc, range(3))) == [1, 2, 3]  # the runner is still open


def test_an_executor_shuts_down_the_runner_it_made(backend: str) -> None:
    ex = Executor(1, backend=backend)
    assert ex.submit(inc, 1).result(timeout=WAIT_SECONDS) == 2
    ex.shutdown()
    with pytest.raises(RunnerClosedError):
        ex.runner.submit(inc, 1)


def test_options_cannot_be_given_with_a_runner() -> None:
    with Parallelize(1) as runner:
        with pytest.raises(ConfigError, match=r"\['initializer', 'max_workers', 'retries'\]"):
            Executor(2, runner=runner, initializer=inc, retries=2)
        with pytest.raises(ConfigError, match="runner must be"):
            Executor(runner="not a runner")  # type: ignore[arg-type]


# -- shutdown -------------------------------------------------------------------------------


def test_shutdown_without_wait_lets_pending_work_finish(backend: str, tmp_path: Path) -> None:
    ex = Executor(1, backend=backend)
    futures = [ex.submit(touch, str(tmp_path / f"s{i}"), 0.05) for i in range(4)]
    results = ex.map(touch, [str(tmp_path / f"m{i}") for i in range(4)])
    ex.shutdown(wait=False)
    with pytest.raises(RuntimeError):
        ex.submit(inc, 1)
    assert [Path(f.result(timeout=WAIT_SECONDS)).name for f in futures] == ["s0", "s1", "s2", "s3"]
    assert [Path(p).name for p in results] == ["m0", "m1", "m2", "m3"]
    # The workers are released in the background once the work is done.
    for thread in threading.enumerate():
        if thread.name == "parallelize-executor-shutdown":
            thread.join(timeout=WAIT_SECONDS)
    with pytest.raises(RunnerClosedError):
        ex.runner.submit(inc, 1)


def test_shutdown_cancel_futures_cancels_pending_map_work(backend: str) -> None:
    with Executor(1, backend=backend) as ex:
        results = ex.map(time.sleep, [0.05] * 40, chunksize=1)
        ex.shutdown(cancel_futures=True)
        got = []
        with pytest.raises(concurrent.futures.CancelledError):
            for value in results:
                got.append(value)
        assert len(got) < 40


def test_context_manager_waits_for_pending_work(backend: str, tmp_path: Path) -> None:
    with Executor(2, backend=backend) as ex:
        futures = [ex.submit(touch, str(tmp_path / f"c{i}"), 0.05) for i in range(4)]
    assert all(f.done() and not f.cancelled() for f in futures)
    assert len(list(tmp_path.iterdir())) == 4


# -- asyncio ---------------------------------------------------------------------------------


def test_loop_run_in_executor_works(executor: Executor) -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(executor, inc, i) for i in range(20))))

    assert asyncio.run(main()) == list(range(1, 21))


def test_run_in_executor_propagates_the_calls_exception(executor: Executor) -> None:
    async def main() -> None:
        await asyncio.get_running_loop().run_in_executor(executor, fail_on, 3)

    with pytest.raises(ValueError, match="bad item 3"):
        asyncio.run(main())


def test_thread_backend_timeout_warns_and_moves_on() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the abandoned thread is announced
        with Executor(1, backend="thread", timeout=0.2) as ex:
            with pytest.raises(TaskTimeoutError):
                ex.submit(time.sleep, 1.0).result(timeout=WAIT_SECONDS)
            assert ex.submit(inc, 1).result(timeout=WAIT_SECONDS) == 2
