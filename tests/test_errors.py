"""Error types and messages: every bad argument is a ConfigError (a ValueError)
raised at once, whose message names the bad value and what is allowed."""

from __future__ import annotations

import re
from concurrent.futures import BrokenExecutor
from typing import Any, Callable

import pytest

import parallelize
from parallelize import (
    BackendUnavailableError,
    ConfigError,
    ModelEvaluator,
    Parallelize,
    ParallelizeError,
    PicklingError,
    ResumeMismatchError,
    SchedulerUnreachableError,
    TaskTimeoutError,
    WorkerCrashedError,
)
from parallelize.validate import check_choice


def raises_config_error(build: Callable[[], Any], *fragments: str) -> ConfigError:
    """Run ``build``; it must raise ConfigError (also a ValueError) naming every fragment."""
    with pytest.raises(ConfigError) as info:
        build()
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, ParallelizeError)
    for fragment in fragments:
        assert fragment in str(err), (fragment, str(err))
    return err


def test_error_tree() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(BackendUnavailableError, ImportError)
    assert issubclass(TaskTimeoutError, TimeoutError)
    assert issubclass(WorkerCrashedError, BrokenExecutor)
    assert issubclass(PicklingError, TypeError)
    assert issubclass(ResumeMismatchError, ValueError)
    assert issubclass(SchedulerUnreachableError, OSError)
    for cls in (
        ConfigError,
        BackendUnavailableError,
        TaskTimeoutError,
        WorkerCrashedError,
        PicklingError,
        ResumeMismatchError,
        SchedulerUnreachableError,
    ):
        assert issubclass(cls, ParallelizeError)


def test_check_choice_message() -> None:
    err = raises_config_error(lambda: check_choice("colour", "teal", ["red", "blue"]))
    assert str(err) == "unknown colour 'teal'; expected one of ['blue', 'red']"
    check_choice("colour", "red", ["red", "blue"])  # no error


# -- Parallelize(...) -------------------------------------------------------------------------


def test_zero_workers() -> None:
    raises_config_error(lambda: Parallelize(0), "max_workers", "got 0")
    raises_config_error(lambda: Parallelize(threads=-2), "got -2")
    raises_config_error(lambda: Parallelize(2.5), "got 2.5")  # type: ignore[arg-type]


def test_unknown_backend_lists_the_known_ones() -> None:
    err = raises_config_error(lambda: Parallelize(backend="proces"))
    assert re.fullmatch(r"unknown backend 'proces'; expected one of \[.*\]", str(err)), str(err)
    for name in ("'process'", "'serial'", "'thread'"):
        assert name in str(err)


def test_bad_on_error() -> None:
    err = raises_config_error(lambda: Parallelize(2, on_error="bad"), "'bad'")
    for allowed in ("'raise'", "'collect'", "'skip'"):
        assert allowed in str(err)


@pytest.mark.parametrize("timeout", [-1, 0, "10", True])
def test_bad_timeout(timeout: Any) -> None:
    raises_config_error(lambda: Parallelize(2, timeout=timeout), "timeout", repr(timeout))


@pytest.mark.parametrize("chunksize", [0, -5, 1.5])
def test_bad_chunksize(chunksize: Any) -> None:
    raises_config_error(lambda: Parallelize(2, chunksize=chunksize), "chunksize", repr(chunksize))


def test_bad_retries_backoff_retry_on_progress() -> None:
    raises_config_error(lambda: Parallelize(2, retries=-1), "retries", "-1")
    raises_config_error(lambda: Parallelize(2, backoff=-0.5), "backoff", "-0.5")
    raises_config_error(lambda: Parallelize(2, retry_on=42), "retry_on", "42")  # type: ignore[arg-type]
    raises_config_error(lambda: Parallelize(2, progress="yes"), "progress", "'yes'")  # type: ignore[arg-type]


def test_conflicting_worker_counts() -> None:
    raises_config_error(lambda: Parallelize(2, threads=3), "max_workers", "threads", "2", "3")
    raises_config_error(lambda: Parallelize(threads=2, workers=4), "threads", "workers")


