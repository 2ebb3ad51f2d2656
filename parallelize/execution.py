"""An execution running in the background: what ``run`` and ``ModelEvaluator`` start.

::

    caller ── run() returns at once ──> Execution
                                          │ background thread drives dispatch(),
                                          v appending each BatchResult under a lock
    results() / statistics() <── read the kept batches, waiting for more

Unlike a ``map`` stream, an execution keeps every result, so ``results()`` can be
called any number of times and ``statistics()`` at any moment.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .statistics import Statistics, StatisticsCollector
from .task import BatchResult

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from .writer import WriteSummary

__all__ = ["Execution"]


class Execution:
    """Work started in the background; results are kept and streamed on demand.

    Args:
        batches: the engine's batch results (consumed by a background thread).
        collector: the run's statistics.
        flatten: each task returns a list of results to be yielded one by one
            (the ``queue`` style of ``Parallelize.run``).
        skip_failures: leave failed tasks out of ``results()``.
        progress: the progress bar to close at the end, or ``None``.
        layout: how inputs become columns in :meth:`to_dataframe` (a
            :class:`~parallelize.dataframe.FrameLayout`); default ``map`` style.
    """

    def __init__(
        self,
        batches: Iterator[BatchResult],
        collector: StatisticsCollector,
        *,
        flatten: bool = False,
        skip_failures: bool = False,
        progress: Any = None,
        on_close: Callable[[], None] | None = None,
        layout: Any = None,
    ) -> None:
        self._layout = layout
        self._source = batches
        self._collector = collector
        self._flatten = flatten
        self._skip = skip_failures
        self._progress = progress
        self._on_close = on_close
        self._batches: list[BatchResult] = []
        self._cond = threading.Condition()
        self._done = False
        self._error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._drive, name="parallelize-execution", daemon=True)
        self._thread.start()

    def _drive(self) -> None:
        try:
            for result in self._source:
                # Keep a batch that arrived during cancel(): its tasks ran and are
                # counted in the statistics, so results() must show them too.
                with self._cond:
                    self._batches.append(result)
                    self._cond.notify_all()
                if self._stopping:
                    close = getattr(self._source, "close", None)
                    if close is not None:
                        close()
                    break
        except BaseException as exc:  # kept and re-raised in the caller's thread
            self._error = exc
        finally:
            if self._progress is not None:
                self._progress.close()
            if self._on_close is not None:
                self._on_close()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    # -- waiting -----------------------------------------------------------------

    def done(self) -> bool:
        """Whether every task has finished (or the run stopped on an error)."""
        return self._done

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends or ``timeout`` seconds pass.

        Returns:
            True if the run has ended.
        """
        with self._cond:
            return self._cond.wait_for(lambda: self._done, timeout)

    @property
    def error(self) -> BaseException | None:
        """The error that stopped the run, if any (``on_error="raise"``)."""
        return self._error

    # -- results -----------------------------------------------------------------

    def _has_more(self, seen: int) -> bool:
        return self._done or len(self._batches) > seen

    def batches(self, ordered: bool = False) -> Iterator[BatchResult]:
        """Kept batch results, waiting for more until the run ends.

        Args:
            ordered: in input order rather than completion order.

        Raises:
            Exception: the error that stopped the run, after every batch before it.
        """
        i = 0
        pending: dict[int, BatchResult] = {}
        next_first = 0
        while True:
            with self._cond:
                self._cond.wait_for(functools.partial(self._has_more, i))
                new = self._batches[i:]
                finished = self._done
            i += len(new)
            if not ordered:
                yield from new
            else:
                for b in new:
                    pending[b.first] = b
                while next_first in pending:
                    b = pending.pop(next_first)
                    next_first += len(b.items) if b.items is not None else len(b.values)
                    yield b
            if finished and i == len(self._batches):
                if ordered:
                    # After an error some batches may be missing: yield the rest in order.
                    for first in sorted(pending):
                        yield pending[first]
                if self._error is not None:
                    raise self._error
                return

    def results(self, ordered: bool = False) -> Iterator[Any]:
        """Stream the results, waiting for outstanding work; callable repeatedly.

        Args:
            ordered: yield in input order (else in completion order, the default).

        Raises:
            Exception: under ``on_error="raise"``, the task's error once the results
                received before it have been yielded.
        """
        skip = self._skip
        flatten = self._flatten
        for b in self.batches(ordered):
            if not b.failures and not flatten:
                yield from b.values
                continue
            failed = set(b.failures)
            for j, v in enumerate(b.values):
                if j in failed:
                    if not skip:
                        yield v
                elif flatten:
                    yield from v
                else:
                    yield v

    def statistics(self) -> Statistics:
        """A frozen snapshot of this run's statistics, at any moment."""
        return self._collector.snapshot()

    def to_dataframe(self) -> pd.DataFrame:
        """Wait for the run to end and return every result as a DataFrame.

        One row per task, in input order (a task that returned a list of dicts
        gives one row per dict): the parameters as columns, the outputs (a
        dict's keys, else ``result``), ``duration`` (seconds), ``worker`` and
        ``error`` (``"Type: message"`` for a failure under ``on_error="collect"``).
        The index is the task's input position, named ``task``. See
        :mod:`parallelize.dataframe` for the exact rules. Callable repeatedly.

        Returns:
            A :class:`pandas.DataFrame`.

        Raises:
            Exception: the error that stopped the run (``on_error="raise"``).
        """
        from .dataframe import results_frame

        return results_frame(self.batches(ordered=True), self._layout, skip_failures=self._skip, flatten=self._flatten)

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
        """Write the results to files in input order as the run produces them.

        Rows (as in :meth:`to_dataframe`) go every ``max_rows`` rows to
        ``part-000000.parquet``, ``part-000001.parquet``...; returns when the run
        has ended. Read them back with :func:`parallelize.read_results`. See
        :func:`parallelize.writer.write_results`.

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
            Exception: the error that stopped the run, once the rows before it
                are written.
        """
        from .writer import write_results

        return write_results(
            self.batches(ordered=True), folder, layout=self._layout, skip_failures=self._skip,
            flatten=self._flatten, max_rows=max_rows, max_mem=max_mem, format=format,
            reduce_mem_usage=reduce_mem_usage, overwrite=overwrite,
        )

    def cancel(self, wait: bool = True) -> None:
        """Stop the run: queued tasks are cancelled, running ones finish.

        Args:
            wait: block until the run has stopped.
        """
        # A generator cannot be closed from another thread while it runs, so
        # the driver thread closes it at its next batch.
        self._stopping = True
        if wait:
            self.wait()
