"""run_batch, the loop inside every worker: timing in groups, the summary, failures in place.

No timed assertion: these check that grouped timing keeps the statistics exact
(counts, and a summary equal to the per-task durations it stands for), and that
a failing task is found at its position whichever loop ran it.
"""

from __future__ import annotations

import math

import pytest

from parallelize.worker.batch import PROBE_BATCH_MIN, PROBE_TASKS, Batch, run_batch
from parallelize.worker.failure import TaskFailure
from parallelize.worker.pickling import FunctionHandle


def inc(x: int) -> int:
    return x + 1


def fails_at_3000(x: int) -> int:
    if x == 3000:
        raise ValueError("3000")
    return x + 1


def check_summary(result) -> None:  # type: ignore[no-untyped-def]
    total, low, high = result.summary
    assert len(result.durations) == len(result.values)
    assert total == pytest.approx(math.fsum(result.durations), rel=1e-9, abs=1e-12)
    assert low == min(result.durations) and high == max(result.durations)


@pytest.mark.parametrize("group", [1, 64], ids=["probed", "grouped"])
def test_tiny_tasks_are_timed_in_groups_and_the_summary_stays_exact(group: int) -> None:
    n = 5000
    result = run_batch(Batch(func=FunctionHandle(inc), call="arg", items=range(n), first=0, timing_group=group))
    assert result.values == [x + 1 for x in range(n)] and result.failures == []
    check_summary(result)
    # After the probe, or from the start, tasks share their group's mean.
    start = PROBE_TASKS if group == 1 else 0
    assert len(set(result.durations[start : start + 64])) == 1


def test_a_small_batch_is_timed_task_by_task() -> None:
    n = PROBE_BATCH_MIN - 1
    result = run_batch(Batch(func=FunctionHandle(inc), call="arg", items=range(n), first=0))
    assert len(result.durations) == n
    check_summary(result)


@pytest.mark.parametrize("group", [1, 64], ids=["probed", "grouped"])
def test_a_failure_after_the_probe_is_at_its_position(group: int) -> None:
    n = 5000
    result = run_batch(
        Batch(func=FunctionHandle(fails_at_3000), call="arg", items=range(n), first=0, timing_group=group)
    )
    assert result.failures == [3000]
    assert isinstance(result.values[3000], TaskFailure)
    assert [v for i, v in enumerate(result.values) if i != 3000] == [x + 1 for x in range(n) if x != 3000]
    check_summary(result)
