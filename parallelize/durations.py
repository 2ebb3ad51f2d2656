"""Per-task durations of one batch, as a worker records them and the statistics read them.

A task of a few microseconds is timed in a group (see ``run_batch``): each task
of the group is credited the group's mean. Writing that mean out once per task
made an ``array('d')`` of 80 KB per batch of 10,000 tasks, which the worker
filled, the process backend pickled (73% of the bytes sent back) and the
parent copied into its statistics. Sending runs instead took 100,000 tiny
tasks on the process backend from 1.05x to 0.91x ``Pool.map``
(``benchmarks/pairs.py``, 21 pairs each, same session); on the thread backend
the change was within the noise (1.10x ``ThreadPool.map`` before, 1.05-1.12x
after).

So a batch timed in groups carries its durations as runs, ``(seconds each,
tasks)``: a ``GroupedDurations``, which reads like the array it stands for
(``len``, indexing, slicing, iteration, assignment) and writes that array out
only when something asks for one task's duration (a data frame, a checkpoint,
a retried task's new time). The statistics sample it without writing it out.
"""

from __future__ import annotations

from array import array
from typing import Iterator, Sequence, Union, overload

__all__ = ["Durations", "GroupedDurations", "Timings", "per_task"]


class GroupedDurations(Sequence[float]):
    """The durations of tasks timed in groups: runs of ``(seconds each, tasks)``, in task order.

    Args:
        runs: each run's duration per task and its number of tasks (at least 1).
    """

    __slots__ = ("_runs", "_len", "_array")

    def __init__(self, runs: Sequence[tuple[float, int]]) -> None:
        self._runs = list(runs)
        self._len = sum(n for _, n in self._runs)
        self._array: array[float] | None = None

    @property
    def runs(self) -> list[tuple[float, int]]:
        """The runs, ``(seconds each, tasks)``, in task order."""
        return self._runs

    def to_array(self) -> array[float]:
        """One duration per task, written out once and kept (changes to it are changes to this)."""
        if self._array is None:
            out: array[float] = array("d")
            for seconds, n in self._runs:
                out.extend(array("d", [seconds]) * n)
            self._array = out
        return self._array

    def __len__(self) -> int:
        return len(self._array) if self._array is not None else self._len

    @overload
    def __getitem__(self, index: int) -> float: ...

    @overload
    def __getitem__(self, index: slice) -> array[float]: ...

    def __getitem__(self, index: int | slice) -> float | array[float]:
        return self.to_array()[index]

    def __setitem__(self, index: int, value: float) -> None:
        self.to_array()[index] = value

    def __iter__(self) -> Iterator[float]:
        return iter(self.to_array())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (GroupedDurations, array)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like the array it stands for

    def __repr__(self) -> str:
        return f"GroupedDurations({self._runs!r})" if self._array is None else f"GroupedDurations({self._array!r})"

    def __reduce__(self) -> tuple[object, ...]:
        if self._array is not None:  # written out (and perhaps changed): travels as the array
            return (array, ("d", self._array.tobytes()))
        return (GroupedDurations, (self._runs,))

    def summary(self) -> tuple[float, float, float]:
        """``(sum, min, max)`` of the durations, from the runs."""
        if self._array is not None:
            return (sum(self._array), min(self._array), max(self._array)) if self._array else (0.0, 0.0, 0.0)
        if not self._runs:
            return (0.0, 0.0, 0.0)
        means = [m for m, _ in self._runs]
        return (sum(m * n for m, n in self._runs), min(means), max(means))

    def every(self, offset: int, stride: int) -> array[float]:
        """The durations of tasks ``offset``, ``offset + stride``, ... (``self[offset::stride]``)."""
        if self._array is not None:
            return self._array[offset::stride]
        out: array[float] = array("d")
        pos = 0
        nxt = offset
        for seconds, n in self._runs:
            end = pos + n
            if nxt < end:
                k = (end - 1 - nxt) // stride + 1
                out.extend(array("d", [seconds]) * k)
                nxt += k * stride
            pos = end
        return out


# What BatchResult.durations holds: one float per task either way.
Durations = Union["array[float]", GroupedDurations]


def per_task(durations: Durations) -> array[float]:
    """One duration per task as an ``array('d')``, for code that indexes every task."""
    return durations.to_array() if isinstance(durations, GroupedDurations) else durations


class Timings:
    """Collects one batch's durations in task order: one by one (``each``) or a group at a time.

    Tasks timed one by one go into ``each`` (an ``array('d')``; its ``append``
    is what the fast loop calls per task). A group turns what is in ``each``
    into runs of one task, so that the runs stay in task order.
    """

    __slots__ = ("each", "runs")

    def __init__(self) -> None:
        self.each: array[float] = array("d")
        self.runs: list[tuple[float, int]] = []

    def group(self, seconds: float, tasks: int) -> None:
        """Record ``tasks`` tasks that took ``seconds`` each."""
        self._flush()
        self.runs.append((seconds, tasks))

    def _flush(self) -> None:
        if self.each:
            self.runs.extend((d, 1) for d in self.each)
            self.each = array("d")

    def result(self) -> Durations:
        """The batch's durations: the array when no group was timed, else the runs."""
        if not self.runs:
            return self.each
        self._flush()
        return GroupedDurations(self.runs)
