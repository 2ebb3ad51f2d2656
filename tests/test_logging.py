"""The ``parallelize`` logger: retries, timeouts, crashes, pool restarts and resumes, silent by default."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from parallelize import Parallelize, TaskFailure, WorkerCrashedError
from parallelize.logs import LOG_TEXT_CHARS, brief, brief_error, logger

_lock = threading.Lock()
_failures: dict[int, int] = {}


def flaky(x: int) -> int:
    """Fails twice for 3, then succeeds (thread backend: one shared count)."""
    with _lock:
        if x == 3 and _failures.get(x, 0) < 2:
            _failures[x] = _failures.get(x, 0) + 1
            raise ValueError(f"flaky input {x}")
    return x


def exit_on_two(x: int) -> int:
    if x == 2:
        os._exit(3)
    return x


def sleep_on_one(x: int) -> int:
    if x == 1:
        time.sleep(1.5)
    return x


def square(x: int) -> int:
    return x * x


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "parallelize" and r.levelno == level]


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    _failures.clear()


def test_the_logger_is_the_packages_and_has_a_null_handler() -> None:
    assert logger is logging.getLogger("parallelize")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)


def test_a_retried_task_logs_each_retry_with_its_attempt_and_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="parallelize"):
        with Parallelize(2, backend="thread", retries=3, backoff=0.01) as runner:
            assert list(runner.map(flaky, range(5))) == [0, 1, 2, 3, 4]
    warnings = _messages(caplog, logging.WARNING)
    assert len(warnings) == 2, warnings
    for attempt, line in enumerate(warnings, start=1):
        assert f"task 3 with arguments 3 failed on attempt {attempt} of 4" in line
        assert "ValueError: flaky input 3" in line and "retrying in" in line


def test_retries_made_at_once_in_the_worker_are_logged_by_count(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="parallelize"):
        with Parallelize(2, backend="thread", retries=3, chunksize=1) as runner:
            assert list(runner.map(flaky, range(5))) == [0, 1, 2, 3, 4]
    [line] = _messages(caplog, logging.WARNING)
    assert line.startswith("task 3: 2 failed attempt(s) retried at once in worker")


@pytest.mark.filterwarnings("ignore:a task on the thread backend outlived its timeout:RuntimeWarning")
@pytest.mark.parametrize("backend", ["thread", "process"])
def test_a_timeout_logs(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="parallelize"):
        with Parallelize(2, backend=backend, timeout=0.3, on_error="collect") as runner:
            results = list(runner.map(sleep_on_one, range(3)))
    assert results[0] == 0 and results[2] == 2 and isinstance(results[1], TaskFailure)
    warnings = _messages(caplog, logging.WARNING)
    timeouts = [w for w in warnings if "timed out on attempt 1" in w]
    assert len(timeouts) == 1, warnings
    assert "TaskTimeoutError" in timeouts[0] and "task 1 with arguments 1" in timeouts[0]


def test_a_crashed_worker_logs_the_crash_and_the_pool_restart(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="parallelize"):
        with Parallelize(2, backend="process", on_error="collect", retries=1) as runner:
            results = list(runner.map(exit_on_two, range(4)))
            assert list(runner.map(square, range(4))) == [0, 1, 4, 9]  # on a restarted pool
    assert isinstance(results[2], TaskFailure) and isinstance(results[2].exception, WorkerCrashedError)
    assert [results[i] for i in (0, 1, 3)] == [0, 1, 3]
    warnings = _messages(caplog, logging.WARNING)
    assert any(w.startswith("worker pid ") and "died" in w and "EXIT(3)" in w for w in warnings), warnings
    assert any(w.startswith("a worker crashed under task") for w in warnings), warnings
    assert any("task 2 with arguments 2 failed on attempt 1 of 2 (WorkerCrashedError" in w for w in warnings), warnings
    infos = _messages(caplog, logging.INFO)
    assert any(i == "process pool starts a worker to replace one that ended" for i in infos), infos


def test_a_resumed_checkpoint_run_logs_how_many_it_found(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "checkpoint"
    with caplog.at_level(logging.INFO, logger="parallelize"):
        with Parallelize(2, backend="thread") as runner:
            assert list(runner.map(square, range(10), checkpoint=folder)) == [x * x for x in range(10)]
            assert not [m for m in _messages(caplog, logging.INFO) if "resuming" in m]  # a first run: nothing found
            assert list(runner.map(square, range(15), checkpoint=folder)) == [x * x for x in range(15)]
    [line] = [m for m in _messages(caplog, logging.INFO) if "resuming" in m]
    assert f"resuming from checkpoint {folder}" in line
    assert "10 recorded result(s) found, 5 left to compute" in line


def test_nothing_is_printed_by_default(tmp_path: Path) -> None:
    # In a fresh interpreter: pytest's own logging handlers would hear everything here.
    script = textwrap.dedent(
        f"""
        import os, threading
        from parallelize import Parallelize

        lock = threading.Lock()
        failed = []

        def flaky(x):
            with lock:
                if x == 3 and len(failed) < 2:
                    failed.append(x)
                    raise ValueError("flaky")
            return x

        def exit_on_two(x):
            if x == 2:
                os._exit(3)
            return x

        with Parallelize(2, backend="thread", retries=3, backoff=0.01) as runner:
            assert list(runner.map(flaky, range(5))) == [0, 1, 2, 3, 4]
        with Parallelize(2, backend="process", on_error="collect", retries=1) as runner:
            assert len(list(runner.map(exit_on_two, range(4)))) == 4
        with Parallelize(2, backend="process", timeout=0.2, on_error="collect") as runner:
            assert len(list(runner.map(__import__("time").sleep, [0, 1]))) == 2
        with Parallelize(2, backend="thread") as runner:
            list(runner.map(abs, range(5), checkpoint={str(tmp_path / "ck")!r}))
            list(runner.map(abs, range(8), checkpoint={str(tmp_path / "ck")!r}))
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert done.stderr == ""


def test_log_arguments_are_short_single_lines() -> None:
    assert str(brief("x" * 10_000)).endswith("...") and len(str(brief("x" * 10_000))) == LOG_TEXT_CHARS
    assert str(brief_error(ValueError("two\nlines"))) == "ValueError: two lines"
    assert str(brief_error(KeyError())) == "KeyError"

    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "unrepresentable Unprintable" in str(brief(Unprintable()))
