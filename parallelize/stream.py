"""A lazy stream of results: what ``Parallelize.map`` returns.

Iterating pulls batches from the engine (see :mod:`parallelize.dispatch`) in the
caller's thread, so nothing runs ahead of the consumer by more than a bounded
window of batches, and an infinite input is fine.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from .statistics import Statistics, StatisticsCollector
from .task import BatchResult

__all__ = ["ResultStream"]


class ResultStream(Iterator[Any]):
    """An iterator over the results of a ``map``, with statistics on the side.

    Args:
        batches: the engine's batch results.
        collector: the run's statistics.
        skip_failures: drop failed tasks (``on_error="skip"``).
        progress: the progress bar to close at the end, or ``None``.
    """

    def __init__(
        self,
        batches: Iterator[BatchResult],
        collector: StatisticsCollector,
        *,
        skip_failures: bool = False,
        progress: Any = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._batches = batches
        self._collector = collector
        self._skip = skip_failures
        self._progress = progress
        self._on_close = on_close
        self._values = self._generate()

    def _generate(self) -> Iterator[Any]:
        try:
            skip = self._skip
            for result in self._batches:
                if skip and result.failures:
                    bad = set(result.failures)
                    yield from (v for i, v in enumerate(result.values) if i not in bad)
                else:
                    yield from result.values
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __iter__(self) -> Iterator[Any]:
        # Hand out the generator itself: `for` and `list` then skip a Python-level
        # __next__ call per result.
        return self._values

    def __next__(self) -> Any:
        return next(self._values)

    def batches(self) -> Iterator[BatchResult]:
        """Iterate over whole batch results (inputs, values, durations, worker)
        instead of values; for consumers that need more than the value."""
        try:
            yield from self._batches
        finally:
            self._finish()

    def statistics(self) -> Statistics:
        """A frozen snapshot of this map's statistics so far."""
        return self._collector.snapshot()

    def close(self) -> None:
        """Stop early: cancel queued tasks and release the input."""
        self._values.close()
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        self._finish()

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
