"""The dask backend against a real scheduler and real worker processes.

The session cluster (``dask_address``: one ``dask scheduler``, two single-threaded
``dask worker`` processes) serves most tests; the worker-loss test starts its own
so that killing a worker cannot disturb the others.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Iterator

import psutil
import pytest

pytest.importorskip("distributed", reason="dask backend needs `pip install parallelize[dask]`")

from dask_cluster import start_cluster  # noqa: E402
from distributed import Client  # noqa: E402

from parallelize import ModelEvaluator, Parallelize  # noqa: E402
from parallelize.errors import (  # noqa: E402
    ConfigError,
    SchedulerUnreachableError,
    TaskTimeoutError,
)
from parallelize.worker.context import worker_context  # noqa: E402
from parallelize.worker.failure import TaskFailure  # noqa: E402

pytestmark = pytest.mark.timeout(60)


# -- task functions (module level: the workers import them from this file) -------------


def inc(x: int) -> int:
    return x + 1


def slow_square(x: int, delay: float = 0.05) -> int:
    time.sleep(delay)
    return x * x


def slower_square(x: int) -> int:
    time.sleep(0.3)
    return x * x


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad input {x}")
    return x


def fail_first_time(marker: str) -> str:
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise ConnectionError("first attempt fails")
    return "ok"


def score(depth: int, criterion: str, scale: int = 1) -> tuple[int, str, int]:
    return depth, criterion, depth * scale


def make_token(shared: str) -> str:
    return f"{shared}-{os.getpid()}-{uuid.uuid4().hex}"


def report_init(x: int) -> tuple[str, str]:
    ctx = worker_context()
    return ctx.init_values, ctx.worker


def whoami() -> str:
    return worker_context().worker


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def runner(dask_address: str) -> Iterator[Parallelize]:
    r = Parallelize(2, backend="dask", address=dask_address)
    yield r
    r.shutdown()


def _children() -> list[psutil.Process]:
    """Child processes of the test process that are not the session cluster's."""
    from conftest import _stray_children

    return _stray_children()


# -- the runner's features on Dask -------------------------------------------------------


def test_map_ordered_with_lazy_input(runner: Parallelize) -> None:
    pulled = []

    def numbers() -> Iterator[int]:
        for i in range(2000):
            pulled.append(i)
            yield i

    assert list(runner.map(inc, numbers())) == [i + 1 for i in range(2000)]
    assert len(pulled) == 2000


def test_map_unordered_returns_every_result(runner: Parallelize) -> None:
    out = list(runner.map(slow_square, range(20), ordered=False, chunksize=1))
    assert sorted(out) == [i * i for i in range(20)]


def test_identical_batches_all_run(runner: Parallelize) -> None:
    # Every batch here is the same function on the same input: with keys derived
    # from the content Dask would run one and hand its result to all.
    out = list(runner.map(inc, [7] * 50, chunksize=1))
    assert out == [8] * 50
    stats = runner.statistics()
    assert stats.completed == 50
    assert stats.durations.count == 50


def test_submit_returns_concurrent_future(runner: Parallelize) -> None:
    future = runner.submit(slow_square, 6, delay=0.01)
    assert isinstance(future, Future)
    assert future.result(timeout=30) == 36
    failing = runner.submit(fail_on_three, 3)
    with pytest.raises(ValueError, match="bad input 3"):
        failing.result(timeout=30)


def test_submit_cancel_of_queued_task(dask_address: str) -> None:
    runner = Parallelize(2, backend="dask", address=dask_address)
    busy = [runner.submit(slow_square, i, delay=0.5) for i in range(2)]
    queued = runner.submit(slow_square, 9, delay=0.5)
    assert queued.cancel()
    assert queued.cancelled()
    assert [f.result(timeout=30) for f in busy] == [0, 1]
    runner.shutdown()


def test_backend_future_is_pending_then_running_then_done(runner: Parallelize) -> None:
    future = runner.backend.submit(sleep_for, 1.0)
    deadline = time.monotonic() + 20
    while not future.running() and not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert future.running(), "the start event should mark the future running"
    assert not future.cancel()  # a started task cannot be cancelled, as on any executor
    assert future.result(timeout=30) == 1.0


def test_timeout_fails_the_slow_task_only(runner: Parallelize) -> None:
    out = list(runner.map(sleep_for, [0.01, 2.0, 0.01, 0.01, 0.01], timeout=0.5, on_error="collect"))
    assert out[0] == 0.01 and out[2:] == [0.01, 0.01, 0.01]
    assert isinstance(out[1], TaskFailure)
    assert isinstance(out[1].exception, TaskTimeoutError)


def test_run_calls_function_once_per_worker(runner: Parallelize) -> None:
    execution = runner.run(whoami)
    names = list(execution.results())
    assert len(names) == 2
    assert all(isinstance(n, str) and n for n in names)


def test_model_evaluator_grid(runner: Parallelize) -> None:
    execution = ModelEvaluator(runner).run(score, depth=range(1, 4), criterion=["gini", "entropy"], scale=10)
    results = sorted(execution.results())
    assert results == sorted((d, c, d * 10) for d in range(1, 4) for c in ("gini", "entropy"))


def test_statistics_name_both_workers(runner: Parallelize) -> None:
    out = list(runner.map(slow_square, range(30), chunksize=1))
    assert out == [i * i for i in range(30)]
    stats = runner.statistics()
    assert stats.completed == 30 and stats.failed == 0
    workers = {w.worker for w in stats.workers}
    assert len(workers) == 2, workers
    # Two separate worker processes, not two threads of one.
    assert len({name.split(":")[1] for name in workers}) == 2


