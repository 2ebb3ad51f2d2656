"""The functions the benchmarks run, in one importable module.

Worker processes of every library import this module to find the task
functions (they are pickled by reference), so it imports nothing heavy at
import time: NumPy is imported inside the functions that need it, and a
cold start measures the libraries, not NumPy's import.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from typing import Any

__all__ = [
    "GRID",
    "NOTEBOOK_SHAPE",
    "array_slice_sum",
    "calibrate_cpu",
    "cpu_task",
    "grid_task",
    "hundred_lines_job",
    "inc",
    "long_feature_engineering_task",
    "noop",
    "notebook_matrix",
    "shared_slice_sum",
    "skew_duration",
    "skew_task",
    "sleep_task",
    "spin",
]


# -- tiny tasks ---------------------------------------------------------------------


def inc(x: int) -> int:
    """The tiny task: ``x + 1``."""
    return x + 1


def noop() -> None:
    """Does nothing; the first task of a start-up measurement."""


# -- CPU-bound tasks -----------------------------------------------------------------


def cpu_task(n: int) -> int:
    """Pure-Python arithmetic: ``n`` loop iterations (the GIL is held throughout).

    Args:
        n: iterations; see :func:`calibrate_cpu` for how many make 10 ms.

    Returns:
        A checksum, so the work cannot be skipped.
    """
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def calibrate_cpu(seconds: float = 0.01, rounds: int = 5) -> int:
    """Iterations of :func:`cpu_task` that take about ``seconds`` on this machine.

    Takes the fastest of ``rounds`` timings, so a busy moment does not inflate it.
    """
    n = 20_000
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        cpu_task(n)
        best = min(best, time.perf_counter() - t0)
    return max(1, int(n * seconds / best))


def spin(seconds: float) -> None:
    """Keep one core busy in Python for ``seconds`` (a busy loop on the clock)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


# -- skewed durations ---------------------------------------------------------------

#: One task in SKEW_EVERY is SKEW_FACTOR times longer than the others.
SKEW_EVERY = 50
SKEW_FACTOR = 100
SKEW_SHORT = 0.001


def skew_duration(i: int) -> float:
    """Seconds of busy work for task ``i``: 100 ms for one in fifty, else 1 ms."""
    return SKEW_SHORT * SKEW_FACTOR if i % SKEW_EVERY == SKEW_EVERY - 1 else SKEW_SHORT


def skew_task(i: int) -> int:
    """Busy-loops for :func:`skew_duration` seconds; returns ``i``."""
    spin(skew_duration(i))
    return i


# -- I/O-bound tasks -----------------------------------------------------------------


def sleep_task(seconds: float) -> float:
    """Sleeps (releasing the GIL), like a task waiting on the network or a disk."""
    time.sleep(seconds)
    return seconds


# -- the notebook's row-wise feature engineering ------------------------------------

#: The notebook's input: rows of integers.
NOTEBOOK_SHAPE = (10_000, 64)


@functools.lru_cache(maxsize=1)
def notebook_matrix() -> Any:
    """The notebook's ``X``: a fixed 10,000 x 64 integer array (seeded).

    Values have 16 digits: the notebook's function keeps the counts of the three
    most common characters with ``astype(int)``, which needs them to be digits,
    not the ``_`` separator. The notebook's ``hundred_lines_job`` reads ``X`` as a global. Built the same
    in every process, it is available to workers however they are started (fork
    inherits it, spawned workers build it on first use, in about 10 ms).
    """
    import numpy as np

    return np.random.default_rng(2018).integers(10**15, 10**16, size=NOTEBOOK_SHAPE)


def long_feature_engineering_task(line: Any) -> Any:
    """The notebook's per-row function, verbatim: a slow, non-vectorised transform.

    Args:
        line: one row of numbers.

    Returns:
        A (fake) new feature for the row.
    """
    import numpy as np

    line_str = [str(elem) for elem in line]
    line_str_extended = line_str * 4
    big_str = "_".join(line_str_extended)
    counter = Counter(big_str)
    return np.array(counter.most_common(3)).astype(int)[:, 1].sum()


def hundred_lines_job(indexes: Any) -> list[Any]:
    """The notebook's manual chunk: the feature of each row in ``indexes``."""
    X = notebook_matrix()
    return [long_feature_engineering_task(X[idx, :]) for idx in indexes]


# -- the seed's ModelEvaluator grid --------------------------------------------------

#: The grid of the original README: 2 x 29 x 105 = 6,090 points, plus a constant.
GRID: dict[str, Any] = {
    "impurity": ["gini", "entropy"],
    "depth": range(2, 31),
    "bins": range(10, 1051, 10),
    "foo": "bar",
}


def grid_task(impurity: str, depth: int, bins: int, foo: str = "bar") -> tuple[int, str, int]:
    """The original README's tiny grid function."""
    return (depth, impurity, bins)


# -- a large NumPy array shared by many tasks ----------------------------------------


def array_slice_sum(array: Any, i: int, parts: int = 20) -> float:
    """Sum of the ``i``-th of ``parts`` equal slices of ``array``."""
    n = len(array)
    return float(array[i * n // parts : (i + 1) * n // parts].sum())


def shared_slice_sum(i: int, parts: int = 20) -> float:
    """:func:`array_slice_sum` on the runner's ``shared_data`` (parallelize only)."""
    from parallelize import worker_context

    return array_slice_sum(worker_context().shared_data, i, parts)
