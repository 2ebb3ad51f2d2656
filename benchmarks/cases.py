"""The measurements. ``run.py`` runs each one in a fresh Python process.

A case is one workload on one peer (library and form). :func:`run_case` looks
the workload up in :data:`CASES` and returns ``{"times": [...], "values": {...}}``:
the wall-clock seconds of each repetition and any other numbers (memory...).
Every run's output is checked against the expected answer outside the timed
region, so a fast wrong answer fails instead of winning.

Warm cases open the pool once, run once untimed (workers start, modules are
imported, caches fill) and then time ``reps`` runs. Cold cases time one run
from the creation of the pool to the results in hand; ``run.py`` repeats them
in fresh processes. Imports are done before any clock starts and timed apart.
"""

from __future__ import annotations

import gc
import importlib
import itertools
import time
from functools import partial
from typing import Any, Callable

from measure import MemorySampler, timed
from peers import make_peer
from workloads import (
    GRID,
    array_slice_sum,
    cpu_task,
    grid_task,
    hundred_lines_job,
    inc,
    long_feature_engineering_task,
    noop,
    notebook_matrix,
    shared_slice_sum,
    skew_task,
    sleep_task,
)

__all__ = ["CASES", "run_case"]

#: Process workers (this machine's cores) and I/O threads.
WORKERS = 2
IO_THREADS = 16

#: Modules each peer needs, imported before any clock starts.
IMPORTS: dict[str, tuple[str, ...]] = {
    "parallelize": ("parallelize", "parallelize.backends.process", "loky", "cloudpickle"),
    "pool": ("multiprocessing.pool",),
    "ppe": ("concurrent.futures.process",),
    "loky": ("loky",),
    "loky-startup": ("loky",),
    "joblib": ("joblib",),
    "mpire": ("mpire",),
    "dask": ("dask", "dask.bag", "distributed"),
}


class CheckError(AssertionError):
    """A peer returned a wrong answer."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise CheckError(f"wrong results: {what}")


def preimport(peer: str) -> float:
    """Import what ``peer`` needs; return the seconds it took."""
    base = peer.split("-")[0] if peer not in IMPORTS else peer
    t0 = time.perf_counter()
    for name in IMPORTS.get(base, ()):
        importlib.import_module(name)
    return time.perf_counter() - t0


def _warm(
    peer: str, workers: int, func: Callable[[Any], Any], items: Any, reps: int, check: Callable[[list[Any]], None]
) -> dict[str, Any]:
    """Open ``peer``'s pool, map once untimed, then time ``reps`` maps."""
    preimport(peer)
    pool = make_peer(peer, workers)
    pool.open()
    try:
        check(pool.map(func, items))
        times = []
        for _ in range(reps):
            gc.collect()
            seconds, out = timed(lambda: pool.map(func, items))
            times.append(seconds)
            check(out)
    finally:
        pool.close()
    return {"times": times}


# -- tiny tasks -----------------------------------------------------------------------------


def tiny_warm(peer: str, p: dict[str, Any]) -> dict[str, Any]:
    """``n`` x ``x + 1`` on a pool that is already running."""
    n = p["n"]
    expected = list(range(1, n + 1))
    return _warm(peer, WORKERS, inc, range(n), p["reps"], lambda out: _check(list(out) == expected, "x + 1"))


def tiny_cold(peer: str, p: dict[str, Any]) -> dict[str, Any]:
    """One run from the pool's creation to the results in hand, in this fresh process.

    ``loky-startup`` is the reference: a loky executor started and one empty
    task's result back. For parallelize, the time to its first result is kept
    too (``first_s``): the issue's cold-start target is on the first result.
    """
    n = p["n"]
    import_s = preimport(peer)
    extra: dict[str, Any] = {}
    if peer == "parallelize":
        from parallelize import Parallelize

        t0 = time.perf_counter()
        runner = Parallelize(WORKERS, backend="process")
        stream = runner.map(inc, range(n))
        first = next(iter(stream))
        extra["first_s"] = time.perf_counter() - t0
        out = [first, *stream]
        t1 = time.perf_counter()
        runner.shutdown()
        _check(out == list(range(1, n + 1)), "x + 1")
    elif peer == "loky-startup":
        from loky import get_reusable_executor

        t0 = time.perf_counter()
        executor = get_reusable_executor(max_workers=WORKERS)
        executor.submit(noop).result()
        t1 = time.perf_counter()
        executor.shutdown()
    else:
        t0 = time.perf_counter()
        pool = make_peer(peer, WORKERS)
        pool.open()
        out = pool.map(inc, range(n))
        t1 = time.perf_counter()
        pool.close()
        _check(list(out) == list(range(1, n + 1)), "x + 1")
    return {"times": [t1 - t0], "values": {"import_s": import_s, "close_s": time.perf_counter() - t1, **extra}}