def test_error_policies(runner: Parallelize) -> None:
    collected = list(runner.map(fail_on_three, range(6), on_error="collect"))
    assert collected[:3] == [0, 1, 2] and collected[4:] == [4, 5]
    failure = collected[3]
    assert isinstance(failure, TaskFailure)
    assert isinstance(failure.exception, ValueError) and failure.index == 3
    assert list(runner.map(fail_on_three, range(6), on_error="skip")) == [0, 1, 2, 4, 5]
    with pytest.raises(ValueError, match="bad input 3") as info:
        list(runner.map(fail_on_three, range(6)))
    assert any("arguments 3" in note for note in getattr(info.value, "__notes__", []))


def test_retries_run_on_the_worker(runner: Parallelize, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    assert runner.submit(fail_first_time, str(marker)).exception(timeout=30) is not None
    marker.unlink()
    assert list(runner.map(fail_first_time, [str(marker)], retries=1)) == ["ok"]
    assert runner.statistics().retried == 1


def test_initializer_runs_once_per_worker(dask_address: str) -> None:
    with Parallelize(2, backend="dask", address=dask_address, initializer=make_token, shared_data="seed") as r:
        out = list(r.map(report_init, range(40), chunksize=1))
    tokens = {token for token, _worker in out}
    workers = {worker for _token, worker in out}
    assert all(t.startswith("seed-") for t in tokens)
    # One initializer call per worker thread, whatever the number of tasks.
    assert len(tokens) == len(workers)


def test_existing_client_is_used_and_left_open(dask_address: str) -> None:
    with Client(dask_address, set_as_default=False) as client:
        runner = Parallelize(2, backend="dask", client=client, initializer=make_token, shared_data="c")
        assert runner.backend.client is client
        assert list(runner.map(inc, range(100))) == list(range(1, 101))
        runner.shutdown()
        # The caller's client still works, and the runner's setup plugin is gone.
        assert client.submit(inc, 41, pure=False).result(timeout=30) == 42
        plugins = client.run(lambda dask_worker: sorted(dask_worker.plugins))
        assert not any(name.startswith("parallelize-setup") for names in plugins.values() for name in names)


def test_local_cluster_started_on_first_use_and_closed() -> None:
    runner = Parallelize(2, backend="dask")
    # Constructing the runner starts nothing.
    assert _children() == []
    assert runner.backend.client is None
    assert list(runner.map(inc, range(10))) == list(range(1, 11))
    assert len(runner.backend.client.nthreads()) == 2
    assert _children(), "the LocalCluster's worker processes should be running"
    runner.shutdown()
    deadline = time.monotonic() + 10
    while _children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _children() == []


def test_unused_local_cluster_runner_starts_nothing() -> None:
    with Parallelize(backend="dask") as runner:
        assert runner.backend.client is None
    assert _children() == []


# -- failures of the cluster ---------------------------------------------------------------


def test_worker_killed_mid_run_is_rescheduled() -> None:
    with start_cluster(2) as (address, _pids):
        with Client(address, set_as_default=False) as client:
            worker_pids = client.run(os.getpid)
        runner = Parallelize(2, backend="dask", address=address)
        try:
            stream = runner.map(slower_square, range(16), ordered=False, chunksize=1)
            results = [next(stream), next(stream)]
            # Both workers are busy now (8 batches outstanding for 2 threads): kill one.
            victim = psutil.Process(next(iter(worker_pids.values())))
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            results.extend(stream)
        finally:
            runner.shutdown()
        assert not victim.is_running()
        assert sorted(results) == [i * i for i in range(16)]
        stats = runner.statistics()
        assert stats.completed == 16 and stats.failed == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(30)
def test_unreachable_scheduler_refused() -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with pytest.raises(SchedulerUnreachableError) as info:
        Parallelize(2, backend="dask", address=address, connect_timeout=1)
    assert address in str(info.value)
    assert isinstance(info.value, OSError)


@pytest.mark.timeout(30)
def test_unreachable_scheduler_silent_port() -> None:
    # A port that accepts connections and never answers: Client(timeout=...) alone waits forever.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(SchedulerUnreachableError, match="no answer within 1.0 s") as info:
            Parallelize(2, backend="dask", address=address, connect_timeout=1)
    assert address in str(info.value)


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="not both"):
        Parallelize(2, backend="dask", address="tcp://127.0.0.1:1", client=object())
    with pytest.raises(ConfigError, match="unknown dask backend option"):
        Parallelize(2, backend="dask", adress="tcp://127.0.0.1:1")
    with pytest.raises(ConfigError, match="client must be a distributed.Client"):
        Parallelize(2, backend="dask", client="tcp://127.0.0.1:1")
    with pytest.raises(ConfigError, match="connect_timeout"):
        Parallelize(2, backend="dask", address="tcp://127.0.0.1:1", connect_timeout=0)


def test_missing_distributed_says_how_to_install() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["distributed"] = None  # as if dask[distributed] were not installed
        from parallelize import Parallelize
        from parallelize.errors import BackendUnavailableError
        try:
            Parallelize(2, backend="dask")
        except BackendUnavailableError as exc:
            assert isinstance(exc, ImportError)
            print(exc)
        else:
            raise SystemExit("no error")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "parallelize[dask]"' in proc.stdout
