"""Large NumPy arrays reach process workers as one shared, memory-mapped file."""

from __future__ import annotations

import gc
import os

import numpy as np

from parallelize import Parallelize, worker_context
from parallelize.worker import shared_array


def describe(a: np.ndarray) -> tuple[str, bool, float, str]:
    path = getattr(a, "filename", None) or ""
    return type(a).__name__, bool(a.flags.writeable), float(a.sum()), str(path)


def describe_shared(_: int) -> tuple[str, bool, float, str]:
    return describe(worker_context().shared_data)


def test_large_array_argument_is_mapped_read_only_and_shared() -> None:
    big = np.arange(shared_array.THRESHOLD_BYTES // 8 * 3, dtype=np.float64)  # 3 MiB
    with Parallelize(2, backend="process") as runner:
        out = list(runner.map(describe, [big] * 6))
    kinds = {o[0] for o in out}
    assert kinds == {"memmap"}
    assert not any(o[1] for o in out)  # read-only in the workers
    assert all(o[2] == float(big.sum()) for o in out)
    paths = {o[3] for o in out}
    assert len(paths) == 1  # written once, shared by every task
    (path,) = paths
    assert os.path.exists(path)
    del big, out
    gc.collect()
    assert not os.path.exists(path)  # removed with the array


def test_small_array_is_pickled_as_a_copy() -> None:
    small = np.arange(100)
    with Parallelize(2, backend="process") as runner:
        (out,) = list(runner.map(describe, [small]))
    assert out[0] == "ndarray" and out[1] is True and out[2] == float(small.sum())


def test_large_shared_data_is_mapped_once_per_run() -> None:
    big = np.ones(shared_array.THRESHOLD_BYTES // 8 * 2)
    with Parallelize(2, backend="process", shared_data=big) as runner:
        out = list(runner.map(describe_shared, range(4)))
    assert {o[0] for o in out} == {"memmap"}
    assert all(o[2] == float(big.sum()) for o in out)
    assert len({o[3] for o in out}) == 1


def test_modified_copy_gets_its_own_file() -> None:
    big = np.zeros(shared_array.THRESHOLD_BYTES // 8 * 2)
    with Parallelize(2, backend="process") as runner:
        first = list(runner.map(describe, [big]))[0]
        other = big + 1
        second = list(runner.map(describe, [other]))[0]
    assert first[2] == 0.0 and second[2] == float(other.sum())
    assert first[3] != second[3]
