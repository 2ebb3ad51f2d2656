"""The one retry policy: its arithmetic, and the engine keeping workers busy while a retry waits."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from parallelize import ConfigError, Parallelize, TaskFailure, WorkerCrashedError
from parallelize.retry import RetryPolicy

BACKENDS = ["thread", "process", "serial"]


# -- the policy on its own --------------------------------------------------------------


def test_attempts_are_counted_once_across_kinds_of_failure() -> None:
    policy = RetryPolicy(retries=2)
    assert [policy.should_retry(ValueError(), a) for a in (1, 2, 3)] == [True, True, False]
    assert not RetryPolicy(retries=5, retry_on=(KeyError,)).should_retry(ValueError(), 1)
    assert RetryPolicy(retries=1).should_retry(WorkerCrashedError("x"), 1)  # a crash is an Exception


def test_waits_double_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=10, backoff=0.5, max_backoff=3.0)
    assert [policy.delay(a) for a in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert RetryPolicy(retries=3).delay(1) == 0.0
    assert RetryPolicy(retries=10_000, backoff=1.0).delay(9_999) == 60.0  # no overflow


def test_jitter_stays_within_its_range() -> None:
    policy = RetryPolicy(retries=3, backoff=1.0, jitter=0.5, max_backoff=100)
    waits = [policy.delay(2) for _ in range(200)]
    assert all(2.0 <= w <= 2.5 for w in waits)
    assert len(set(waits)) > 1


def test_policy_is_frozen_and_picklable() -> None:
    policy = RetryPolicy(retries=2, retry_on=(OSError,), backoff=0.1)
    assert pickle.loads(pickle.dumps(policy)) == policy
    with pytest.raises(AttributeError):
        policy.retries = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": True}, "retries"),
        ({"retry_on": (ValueError, 3)}, "retry_on"),
        ({"backoff": -1}, "backoff"),
        ({"max_backoff": float("nan")}, "max_backoff"),
        ({"jitter": "1"}, "jitter"),
    ],
)
def test_bad_policy_values_are_named(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=words):
        Parallelize(1, **kwargs)  # type: ignore[arg-type]


def test_runner_options_carry_one_policy() -> None:
    runner = Parallelize(1, retries=2, retry_on=OSError, backoff=0.2, max_backoff=1.0, jitter=0.1)
    assert runner.options.retry == RetryPolicy(2, (OSError,), 0.2, 1.0, 0.1)
    assert runner.options.replace(retries=4).retry.retries == 4
    runner.shutdown()


# -- the engine: a retry's wait keeps no worker idle -------------------------------------


def flaky_logged(x: int, folder: str) -> int:
    """Fails the first time for x == 0; logs each start as 'x start-time' lines."""
    log = Path(folder) / "log"
    with log.open("a") as f:
        f.write(f"{x} {time.monotonic()!r}\n")
    marker = Path(folder) / f"failed-{x}"
    if x == 0 and not marker.exists():
        marker.write_text("x")
        raise OSError("first attempt fails")
    time.sleep(0.02)
    return x * 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_other_tasks_run_while_a_retry_waits(backend: str, tmp_path: Path) -> None:
    backoff = 0.6
    with Parallelize(1, backend=backend, retries=1, backoff=backoff, chunksize=1) as runner:
        out = list(runner.starmap(flaky_logged, [(x, str(tmp_path)) for x in range(6)]))
        stats = runner.statistics()
    assert out == [0, 10, 20, 30, 40, 50]  # input order kept, the retried value in its place
    assert stats.retried == 1 and stats.failed == 0 and stats.completed == 6
    starts = [(int(x), float(t)) for x, t in (line.split() for line in (tmp_path / "log").read_text().splitlines())]
    zero = [t for x, t in starts if x == 0]
    assert len(zero) == 2
    first_failure, retry = zero
    others = [t for x, t in starts if x != 0]
    # The one worker ran other tasks between the failure and the retry...
    assert any(first_failure < t < retry for t in others), starts
    # ...and the retry waited out its backoff (a lower bound: it can only be later).
    assert retry - first_failure >= backoff * 0.9


def always_fails(x: int) -> int:
    raise OSError(f"no {x}")


def test_retries_exhausted_after_waits_report_every_attempt() -> None:
    with Parallelize(2, backend="thread", retries=2, backoff=0.05, on_error="collect") as runner:
        out = list(runner.map(always_fails, range(3)))
        stats = runner.statistics()
    assert all(isinstance(v, TaskFailure) and v.attempts == 3 for v in out)
    assert [v.index for v in out] == [0, 1, 2]
    assert stats.retried == 6 and stats.failed == 3


def test_raise_policy_waits_for_the_retry_before_raising() -> None:
    # A retried task that then succeeds must not stop an on_error="raise" run.
    calls: list[int] = []

    def once_bad(x: int) -> int:
        calls.append(x)
        if x == 2 and calls.count(2) == 1:
            raise OSError("transient")
        return x

    with Parallelize(1, backend="thread", retries=1, backoff=0.05) as runner:
        assert list(runner.map(once_bad, range(5))) == [0, 1, 2, 3, 4]


def die(x: int) -> int:
    if x == 1:
        os._exit(3)
    return x


def test_a_crash_is_retried_only_if_retry_on_covers_it() -> None:
    with Parallelize(2, backend="process", retries=2, retry_on=ValueError, on_error="collect") as runner:
        out = list(runner.map(die, range(3)))
    assert out[0] == 0 and out[2] == 2
    assert isinstance(out[1], TaskFailure) and isinstance(out[1].exception, WorkerCrashedError)
    assert out[1].attempts == 1


def test_submit_waits_out_a_backoff_too(tmp_path: Path) -> None:
    with Parallelize(1, backend="process", retries=1, backoff=0.3) as runner:
        future = runner.submit(flaky_logged, 0, str(tmp_path))
        assert future.result(timeout=60) == 0
        assert runner.statistics().retried == 1
