"""The pool's zygote: one fresh interpreter per pool forks every worker, and nothing outlives the pool.

A worker is forked by the pool's zygote instead of starting an interpreter of
its own. These tests pin down what that must keep: every worker forked by the
one zygote; a killed worker replaced by another fork; a killed zygote costing
only the tasks that were running, with a new zygote for what comes next; a
``sys.path`` or ``os.environ`` changed after the zygote started still seen by
new workers; and
no zygote or worker left once the pool is shut down or its process is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from processes import alive

from parallelize.backends.pool import ProcessPool
from parallelize.errors import WorkerCrashedError


def pid_and_parent(_: Any = None) -> tuple[int, int]:
    return os.getpid(), os.getppid()


def nap(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def import_and_call(module: str) -> str:
    return __import__(module).hello()


@pytest.fixture
def pool() -> Any:
    p = ProcessPool(2)
    yield p
    p.shutdown(wait=False)


def _zygote_of(pool: ProcessPool) -> psutil.Process:
    zygote = pool._zygote
    assert zygote is not None and not zygote.gone
    return psutil.Process(zygote.process.pid)


def test_every_worker_is_forked_by_the_pools_one_zygote(pool: ProcessPool) -> None:
    got = {pool.submit(nap, 0.3).result(timeout=60) for _ in range(2)}
    got |= {f.result(timeout=60) for f in [pool.submit(nap, 0.3) for _ in range(2)]}
    zygote = _zygote_of(pool)
    assert zygote.ppid() == os.getpid()
    assert "parallelize-worker-zygote" in " ".join(zygote.cmdline())
    assert {c.pid for c in zygote.children()} == set(pool.worker_pids())
    assert got <= set(pool.worker_pids())
    # This process started exactly one interpreter for the pool: the zygote.
    assert [c.pid for c in psutil.Process().children() if "parallelize-worker" in " ".join(c.cmdline())] == [zygote.pid]


def test_a_killed_worker_is_replaced_by_another_fork(pool: ProcessPool) -> None:
    first, parent = pool.submit(pid_and_parent).result(timeout=60)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while first in pool.worker_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first not in pool.worker_pids()
    pids = {pool.submit(pid_and_parent).result(timeout=60) for _ in range(4)}
    assert first not in {p for p, _ in pids}
    assert {z for _, z in pids} == {parent}  # the same zygote forked the replacement


def test_a_killed_zygote_costs_the_running_tasks_only(pool: ProcessPool) -> None:
    pool.submit(nap, 0.01).result(timeout=60)
    running = pool.submit(nap, 30.0)
    time.sleep(0.5)
    old = _zygote_of(pool)
    old.kill()
    with pytest.raises(WorkerCrashedError):
        running.result(timeout=30)
    pid, parent = pool.submit(pid_and_parent).result(timeout=60)
    assert parent != old.pid and _zygote_of(pool).pid == parent


def test_new_workers_see_the_sys_path_of_when_they_started(pool: ProcessPool, tmp_path: Path) -> None:
    pool.submit(nap, 0.01).result(timeout=60)  # the zygote started before the path changes
    (tmp_path / "late_module_for_zygote_test.py").write_text("def hello():\n    return 'hello'\n")
    sys.path.append(str(tmp_path))
    try:
        for worker in list(pool._workers):
            worker.process.kill()  # replaced by new forks, which get today's sys.path
        assert pool.submit(import_and_call, "late_module_for_zygote_test").result(timeout=60) == "hello"
    finally:
        sys.path.remove(str(tmp_path))


def environment_variable(name: str) -> str | None:
    return os.environ.get(name)


def test_new_workers_see_the_environment_of_when_they_started(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = ProcessPool(1, env={"PARALLELIZE_TEST_POOL_ENV": "pool"})
    try:
        pool.submit(nap, 0.01).result(timeout=60)  # the zygote started before the change
        monkeypatch.setenv("PARALLELIZE_TEST_LATE", "late")
        for worker in list(pool._workers):
            worker.process.kill()
        assert pool.submit(environment_variable, "PARALLELIZE_TEST_LATE").result(timeout=60) == "late"
        assert pool.submit(environment_variable, "PARALLELIZE_TEST_POOL_ENV").result(timeout=60) == "pool"
    finally:
        pool.shutdown()


def test_nothing_outlives_a_shut_down_pool() -> None:
    pool = ProcessPool(2)
    pids = {f.result(timeout=60)[0] for f in [pool.submit(pid_and_parent) for _ in range(4)]}
    zygote = _zygote_of(pool)
    pool.shutdown()
    assert not alive([*pids, zygote.pid])


def test_nothing_outlives_a_killed_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys, time
        from parallelize.backends.pool import ProcessPool
        def nap(s):
            time.sleep(s)
        pool = ProcessPool(2)
        futures = [pool.submit(nap, 60) for _ in range(2)]
        while len(pool.worker_pids()) < 2 or pool._zygote is None:
            time.sleep(0.05)
        time.sleep(0.5)
        print(pool._zygote.process.pid, *pool.worker_pids(), flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        pids = [int(p) for p in line.split()]
        assert len(pids) == 3, line
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 15
    running = pids
    while running and time.monotonic() < deadline:
        running = alive(pids)
        time.sleep(0.1)
    assert not running