def test_non_callable_initializer() -> None:
    raises_config_error(lambda: Parallelize(2, initializer="setup"), "callable", "'setup'")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["thread", "process", "serial"])
def test_unknown_backend_option(backend: str) -> None:
    raises_config_error(lambda: Parallelize(2, backend=backend, colour="red"), "colour")


@pytest.mark.parametrize("idle_timeout", [0, -1, "10", float("nan")])
def test_bad_idle_timeout(idle_timeout: Any) -> None:
    raises_config_error(
        lambda: Parallelize(2, backend="process", idle_timeout=idle_timeout), "idle_timeout", repr(idle_timeout)
    )


# -- calls on a runner -----------------------------------------------------------------------------


@pytest.fixture
def runner() -> Any:
    with Parallelize(2) as r:
        yield r


def test_non_callable_func(runner: Parallelize) -> None:
    raises_config_error(lambda: runner.map(42, [1]), "callable", "42")  # type: ignore[arg-type]
    raises_config_error(lambda: runner.starmap("f", [(1,)]), "callable", "'f'")  # type: ignore[arg-type]
    raises_config_error(lambda: runner.submit(None), "callable", "None")  # type: ignore[arg-type]
    raises_config_error(lambda: runner.run(func=[1, 2]), "callable", "[1, 2]")  # type: ignore[arg-type]


def test_bad_per_call_overrides(runner: Parallelize) -> None:
    raises_config_error(lambda: runner.map(abs, [1], on_error="ignore"), "'ignore'")
    raises_config_error(lambda: runner.map(abs, [1], timeout=-1), "-1")
    raises_config_error(lambda: runner.map(abs, [1], colour="red"), "colour")
    raises_config_error(lambda: runner.map(abs, [1], max_workers=4), "max_workers")
    raises_config_error(lambda: runner.map(abs, [1], backend="process"), "backend")


def test_results_before_run() -> None:
    with Parallelize(1) as r:
        raises_config_error(r.results, "run")


# -- ModelEvaluator -------------------------------------------------------------------------------


def test_model_evaluator_errors(runner: Parallelize) -> None:
    raises_config_error(lambda: ModelEvaluator("runner"), "'runner'")  # type: ignore[arg-type]
    evaluator = ModelEvaluator(runner)
    raises_config_error(evaluator.results, "run")
    raises_config_error(evaluator.statistics, "run")
    raises_config_error(lambda: evaluator.run(abs), "nothing to evaluate")
    raises_config_error(lambda: evaluator.run(), "function")
    raises_config_error(lambda: evaluator.run(abs, [1, 2]), "ParamSpace", "list")
    raises_config_error(lambda: evaluator.run(abs, parallelize.ParamSpace(x=[1]), func=abs), "twice")
    raises_config_error(lambda: evaluator.run(func=3, x=[1]), "callable", "3")


def test_model_evaluator_accepts_func_keyword_and_a_space(runner: Parallelize) -> None:
    evaluator = ModelEvaluator(runner)
    space = parallelize.ParamSpace(a=[1, 2])
    evaluator.run(space, func=lambda a, b: a * b, b=[10, 100])
    assert list(evaluator.results(ordered=True)) == [10, 100, 20, 200]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"resources": ["time=1:00"]}, "resources must be a dict"),
        ({"setup": "module load python"}, "setup must be a list of shell lines"),
        ({"folder": 3}, "folder must be a path"),
        ({"python": 3}, "python must be the path of an interpreter"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"keep_jobs": "yes"}, "keep_jobs must be True or False"),
        ({"partition": "debug"}, r"unknown slurm backend option\(s\) \['partition'\]"),
    ],
)
def test_bad_cluster_backend_options_are_named(options: dict[str, object], words: str) -> None:
    # Checked before the scheduler is looked for, and before any folder is made.
    with pytest.raises(ConfigError, match=words):
        Parallelize(2, backend="slurm", **options)  # type: ignore[arg-type]
