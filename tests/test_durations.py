"""GroupedDurations: the runs a batch of tiny tasks sends back stand for one duration per task.

Checked against the array the runs stand for: length, indexing, slicing,
iteration, assignment, pickling, the summary and the statistics' sample; and
end to end, that a run's statistics and data frame are what per-task
durations give.
"""

from __future__ import annotations

import math
import pickle
from array import array

import pytest

from parallelize import Parallelize
from parallelize.durations import GroupedDurations, Timings, per_task
from parallelize.statistics import StatisticsCollector
from parallelize.worker.batch import Batch, run_batch
from parallelize.worker.pickling import FunctionHandle

RUNS = [(0.5, 3), (0.25, 1), (2.0, 4), (1.0, 2)]


def expanded() -> array:
    out = array("d")
    for seconds, n in RUNS:
        out.extend([seconds] * n)
    return out


def test_reads_like_the_array_it_stands_for() -> None:
    d, a = GroupedDurations(RUNS), expanded()
    assert len(d) == len(a) == 10
    assert [d[i] for i in range(10)] == list(a) and d[-1] == a[-1]
    assert d[3:7] == a[3:7] and isinstance(d[3:7], array)
    assert list(d) == list(a) and d == a and d == GroupedDurations(list(RUNS))
    assert math.fsum(d) == math.fsum(a) and min(d) == min(a) and max(d) == max(a)
    assert per_task(d) == a and per_task(a) is a


@pytest.mark.parametrize("offset, stride", [(0, 1), (0, 2), (1, 3), (2, 4), (9, 5), (0, 11)])
def test_every_is_the_strided_slice(offset: int, stride: int) -> None:
    assert GroupedDurations(RUNS).every(offset, stride) == expanded()[offset::stride]


def test_summary_is_sum_min_max() -> None:
    total, low, high = GroupedDurations(RUNS).summary()
    a = expanded()
    assert total == pytest.approx(math.fsum(a)) and low == min(a) and high == max(a)
    assert GroupedDurations([]).summary() == (0.0, 0.0, 0.0)


def test_assignment_writes_out_and_is_kept() -> None:
    d = GroupedDurations(RUNS)
    d[4] = 9.0
    a = expanded()
    a[4] = 9.0
    assert d == a and d.summary() == (math.fsum(a), min(a), max(a)) and d.every(0, 3) == a[::3]


def test_pickles_as_runs_and_once_written_out_as_the_array() -> None:
    d = GroupedDurations(RUNS)
    back = pickle.loads(pickle.dumps(d))
    assert isinstance(back, GroupedDurations) and back.runs == RUNS
    assert len(pickle.dumps(GroupedDurations([(1e-6, 10_000)]))) < 200  # not 80 KB
    d[0] = 7.0
    changed = pickle.loads(pickle.dumps(d))
    assert changed == d and changed[0] == 7.0


def test_timings_keep_task_order_across_singles_and_groups() -> None:
    t = Timings()
    t.each.append(0.1)
    t.each.append(0.2)
    t.group(0.5, 3)
    t.each.append(0.3)
    out = t.result()
    assert isinstance(out, GroupedDurations)
    assert list(out) == [0.1, 0.2, 0.5, 0.5, 0.5, 0.3]
    only = Timings()
    only.each.append(0.4)
    assert isinstance(only.result(), array)


def inc(x: int) -> int:
    return x + 1


def test_statistics_of_runs_equal_those_of_the_array_they_stand_for() -> None:
    # Past the reservoir, so the sample's stride and offset matter.
    batches = [GroupedDurations([(1e-6 * (i + 1), 7_000), (5e-6, 13), (3e-6 * (i % 3 + 1), 6_000)]) for i in range(6)]
    by_runs, by_array = StatisticsCollector(), StatisticsCollector()
    for i, d in enumerate(batches):
        # With and without the worker's summary: the collector takes it from the runs itself.
        by_runs.finished(len(d), 0, d, "w", summary=d.summary() if i % 2 else None)
        by_array.finished(len(d), 0, array("d", list(d)), "w")
    a, b = by_runs.snapshot().durations, by_array.snapshot().durations
    assert a.count == b.count == sum(len(d) for d in batches)
    assert (a.min, a.median, a.p95, a.max) == (b.min, b.median, b.p95, b.max)
    assert a.total == pytest.approx(b.total)


def test_a_run_of_tiny_tasks_sends_runs_and_its_frame_has_every_duration() -> None:
    result = run_batch(Batch(func=FunctionHandle(inc), call="arg", items=range(5000), first=0, timing_group=64))
    assert isinstance(result.durations, GroupedDurations) and len(result.durations.runs) < 100
    with Parallelize(2, backend="process") as runner:
        stream = runner.map(inc, range(30_000))
        frame = stream.to_dataframe()
        stats = stream.statistics()
    assert len(frame) == 30_000 and frame["duration"].notna().all() and (frame["duration"] > 0).all()
    assert stats.durations.count == 30_000
    assert stats.durations.min <= frame["duration"].median() <= stats.durations.max
    assert math.isclose(frame["duration"].sum(), stats.durations.total, rel_tol=1e-6)
