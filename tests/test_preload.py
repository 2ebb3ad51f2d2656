"""The zygote preloads the installed libraries a pool's first jobs need, and only those.

What must hold: NumPy named by a job's pickle (an array argument, a
``__main__``-style function's globals) is imported in the zygote before the
first fork, so every worker has it without importing it; the user's own
module is never imported there (its import-time effects happen in each
worker, as before), though the libraries it imports are; a library that fails
to import in the zygote is left to the worker, which reports the real error;
and a worker started after ``os.environ`` changed comes from a new zygote that
imported the libraries under the new environment.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parallelize.backends.pool import ProcessPool, _encode
from parallelize.backends.preload import libraries_needed


def parent_has(library_file: str) -> bool:
    """Whether this worker's parent (the zygote) has a shared library mapped whose path contains ``library_file``."""
    return library_file in Path(f"/proc/{os.getppid()}/maps").read_text()


def row_sum(row: Any) -> tuple[int, bool, int]:
    return int(row.sum()), parent_has("_multiarray_umath"), os.getppid()


def environment_and_parent(row: Any) -> tuple[str | None, int]:
    return os.environ.get("PARALLELIZE_TEST_PRELOAD_ENV"), os.getppid()


@pytest.fixture
def user_module(tmp_path: Path) -> Any:
    """A module of the user's, not an installed library: it imports NumPy and records who imported it."""
    marks = tmp_path / "imported_by"
    (tmp_path / "users_own_module_for_preload.py").write_text(
        textwrap.dedent(
            f"""
            import os
            import numpy
            with open({str(marks)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")

            def task(x):
                return x * 2, os.getpid(), os.getppid()
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import users_own_module_for_preload

        yield users_own_module_for_preload, marks
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("users_own_module_for_preload", None)


def test_the_libraries_a_pickle_names_are_found() -> None:
    payload = _encode(0, row_sum, (np.arange(3),), {})
    assert "numpy" in {name.split(".")[0] for name in libraries_needed(payload)}
    by_value = _encode(0, lambda x: np.sum(x), (1,), {})  # a lambda travels by value, with its globals
    assert "numpy" in libraries_needed(by_value)
    plain = _encode(0, len, ("numpy is only a string here", "no_module_has_this_name"), {})
    assert libraries_needed(plain) == ()  # strings are not modules
    assert libraries_needed(None, b"") == ()


def test_a_users_module_is_not_preloaded_but_its_libraries_are(user_module: Any) -> None:
    module, _ = user_module
    names = libraries_needed(_encode(0, module.task, (1,), {}))
    assert "users_own_module_for_preload" not in names
    assert "numpy" in names


@pytest.fixture
def user_package(tmp_path: Path) -> Any:
    """Two modules of the user's: the task's module imports a function from the other, which imports NumPy."""
    (tmp_path / "users_models_for_preload.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def fit(x):
                return int(np.asarray(x).sum())
            """
        )
    )
    (tmp_path / "users_tasks_for_preload.py").write_text(
        textwrap.dedent(
            """
            import json
            from users_models_for_preload import fit

            def task(x):
                return fit(x)
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import users_tasks_for_preload

        yield users_tasks_for_preload
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("users_tasks_for_preload", "users_models_for_preload"):
            sys.modules.pop(name, None)


def test_the_libraries_of_the_users_modules_are_found_through_their_imports(user_package: Any) -> None:
    names = libraries_needed(_encode(0, user_package.task, (1,), {}))
    assert "numpy" in names  # imported by the module that `fit` comes from, not by the task's module
    assert "json" in names  # the standard library is preloaded too
    assert not {"users_tasks_for_preload", "users_models_for_preload"} & set(names)


def draw(_: Any) -> tuple[int, float]:
    import numpy.random

    time.sleep(0.3)  # long enough for the other worker to take the other job
    return os.getpid(), float(numpy.random.rand())


def test_workers_forked_from_one_zygote_draw_different_random_numbers() -> None:
    # numpy.random is preloaded (named by the argument), so both workers are forks
    # of one process that seeded it: each must reseed, as a fresh interpreter would.
    assert "numpy.random" in libraries_needed(_encode(0, draw, (np.random,), {}))
    pool = ProcessPool(2)
    try:
        got = [f.result(timeout=60) for f in [pool.submit(draw, np.random) for _ in range(2)]]
        assert len({pid for pid, _ in got}) == 2
        assert got[0][1] != got[1][1]
    finally:
        pool.shutdown()


def test_every_worker_has_numpy_from_the_zygote() -> None:
    pool = ProcessPool(2)
    try:
        got = [f.result(timeout=60) for f in [pool.submit(row_sum, np.arange(10)) for _ in range(4)]]
        assert {total for total, _, _ in got} == {45}
        assert all(preloaded for _, preloaded, _ in got)
        assert {parent for _, _, parent in got} == {pool._zygote.process.pid}  # type: ignore[union-attr]
    finally:
        pool.shutdown()


def test_the_users_module_is_imported_in_each_worker_not_in_the_zygote(user_module: Any) -> None:
    module, marks = user_module
    marks.write_text("")  # the import in this process, above, does not count
    pool = ProcessPool(2)
    try:
        got = [f.result(timeout=60) for f in [pool.submit(module.task, i) for i in range(6)]]
        assert [x for x, _, _ in got] == [0, 2, 4, 6, 8, 10]
        importers = {int(line) for line in marks.read_text().split()}
        zygote = pool._zygote.process.pid  # type: ignore[union-attr]
        assert zygote not in importers
        assert importers == {pid for _, pid, _ in got}
        assert pool.submit(row_sum, np.arange(3)).result(timeout=60)[1]  # numpy itself was preloaded
    finally:
        pool.shutdown()


def test_a_library_that_fails_in_the_zygote_is_left_to_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    # The zygote is told to preload a module that cannot be imported: it starts anyway.
    monkeypatch.setattr("parallelize.backends.pool.libraries_needed", lambda *p: ("no_such_library_anywhere",))
    pool = ProcessPool(1)
    try:
        assert pool.submit(row_sum, np.arange(4)).result(timeout=60)[0] == 6
    finally:
        pool.shutdown()


def test_a_worker_started_after_the_environment_changed_comes_from_a_new_zygote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = ProcessPool(1)
    try:
        before, first_zygote = pool.submit(environment_and_parent, np.arange(2)).result(timeout=60)
        assert before is None
        monkeypatch.setenv("PARALLELIZE_TEST_PRELOAD_ENV", "changed")
        for worker in list(pool._workers):
            worker.process.kill()  # the next job needs a new worker
        after, second_zygote = pool.submit(environment_and_parent, np.arange(2)).result(timeout=60)
        assert after == "changed"
        assert second_zygote != first_zygote
        # The replaced zygote is closed once its last worker is gone.
        deadline = time.monotonic() + 30
        while not all(z.gone for z in pool._old_zygotes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [z.process.poll() is not None for z in pool._old_zygotes] == [True]
    finally:
        pool.shutdown()


def test_a_volatile_variable_alone_does_not_replace_the_zygote(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = ProcessPool(1)
    try:
        _, first_zygote = pool.submit(environment_and_parent, np.arange(2)).result(timeout=60)
        monkeypatch.setenv("PYTEST_CURRENT_TEST", "another test (call)")
        for worker in list(pool._workers):
            worker.process.kill()
        _, second_zygote = pool.submit(environment_and_parent, np.arange(2)).result(timeout=60)
        assert second_zygote == first_zygote
    finally:
        pool.shutdown()


def test_without_preloading_nothing_changes_when_the_environment_does(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = ProcessPool(1)
    try:
        # eval's pickle names no library (this module's function would: it imports numpy and pytest).
        probe = "(__import__('os').environ.get('PARALLELIZE_TEST_PRELOAD_ENV'), __import__('os').getppid())"
        _, first_zygote = pool.submit(eval, probe).result(timeout=60)
        monkeypatch.setenv("PARALLELIZE_TEST_PRELOAD_ENV", "changed")
        for worker in list(pool._workers):
            worker.process.kill()
        after, second_zygote = pool.submit(eval, probe).result(timeout=60)
        assert (after, second_zygote) == ("changed", first_zygote)
    finally:
        pool.shutdown()


def test_an_import_error_in_the_worker_is_still_reported() -> None:
    # Preloading never hides a real failure: a job naming a module the worker cannot import fails as before.
    pool = ProcessPool(1)
    try:
        future = pool.submit(__import__, "no_such_module_for_preload_test")
        with pytest.raises(ModuleNotFoundError, match="no_such_module_for_preload_test"):
            future.result(timeout=60)
    finally:
        pool.shutdown()