# -- CPU-bound -----------------------------------------------------------------------------


def cpu(peer: str, p: dict[str, Any]) -> dict[str, Any]:
    """``tasks`` x about 10 ms of pure Python; ``serial`` is a plain loop."""
    items = [p["iterations"]] * p["tasks"]
    value = cpu_task(p["iterations"])

    def check(out: list[Any]) -> None:
        _check(list(out) == [value] * len(items), "cpu_task")

    if peer == "serial":
        times = []
        for _ in range(p["reps"]):
            seconds, out = timed(lambda: [cpu_task(x) for x in items])
            times.append(seconds)
            check(out)
        return {"times": times}
    return _warm(peer, WORKERS, cpu_task, items, p["reps"], check)


# -- skewed durations ------------------------------------------------------------------------


def skewed(peer: str, p: dict[str, Any]) -> dict[str, Any]:
    """``tasks`` busy loops: 100 ms for one in fifty, 1 ms for the rest."""
    n = p["tasks"]
    return _warm(peer, WORKERS, skew_task, range(n), p["reps"], lambda out: _check(list(out) == list(range(n)), "skew"))


# -- I/O-bound -------------------------------------------------------------------------------


def io(peer: str, p: dict[str, Any]) -> dict[str, Any]:
    """``tasks`` x ``sleep(seconds)`` on ``IO_THREADS`` threads."""
    items = [p["seconds"]] * p["tasks"]
    return _warm(peer, IO_THREADS, sleep_task, items, p["reps"], lambda out: _check(list(out) == items, "sleep"))


# -- the notebook ----------------------------------------------------------------------------


def notebook(peer: str, p: dict[str, Any]) -> dict[str, Any]:
    """The notebook's cell, as written, in a fresh process: the pool is made in the cell.

    ``X`` exists before the clock starts (the notebook loaded it in an earlier cell).
    """
    import numpy as np

    X = notebook_matrix()
    import_s = preimport(peer)
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    t0 = time.perf_counter()
    if peer == "serial":
        result_column = []
        for i in range(X.shape[0]):
            result_column.append(long_feature_engineering_task(X[i, :]))
    elif peer == "parallelize":
        from parallelize import Parallelize

        runner = Parallelize(WORKERS, backend="process")
        result_column = np.array(list(runner.map(long_feature_engineering_task, X)))
        cleanup = runner.shutdown
    else:
        n = int(X.shape[0] / 100)
        job_indexes = np.array_split(np.arange(X.shape[0]), n)  # indexes for each job
        if peer == "pool":
            from multiprocessing import Pool as ThreadPool

            pool = ThreadPool()
            result = pool.map(hundred_lines_job, job_indexes)
            cleanup = pool.terminate
        elif peer == "joblib":
            from joblib import Parallel, delayed

            result = Parallel(n_jobs=WORKERS)(delayed(hundred_lines_job)(indexes) for indexes in job_indexes)
        elif peer == "dask":
            from dask import compute, delayed

            jobs = [delayed(hundred_lines_job)(indexes) for indexes in job_indexes]
            result = compute(*jobs, scheduler="processes")
        else:
            raise ValueError(f"no notebook form for {peer}")
        result_column = np.concatenate(result).ravel()
    seconds = time.perf_counter() - t0
    cleanup()
    total = int(np.asarray(result_column).sum())
    _check(len(result_column) == X.shape[0], "row count")
    if p.get("checksum") is not None:
        _check(total == p["checksum"], f"checksum {total} != {p['checksum']}")
    return {"times": [seconds], "values": {"import_s": import_s, "checksum": total}}


