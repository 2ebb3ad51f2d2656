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


# -- grid points: called positionally when their keys are the function's leading parameters --


def diff(a: int, b: int, c: int = 0) -> int:
    return 100 * a - b + c


def kw_only(a: int, *, b: int) -> int:
    return 100 * a - b


def by_keyword_only(**kw: int) -> int:
    return 100 * kw["a"] - kw["b"]


@pytest.mark.parametrize(
    "func, keys, fixed",
    [
        (diff, ("a", "b"), {}),  # positional, in order
        (diff, ("b", "a"), {}),  # positional, reordered
        (diff, ("a", "b"), {"c": 5}),  # with a fixed keyword
        (diff, ("a", "c", "b"), {}),  # not the leading parameters in any order: keywords
        (kw_only, ("a", "b"), {}),  # b is keyword-only: keywords
        (by_keyword_only, ("a", "b"), {}),  # **kw: keywords
    ],
)
def test_keyed_points_give_what_keyword_calls_give(func, keys, fixed) -> None:  # type: ignore[no-untyped-def]
    points = [(a, b) if len(keys) == 2 else (a, 0, b) for a in range(3) for b in range(4)]
    result = run_batch(Batch(func=FunctionHandle(func), call="keyed", keys=keys, items=points, first=0, fixed=fixed))
    assert result.failures == []
    assert result.values == [func(**dict(zip(keys, p, strict=True)), **fixed) for p in points]


def test_positional_order_is_read_from_the_signature() -> None:
    from parallelize.worker.batch import _positional_order

    assert _positional_order(diff, ("a", "b")) == (0, 1)
    assert _positional_order(diff, ("b", "a")) == (1, 0)
    assert _positional_order(diff, ("a", "b", "c")) == (0, 1, 2)
    assert _positional_order(diff, ("a", "c")) is None
    assert _positional_order(kw_only, ("a", "b")) is None
    assert _positional_order(by_keyword_only, ("a",)) is None
    assert _positional_order(max, ("a",)) is None  # no signature to read


def test_a_batch_survives_the_trip_to_a_worker_with_every_field() -> None:
    # A batch pickles only the fields that differ from their defaults, and
    # parallelize's own classes by name: what arrives must be the same batch.
    import pickle
    import types

    from parallelize.backends.pool import _encode
    from parallelize.retry import RetryPolicy

    def record(result: object) -> None:
        pass

    plain = Batch(func=FunctionHandle(inc), call="arg", items=range(5, 9), first=5)
    full = Batch(
        func=FunctionHandle(lambda **kw: kw),
        call="keyed",
        items=[(1, "a"), (2, "b")],
        first=7,
        fixed={"z": 3},
        stop_on_error=True,
        retry=RetryPolicy(retries=2, retry_on=(KeyError, OSError)),
        attempt=2,
        timeout=1.5,
        timing_group=64,
        keys=("x", "y"),
        setup_token="token",
        record=record,
    )
    for batch in (plain, full):
        fn, (back,), kwargs = pickle.loads(_encode(0, run_batch, (batch,), {})[8:])
        assert fn is run_batch and kwargs == {}
        for name in batch.__dataclass_fields__:
            if name not in ("func", "record"):
                assert getattr(back, name) == getattr(batch, name), name
        if batch is full:
            assert back.func.get()(x=1) == {"x": 1}
        else:
            assert back.func.get()(1) == 2
    assert isinstance(pickle.loads(_encode(0, run_batch, (full,), {})[8:])[1][0].record, types.FunctionType)
    assert len(_encode(0, run_batch, (plain,), {})) < 700  # the whole state took about 900 bytes
