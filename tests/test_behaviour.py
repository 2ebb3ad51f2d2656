"""One behaviour suite for the core runner, run on every backend.

Each test takes the ``backend`` / ``make_runner`` fixtures (tests/conftest.py), so
thread, process, serial (and dask when its cluster fixture exists) must all
behave the same. Ordering between tasks is arranged with flag files, never with
sleeps or timed assertions: a gated task polls for its file and fails loudly
(instead of hanging) if the file never appears.
"""

from __future__ import annotations

import functools
import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from parallelize import (
    ModelEvaluator,
    Parallelize,
    ParamSpace,
    RunnerClosedError,
    TaskFailure,
    worker_context,
)
from parallelize.engine.batching import MAX_BATCH
from parallelize.engine.dispatch import window_for
from parallelize.worker.failure import RemoteTraceback

# Longest a gated task or a test waits for a flag before giving up: a guard
# against hanging, never a speed requirement.
GATE_LIMIT = 60.0


# -- helpers (module level, so the process backend can import them) -------------


def wait_for_file(path: str | Path, limit: float = GATE_LIMIT) -> None:
    """Block until ``path`` exists; raise TimeoutError after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"flag {path} never appeared")
        time.sleep(0.005)


def wait_until(predicate: Callable[[], bool], what: str, limit: float = GATE_LIMIT) -> None:
    """Poll ``predicate`` until true; fail the test (rather than hang) after ``limit`` s."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.005)


def square(x: int) -> int:
    return x * x


def add(a: int, b: int) -> int:
    return a + b


def identity(x: Any) -> Any:
    return x


def gated(x: int, gate: str) -> int:
    """Task 0 waits for the flag file ``gate``; the others return at once."""
    if x == 0:
        wait_for_file(gate)
    return x


def fail_on_multiples_of_three(x: int) -> int:
    if x % 3 == 0:
        raise ValueError(f"bad input {x}")
    return x * 10


def flaky(x: int, folder: str) -> int:
    """Fails on its first two attempts for each ``x``; attempts are counted in a file."""
    path = Path(folder) / f"attempts-{x}"
    with open(path, "a") as f:
        f.write("x")
    attempts = len(path.read_text())
    if attempts < 3:
        raise OSError(f"attempt {attempts} for {x} failed")
    return x * 100


def always_fails(x: int) -> int:
    raise KeyError(x)


def report_with_queue(queue: Any, foo: str) -> None:
    queue.put(foo)
    queue.task_done()


def report_twice(queue: Any, foo: str) -> None:
    queue.put(foo)
    queue.put(foo.upper())


def return_doubled(foo: int) -> int:
    return foo * 2


def identify() -> str:
    return f"{os.getpid()}:{threading.get_ident()}"


def record_init(shared: dict[str, str]) -> str:
    """An initializer: appends this worker's identity to the file named in ``shared``."""
    me = identify()
    with open(shared["log"], "a") as f:
        f.write(me + "\n")
    return f"init:{me}"


def read_context(x: int) -> tuple[int, str, Any, Any]:
    ctx = worker_context()
    return x, identify(), ctx.shared_data, ctx.init_values


def grid_point(depth: int, impurity: str, bins: int, foo: str) -> tuple[int, str, int]:
    assert foo == "bar"
    return (depth, impurity, bins)


def gated_grid_point(depth: int, impurity: str, bins: int, foo: str, gate: str) -> tuple[int, str, int]:
    """The grid's first point waits for the flag file ``gate``."""
    if (depth, impurity, bins) == (2, "gini", 10):
        wait_for_file(gate)
    return (depth, impurity, bins)


# -- construction ------------------------------------------------------------------


def test_threads_and_positional_worker_counts() -> None:
    with Parallelize(threads=4) as a, Parallelize(4) as b, Parallelize(workers=3) as c:
        assert (a.max_workers, b.max_workers, c.max_workers) == (4, 4, 3)
        assert a.backend.name == b.backend.name == "thread"


# -- run(): the original API ------------------------------------------------------------


