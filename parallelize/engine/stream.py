"""A lazy stream of results: what ``Parallelize.map`` returns.

Iterating pulls batches from the engine (see ``parallelize.engine.dispatch``) in the
caller's thread, so nothing runs ahead of the consumer by more than a bounded
window of batches, and an infinite input is fine.
"""

from __future__ import annotations

import collections
import itertools
import operator
from typing import Any, Callable, Generator, Generic, Iterator, Sequence, TypeVar

from ..results.frame import batch_tail
from ..results.tabular import TableSource, TabularResults
from ..statistics import Statistics, StatisticsCollector
from ..worker.batch import BatchResult

__all__ = ["ResultStream"]

T = TypeVar("T")


def batch_values(result: BatchResult, skip_failures: bool) -> Sequence[Any]:
    """A batch's values as a stream yields them: failed tasks left out under ``on_error="skip"``."""
    if skip_failures and result.failures:
        bad = set(result.failures)
        return [v for i, v in enumerate(result.values) if i not in bad]
    return result.values


class ResultStream(TabularResults, Iterator[T], Generic[T]):
    """An iterator over the results of a ``map``, with statistics on the side.

    Generic in the result type: ``runner.map(f, xs)`` is a ``ResultStream[R]``
    when ``f`` returns ``R`` (under ``on_error="collect"`` a failed task's place
    holds a ``TaskFailure`` instead).

    ``to_dataframe`` and ``to_files`` consume the rest of the stream.

    Args:
        batches: the engine's batch results.
        collector: the run's statistics.
        skip_failures: drop failed tasks (``on_error="skip"``).
        progress: the progress bar to close at the end, or ``None``.
        on_close: called once when the batches end or the stream is closed, or ``None``.
        layout: how inputs become columns in ``to_dataframe`` (a
            ``FrameLayout``); default ``map`` style.
    """

    def __init__(
        self,
        batches: Iterator[BatchResult],
        collector: StatisticsCollector,
        *,
        skip_failures: bool = False,
        progress: Any = None,
        on_close: Callable[[], None] | None = None,
        layout: Any = None,
    ) -> None:
        self._batches = batches
        self._collector = collector
        self._skip = skip_failures
        self._progress = progress
        self._on_close = on_close
        self._layout = layout
        # The batch whose values are being handed out, and an iterator over the
        # ones not handed out yet: to_dataframe() starts right after them.
        self._current: tuple[BatchResult, Iterator[Any]] | None = None
        self._per_batch = self._generate()
        # chain walks each batch's values at C speed: a generator yielding
        # them one by one cost ~50 ns a value, a third of the parent's time on
        # 100,000 tiny tasks.
        self._values: Iterator[Any] = itertools.chain.from_iterable(self._per_batch)

    def _generate(self) -> Generator[Iterator[Any], None, None]:
        try:
            skip = self._skip
            for result in self._batches:
                rest = iter(batch_values(result, skip))
                self._current = (result, rest)
                yield rest
            self._current = None
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __iter__(self) -> Iterator[T]:
        # Hand out the generator itself: `for` and `list` then skip a Python-level
        # __next__ call per result.
        return self._values

    def __next__(self) -> T:
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

    def _rest(self) -> Iterator[BatchResult]:
        """The batches not handed out yet, starting inside a half-read batch."""
        current, self._current = self._current, None
        if current is not None:
            result, rest = current
            tail = batch_tail(result, operator.length_hint(rest), self._skip)
            # Those values now belong to the tail: iterating must not yield them again.
            collections.deque(rest, maxlen=0)
            if tail is not None:
                yield tail
        yield from self.batches()

    def _table_source(self) -> TableSource:
        return TableSource(self._rest(), self._layout, self._skip)

    def close(self) -> None:
        """Stop early: cancel queued tasks and release the input."""
        current, self._current = self._current, None
        if current is not None:
            # The chain may be half way through this batch: it must yield no more.
            collections.deque(current[1], maxlen=0)
        self._per_batch.close()
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        self._finish()

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
