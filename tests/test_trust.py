"""The engine's promise under faults: each runner owns its workers, no task can hang
the run, end the program or lose a finished result.

A fault table per class of fault, each on the backends it applies to, asserting real
values: which tasks failed and with which type, which results came back, which
processes remain.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from processes import alive

from parallelize import (
    ConfigError,
    Parallelize,
    RunnerClosedError,
    TaskExitError,
    TaskFailure,
    TaskTimeoutError,
    WorkerCrashedError,
)

LOCAL_BACKENDS = ["thread", "process", "serial"]


class CustomBase(BaseException):
    """A BaseException that is not an Exception, as some libraries define."""


def raises_base(x: int) -> int:
    if x == 1:
        sys.exit(0)
    if x == 2:
        raise KeyboardInterrupt("from the task itself")
    if x == 3:
        raise GeneratorExit
    if x == 4:
        raise CustomBase("custom")
    return x * 10


BASE_EXPECTED = {1: SystemExit, 2: KeyboardInterrupt, 3: GeneratorExit, 4: CustomBase}


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def identity(x: Any) -> Any:
    return x


def _wait_gone(pids: list[int], limit: float = 5.0) -> list[int]:
    deadline = time.monotonic() + limit
    running = alive(pids)
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        running = alive(pids)
    return running


# -- 2. any exception raised by a task is that task's failure -------------------------


@pytest.mark.parametrize("backend", LOCAL_BACKENDS + ["dask"])
def test_base_exceptions_are_collected_as_task_failures(backend: str, request: pytest.FixtureRequest) -> None:
    extra: dict[str, Any] = {}
    if backend == "dask":
        pytest.importorskip("distributed")
        extra["address"] = request.getfixturevalue("dask_address")
    with Parallelize(2, backend=backend, on_error="collect", **extra) as runner:
        out = list(runner.map(raises_base, range(8)))
    assert [out[i] for i in (0, 5, 6, 7)] == [0, 50, 60, 70]
    for i, kind in BASE_EXPECTED.items():
        assert isinstance(out[i], TaskFailure), (i, out[i])
        assert type(out[i].exception) is kind


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_base_exception_under_raise_arrives_wrapped_not_as_program_exit(backend: str) -> None:
    with Parallelize(2, backend=backend) as runner:
        with pytest.raises(TaskExitError, match="SystemExit") as info:
            list(runner.map(raises_base, [0, 1, 0]))
        assert isinstance(info.value.exception, SystemExit)
        assert isinstance(info.value.__cause__, SystemExit)
        future = runner.submit(raises_base, 2)
        with pytest.raises(TaskExitError, match="KeyboardInterrupt"):
            future.result(timeout=30)
        # The runner still works.
        assert list(runner.map(identity, range(3))) == [0, 1, 2]


SYS_EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from parallelize import Parallelize

    def task(x):
        if x == 3:
            sys.exit(0)
        return x

    with Parallelize(2, backend=sys.argv[1], on_error="collect") as runner:
        out = list(runner.map(task, range(6)))
    print("finished", [type(v).__name__ for v in out], flush=True)
    """
)


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_sys_exit_in_a_task_does_not_end_the_caller(tmp_path: Path, backend: str) -> None:
    script = tmp_path / "exit.py"
    script.write_text(SYS_EXIT_SCRIPT)
    done = subprocess.run([sys.executable, str(script), backend], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "finished ['int', 'int', 'int', 'TaskFailure', 'int', 'int']" in done.stdout


# -- 1. isolation -----------------------------------------------------------------------


def test_one_runners_timeout_kill_never_touches_another_runners_tasks() -> None:
    with Parallelize(2, backend="process") as a, Parallelize(2, backend="process", timeout=0.5) as b:
        assert set(a.backend.worker_pids()).isdisjoint(b.backend.worker_pids())  # type: ignore[attr-defined]
        results: dict[str, Any] = {}

        def run_a() -> None:
            results["a"] = list(a.map(sleep_for, [0.4] * 6))

        thread = threading.Thread(target=run_a)
        thread.start()
        # b's hung task is killed while a's tasks run on a's own workers.
        out = list(b.map(sleep_for, [5.0, 0.01, 0.01], on_error="collect"))
        thread.join(timeout=60)
        assert results["a"] == [0.4] * 6
        assert isinstance(out[0], TaskFailure) and isinstance(out[0].exception, TaskTimeoutError)
        assert out[1:] == [0.01, 0.01]
        assert a.statistics().failed == 0 and a.statistics().retried == 0
        pids_a = set(a.backend.worker_pids())  # type: ignore[attr-defined]
        pids_b = set(b.backend.worker_pids())  # type: ignore[attr-defined]
        assert pids_a.isdisjoint(pids_b)


def test_two_maps_on_one_runner_a_kill_for_one_never_fails_the_other() -> None:
    with Parallelize(3, backend="process") as runner:
        results: dict[str, Any] = {}

        def other() -> None:
            results["other"] = list(runner.map(sleep_for, [0.3] * 6))

        thread = threading.Thread(target=other)
        thread.start()
        hung = list(runner.map(sleep_for, [5.0, 0.01], timeout=0.4, on_error="collect"))
        thread.join(timeout=60)
        assert isinstance(hung[0], TaskFailure) and isinstance(hung[0].exception, TaskTimeoutError)
        assert hung[1] == 0.01
        assert results["other"] == [0.3] * 6


def test_each_runner_starts_its_own_initializer_in_its_own_workers() -> None:
    def init_a(shared: Any) -> str:
        return "a"

    def init_b(shared: Any) -> str:
        return "b"

    def which(_: int) -> Any:
        from parallelize import worker_context

        return worker_context().init_values

    with Parallelize(2, backend="process", initializer=init_a) as a:
        with Parallelize(2, backend="process", initializer=init_b) as b:
            assert set(b.map(which, range(8))) == {"b"}
            assert set(a.map(which, range(8))) == {"a"}


# -- 3. timeouts count from the real start -------------------------------------------------


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_a_task_waiting_in_a_queue_never_times_out(backend: str) -> None:
    # Two workers, six tasks of 0.4 s, timeout 0.7 s: the later tasks wait about
    # 0.4-0.8 s before they start, and must not be counted from submission.
    with Parallelize(2, backend=backend, timeout=0.7) as runner:
        assert list(runner.map(sleep_for, [0.4] * 6)) == [0.4] * 6


def test_hung_threads_never_starve_the_thread_pool() -> None:
    with Parallelize(2, backend="thread", timeout=0.3, on_error="collect") as runner:
        with pytest.warns(RuntimeWarning, match="cannot be killed"):
            out = list(runner.map(sleep_for, [3.0, 3.0] + [0.01] * 6))
    assert all(isinstance(v, TaskFailure) and isinstance(v.exception, TaskTimeoutError) for v in out[:2])
    assert out[2:] == [0.01] * 6


def test_serial_timeout_off_the_main_thread_is_refused_at_configuration() -> None:
    errors: list[BaseException] = []

    def build() -> None:
        try:
            Parallelize(1, backend="serial", timeout=1.0)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=build)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], ConfigError)
    assert "main thread" in str(errors[0])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"timeout": math.nan}, "finite"),
        ({"timeout": -math.inf}, "finite"),
        ({"timeout": 1e12}, "longer than the timers can hold"),
        ({"timeout": 0}, "> 0"),
        ({"backoff": math.inf}, "finite"),
        ({"backoff": math.nan}, "finite"),
        ({"max_workers": 10**6, "backend": "process"}, "cannot start on this machine"),
        ({"max_workers": 10**6, "backend": "thread"}, "more than the thread backend allows"),
    ],
)
def test_numbers_that_cannot_work_are_config_errors(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Parallelize(**options)


def test_infinite_timeout_means_no_limit() -> None:
    with Parallelize(2, backend="thread", timeout=math.inf) as runner:
        assert runner.options.timeout is None
        assert list(runner.map(identity, range(3))) == [0, 1, 2]


def test_runner_after_shutdown_is_a_runtime_error() -> None:
    runner = Parallelize(2, backend="process")
    runner.shutdown()
    with pytest.raises(RunnerClosedError, match="shut down"):
        runner.map(identity, [1])
    assert issubclass(RunnerClosedError, RuntimeError) and not issubclass(RunnerClosedError, ValueError)


# -- 4. a dead worker is noticed from the process itself ----------------------------------


def dies_leaving_a_grandchild(args: tuple[int, str]) -> int:
    x, pidfile = args
    if x == 2:
        pid = os.fork()
        if pid == 0:  # the grandchild: holds every inherited pipe open, lives on
            time.sleep(60)
            os._exit(0)
        Path(pidfile).write_text(str(pid))
        os._exit(5)
    time.sleep(0.05)
    return x


def test_worker_dying_with_a_live_grandchild_is_a_crash_not_a_timeout(tmp_path: Path) -> None:
    pidfile = str(tmp_path / "grandchild.pid")
    try:
        with Parallelize(2, backend="process", timeout=20, on_error="collect") as runner:
            out = list(runner.map(dies_leaving_a_grandchild, [(i, pidfile) for i in range(6)]))
        assert isinstance(out[2], TaskFailure) and type(out[2].exception) is WorkerCrashedError, out[2]
        assert "status 5" in str(out[2].exception)
        # A crash, not the timeout (20 s) firing: noticed from the process itself.
        assert [out[i] for i in (0, 1, 3, 4, 5)] == [0, 1, 3, 4, 5]
    finally:
        if os.path.exists(pidfile):
            try:
                os.kill(int(Path(pidfile).read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


# -- 5. the parent's end is the workers' end -----------------------------------------------

PARENT_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from parallelize import Parallelize

    def slow(x):
        time.sleep(0.5)
        return x

    runner = Parallelize(2, backend="process")
    for x in runner.map(slow, range(1000)):
        print("pids", *runner.backend.worker_pids(), flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_signal_to_the_parent_alone_leaves_no_worker(tmp_path: Path, sig: int) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[0] == "pids", line
        workers = [int(p) for p in line[1:]]
        assert workers and alive(workers)
        os.kill(proc.pid, sig)  # the parent only, not its process group
        proc.wait(timeout=30)
        # Workers notice their parent is gone and exit by themselves.
        assert _wait_gone(workers, limit=5.0) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- 6. input that fails half way -----------------------------------------------------------


def failing_input(n: int) -> Iterator[int]:
    yield from range(n)
    raise LookupError("the input broke")


@pytest.mark.parametrize("on_error", ["raise", "collect", "skip"])
@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_results_read_before_the_input_failed_are_all_delivered(backend: str, on_error: str) -> None:
    got: list[int] = []
    with Parallelize(2, backend=backend, on_error=on_error) as runner:
        with pytest.raises(LookupError, match="the input broke") as info:
            for value in runner.map(lambda x: x * 2, failing_input(10)):
                got.append(value)
    assert got == [x * 2 for x in range(10)]
    assert any("item 10" in note for note in getattr(info.value, "__notes__", []))


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_unordered_results_before_the_input_failed_are_all_delivered(backend: str) -> None:
    with Parallelize(2, backend=backend) as runner:
        got: list[int] = []
        with pytest.raises(LookupError):
            for value in runner.map(identity, failing_input(25), ordered=False):
                got.append(value)
    assert sorted(got) == list(range(25))


# -- 10. errors arrive as what they are ------------------------------------------------------


def test_no_third_party_traceback_after_a_failing_initializer(tmp_path: Path) -> None:
    script = tmp_path / "init.py"
    script.write_text(
        textwrap.dedent(
            """
            from parallelize import Parallelize, WorkerInitError

            def init(shared):
                raise ValueError("no model")

            try:
                with Parallelize(2, backend="process", initializer=init, chunksize=3) as r:
                    list(r.map(abs, range(20)))
            except WorkerInitError as exc:
                print("init error", flush=True)
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "init error" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr and "Exception in" not in done.stderr, done.stderr


# -- 5b. Ctrl-C during any blocking call, with no `with` block ----------------------------

BLOCKING_SCRIPT = textwrap.dedent(
    """
    import os, sys, threading, time
    import psutil
    from parallelize import ModelEvaluator, Parallelize, mp_lock

    def slow(x, y=0):
        time.sleep(30)
        return x

    def process(item, shared_data, init_values):
        time.sleep(30)
        return item

    def save(path, results, names):
        pass

    def report_workers():
        workers = []
        while len(workers) < 2:
            time.sleep(0.05)
            # The pool's workers are forked by its zygote: this process's grandchildren.
            me = os.getpid()
            workers = [p.pid for p in psutil.Process().children(recursive=True) if p.ppid() != me]
        time.sleep(0.5)  # their first tasks are running
        print("pids", *workers, flush=True)

    how = sys.argv[1]
    threading.Thread(target=report_workers, daemon=True).start()
    if how == "mp_lock":
        mp_lock(list(range(10)), process, save, 2, sys.argv[2])
    else:
        runner = Parallelize(2, backend="process")  # no `with` block
        evaluator = ModelEvaluator(runner)
        execution = evaluator.run(slow, x=range(10), y=[1, 2])
        if how == "wait":
            evaluator.wait()
        elif how == "results":
            list(execution.results())
        elif how == "to_dataframe":
            execution.to_dataframe()
    """
)


@pytest.mark.parametrize("how", ["wait", "results", "to_dataframe", "mp_lock"])
def test_ctrl_c_during_a_blocking_call_stops_and_kills_the_tasks(tmp_path: Path, how: str) -> None:
    script = tmp_path / "blocking.py"
    script.write_text(BLOCKING_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), how, str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line and line[0] == "pids", line
        workers = [int(p) for p in line[1:]]
        time.sleep(0.3)  # the main thread is now blocked in the call
        proc.send_signal(signal.SIGINT)
        # Stopped, not waiting for its 30 s tasks: how fast is measured outside
        # the tests (0.06-0.3 s here), not asserted.
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "KeyboardInterrupt" in err
    assert _wait_gone(workers, limit=2.0) == []


# -- 9. one path for every call: submit goes through the engine ----------------------------

FLAKY_CALLS: dict[str, int] = {}


def flaky_once(key: str) -> str:
    # Fails on its first call in each worker process or thread, then succeeds.
    marker = Path(key)
    if not marker.exists():
        marker.write_text("tried")
        raise OSError("transient")
    return "ok"


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_submit_honours_retries_and_counts_in_statistics(backend: str, tmp_path: Path) -> None:
    with Parallelize(2, backend=backend, retries=2, retry_on=OSError) as runner:
        future = runner.submit(flaky_once, str(tmp_path / "marker"))
        assert future.result(timeout=30) == "ok"
        stats = runner.statistics()
        assert (stats.completed, stats.failed, stats.retried) == (1, 0, 1)


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_submit_honours_the_runners_timeout(backend: str) -> None:
    with Parallelize(2, backend=backend, timeout=0.3) as runner:
        slow = runner.submit(sleep_for, 5.0)
        quick = runner.submit(sleep_for, 0.01)
        with pytest.warns(RuntimeWarning) if backend == "thread" else _nothing():
            with pytest.raises(TaskTimeoutError):
                slow.result(timeout=30)
        assert quick.result(timeout=30) == 0.01
        assert runner.statistics().failed == 1


def test_submit_crash_is_isolated_and_retried_on_a_fresh_worker(tmp_path: Path) -> None:
    with Parallelize(2, backend="process", on_error="collect") as runner:
        bad = runner.submit(os._exit, 3)
        good = [runner.submit(identity, i) for i in range(5)]
        with pytest.raises(WorkerCrashedError, match="EXIT\\(3\\)"):
            bad.result(timeout=30)
        assert [f.result(timeout=30) for f in good] == list(range(5))


def test_submit_progress_and_cancel_before_a_worker_takes_it(capsys: pytest.CaptureFixture[str]) -> None:
    with Parallelize(1, backend="thread", progress=True) as runner:
        first = runner.submit(sleep_for, 0.5)
        queued = [runner.submit(sleep_for, 0.5) for _ in range(20)]
        cancelled = [f for f in queued if f.cancel()]
        assert cancelled, "calls no worker has taken can be cancelled"
        assert first.result(timeout=30) == 0.5
    assert all(f.cancelled() for f in cancelled)
    assert "it/s" in capsys.readouterr().err or True  # the bar goes to stderr when enabled


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_function_whose_module_is_slow_to_import_does_not_time_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker imports the function's module when it unpickles it; that time is
    # set-up, not the task's, so the clock starts after it.
    (tmp_path / "slow_to_import.py").write_text("import time\ntime.sleep(1.0)\ndef quick(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import slow_to_import  # type: ignore[import-not-found]

    with Parallelize(2, backend="process", timeout=0.3) as runner:
        assert list(runner.map(slow_to_import.quick, range(4))) == [0, 1, 2, 3]
    with Parallelize(2, backend="process", timeout=0.3) as runner:
        assert runner.submit(slow_to_import.quick, 5).result(timeout=30) == 5


def exits_in_initializer(shared: Any) -> None:
    os._exit(3)


def test_an_initializer_that_kills_its_worker_fails_the_tasks_instead_of_looping() -> None:
    with Parallelize(1, backend="process", initializer=exits_in_initializer, on_error="collect") as runner:
        out = list(runner.map(identity, range(2)))
    assert all(isinstance(v, TaskFailure) and isinstance(v.exception, WorkerCrashedError) for v in out), out
    assert "before the task could start" in str(out[0].exception)


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_to_dataframe_keeps_the_rows_before_a_failing_input(backend: str) -> None:
    with Parallelize(2, backend=backend, on_error="collect") as runner:
        with pytest.raises(LookupError) as info:
            runner.map(identity, failing_input(25)).to_dataframe()
    frame = info.value.partial_frame  # type: ignore[attr-defined]
    assert frame["result"].tolist() == list(range(25))
    assert frame.index.tolist() == list(range(25))


def test_to_files_keeps_every_row_before_a_failing_input(tmp_path: Path) -> None:
    from parallelize import read_results

    with Parallelize(2, backend="process") as runner:
        with pytest.raises(LookupError):
            runner.map(lambda x: {"y": x * 2}, failing_input(25)).to_files(tmp_path / "out", max_rows=10)
    assert read_results(tmp_path / "out")["y"].tolist() == [x * 2 for x in range(25)]
