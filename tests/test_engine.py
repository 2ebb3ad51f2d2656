"""The engine's internals seen from outside: batching of sequences, spaces and streams."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from parallelize import Parallelize, ParamSpace, TaskFailure


def fail_on_b2(a: int, b: int) -> int:
    if b == 2:
        raise ValueError("b=2 is not allowed")
    return a * 10 + b


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_space_points_reach_failures_and_frames_as_mappings(backend: str) -> None:
    space = ParamSpace(a=[1, 2], b=[1, 2])
    with Parallelize(2, backend=backend, on_error="collect") as runner:
        stream = runner.map(fail_on_b2, space)
        frame = stream.to_dataframe()
    assert list(frame["a"]) == [1, 1, 2, 2]
    assert list(frame["b"]) == [1, 2, 1, 2]
    assert frame["error"].notna().tolist() == [False, True, False, True]
    with Parallelize(2, backend=backend, on_error="collect") as runner:
        out = list(runner.map(fail_on_b2, space))
    failure = out[1]
    assert isinstance(failure, TaskFailure)
    assert "'a': 1" in failure.arguments and "'b': 2" in failure.arguments


def product(a: int, b: int) -> int:
    return a * b


def test_huge_space_streams_without_copying_its_axes() -> None:
    space = ParamSpace(a=range(10**12), b=[1, 2, 3])
    with Parallelize(2) as runner:
        stream = runner.map(product, space)
        first = list(itertools.islice(stream, 6))
        stream.close()
    assert first == [0, 0, 0, 1, 2, 3]


def row_sum(row: np.ndarray) -> int:
    return int(row.sum())


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_rows_of_an_array_are_mapped_in_order(backend: str) -> None:
    x = np.arange(3000 * 4).reshape(3000, 4)
    with Parallelize(2, backend=backend) as runner:
        assert list(runner.map(row_sum, x)) == [int(r.sum()) for r in x]


def test_range_and_tuple_inputs_are_sliced_into_batches() -> None:
    with Parallelize(2, backend="process") as runner:
        assert list(runner.map(abs, range(-5000, 5000))) == [abs(i) for i in range(-5000, 5000)]
        assert list(runner.map(abs, tuple(range(-50, 50)), chunksize=7)) == [abs(i) for i in range(-50, 50)]


def test_a_second_run_of_a_function_starts_from_its_measured_task_time() -> None:
    """No probe batch the second time: the sizer starts where the last run ended."""
    from parallelize.engine import dispatch as dispatch_module
    from parallelize.engine.batching import BatchSizer

    with Parallelize(2, backend="thread") as runner:
        assert list(runner.map(_tiny, range(2000))) == [x + 1 for x in range(2000)]
        estimate = dispatch_module._ESTIMATES[_tiny]["thread"]
        assert estimate > 0
        sizer = BatchSizer(2, 2000, None, 0.002, estimate=estimate)
        assert sizer.calibrated and sizer.next_size(2000) > 1
        assert list(runner.map(_tiny, range(2000))) == [x + 1 for x in range(2000)]
        assert runner.statistics().completed == 2000


def _tiny(x: int) -> int:
    return x + 1
