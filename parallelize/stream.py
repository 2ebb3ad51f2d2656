"""A lazy stream of results: what ``Parallelize.map`` returns.

Iterating pulls batches from the engine (see :mod:`parallelize.dispatch`) in the
caller's thread, so nothing runs ahead of the consumer by more than a bounded
window of batches, and an infinite input is fine.
"""

from __future__ import annotations

import collections
import operator
import os
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .statistics import Statistics, StatisticsCollector
from .task import BatchResult

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from .writer import WriteSummary

__all__ = ["ResultStream"]


class ResultStream(Iterator[Any]):
    """An iterator over the results of a ``map``, with statistics on the side.

    Args:
        batches: the engine's batch results.
        collector: the run's statistics.
        skip_failures: drop failed tasks (``on_error="skip"``).
        progress: the progress bar to close at the end, or ``None``.
        layout: how inputs become columns in :meth:`to_dataframe` (a
            :class:`~parallelize.dataframe.FrameLayout`); default ``map`` style.
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
        self._values = self._generate()

    def _generate(self) -> Iterator[Any]:
        try:
            skip = self._skip
            for result in self._batches:
                values = result.values
                if skip and result.failures:
                    bad = set(result.failures)
                    values = [v for i, v in enumerate(values) if i not in bad]
                rest = iter(values)
                self._current = (result, rest)
                yield from rest
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

    def _rest(self) -> Iterator[BatchResult]:
        """The batches not handed out yet, starting inside a half-read batch."""
        from .dataframe import batch_tail

        current, self._current = self._current, None
        if current is not None:
            result, rest = current
            tail = batch_tail(result, operator.length_hint(rest), self._skip)
            # Those values now belong to the tail: iterating must not yield them again.
            collections.deque(rest, maxlen=0)
            if tail is not None:
                yield tail
        yield from self.batches()

    def to_dataframe(self) -> pd.DataFrame:
        """Consume the rest of the stream into a DataFrame, one row per task.

        Rows are in input order. A stream already partly iterated gives only
        the tasks whose values were not yet handed out; afterwards the stream
        is exhausted. Columns: the parameters (a mapping input's keys, ``arg0,
        arg1...`` for ``starmap``, else ``input``), the outputs (a dict's keys,
        one row per dict of a returned list of dicts, else ``result``), then
        ``duration`` (seconds), ``worker`` and ``error`` (``"Type: message"``
        for a failed task under ``on_error="collect"``). The index is the task's
        input position, named ``task`` (for ``map_rows``: the input's labels).
        See :mod:`parallelize.dataframe` for the exact rules.

        Returns:
            A :class:`pandas.DataFrame`.

        Raises:
            Exception: under ``on_error="raise"``, the first task's error.
        """
        from .dataframe import results_frame

        return results_frame(self._rest(), self._layout, skip_failures=self._skip)

    def to_files(
        self,
        folder: str | os.PathLike[str],
        *,
        max_rows: int = 10_000,
        max_mem: float | None = None,
        format: str = "parquet",
        reduce_mem_usage: bool = False,
        overwrite: bool = False,
    ) -> WriteSummary:
        """Consume the rest of the stream, writing its rows to files as they arrive.

        Rows (as in :meth:`to_dataframe`) are written every ``max_rows`` rows to
        ``part-000000.parquet``, ``part-000001.parquet``... in stream order (input
        order unless the map was started with ``ordered=False``). Read them back
        with :func:`parallelize.read_results`. See :func:`parallelize.writer.write_results`.

        Args:
            folder: the output folder, created if needed.
            max_rows: rows per file (default 10,000).
            max_mem: split a file further so that its rows take at most this many
                megabytes (2**20 bytes) in memory; default ``None``: no limit.
            format: ``"parquet"`` (default; needs pyarrow) or ``"csv"``.
            reduce_mem_usage: downcast numeric columns of each file first
                (values unchanged; see :func:`parallelize.reduce_mem_usage`).
            overwrite: replace results already in ``folder`` (else an error).

        Returns:
            A :class:`~parallelize.writer.WriteSummary` (files, rows, bytes).

        Raises:
            ConfigError: a bad option, or ``folder`` already holds results.
            BackendUnavailableError: Parquet requested and pyarrow is missing.
        """
        from .writer import write_results

        return write_results(
            self._rest(), folder, layout=self._layout, skip_failures=self._skip, max_rows=max_rows,
            max_mem=max_mem, format=format, reduce_mem_usage=reduce_mem_usage, overwrite=overwrite,
        )

    def close(self) -> None:
        """Stop early: cancel queued tasks and release the input."""
        close_values = getattr(self._values, "close", None)
        if close_values is not None:
            close_values()
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        self._finish()

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
