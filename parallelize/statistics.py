"""Statistics: frozen snapshots of raw numbers, collected cheaply while work runs.

A ``StatisticsCollector`` lives in the parent and is fed one record per
*batch* (never per task), under a lock, so keeping statistics on costs nothing
measurable. ``StatisticsCollector.snapshot`` returns a frozen
``Statistics``; formatting is its ``__str__``, separate from collection.
Times are seconds, from ``time.perf_counter`` in the worker (task durations) and
``time.monotonic`` in the parent (wall time).
"""

from __future__ import annotations

import threading
import time
from array import array
from dataclasses import dataclass
from typing import Iterable

from .durations import GroupedDurations

__all__ = ["DurationSummary", "Statistics", "StatisticsCollector", "WorkerStatistics"]

# Task durations kept for the median and p95. Up to this many tasks the
# quantiles are exact; beyond it they come from an evenly spaced sample of
# between half and all of this size, whose p95 is within about half a
# percentile of the true one.
RESERVOIR_SIZE = 20_000


@dataclass(frozen=True)
class DurationSummary:
    """Task durations measured inside the workers, in seconds.

    Attributes:
        count: tasks measured.
        total: sum of their durations.
        mean, min, median, p95, max: of the durations (0.0 when count is 0).
    """

    count: int = 0
    total: float = 0.0
    mean: float = 0.0
    min: float = 0.0
    median: float = 0.0
    p95: float = 0.0
    max: float = 0.0


@dataclass(frozen=True)
class WorkerStatistics:
    """One worker's share of the work.

    Attributes:
        worker: the worker's name (host:pid:thread).
        tasks: tasks it ran.
        busy: seconds it spent inside tasks.
        utilisation: ``busy`` divided by the wall time of the run (0..1).
    """

    worker: str
    tasks: int
    busy: float
    utilisation: float


@dataclass(frozen=True)
class Statistics:
    """A frozen snapshot of a run's progress and timing.

    Attributes:
        total: tasks in the run, or ``None`` while the input's length is unknown.
        submitted: tasks handed to workers so far.
        completed: tasks that returned a value.
        failed: tasks that raised (after retries).
        retried: extra attempts made after failures.
        pending: tasks not yet finished (``total - completed - failed`` when the
            total is known, else submitted but unfinished).
        elapsed: wall-clock seconds from the first submission to the last
            result (or to now while running).
        durations: per-task durations measured in the workers.
        throughput: finished tasks per second of ``elapsed``.
        workers: one record per worker that ran a task.
        running: whether work is still outstanding.
    """

    total: int | None
    submitted: int
    completed: int
    failed: int
    retried: int
    pending: int
    elapsed: float
    durations: DurationSummary
    throughput: float
    workers: tuple[WorkerStatistics, ...]
    running: bool

    @property
    def finished(self) -> int:
        """Tasks completed or failed."""
        return self.completed + self.failed

    @property
    def utilisation(self) -> float:
        """Mean utilisation over the workers that ran tasks (0..1)."""
        if not self.workers:
            return 0.0
        return sum(w.utilisation for w in self.workers) / len(self.workers)

    def __str__(self) -> str:
        d = self.durations
        size = self.total if self.total is not None else self.finished
        lines = [
            "STATISTICS",
            "--------------------",
            "TASKS:",
            f"size: {size} items",
            f"completed: {self.completed}  failed: {self.failed}  pending: {self.pending}"
            + (f"  retried: {self.retried}" if self.retried else ""),
            "DURATION: #wall time of the run, in us, ms, s",
            f"us: {self.elapsed * 1e6:.0f}",
            f"ms: {self.elapsed * 1e3:.1f}",
            f"s: {self.elapsed:.3f}",
            f"throughput: {self.throughput:.1f} tasks/s",
            "TASK TIME: #measured in the workers",
            f"mean: {_fmt(d.mean)}  min: {_fmt(d.min)}  median: {_fmt(d.median)}  "
            f"p95: {_fmt(d.p95)}  max: {_fmt(d.max)}",
            f"WORKERS: {len(self.workers)}, mean utilisation {self.utilisation:.0%}",
        ]
        for w in self.workers:
            lines.append(f"  {w.worker}: {w.tasks} tasks, busy {w.busy:.3f} s ({w.utilisation:.0%})")
        lines.append("--------------------")
        return "\n".join(lines)


def _fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


