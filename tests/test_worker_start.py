"""How a process worker starts: a fresh interpreter, told only what it needs, used once it is up.

A worker is forked by the pool's zygote, a fresh interpreter started by
fork+exec with the pool's ``env`` in place before it starts; it gets the parent's ``sys.path``, ``sys.argv`` and
multiprocessing authentication key, and never imports the parent's
``__main__`` script. Jobs go only to workers that said they are up, so a job
never waits on a starting worker while another could run it, and workers that
die while starting fail the queued jobs with an error that says so instead of
being started again forever.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from parallelize.backends.pool import MAX_DEATHS_BEFORE_START, ProcessPool, _Job, _Worker
from parallelize.errors import WorkerCrashedError


def worker_view() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "argv": sys.argv,
        "path": sys.path,
        "dont_write_bytecode": sys.dont_write_bytecode,
        "main_file": getattr(sys.modules["__main__"], "__file__", None),
    }


def pid_of(_: Any = None) -> int:
    return os.getpid()


@pytest.fixture
def pool() -> Any:
    p = ProcessPool(1)
    yield p
    p.shutdown(wait=False)


def test_a_worker_gets_the_parents_sys_path_and_argv_and_not_its_main_script(pool: ProcessPool) -> None:
    view = pool.submit(worker_view).result(timeout=60)
    assert view["pid"] != os.getpid()
    assert view["argv"] == sys.argv
    assert view["path"] == sys.path
    assert view["main_file"] is None  # pytest's __main__ was not imported there


def test_env_is_in_place_before_the_workers_interpreter_starts() -> None:
    # sys.dont_write_bytecode is read from the environment only at interpreter
    # start: it is True in the worker only if env= was there before exec.
    pool = ProcessPool(1, env={"PYTHONDONTWRITEBYTECODE": "1"})
    try:
        assert pool.submit(worker_view).result(timeout=60)["dont_write_bytecode"] is True
    finally:
        pool.shutdown()
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ or os.environ["PYTHONDONTWRITEBYTECODE"] == "1"


def test_a_script_without_a_main_guard_runs_once(tmp_path: Path) -> None:
    # Its workers do not import it again (loky's launcher did, as spawn does),
    # so its top-level code, runner included, runs only in the parent.
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            from parallelize import Parallelize
            print("top level", os.getpid(), flush=True)
            runner = Parallelize(2, backend="process")
            print(sorted(runner.map(lambda x: x * 2, range(6))), flush=True)
            runner.shutdown()
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("top level") == 1
    assert "[0, 2, 4, 6, 8, 10]" in out.stdout


def test_workers_that_die_while_starting_fail_the_queued_jobs_with_the_reason() -> None:
    # An interpreter that cannot find its standard library exits before running anything.
    pool = ProcessPool(2, env={"PYTHONHOME": "/nonexistent-python-home"})
    try:
        futures = [pool.submit(pid_of, i) for i in range(3)]
        for future in futures:
            with pytest.raises(WorkerCrashedError, match="died while starting, before running anything"):
                future.result(timeout=60)
        assert f"{MAX_DEATHS_BEFORE_START} worker processes in a row" in str(futures[0].exception())
    finally:
        pool.shutdown(wait=False)


class _Starting:
    """Stands for a worker process in the pool's bookkeeping (never started)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode = None

    def poll(self) -> None:
        return None


def test_jobs_go_only_to_workers_that_said_they_are_up() -> None:
    # The pool's matching of jobs with workers, on its own: a worker that has
    # not said READY gets nothing, even with jobs waiting and room to spare.
    pool = ProcessPool(2)
    try:
        up, starting = _Worker(_Starting(1), conn=None, ready=True), _Worker(_Starting(2), conn=None)  # type: ignore[arg-type]
        pool._workers = [up, starting]
        for i in range(3):
            job = _Job(i, Future(), b"job %d" % i)
            pool._jobs[i] = job
            pool._pending.append(job)
        with pool._lock:
            sends = pool._assign()
        assert sends == [(up, b"job 0"), (up, b"job 1")]  # the one it runs, and the next
        assert not starting.jobs and len(pool._pending) == 1
        starting.ready = True
        with pool._lock:
            sends = pool._assign()
        assert sends == [(starting, b"job 2")]
    finally:
        pool._workers = []
        pool.shutdown()
