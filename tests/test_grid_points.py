"""A grid's batches travel as ranges of its points: exact points, compact pickles, every worker used.

``GridPoints(axes, start, stop)`` stands for points ``start`` to ``stop`` of the
product of ``axes`` in ``itertools.product`` order. It must give exactly those
points (checked against ``itertools.product`` over random shapes, empty axes
included), index grids too large for ``len``, pickle as the axes and two
numbers and unpickle as the list of tuples. A ``ParamSpace`` run sends it, so a
grid's batch no longer pickles a tuple per point; and the sizer splits a short
run between all the workers instead of sending it to one of them as one batch.
"""

from __future__ import annotations

import itertools
import os
import pickle
import random
from typing import Any

import pytest

from parallelize import ModelEvaluator, Parallelize, ParamSpace
from parallelize.engine.batching import BatchSizer
from parallelize.worker.grid_points import GridPoints


def _random_axes(rng: random.Random) -> tuple[Any, ...]:
    axes: list[Any] = []
    for j in range(rng.randint(0, 4)):
        if rng.random() < 0.5:
            axes.append(tuple(f"v{j}.{i}" for i in range(rng.randint(1, 5))))
        else:
            axes.append(range(rng.randint(0, 4)))
    return tuple(axes)


def test_grid_points_are_exactly_the_products_points_in_order() -> None:
    rng = random.Random(2024)
    for _ in range(2000):
        axes = _random_axes(rng)
        every = list(itertools.product(*axes))
        a = rng.randint(0, len(every))
        b = rng.randint(a, len(every))
        points = GridPoints(axes, a, b)
        assert list(points) == every[a:b], (axes, a, b)
        assert len(points) == b - a
        if b > a:
            i = rng.randrange(b - a)
            assert points[i] == every[a + i]
            assert points[-1] == every[b - 1]
        c = rng.randint(0, b - a)
        d = rng.randint(c, b - a)
        assert list(points[c:d]) == every[a + c : a + d]
        assert points[::2] == every[a:b:2]
        assert pickle.loads(pickle.dumps(points)) == every[a:b]


def test_grid_points_pickle_as_the_axes_and_unpickle_as_a_list() -> None:
    axes = (("gini", "entropy"), range(2, 31), range(10, 1051, 10), ("bar",))
    points = GridPoints(axes)
    every = list(itertools.product(*axes))
    data = pickle.dumps(points[100:6000])
    assert len(data) < 1_000  # against 78 KB for the list of 5,900 tuples
    assert len(pickle.dumps(every[100:6000])) > 50_000
    back = pickle.loads(data)
    assert type(back) is list and back == every[100:6000]


def test_grid_points_index_a_grid_larger_than_len_allows() -> None:
    points = GridPoints((range(10**12), range(10**12)))
    part = points[10**20 : 10**20 + 3]
    assert list(part) == [(10**8, 0), (10**8, 1), (10**8, 2)]
    assert points[-1] == (10**12 - 1, 10**12 - 1)
    with pytest.raises(IndexError, match="out of range"):
        GridPoints((range(3),))[3]
    with pytest.raises(ValueError, match="not within a grid of 3 points"):
        GridPoints((range(3),), 2, 4)


def point(impurity: str, depth: int, bins: int, foo: str) -> tuple[int, int]:
    return depth + bins, os.getpid()


GRID: dict[str, Any] = {
    "impurity": ["gini", "entropy"],
    "depth": range(2, 31),
    "bins": range(10, 1051, 10),
    "foo": "bar",
}


def test_a_paramspace_run_gives_every_point_in_order() -> None:
    space = ParamSpace(**GRID)
    expected = [d + b for _, d, b, _ in itertools.product(*(space.axes[k] for k in space.keys))]
    with Parallelize(2, backend="process") as runner:
        for _ in range(3):  # the later runs start from the measured task time
            out = list(runner.map(point, space))
            assert [v for v, _ in out] == expected
        evaluator = ModelEvaluator(runner)
        evaluator.run(point, **GRID)
        frame = evaluator.to_dataframe()
        assert list(frame["depth"][:3]) == [2, 2, 2] and list(frame["bins"][:3]) == [10, 20, 30]
        assert [v for v, _ in frame["result"]] == expected


def test_the_fair_share_floor_never_leaves_a_worker_without_a_batch() -> None:
    # 0.1 us tasks: 2 ms of work is 20,000 of them, more than the whole run.
    sizer = BatchSizer(2, 6090, None, 0.05, estimate=1e-7)
    first = sizer.next_size(6090)
    assert first == 3045
    assert sizer.next_size(6090 - first) == 3045
    # A long run keeps the floor: no batch under 2 ms of work for the sake of balance.
    long_run = BatchSizer(2, 1_000_000, None, 0.05, estimate=1e-7)
    assert long_run.next_size(500) >= 500  # the last 500 go as one batch