# -- the seed's 6,090-point grid ---------------------------------------------------------------


def _grid_form(peer: str) -> tuple[Callable[[], list[Any]], Callable[[], None]]:
    """(run, close) for one way of sweeping :data:`GRID`."""
    axes = (GRID["impurity"], GRID["depth"], GRID["bins"])
    n = len(GRID["impurity"]) * len(GRID["depth"]) * len(GRID["bins"])
    if peer in ("parallelize-evaluator", "parallelize-space"):
        from parallelize import ModelEvaluator, Parallelize, ParamSpace

        runner = Parallelize(WORKERS, backend="process")
        if peer == "parallelize-evaluator":

            def run() -> list[Any]:
                evaluator = ModelEvaluator(runner)
                evaluator.run(grid_task, **GRID)
                return list(evaluator.results())
        else:
            space = ParamSpace(**GRID)

            def run() -> list[Any]:
                return list(runner.map(grid_task, space))

        return run, runner.shutdown
    func = partial(grid_task, foo=GRID["foo"])
    if peer == "pool":
        import multiprocessing

        pool = multiprocessing.Pool(WORKERS)
        return (lambda: pool.starmap(func, itertools.product(*axes))), pool.terminate
    if peer == "joblib":
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=WORKERS)
        parallel.__enter__()
        task = delayed(grid_task)

        def run_joblib() -> list[Any]:
            return parallel(task(i, d, b, foo=GRID["foo"]) for i, d, b in itertools.product(*axes))

        return run_joblib, lambda: parallel.__exit__(None, None, None)
    if peer == "mpire":
        from mpire import WorkerPool

        mpool = WorkerPool(n_jobs=WORKERS, keep_alive=True)
        return (
            lambda: mpool.map(func, itertools.product(*axes), iterable_len=n, progress_bar=False),
            mpool.terminate,
        )
    raise ValueError(f"no grid form for {peer}")


def grid(peer: str, p: dict[str, Any]) -> dict[str, Any]:
    """The original README's ModelEvaluator example: 6,090 calls of a tiny function."""
    axes = (GRID["impurity"], GRID["depth"], GRID["bins"])
    expected = sorted((d, i, b) for i, d, b in itertools.product(*axes))
    preimport(peer)
    run, close = _grid_form(peer)
    try:
        _check(sorted(run()) == expected, "grid")
        times = []
        for _ in range(p["reps"]):
            gc.collect()
            seconds, out = timed(run)
            times.append(seconds)
            _check(sorted(out) == expected, "grid")
    finally:
        close()
    return {"times": times}


# -- streaming memory ---------------------------------------------------------------------------


def _stream_form(peer: str) -> tuple[Callable[[int], Any], Callable[[], None]]:
    """(make a stream of ``x + 1`` over ``iter(range(n))``, close)."""
    if peer == "parallelize":
        from parallelize import Parallelize

        runner = Parallelize(WORKERS, backend="process")
        return (lambda n: runner.map(inc, iter(range(n)))), runner.shutdown
    if peer == "pool":
        import multiprocessing

        pool = multiprocessing.Pool(WORKERS)
        return (lambda n: pool.imap(inc, iter(range(n)), chunksize=1000)), pool.terminate
    if peer == "joblib":
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=WORKERS, return_as="generator")
        task = delayed(inc)
        return (lambda n: parallel(task(i) for i in iter(range(n)))), lambda: None
    if peer == "mpire":
        from mpire import WorkerPool

        mpool = WorkerPool(n_jobs=WORKERS, keep_alive=True)
        return (lambda n: mpool.imap(inc, iter(range(n)), chunk_size=1000, progress_bar=False)), mpool.terminate
    raise ValueError(f"no streaming form for {peer}")


