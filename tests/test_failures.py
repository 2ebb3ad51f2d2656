"""Faults: crashes, timeouts, retries, pickling, Ctrl-C — and no finished work lost."""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import BrokenExecutor
from pathlib import Path

import psutil
import pytest
from processes import alive

from parallelize import (
    Parallelize,
    ParallelizeError,
    PicklingError,
    TaskFailure,
    TaskTimeoutError,
    WorkerCrashedError,
)

# -- functions run in workers (module level: picklable by reference) --------------


def segfault(x: int) -> int:
    faulthandler.disable()  # keep the expected crash from printing a C-level traceback
    faulthandler._sigsegv()
    return x


def hard_exit(x: int) -> int:
    os._exit(7)


def self_kill(x: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return x


def identity(x: object) -> object:
    return x


class Unpicklable:
    """An argument whose pickling fails."""

    def __reduce__(self) -> tuple[object, ...]:
        raise RuntimeError("this object refuses to be pickled")


class UnpicklableOnLoad:
    """A result that pickles but cannot be unpickled in the parent."""

    def __reduce__(self) -> tuple[object, ...]:
        return (_fail_on_load, ())


def _fail_on_load() -> None:
    raise ValueError("this result cannot be rebuilt")


def returns_lock(x: int) -> object:
    return threading.Lock()


def returns_bad_on_load(x: int) -> object:
    return UnpicklableOnLoad()


def crash_on(bad: int, how: str):
    def task(x: int) -> int:
        if x == bad:
            if how == "segfault":
                faulthandler.disable()
                faulthandler._sigsegv()
            elif how == "exit":
                os._exit(3)
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return x * 10

    return task


# The crash table: (function, argument, expected error, message pattern).
CRASH_CASES = [
    pytest.param(segfault, 1, WorkerCrashedError, r"SIGSEGV", id="segfault"),
    pytest.param(hard_exit, 1, WorkerCrashedError, r"EXIT\(7\)", id="os._exit"),
    pytest.param(self_kill, 1, WorkerCrashedError, r"SIGKILL", id="sigkill"),
    pytest.param(identity, Unpicklable(), PicklingError, r"refuses to be pickled|pickle", id="argument-pickling"),
    pytest.param(returns_lock, 1, PicklingError, r"_thread.lock", id="result-pickling"),
    pytest.param(returns_bad_on_load, 1, PicklingError, r"unpickled in the calling process", id="result-unpickling"),
]


@pytest.mark.parametrize("func, arg, expected, match", CRASH_CASES)
def test_crash_table_submit(func, arg, expected, match):
    with Parallelize(2, backend="process") as runner:
        future = runner.submit(func, arg)
        with pytest.raises(expected, match=match):
            future.result(timeout=60)
        # The pool recovers: the next task runs.
        assert runner.submit(identity, 5).result(timeout=60) == 5


@pytest.mark.parametrize("func, arg, expected, match", CRASH_CASES)
def test_crash_table_map_keeps_other_tasks(func, arg, expected, match):
    inputs: list[tuple[int, object]] = [(i, None) for i in range(12)]
    inputs[5] = (5, arg)

    def run(item: tuple[int, object]) -> object:
        i, payload = item
        return func(payload) if i == 5 else i

    with Parallelize(2, backend="process", on_error="collect") as runner:
        out = list(runner.map(run, inputs, chunksize=4))
    assert len(out) == 12
    failure = out[5]
    assert isinstance(failure, TaskFailure)
    assert isinstance(failure.exception, expected)
    assert failure.index == 5
    assert [v for i, v in enumerate(out) if i != 5] == [i for i in range(12) if i != 5]


def test_worker_crash_is_a_broken_executor_and_names_the_task():
    with Parallelize(2, backend="process") as runner:
        with pytest.raises(WorkerCrashedError) as info:
            list(runner.map(crash_on(3, "exit"), range(8)))
    assert isinstance(info.value, BrokenExecutor)
    assert isinstance(info.value, ParallelizeError)
    assert "task 3" in str(info.value)
    assert "memory" in str(info.value)


@pytest.mark.parametrize("how", ["segfault", "exit", "sigkill"])
def test_crash_in_a_big_batch_isolates_the_culprit(how):
    with Parallelize(2, backend="process", on_error="collect") as runner:
        out = list(runner.map(crash_on(37, how), range(100), chunksize=25))
        stats = runner.statistics()
    assert isinstance(out[37], TaskFailure)
    assert isinstance(out[37].exception, WorkerCrashedError)
    assert [v for i, v in enumerate(out) if i != 37] == [i * 10 for i in range(100) if i != 37]
    assert stats.failed == 1
    assert stats.completed == 99


def test_crashed_task_retried_on_a_fresh_worker(tmp_path: Path):
    marker = tmp_path / "crashed-once"

    def flaky(x: int) -> int:
        if x == 2 and not marker.exists():
            marker.write_text("x")
            os._exit(1)
        return x

    with Parallelize(2, backend="process", retries=1) as runner:
        assert list(runner.map(flaky, range(6))) == list(range(6))


def test_crash_retries_exhausted_fail_with_attempts():
    with Parallelize(2, backend="process", on_error="collect", retries=2) as runner:
        out = list(runner.map(crash_on(1, "exit"), range(3)))
    assert isinstance(out[1], TaskFailure)
    assert out[1].attempts == 3
    assert out[0] == 0 and out[2] == 20


def test_skip_policy_drops_crashes_and_counts_them():
    with Parallelize(2, backend="process", on_error="skip") as runner:
        out = list(runner.map(crash_on(4, "exit"), range(10)))
        stats = runner.statistics()
    assert out == [i * 10 for i in range(10) if i != 4]
    assert stats.failed == 1


# -- timeouts ------------------------------------------------------------------------


def sleepy(x: float) -> float:
    time.sleep(x)
    return x


def busy_native_hang(x: int) -> int:
    # Ignore SIGALRM as native code stuck in a C call effectively would.
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    if x == 1:
        time.sleep(60)
    return x


@pytest.mark.parametrize("backend", ["process", "thread"])
def test_timeout_fails_only_the_hung_task(backend):
    inputs = [0.01, 0.01, 30, 0.01, 0.01]
    with Parallelize(2, backend=backend, on_error="collect", timeout=1) as runner:
        with pytest.warns(RuntimeWarning) if backend == "thread" else _nothing():
            out = list(runner.map(sleepy, inputs))
    assert out[:2] == [0.01, 0.01] and out[3:] == [0.01, 0.01]
    assert isinstance(out[2], TaskFailure)
    assert isinstance(out[2].exception, TaskTimeoutError)
    assert isinstance(out[2].exception, TimeoutError)
    assert "timeout=1" in str(out[2].exception)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_timeout_raises_by_default_as_timeout_error():
    with Parallelize(2, backend="process", timeout=0.5) as runner:
        with pytest.raises(TimeoutError, match="timeout=0.5"):
            list(runner.map(sleepy, [0.01, 20]))


def test_timeout_kills_a_worker_stuck_where_signals_do_not_reach():
    with Parallelize(2, backend="process", on_error="collect", timeout=0.5) as runner:
        out = list(runner.map(busy_native_hang, range(4)))
    assert [out[0], out[2], out[3]] == [0, 2, 3]
    assert isinstance(out[1].exception, TaskTimeoutError)
    assert "killed" in str(out[1].exception)


def test_timeout_retried_within_budget(tmp_path: Path):
    marker = tmp_path / "slow-once"

    def slow_once(x: int) -> int:
        if x == 1 and not marker.exists():
            marker.write_text("x")
            time.sleep(30)
        return x

    with Parallelize(2, backend="process", timeout=1, retries=1) as runner:
        assert list(runner.map(slow_once, range(3))) == [0, 1, 2]


# -- errors from the user's function -------------------------------------------------


def fail_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd input {x}")
    return x


@pytest.mark.parametrize("backend", ["thread", "process", "serial"])
def test_user_error_keeps_its_type_with_remote_traceback_and_arguments(backend):
    with Parallelize(2, backend=backend) as runner:
        with pytest.raises(ValueError, match=r"odd input \d") as info:
            list(runner.map(fail_on_odd, range(4)))
    exc = info.value
    bad = str(exc).split()[2]  # the first failure to come back: 1 or 3
    assert "fail_on_odd" in str(exc.__cause__)
    assert any(f"arguments {bad}" in note for note in getattr(exc, "__notes__", []))


@pytest.mark.parametrize("backend", ["thread", "process", "serial"])
def test_collect_keeps_every_finished_result(backend):
    with Parallelize(2, backend=backend, on_error="collect") as runner:
        out = list(runner.map(fail_on_odd, range(10)))
    assert [v for v in out if not isinstance(v, TaskFailure)] == [0, 2, 4, 6, 8]
    failures = [v for v in out if isinstance(v, TaskFailure)]
    assert [f.index for f in failures] == [1, 3, 5, 7, 9]
    assert all(f.error_type == "ValueError" and "fail_on_odd" in f.traceback for f in failures)


def test_retry_only_named_exception_types(tmp_path: Path):
    calls = tmp_path / "calls"

    def flaky(x: int) -> int:
        with open(calls, "a") as fh:
            fh.write(f"{x}\n")
        if x == 0:
            raise ConnectionError("flaky network")
        raise KeyError("not retried")

    with Parallelize(1, backend="serial", on_error="collect", retries=2, retry_on=ConnectionError) as runner:
        out = list(runner.map(flaky, [0, 1]))
    tried = calls.read_text().split()
    assert tried.count("0") == 3 and tried.count("1") == 1
    assert out[0].attempts == 3 and out[1].attempts == 1
    assert runner.statistics().retried == 2


# -- Ctrl-C and SIGTERM --------------------------------------------------------------

# A run that did not stop would take minutes; this bound tells "stopped" from
# "ran on" without asserting a speed.
STOP_LIMIT_SECONDS = 15

SWEEP = textwrap.dedent(
    """
    import sys, time
    from parallelize import Parallelize

    def slow(x):
        time.sleep(0.3)
        return x

    runner = Parallelize(2, backend=sys.argv[1])
    print("started", flush=True)
    for x in runner.map(slow, range(10_000)):
        print(x, flush=True)
    """
)


@pytest.mark.parametrize("backend", ["process", "thread"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_stops_quickly_and_leaves_no_process(tmp_path: Path, backend: str, sig: int):
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    proc = subprocess.Popen(
        [sys.executable, str(script), backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        proc.stdout.readline()  # a first result: workers are up and busy
        children = psutil.Process(proc.pid).children(recursive=True)
        os.killpg(proc.pid, sig)  # as a terminal's Ctrl-C does: the whole group
        # Stopped, not run to the end (10,000 x 0.3 s); how fast is measured
        # outside the tests (0.1-0.3 s here), not asserted.
        _, err = proc.communicate(timeout=STOP_LIMIT_SECONDS)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    deadline = time.monotonic() + 5
    running = alive(c.pid for c in children)
    while running and time.monotonic() < deadline:
        time.sleep(0.1)
        running = alive(c.pid for c in children)
    assert not running
    # No wall of tracebacks: at most the user's own KeyboardInterrupt.
    assert err.count("Traceback") <= 1


def test_keyboard_interrupt_in_consumer_kills_running_process_tasks():
    with Parallelize(2, backend="process") as runner:
        stream = runner.map(sleepy, [0.01] + [30] * 4)
        assert next(iter(stream)) == 0.01
        pids = runner.backend.worker_pids()  # type: ignore[attr-defined]
        assert pids
        gen = stream._batches
        with pytest.raises(KeyboardInterrupt):
            gen.throw(KeyboardInterrupt)
        deadline = time.monotonic() + 5
        while alive(pids):
            assert time.monotonic() < deadline, "workers still alive after Ctrl-C"
            time.sleep(0.05)


# -- a failing initializer ------------------------------------------------------------


def broken_init(shared_data: object) -> object:
    raise NameError("name 'load_model' is not defined")


@pytest.mark.parametrize("on_error", ["raise", "collect", "skip"])
def test_failing_initializer_stops_the_run_on_every_backend(make_runner, on_error: str) -> None:
    from parallelize import WorkerInitError

    runner = make_runner(2, initializer=broken_init, on_error=on_error)
    with pytest.raises(WorkerInitError, match="load_model") as info:
        list(runner.map(identity, range(50)))
    assert isinstance(info.value, RuntimeError)
    assert "broken_init" in str(info.value.__cause__)
    # Every further call reports the same error rather than running tasks.
    with pytest.raises(WorkerInitError):
        runner.submit(identity, 1).result(timeout=60)