class StatisticsCollector:
    """Accumulates batch records; thread-safe; ``snapshot`` at any moment.

    Args:
        total: the number of tasks if known in advance.
    """

    def __init__(self, total: int | None = None) -> None:
        self._lock = threading.Lock()
        self.total = total
        self._submitted = 0
        self._completed = 0
        self._failed = 0
        self._retried = 0
        self._count = 0
        self._sum = 0.0
        self._min = float("inf")
        self._max = 0.0
        self._sample = array("d")
        self._stride = 1
        self._offset = 0
        self._workers: dict[str, list[float]] = {}
        self._start: float | None = None
        self._end: float | None = None
        self._outstanding = 0
        self._closed = False

    def set_total(self, total: int | None) -> None:
        """Record the number of tasks once it becomes known."""
        with self._lock:
            self.total = total

    def submitted(self, n: int) -> None:
        """Record ``n`` tasks handed to workers."""
        with self._lock:
            if self._start is None:
                self._start = time.monotonic()
            self._submitted += n
            self._outstanding += n
            self._end = None
            self._closed = False

    def finished(
        self,
        completed: int,
        failed: int,
        durations: Iterable[float],
        worker: str,
        retried: int = 0,
        abandoned: int = 0,
        summary: tuple[float, float, float] | None = None,
    ) -> None:
        """Record a finished batch.

        Args:
            completed: tasks that returned.
            failed: tasks that raised.
            durations: each task's duration in seconds.
            worker: the worker that ran them.
            retried: extra attempts made.
            abandoned: tasks submitted but never run (cancelled after an error).
            summary: ``(sum, min, max)`` of ``durations`` if already known.
        """
        # Runs of tasks timed in groups are sampled as runs, never written out.
        durs = durations if isinstance(durations, (array, GroupedDurations)) else array("d", durations)
        n = len(durs)
        if summary is not None and n:
            busy, lo, hi = summary
        elif isinstance(durs, GroupedDurations):
            busy, lo, hi = durs.summary()
        else:
            busy = sum(durs)
            lo, hi = (min(durs), max(durs)) if n else (0.0, 0.0)
        with self._lock:
            self._completed += completed
            self._failed += failed
            self._retried += retried
            self._outstanding -= completed + failed + abandoned
            if n:
                self._count += n
                self._sum += busy
                if lo < self._min:
                    self._min = lo
                if hi > self._max:
                    self._max = hi
                self._add_sample(durs)
                w = self._workers.get(worker)
                if w is None:
                    self._workers[worker] = [n, busy]
                else:
                    w[0] += n
                    w[1] += busy
            if self._outstanding <= 0:
                self._end = time.monotonic()

    def _add_sample(self, durs: array | GroupedDurations) -> None:
        # A systematic sample: keep every `stride`-th duration; when the sample
        # is full, drop every other one and double the stride. O(1) per task at
        # C speed (slicing), and unbiased unless durations cycle with the stride.
        stride = self._stride
        offset = self._offset
        if isinstance(durs, GroupedDurations):
            picked = durs.every(offset, stride)
        else:
            picked = durs[offset::stride] if stride > 1 else durs
        self._offset = (offset - len(durs)) % stride
        self._sample.extend(picked)
        while len(self._sample) > RESERVOIR_SIZE:
            self._sample = self._sample[::2]
            self._stride *= 2
            stride = self._stride
            self._offset = self._offset % stride

    def close(self) -> None:
        """Mark the run over (finished, failed or stopped): the clock stops."""
        with self._lock:
            self._closed = True
            if self._end is None and self._start is not None:
                self._end = time.monotonic()

    def snapshot(self) -> Statistics:
        """A frozen ``Statistics`` of everything recorded so far."""
        with self._lock:
            now = time.monotonic()
            if self._start is None:
                elapsed = 0.0
            else:
                elapsed = (self._end if self._end is not None else now) - self._start
            running = self._start is not None and self._end is None
            sample = sorted(self._sample)
            finished = self._completed + self._failed
            if self.total is not None:
                pending = max(self.total - finished, 0)
                if pending and not self._closed:
                    running = True
            else:
                pending = max(self._submitted - finished, 0)
            if self._count:
                durations = DurationSummary(
                    count=self._count,
                    total=self._sum,
                    mean=self._sum / self._count,
                    min=self._min,
                    median=_quantile(sample, 0.5),
                    p95=_quantile(sample, 0.95),
                    max=self._max,
                )
            else:
                durations = DurationSummary()
            workers = tuple(
                WorkerStatistics(name, int(t), busy, min(busy / elapsed, 1.0) if elapsed > 0 else 0.0)
                for name, (t, busy) in sorted(self._workers.items())
            )
            return Statistics(
                total=self.total,
                submitted=self._submitted,
                completed=self._completed,
                failed=self._failed,
                retried=self._retried,
                pending=pending,
                elapsed=elapsed,
                durations=durations,
                throughput=finished / elapsed if elapsed > 0 else 0.0,
                workers=workers,
                running=running,
            )


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted list."""
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] * (1 - frac) + sorted_values[hi] * frac
