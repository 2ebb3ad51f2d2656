"""The joblib backend: ``joblib.Parallel`` and scikit-learn's ``n_jobs`` on parallelize runners.

joblib's own protocol (results, order, errors, ``n_jobs``, nesting, abort) is
checked on real threads and real worker processes; scikit-learn's
``GridSearchCV``, ``cross_val_score`` and ``RandomForestClassifier`` give exactly
what they give under joblib's default backend (loky), on processes and on a
real Dask cluster and a real one-node Slurm. Data and grids are small: each test
takes a few seconds.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

import numpy as np
import pytest

joblib = pytest.importorskip("joblib", reason="the joblib backend needs joblib")

from joblib import Parallel, delayed, parallel_config  # noqa: E402

from parallelize import Parallelize  # noqa: E402
from parallelize.backends.base import default_workers  # noqa: E402
from parallelize.errors import ConfigError, RunnerClosedError, TaskTimeoutError  # noqa: E402
from parallelize.joblib_backend import BACKEND_NAME, ParallelizeBackend, last_runner, register  # noqa: E402

pytestmark = pytest.mark.timeout(60)

GRID = {"C": [1.0, 10.0], "gamma": [1e-3, 1e-4]}


# -- task functions (module level: worker processes import them from here) ------------


class CustomError(Exception):
    """A user's own exception type, which must reach joblib as itself."""


def square(x: int) -> int:
    return x * x


def late_identity(i: int, n: int) -> tuple[int, int]:
    time.sleep(0.003 * (n - i))  # the first inputs finish last
    return i, os.getpid()


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise CustomError(f"bad input {x}")
    return x


def nested(i: int) -> tuple[int, str, list[int]]:
    inner = Parallel(n_jobs=2)(delayed(square)(j) for j in range(3))
    backend, _ = joblib.parallel.get_active_backend()
    return os.getpid(), type(backend).__name__, inner


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def registered() -> None:
    register()


@pytest.fixture(scope="module")
def digits() -> tuple[Any, Any]:
    datasets = pytest.importorskip("sklearn.datasets", reason="needs scikit-learn")
    X, y = datasets.load_digits(return_X_y=True)
    return X[:450], y[:450]


def _stop_loky() -> None:
    """End joblib's default pool, which stays warm for 300 s (other tests count leftover processes)."""
    from joblib.externals.loky import reusable_executor

    executor = reusable_executor._executor
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)