def test_run_with_queue_parameter(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner(2)
    execution = runner.run(func=report_with_queue, foo="Bar")
    assert list(runner.results()) == ["Bar", "Bar"]
    # Results are kept, not drained: a second call gives the same.
    assert list(runner.results()) == ["Bar", "Bar"]
    assert list(execution.results()) == ["Bar", "Bar"]
    assert execution.done()


def test_run_queue_every_put_is_a_result(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner(2)
    runner.run(func=report_twice, foo="ab")
    assert sorted(runner.results()) == ["AB", "AB", "ab", "ab"]


def test_run_without_queue_returns_the_value(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner(2)
    runner.run(func=return_doubled, foo=21)
    assert list(runner.results()) == [42, 42]
    stats = runner.statistics()
    assert (stats.total, stats.completed, stats.failed, stats.pending) == (2, 2, 0, 0)


# -- map ---------------------------------------------------------------------------------


def test_map_keeps_input_order(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()
    assert list(runner.map(square, range(50))) == [x * x for x in range(50)]


def test_map_unordered_gives_the_same_multiset(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()
    data = [x % 7 for x in range(60)]
    out = list(runner.map(identity, data, ordered=False))
    assert Counter(out) == Counter(data)


def test_map_empty_input(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()
    stream = runner.map(square, [])
    assert list(stream) == []
    assert stream.statistics().completed == 0


def test_starmap(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()
    pairs = [(i, 10 * i) for i in range(20)]
    assert list(runner.starmap(add, pairs)) == [11 * i for i in range(20)]


def test_map_over_a_space_passes_keywords(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()
    space = ParamSpace(a=range(3), b=[10, 20])
    assert list(runner.map(add, space)) == [10, 20, 11, 21, 12, 22]


def test_lambda_and_closure(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()
    offset = 1000

    def shifted(x: int) -> int:
        return x + offset

    assert list(runner.map(lambda x: -x, range(10))) == [-x for x in range(10)]
    assert list(runner.map(shifted, range(10))) == [x + 1000 for x in range(10)]


def test_infinite_lazy_input(make_runner: Callable[..., Parallelize]) -> None:
    pulled = itertools.count()
    taken = 0

    def counting() -> Iterator[int]:
        nonlocal taken
        for x in itertools.count():
            taken = next(pulled) + 1
            yield x

    runner = make_runner()
    stream = runner.map(square, counting())
    first = list(itertools.islice(stream, 100))
    stream.close()
    assert first == [x * x for x in range(100)]
    # The input was read only a bounded window ahead, and not at all after close.
    after_close = taken
    assert 100 <= after_close <= 100 + window_for(2) * MAX_BATCH
    assert list(itertools.islice(stream, 1)) == []
    assert taken == after_close


def test_result_streams_before_a_slow_task_finishes(
    backend: str, make_runner: Callable[..., Parallelize], tmp_path: Path
) -> None:
    if backend == "serial":
        pytest.skip("the serial backend runs each task at submission, in order: nothing can overtake")
    gate = tmp_path / "gate"
    runner = make_runner(2, chunksize=1)
    stream = runner.map(functools.partial(gated, gate=str(gate)), range(4), ordered=False)
    try:
        first = next(stream)
        # Task 0 is still waiting for its flag, so what arrived is another task.
        assert first != 0
        assert not gate.exists()
        stats = stream.statistics()
        assert stats.completed >= 1 and stats.pending >= 1
    finally:
        gate.touch()
    rest = list(stream)
    assert sorted([first, *rest]) == [0, 1, 2, 3]


# -- submit ---------------------------------------------------------------------------


def test_submit_returns_a_future(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()
    future = runner.submit(add, 2, b=40)
    assert isinstance(future, Future)
    assert future.result(timeout=GATE_LIMIT) == 42
    assert runner.statistics().completed == 1


def test_submit_sets_the_users_exception(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()
    future = runner.submit(fail_on_multiples_of_three, 6)
    with pytest.raises(ValueError, match="bad input 6") as info:
        future.result(timeout=GATE_LIMIT)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "fail_on_multiples_of_three" in str(info.value.__cause__)


# -- errors ------------------------------------------------------------------------------


def test_user_exception_reaches_caller_as_its_own_type(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()
    with pytest.raises(ValueError, match="bad input 3") as info:
        list(runner.map(fail_on_multiples_of_three, [1, 2, 3, 4]))
    exc = info.value
    cause = exc.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "Traceback" in str(cause) and "fail_on_multiples_of_three" in str(cause)
    notes = getattr(exc, "__notes__", [])
    assert any("task 2" in n and "arguments 3" in n for n in notes), notes
    # The runner stays usable after a failed map.
    assert list(runner.map(square, [5])) == [25]


def test_user_exception_from_run(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()
    execution = runner.run(func=always_fails, x="key")
    with pytest.raises(KeyError) as info:
        list(runner.results())
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert isinstance(execution.error, KeyError)


def test_on_error_collect_yields_failures_in_place(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner(on_error="collect")
    stream = runner.map(fail_on_multiples_of_three, range(7))
    out = list(stream)
    assert len(out) == 7
    for i, value in enumerate(out):
        if i % 3 == 0:
            assert isinstance(value, TaskFailure)
            assert value.index == i
            assert isinstance(value.exception, ValueError)
            assert str(value.exception) == f"bad input {i}"
            assert value.arguments == repr(i)
            assert value.attempts == 1
            assert "fail_on_multiples_of_three" in value.traceback
        else:
            assert value == i * 10
    stats = stream.statistics()
    assert (stats.completed, stats.failed, stats.pending) == (4, 3, 0)


def test_on_error_skip_drops_failures_and_counts_them(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner(on_error="skip")
    stream = runner.map(fail_on_multiples_of_three, range(7))
    assert list(stream) == [10, 20, 40, 50]
    stats = stream.statistics()
    assert (stats.total, stats.completed, stats.failed) == (7, 4, 3)


def test_on_error_per_call_override(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner()  # raise by default
    assert list(runner.map(fail_on_multiples_of_three, range(4), on_error="skip")) == [10, 20]


def test_retries_rerun_a_failing_task(make_runner: Callable[..., Parallelize], tmp_path: Path) -> None:
    runner = make_runner(retries=2)
    stream = runner.map(functools.partial(flaky, folder=str(tmp_path)), range(4))
    assert list(stream) == [0, 100, 200, 300]
    for x in range(4):
        assert (tmp_path / f"attempts-{x}").read_text() == "xxx"
    stats = stream.statistics()
    assert (stats.completed, stats.failed) == (4, 0)


def test_retries_of_tasks_that_then_succeed_are_counted(
    make_runner: Callable[..., Parallelize], tmp_path: Path
) -> None:
    runner = make_runner(retries=2)
    stream = runner.map(functools.partial(flaky, folder=str(tmp_path)), range(4))
    assert list(stream) == [0, 100, 200, 300]
    assert stream.statistics().retried == 8


def test_retries_exhausted_reports_attempts(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner(retries=2, on_error="collect")
    (failure,) = list(runner.map(always_fails, ["k"]))
    assert isinstance(failure, TaskFailure)
    assert isinstance(failure.exception, KeyError)
    assert failure.attempts == 3


def test_retry_on_limits_what_is_retried(make_runner: Callable[..., Parallelize], tmp_path: Path) -> None:
    runner = make_runner(retries=2, retry_on=KeyError, on_error="collect")
    (failure,) = list(runner.map(functools.partial(flaky, folder=str(tmp_path)), [7]))
    # flaky raises OSError, which is not retried.
    assert isinstance(failure, TaskFailure) and isinstance(failure.exception, OSError)
    assert failure.attempts == 1
    assert (tmp_path / "attempts-7").read_text() == "x"


# Backends where each array element is a fresh process of its own.
CLUSTER_BACKENDS = {"slurm", "sge", "pbs"}


# -- worker context ---------------------------------------------------------------------


def test_initializer_and_shared_data(make_runner: Callable[..., Parallelize], tmp_path: Path, backend: str) -> None:
    log = tmp_path / "init.log"
    shared = {"log": str(log), "model": "weights"}
    runner = make_runner(2, initializer=record_init, shared_data=shared)
    out = list(runner.map(read_context, range(40)))
    assert [x for x, *_ in out] == list(range(40))
    inits = log.read_text().splitlines()
    # Once per worker: no worker initialised twice; a pool has at most two. On a
    # cluster every array element is a worker of its own.
    assert len(inits) == len(set(inits))
    if backend in CLUSTER_BACKENDS:
        assert 1 <= len(inits) == len({who for _x, who, *_ in out})
    else:
        assert 1 <= len(inits) <= 2
    for _x, who, shared_seen, init_values in out:
        assert shared_seen == shared
        assert who in inits
        assert init_values == f"init:{who}"


def test_worker_context_outside_a_task() -> None:
    seen: list[Any] = []
    # A fresh thread: no runner has ever used it as a worker.
    thread = threading.Thread(target=lambda: seen.append(worker_context()))
    thread.start()
    thread.join()
    (ctx,) = seen
    assert ctx.shared_data is None and ctx.init_values is None
    assert str(os.getpid()) in ctx.worker


def test_serial_worker_context_does_not_leak_into_the_caller() -> None:
    def seen_shared(x: int) -> Any:
        return worker_context().shared_data

    with Parallelize(1, backend="serial", shared_data={"secret": 1}) as runner:
        assert list(runner.map(seen_shared, [0])) == [{"secret": 1}]
    with Parallelize(1, backend="serial") as runner:
        assert list(runner.map(seen_shared, [0])) == [None]
    assert worker_context().shared_data is None


# -- lifetime and progress ------------------------------------------------------------------


def test_context_manager_shuts_down(make_runner: Callable[..., Parallelize]) -> None:
    with make_runner() as runner:
        assert list(runner.map(square, range(3))) == [0, 1, 4]
    # Closed by its owner: a RuntimeError of ours, not a bad argument.
    with pytest.raises(RunnerClosedError, match="shut down"):
        runner.submit(square, 2)
    with pytest.raises(RuntimeError, match="shut down"):
        runner.map(square, [1])


def test_progress_bar_shows_the_total(
    make_runner: Callable[..., Parallelize], capsys: pytest.CaptureFixture[str]
) -> None:
    runner = make_runner(progress=True)
    assert list(runner.map(square, range(23))) == [x * x for x in range(23)]
    err = capsys.readouterr().err
    assert "23/23" in err


# -- ModelEvaluator over the seed grid -------------------------------------------------------

IMPURITY = ["gini", "entropy"]
DEPTH = range(2, 31)
BINS = range(10, 1051, 10)
SEED_GRID = {"impurity": IMPURITY, "depth": DEPTH, "bins": BINS, "foo": "bar"}


def seed_grid_in_loop_order() -> list[tuple[int, str, int]]:
    """Nested loops, first keyword (impurity) outermost."""
    return [(d, i, b) for i in IMPURITY for d in DEPTH for b in BINS]


def test_model_evaluator_every_combination_once(make_runner: Callable[..., Parallelize]) -> None:
    evaluator = ModelEvaluator(make_runner())
    evaluator.run(grid_point, **SEED_GRID)
    out = list(evaluator.results())
    expected = seed_grid_in_loop_order()
    assert len(expected) == 2 * 29 * 105 == 6090
    assert len(out) == 6090
    assert Counter(out) == Counter(expected)
    assert max(Counter(out).values()) == 1
    # Ordered: nested-loop order, first keyword outermost; callable again.
    assert list(evaluator.results(ordered=True)) == expected
    assert list(evaluator.results(ordered=True)) == expected
    stats = evaluator.statistics()
    assert (stats.total, stats.completed, stats.failed, stats.pending, stats.running) == (6090, 6090, 0, 0, False)
    assert "size: 6090 items" in str(stats)


def test_model_evaluator_runs_in_the_background(
    backend: str, make_runner: Callable[..., Parallelize], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    evaluator = ModelEvaluator(make_runner())
    try:
        execution = evaluator.run(gated_grid_point, **SEED_GRID, gate=str(gate))
        # run() returned while the first point is still blocked.
        assert not execution.done()
        assert not evaluator.wait(timeout=0)
        during = evaluator.statistics()
        assert during.total == 6090 and during.running
        assert during.completed < 6090 and during.pending >= 1
        assert "size: 6090 items" in str(during)
        if backend != "serial":  # serial runs points one by one: none can pass the gated one
            # Everything except the gated point can finish.
            wait_until(lambda: evaluator.statistics().completed == 6089, "all points but the gated one")
            during = evaluator.statistics()
            assert (during.completed, during.failed, during.pending, during.running) == (6089, 0, 1, True)
            assert not execution.done()
            # Results stream while the run is still going.
            first = next(iter(evaluator.results()))
            assert first != (2, "gini", 10)
    finally:
        gate.touch()
    assert evaluator.wait(timeout=GATE_LIMIT)
    after = evaluator.statistics()
    assert (after.completed, after.pending, after.running) == (6090, 0, False)
    assert sorted(evaluator.results()) == sorted(seed_grid_in_loop_order())


def test_execution_cancel_stops_queued_work(
    backend: str, make_runner: Callable[..., Parallelize], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    evaluator = ModelEvaluator(make_runner(chunksize=1))
    execution = evaluator.run(gated_grid_point, **SEED_GRID, gate=str(gate))
    wait_until(lambda: evaluator.statistics().submitted >= 1, "the first submission")
    execution.cancel(wait=False)
    gate.touch()
    assert execution.wait(timeout=GATE_LIMIT)
    stats = evaluator.statistics()
    assert stats.running is False
    # Cancelled long before the end: most of the grid never ran.
    assert stats.completed < 6090 and stats.pending == 6090 - stats.completed - stats.failed
    assert execution.error is None
    assert len(list(evaluator.results())) == stats.completed


def test_model_evaluator_collects_failures(make_runner: Callable[..., Parallelize]) -> None:
    evaluator = ModelEvaluator(make_runner())
    evaluator.run(fail_on_multiples_of_three, x=range(6), options={"on_error": "collect"})
    out = list(evaluator.results(ordered=True))
    assert [type(v).__name__ for v in out] == ["TaskFailure", "int", "int", "TaskFailure", "int", "int"]
    assert evaluator.statistics().failed == 2


# -- a function defined in __main__ through processes -------------------------------------

MAIN_SCRIPT = textwrap.dedent(
    """
    from parallelize import Parallelize

    def cube(x):
        return x ** 3

    if __name__ == "__main__":
        with Parallelize(2, backend="process") as runner:
            print(list(runner.map(cube, range(6))))
            print(list(runner.map(lambda x: x + 1, range(3))))
            print(runner.submit(cube, 4).result())
    """
)


def test_function_defined_in_main_through_processes(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(MAIN_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=GATE_LIMIT, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[0, 1, 8, 27, 64, 125]", "[1, 2, 3]", "64"]
