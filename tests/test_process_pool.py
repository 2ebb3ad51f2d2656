"""The process pool's jobs sent ahead: taken back for an idle worker, stopped, requeued, never deadlocked.

A worker holds the job it runs and the next one (``JOBS_PER_WORKER``); these
tests pin down what that must never cost: a job waiting behind a long task
while another worker is idle, a stopped job that still runs, a job lost with
its worker, a deadlock between large jobs and large results.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import wait
from pathlib import Path
from typing import Any

import pytest

from parallelize.backends.pool import JOBS_PER_WORKER, PoolKilledError, ProcessPool
from parallelize.errors import WorkerCrashedError


def nap(seconds: float, tag: Any = None) -> Any:
    time.sleep(seconds)
    return tag


def touch(path: str) -> str:
    Path(path).write_text("ran")
    return path


def die_after(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(3)


def echo(blob: bytes) -> bytes:
    return blob[::-1]


@pytest.fixture
def pool() -> Any:
    p = ProcessPool(2)
    yield p
    p.shutdown(wait=False)


def _warm(pool: ProcessPool) -> None:
    """Both workers started, so that sends go to running workers."""
    assert [f.result(timeout=60) for f in [pool.submit(nap, 0.2, i) for i in range(2)]] == [0, 1]


def test_a_worker_holds_its_job_and_the_next() -> None:
    assert JOBS_PER_WORKER == 2


def test_a_job_sent_ahead_behind_a_long_task_goes_to_the_worker_that_falls_idle(pool: ProcessPool) -> None:
    _warm(pool)
    long = pool.submit(nap, 20.0, "long")
    medium = pool.submit(nap, 0.5, "medium")
    time.sleep(0.3)  # both running: what follows is sent ahead, one to each worker
    quick = [pool.submit(nap, 0.01, i) for i in range(2)]
    # The one queued behind the 20 s task is taken back and run by the other
    # worker once it is idle: both finish long before the long task.
    done, _ = wait([long, *quick], timeout=15, return_when="ALL_COMPLETED")
    assert set(quick) <= done and long not in done
    assert [f.result() for f in quick] == [0, 1]
    assert medium.result() == "medium"


def test_a_job_stopped_while_sent_ahead_fails_and_never_runs(pool: ProcessPool, tmp_path: Path) -> None:
    _warm(pool)
    first = [pool.submit(nap, 1.0, i) for i in range(2)]
    time.sleep(0.3)
    marker = tmp_path / "ran"
    ahead = pool.submit(touch, str(marker))
    time.sleep(0.2)  # sent to a worker, not started
    assert pool.kill(ahead)
    with pytest.raises(PoolKilledError):
        ahead.result(timeout=10)
    assert [f.result(timeout=30) for f in first] == [0, 1]
    after = pool.submit(nap, 0.0, "after")  # the workers are fine, and free
    assert after.result(timeout=30) == "after"
    time.sleep(0.3)
    assert not marker.exists()
    assert pool.idle()


def test_a_job_sent_ahead_to_a_worker_that_dies_runs_elsewhere(pool: ProcessPool) -> None:
    _warm(pool)
    crash = pool.submit(die_after, 0.5)
    other = pool.submit(nap, 0.5, "other")
    time.sleep(0.2)
    behind = [pool.submit(nap, 0.01, i) for i in range(2)]
    with pytest.raises(WorkerCrashedError):
        crash.result(timeout=30)
    assert [f.result(timeout=30) for f in behind] == [0, 1]
    assert other.result(timeout=30) == "other"


def test_large_jobs_sent_ahead_while_large_results_come_back_never_deadlock(pool: ProcessPool) -> None:
    _warm(pool)
    blobs = [bytes([i]) * (16 * 2**20) for i in range(8)]  # far beyond a socket's buffer, both ways
    futures = [pool.submit(echo, b) for b in blobs]
    done, not_done = wait(futures, timeout=90)
    assert not not_done, "large jobs and results deadlocked"
    assert all(f.result() == b[::-1] for f, b in zip(futures, blobs, strict=True))


def test_cancelled_jobs_sent_ahead_leave_the_pool_idle(pool: ProcessPool) -> None:
    _warm(pool)
    running = [pool.submit(nap, 0.5, i) for i in range(2)]
    time.sleep(0.2)
    ahead = [pool.submit(nap, 0.01, i) for i in range(2)]
    cancelled = [f.cancel() for f in ahead]
    assert [f.result(timeout=30) for f in running] == [0, 1]
    for f, was in zip(ahead, cancelled, strict=True):
        if not was:  # it started before the cancel: it ran
            assert f.result(timeout=30) in (0, 1)
    deadline = time.monotonic() + 10
    while not pool.idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.idle()


def test_a_lent_pool_is_reused_by_runners_and_never_shut_down_by_them(pool: ProcessPool) -> None:
    from parallelize import Parallelize

    with Parallelize(2, backend="process", pool=pool) as runner:
        first = set(runner.map(_pid, range(40)))
    with Parallelize(1, backend="process", pool=pool) as runner:
        second = set(runner.map(_pid, range(40)))
    assert len(second) == 1 and second <= first  # the same processes, at most the width asked for
    assert pool.submit(nap, 0.0, "alive").result(timeout=30) == "alive"


def test_a_bad_or_busy_pool_is_refused_by_name(pool: ProcessPool) -> None:
    from parallelize import Parallelize
    from parallelize.errors import ConfigError

    with pytest.raises(ConfigError, match="pool must be a parallelize.backends.pool.ProcessPool, got 'mine'"):
        Parallelize(2, backend="process", pool="mine")
    busy = pool.submit(nap, 1.0, "busy")
    with pytest.raises(ConfigError, match="still has 1 task"):
        Parallelize(2, backend="process", pool=pool)
    assert busy.result(timeout=30) == "busy"  # nothing lost


def _pid(_: int) -> int:
    time.sleep(0.01)
    return os.getpid()