@pytest.fixture(scope="module")
def reference(digits: tuple[Any, Any]) -> Iterator[dict[str, Any]]:
    """What scikit-learn gives under joblib's default backend (loky), n_jobs=2."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.svm import SVC

    X, y = digits
    try:
        search = GridSearchCV(SVC(), GRID, cv=3, n_jobs=2).fit(X, y)
        scores = cross_val_score(SVC(gamma=1e-3), X, y, cv=3, n_jobs=2)
        forest = RandomForestClassifier(n_estimators=12, n_jobs=2, random_state=0).fit(X, y)
    finally:
        _stop_loky()
    yield {"search": search, "scores": scores, "forest": forest}


# -- joblib.Parallel directly ------------------------------------------------------------------


def test_results_come_back_in_input_order_from_worker_processes() -> None:
    n = 16
    with parallel_config(backend=BACKEND_NAME, n_jobs=2):
        out = Parallel(batch_size=1)(delayed(late_identity)(i, n) for i in range(n))
        stats = last_runner().statistics()  # type: ignore[union-attr]
    assert [i for i, _ in out] == list(range(n))
    assert os.getpid() not in {pid for _, pid in out}
    assert (stats.completed, stats.failed, stats.pending) == (n, 0, 0)  # one task per joblib batch


def test_generators_in_order_and_as_completed() -> None:
    with parallel_config(backend=BACKEND_NAME, n_jobs=2, runner_backend="thread"):
        ordered = Parallel(return_as="generator")(delayed(square)(i) for i in range(20))
        assert list(ordered) == [i * i for i in range(20)]
        if tuple(int(part) for part in joblib.__version__.split(".")[:2]) >= (1, 4):  # new in joblib 1.4
            unordered = Parallel(return_as="generator_unordered")(delayed(square)(i) for i in range(20))
            assert sorted(unordered) == [i * i for i in range(20)]


def test_an_error_in_a_task_reaches_joblib_as_its_own_type() -> None:
    notes: list[str] = []
    with parallel_config(backend=BACKEND_NAME, n_jobs=2):
        # try/except as user code writes it: pytest.raises would keep the
        # traceback, and with it joblib's Parallel and this backend, alive.
        try:
            Parallel()(delayed(fail_on)(i, 3) for i in range(8))
        except CustomError as exc:
            assert str(exc) == "bad input 3"
            assert "fail_on" in str(exc.__cause__)  # the worker's traceback
            notes = list(getattr(exc, "__notes__", []))
        else:
            pytest.fail("the task's CustomError did not reach joblib")
        # The runner stays usable for the next call.
        assert Parallel()(delayed(square)(i) for i in range(4)) == [0, 1, 4, 9]
    assert any("joblib batch of" in note for note in notes), notes


def test_abort_cancels_the_batches_no_worker_took() -> None:
    ran: list[int] = []

    def task(i: int) -> int:
        if i == 0:
            raise CustomError("first")
        time.sleep(0.02)
        ran.append(i)
        return i

    runner = Parallelize(2, backend="thread", chunksize=1)
    try:
        with parallel_config(backend=BACKEND_NAME, runner=runner, n_jobs=2):
            with pytest.raises(CustomError):
                Parallel(batch_size=1, pre_dispatch="all")(delayed(task)(i) for i in range(60))
    finally:
        runner.shutdown(wait=True)  # whatever was not cancelled has now run
    assert len(ran) < 30, f"{len(ran)} of 59 tasks ran after the first failed"


def test_n_jobs_means_what_it_means_to_joblib() -> None:
    cpus = default_workers()
    with parallel_config(backend=BACKEND_NAME, runner_backend="thread"):
        assert joblib.effective_n_jobs(-1) == cpus
        assert joblib.effective_n_jobs(-2) == max(cpus - 1, 1)
        assert joblib.effective_n_jobs(3) == 3
        assert joblib.effective_n_jobs(1) == 1
        with pytest.raises(ValueError, match="n_jobs=0"):
            joblib.effective_n_jobs(0)
        assert Parallel(n_jobs=-1)(delayed(square)(i) for i in range(5)) == [0, 1, 4, 9, 16]
        assert last_runner().max_workers == cpus  # type: ignore[union-attr]
        assert Parallel()(delayed(square)(i) for i in range(3)) == [0, 1, 4]  # n_jobs unset: -1
    with Parallelize(3, backend="thread") as runner:
        with parallel_config(backend=BACKEND_NAME, runner=runner):
            assert [joblib.effective_n_jobs(n) for n in (-1, -2, 2, 8)] == [3, 2, 2, 3]


def test_nested_parallel_runs_sequentially_inside_the_workers() -> None:
    with parallel_config(backend=BACKEND_NAME, n_jobs=2):
        out = Parallel()(delayed(nested)(i) for i in range(4))
    assert all(pid != os.getpid() for pid, _, _ in out)
    assert {name for _, name, _ in out} == {"SequentialBackend"}
    assert all(inner == [0, 1, 4] for _, _, inner in out)


def test_statistics_and_progress_of_a_runner_passed_in() -> None:
    buffer = io.StringIO()
    runner = Parallelize(2, backend="thread", progress={"file": buffer, "desc": "joblib-batches", "mininterval": 0})
    with parallel_config(backend=BACKEND_NAME, runner=runner):
        Parallel(n_jobs=2, batch_size=1)(delayed(square)(i) for i in range(10))
    assert last_runner() is runner
    assert runner.statistics().completed == 10
    assert runner.submit(square, 3).result(timeout=10) == 9  # the backend never shuts a runner it was given
    runner.shutdown()
    assert "joblib-batches" in buffer.getvalue()


@pytest.mark.filterwarnings("ignore:a task on the thread backend outlived its timeout:RuntimeWarning")
def test_runner_options_pass_through_retries_and_timeout() -> None:
    attempts: dict[int, int] = {}

    def flaky(i: int) -> int:
        attempts[i] = attempts.get(i, 0) + 1
        if i == 2 and attempts[i] == 1:
            raise ConnectionError("first attempt fails")
        return i

    with parallel_config(backend=BACKEND_NAME, n_jobs=2, runner_backend="thread", retries=1):
        assert Parallel(batch_size=1)(delayed(flaky)(i) for i in range(4)) == [0, 1, 2, 3]
        assert last_runner().statistics().retried == 1  # type: ignore[union-attr]

    release = threading.Event()
    try:
        with parallel_config(backend=BACKEND_NAME, n_jobs=2, runner_backend="thread", timeout=0.3):
            with pytest.raises(TaskTimeoutError):
                Parallel()(delayed(release.wait)(10) for _ in range(2))
    finally:
        release.set()


def test_the_backends_own_runner_lives_as_long_as_its_block() -> None:
    with parallel_config(backend=BACKEND_NAME, n_jobs=2):
        Parallel()(delayed(square)(i) for i in range(4))
        first = last_runner()
        Parallel()(delayed(square)(i) for i in range(4))
        assert last_runner() is first  # one pool for every call of the block
    assert first is not None
    with pytest.raises(RunnerClosedError):
        first.submit(square, 2)
    assert first.statistics().completed >= 2  # still readable after the block


def test_shared_memory_calls_stay_on_threads() -> None:
    with parallel_config(backend=BACKEND_NAME, n_jobs=2, runner_backend="thread"):
        Parallel(require="sharedmem", batch_size=1)(delayed(square)(i) for i in range(6))
        assert last_runner().statistics().completed == 6  # type: ignore[union-attr]
    # Processes share no memory: joblib runs such calls on its own threads, as under loky.
    backend = ParallelizeBackend(runner_backend="process")
    assert not backend.supports_sharedmem


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"runner_backend": "proces"}, "unknown runner_backend 'proces'"),
        ({"max_workers": 4}, "n_jobs"),
        ({"on_error": "skip"}, "first error"),
        ({"retries": -1}, "retries"),
        ({"runner": "a runner"}, "parallelize.Parallelize"),
    ],
)
def test_bad_parameters_fail_when_the_config_is_made(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parallel_config(backend=BACKEND_NAME, **params)


def test_a_runner_passed_in_takes_no_runner_options() -> None:
    with Parallelize(2, backend="thread") as runner:
        with pytest.raises(ConfigError, match="runner= is used as it is"):
            parallel_config(backend=BACKEND_NAME, runner=runner, progress=True)


def test_register_is_idempotent_and_importing_parallelize_imports_no_joblib() -> None:
    register()
    register()
    with parallel_config(backend=BACKEND_NAME, n_jobs=2, runner_backend="thread"):
        assert Parallel()(delayed(square)(i) for i in range(3)) == [0, 1, 4]
    code = "import sys, parallelize; parallelize.Parallelize; print('joblib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


# -- scikit-learn ------------------------------------------------------------------------------


def _same_search(got: Any, expected: Any) -> None:
    assert got.best_params_ == expected.best_params_
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        assert np.array_equal(got.cv_results_[key], expected.cv_results_[key]), key


def test_grid_search_on_processes_matches_the_default_backend(digits: Any, reference: dict[str, Any]) -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X, y = digits
    with parallel_config(backend=BACKEND_NAME, runner_backend="process"):
        search = GridSearchCV(SVC(), GRID, cv=3, n_jobs=2).fit(X, y)
        stats = last_runner().statistics()  # type: ignore[union-attr]
    _same_search(search, reference["search"])
    assert stats.completed >= 1 and stats.failed == 0 and stats.pending == 0


def test_cross_val_score_on_processes_matches_the_default_backend(digits: Any, reference: dict[str, Any]) -> None:
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    X, y = digits
    with parallel_config(backend=BACKEND_NAME):
        scores = cross_val_score(SVC(gamma=1e-3), X, y, cv=3, n_jobs=2)
    assert np.array_equal(scores, reference["scores"])


def test_random_forest_on_processes_grows_the_same_trees(digits: Any, reference: dict[str, Any]) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = digits
    with parallel_config(backend=BACKEND_NAME):
        forest = RandomForestClassifier(n_estimators=12, n_jobs=2, random_state=0).fit(X, y)
        assert last_runner().statistics().completed >= 1  # type: ignore[union-attr]  # fitted on our workers
    expected = reference["forest"]
    for a, b in zip(forest.estimators_, expected.estimators_, strict=True):
        assert np.array_equal(a.tree_.threshold, b.tree_.threshold)
        assert np.array_equal(a.tree_.feature, b.tree_.feature)
    forest.set_params(n_jobs=1)
    expected.set_params(n_jobs=1)
    assert np.array_equal(forest.predict_proba(X), expected.predict_proba(X))


def test_grid_search_on_a_dask_cluster_matches_the_default_backend(
    digits: Any, reference: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    pytest.importorskip("distributed", reason='the dask backend needs `pip install "parallelize[dask]"`')
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    address = request.getfixturevalue("dask_address")
    X, y = digits
    with parallel_config(backend=BACKEND_NAME, runner_backend="dask", address=address):
        search = GridSearchCV(SVC(), GRID, cv=3, n_jobs=-1).fit(X, y)
        runner = last_runner()
        assert runner is not None and runner.backend.name == "dask"
        assert runner.max_workers == 2  # n_jobs=-1: the cluster's two worker threads
        assert runner.statistics().completed >= 1
    _same_search(search, reference["search"])


@pytest.mark.timeout(240)
def test_grid_search_on_a_real_slurm_cluster_matches_the_default_backend(
    digits: Any, reference: dict[str, Any], request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    request.getfixturevalue("slurm_cluster")  # a real one-node Slurm, or the test skips saying why
    X, y = digits
    with parallel_config(
        backend=BACKEND_NAME, runner_backend="slurm", n_jobs=2, folder=tmp_path / "jobs", poll_interval=1.0
    ):
        search = GridSearchCV(SVC(), GRID, cv=3).fit(X, y)
        runner = last_runner()
        assert runner is not None and runner.backend.name == "slurm"
        assert runner.statistics().completed >= 1 and runner.statistics().failed == 0
    _same_search(search, reference["search"])
    assert list((tmp_path / "jobs").iterdir()), "the fits ran as Slurm jobs, through the job folder"
