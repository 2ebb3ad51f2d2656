"""Tests of parallelize.statistics: the collector's arithmetic and the frozen snapshot."""

from __future__ import annotations

import dataclasses
import threading
from array import array
from typing import Callable

import pytest

from parallelize import DurationSummary, Parallelize, Statistics, WorkerStatistics
from parallelize.statistics import RESERVOIR_SIZE, StatisticsCollector


def noop(x: int) -> int:
    return x


def fail_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(x)
    return x


# -- the collector, fed by hand ------------------------------------------------------------


def test_counts_and_durations_from_known_batches() -> None:
    c = StatisticsCollector(total=6)
    c.submitted(3)
    c.finished(3, 0, [0.1, 0.2, 0.3], "w1")
    c.submitted(3)
    c.finished(2, 1, array("d", [0.4, 0.5, 0.6]), "w2", retried=2)
    s = c.snapshot()
    assert (s.total, s.submitted, s.completed, s.failed, s.retried, s.pending) == (6, 6, 5, 1, 2, 0)
    assert s.finished == 6
    d = s.durations
    assert d.count == 6
    assert d.total == pytest.approx(2.1)
    assert d.mean == pytest.approx(0.35)
    assert (d.min, d.max) == (0.1, 0.6)
    assert d.median == pytest.approx(0.35)
    assert d.p95 == pytest.approx(0.575)
    assert [(w.worker, w.tasks) for w in s.workers] == [("w1", 3), ("w2", 3)]
    assert [w.busy for w in s.workers] == [pytest.approx(0.6), pytest.approx(1.5)]


def test_pending_and_running_while_work_is_outstanding() -> None:
    c = StatisticsCollector(total=10)
    assert (c.snapshot().elapsed, c.snapshot().pending) == (0.0, 10)
    c.submitted(4)
    c.finished(4, 0, [0.0] * 4, "w")
    s = c.snapshot()
    assert (s.completed, s.pending, s.running) == (4, 6, True)
    c.close()
    s = c.snapshot()
    assert (s.pending, s.running) == (6, False)


def test_pending_without_a_total_counts_submitted_unfinished() -> None:
    c = StatisticsCollector()
    c.submitted(5)
    c.finished(2, 0, [0.0, 0.0], "w")
    s = c.snapshot()
    assert (s.total, s.pending, s.running) == (None, 3, True)
    assert "size: 2 items" in str(s)


def test_abandoned_tasks_are_not_pending() -> None:
    c = StatisticsCollector()
    c.submitted(5)
    c.finished(1, 1, [0.0, 0.0], "w", abandoned=3)
    s = c.snapshot()
    assert (s.completed, s.failed, s.running) == (1, 1, False)


def test_empty_snapshot() -> None:
    s = StatisticsCollector().snapshot()
    assert s.durations == DurationSummary()
    assert (s.workers, s.utilisation, s.throughput, s.elapsed) == ((), 0.0, 0.0, 0.0)


def test_durations_past_the_reservoir() -> None:
    c = StatisticsCollector()
    n = RESERVOIR_SIZE + 5000
    # Durations 1..n ms: the exact mean and extremes are kept, quantiles sampled.
    values = array("d", ((i + 1) / 1000 for i in range(n)))
    c.submitted(n)
    for start in range(0, n, 1000):
        chunk = values[start : start + 1000]
        c.finished(len(chunk), 0, chunk, "w")
    d = c.snapshot().durations
    assert d.count == n
    assert d.min == 0.001 and d.max == n / 1000
    assert d.mean == pytest.approx((n + 1) / 2000)
    assert d.median == pytest.approx(n / 2000, rel=0.05)
    assert d.p95 == pytest.approx(0.95 * n / 1000, rel=0.02)


def test_collector_is_thread_safe() -> None:
    c = StatisticsCollector()

    def feed() -> None:
        for _ in range(500):
            c.submitted(2)
            c.finished(2, 0, [0.001, 0.001], threading.current_thread().name)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = c.snapshot()
    assert (s.submitted, s.completed, s.durations.count) == (4000, 4000, 4000)
    assert sum(w.tasks for w in s.workers) == 4000


# -- the snapshot --------------------------------------------------------------------------


def test_snapshot_is_frozen() -> None:
    c = StatisticsCollector(total=1)
    c.submitted(1)
    c.finished(1, 0, [0.5], "w")
    s = c.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.completed = 99  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.durations.mean = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.workers[0].tasks = 0  # type: ignore[misc]
    assert isinstance(s, Statistics) and isinstance(s.workers[0], WorkerStatistics)
    # Later work does not change an earlier snapshot.
    c.submitted(1)
    c.finished(1, 0, [0.5], "w")
    assert s.completed == 1 and c.snapshot().completed == 2


def test_str_has_the_seed_sections() -> None:
    c = StatisticsCollector(total=3)
    c.submitted(3)
    c.finished(3, 0, [0.000002, 0.002, 2.0], "host:1:main")
    text = str(c.snapshot())
    lines = text.splitlines()
    assert lines[0] == "STATISTICS"
    assert "size: 3 items" in lines
    for prefix in ("us: ", "ms: ", "s: "):
        assert any(line.startswith(prefix) for line in lines), prefix
    # Task times are shown in a unit that suits them.
    assert "min: 2.0 us" in text and "median: 2.000 ms" in text and "max: 2.000 s" in text
    assert "host:1:main: 3 tasks" in text


# -- from real runs -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["thread", "process", "serial"])
def test_statistics_of_a_real_map(backend: str) -> None:
    with Parallelize(2, backend=backend) as runner:
        stream = runner.map(noop, range(200))
        assert list(stream) == list(range(200))
        s = stream.statistics()
        assert s == runner.statistics()
    assert (s.total, s.submitted, s.completed, s.failed, s.pending, s.running) == (200, 200, 200, 0, 0, False)
    assert s.durations.count == 200
    assert sum(w.tasks for w in s.workers) == 200
    assert 1 <= len(s.workers) <= 2
    assert s.elapsed > 0 and s.throughput > 0
    for w in s.workers:
        assert 0.0 <= w.utilisation <= 1.0
    assert 0.0 <= s.utilisation <= 1.0
    assert 0 <= s.durations.min <= s.durations.median <= s.durations.p95 <= s.durations.max
    assert "size: 200 items" in str(s)


def test_statistics_count_failures(make_runner: Callable[..., Parallelize]) -> None:
    runner = make_runner(on_error="skip")
    stream = runner.map(fail_on_odd, range(10))
    assert list(stream) == [0, 2, 4, 6, 8]
    s = stream.statistics()
    assert (s.completed, s.failed, s.pending, s.finished) == (5, 5, 0, 10)
    assert s.durations.count == 10
    assert "failed: 5" in str(s)