def streaming(peer: str, p: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS growth of this (parent) process while ``n`` results stream by unkept."""
    import resource

    n = p["n"]
    preimport(peer)
    make, close = _stream_form(peer)
    try:
        count = sum(1 for _ in make(10_000))  # warm-up: workers started, buffers allocated
        _check(count == 10_000, "warm-up count")
        gc.collect()
        sampler = MemorySampler(0.01)
        base_rss, _ = sampler.sample()
        base_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with sampler:
            t0 = time.perf_counter()
            count = 0
            for _ in make(n):
                count += 1
            seconds = time.perf_counter() - t0
        max_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_max
        _check(count == n, f"streamed {count} of {n}")
    finally:
        close()
    return {
        "times": [seconds],
        "values": {
            "growth_mb": (sampler.peak_rss - base_rss) / 2**20,
            "maxrss_growth_mb": max_growth / 1024,
            "samples": sampler.samples,
        },
    }


# -- a large NumPy array read by many tasks -------------------------------------------------------


def shared_array(peer: str, p: dict[str, Any]) -> dict[str, Any]:
    """Time and peak memory (all processes) of 20 tasks each summing a slice of one array.

    The baseline is taken with the pool started and NumPy imported in its workers,
    before the array exists; the peak counts the array itself plus every copy.
    """
    import numpy as np

    parts = p["parts"]
    size = p["mb"] * 2**20
    preimport(peer)
    warm = np.zeros(parts)
    close: Callable[[], None]
    if peer == "parallelize-args":
        from parallelize import Parallelize

        runner = Parallelize(WORKERS, backend="process")
        list(runner.starmap(array_slice_sum, [(warm, i) for i in range(parts)]))
        run = lambda arr: list(runner.starmap(array_slice_sum, [(arr, i) for i in range(parts)]))  # noqa: E731
        close = runner.shutdown
    elif peer == "parallelize-shared":
        # shared_data is given when the runner is made: workers start (and receive
        # the array) inside the measurement, so their start-up is counted too.
        from parallelize import Parallelize

        holder: dict[str, Any] = {}

        def run(arr: Any) -> list[Any]:
            holder["runner"] = Parallelize(WORKERS, backend="process", shared_data=arr)
            return list(holder["runner"].map(shared_slice_sum, range(parts)))

        close = lambda: holder["runner"].shutdown()  # noqa: E731
    elif peer == "pool":
        import multiprocessing

        pool = multiprocessing.Pool(WORKERS)
        pool.starmap(array_slice_sum, [(warm, i) for i in range(parts)])
        run = lambda arr: pool.starmap(array_slice_sum, [(arr, i) for i in range(parts)])  # noqa: E731
        close = pool.terminate
    elif peer == "joblib":
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=WORKERS)
        parallel.__enter__()
        parallel(delayed(array_slice_sum)(warm, i) for i in range(parts))
        run = lambda arr: parallel(delayed(array_slice_sum)(arr, i) for i in range(parts))  # noqa: E731
        close = lambda: parallel.__exit__(None, None, None)  # noqa: E731
    elif peer == "mpire":
        # mpire's idiom for big read-only inputs: shared_objects, inherited by fork.
        from mpire import WorkerPool

        holder = {}

        def run(arr: Any) -> list[Any]:
            holder["pool"] = WorkerPool(n_jobs=WORKERS, shared_objects=arr)
            return holder["pool"].map(array_slice_sum, range(parts), progress_bar=False)

        close = lambda: holder["pool"].terminate()  # noqa: E731
    else:
        raise ValueError(f"no shared-array form for {peer}")
    try:
        gc.collect()
        sampler = MemorySampler(0.02, children=True, pss=True)
        base_rss, base_pss = sampler.sample()
        arr = np.random.default_rng(0).random(size // 8)
        expected = [array_slice_sum(arr, i, parts) for i in range(parts)]
        with sampler:
            seconds, out = timed(lambda: run(arr))
        _check(np.allclose(out, expected), "slice sums")
    finally:
        close()
    return {
        "times": [seconds],
        "values": {
            "peak_pss_mb": (sampler.peak_pss - base_pss) / 2**20,
            "peak_rss_mb": (sampler.peak_rss - base_rss) / 2**20,
            "array_mb": size / 2**20,
            "samples": sampler.samples,
        },
    }


#: Workload name -> case function ``(peer, params) -> measurement``.
CASES: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "tiny_cold": tiny_cold,
    "tiny_warm": tiny_warm,
    "cpu": cpu,
    "notebook": notebook,
    "io": io,
    "grid": grid,
    "streaming": streaming,
    "shared_array": shared_array,
    "skewed": skewed,
}


def run_case(workload: str, peer: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one case in this process and return its measurement."""
    return CASES[workload](peer, params)
