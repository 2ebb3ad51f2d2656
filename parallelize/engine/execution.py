"""An execution running in the background: what ``run`` and ``ModelEvaluator`` start.

::

    caller ── run() returns at once ──> Execution
                                          │ background thread drains a ResultStream's
                                          v batches, appending each under a lock
    results() / statistics() <── read the kept batches, waiting for more

Unlike a ``map`` stream, an execution keeps every result, so ``results()`` can be
called any number of times and ``statistics()`` at any moment. The stream it
drains closes the progress bar and reports the statistics, as for a ``map``.
"""

from __future__ import annotations

import functools
import itertools
import threading
from typing import Any, Callable, Iterator

from ..results.tabular import TableSource, TabularResults
from ..statistics import Statistics, StatisticsCollector
from ..worker.batch import BatchResult
from .feed import Control
from .ordering import InOrder
from .stream import ResultStream

__all__ = ["Execution"]

# Seconds a Ctrl-C waits for the background engine to stop and kill its tasks.
INTERRUPT_JOIN_SECONDS = 1.5


class Execution(TabularResults):
    """Work started in the background; results are kept and streamed on demand.

    ``to_dataframe`` and ``to_files`` wait for the run to end and can be
    called repeatedly.

    Args:
        batches: the engine's batch results (consumed by a background thread).
        collector: the run's statistics.
        flatten: each task returns a list of results to be yielded one by one
            (the ``queue`` style of ``Parallelize.run``).
        skip_failures: leave failed tasks out of ``results()``.
        progress: the progress bar to close when the run ends, or ``None``.
        on_close: called once when the run ends, or ``None``.
        layout: as for ``ResultStream``.
        control: the engine's ``Control``: a Ctrl-C
            in any thread waiting on this run stops it and kills its tasks.
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
        control: Control | None = None,
    ) -> None:
        self._control = control
        self._stream: ResultStream[Any] = ResultStream(
            batches, collector, skip_failures=skip_failures, progress=progress, on_close=on_close, layout=layout
        )
        self._layout = layout
        self._flatten = flatten
        self._skip = skip_failures
        self._batches: list[BatchResult] = []
        self._cond = threading.Condition()
        self._done = False
        self._error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._drive, name="parallelize-execution", daemon=True)
        self._thread.start()

    def _drive(self) -> None:
        # The stream closes the progress bar and calls on_close when its batches
        # end or fail, or when it is closed: always before _done is set.
        try:
            for result in self._stream.batches():
                # Keep a batch that arrived during cancel(): its tasks ran and are
                # counted in the statistics, so results() must show them too.
                with self._cond:
                    self._batches.append(result)
                    self._cond.notify_all()
                if self._stopping:
                    self._stream.close()
                    break
        except BaseException as exc:  # kept and re-raised in the caller's thread
            self._error = exc
        finally:
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
        try:
            with self._cond:
                return self._cond.wait_for(lambda: self._done, timeout)
        except KeyboardInterrupt:
            self.interrupt()
            raise

    def interrupt(self) -> None:
        """Stop the run now, as Ctrl-C does: running tasks are killed where the backend can.

        Waits (about a second at most) for the engine to stop.
        """
        self._stopping = True
        if self._control is not None:
            self._control.interrupt()
        self._thread.join(timeout=INTERRUPT_JOIN_SECONDS)

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
        in_order = InOrder()
        while True:
            try:
                with self._cond:
                    self._cond.wait_for(functools.partial(self._has_more, i))
                    new = self._batches[i:]
                    finished = self._done
            except KeyboardInterrupt:
                self.interrupt()  # outside the lock: the driver needs it to stop
                raise
            i += len(new)
            if not ordered:
                yield from new
            else:
                for b in new:
                    yield from in_order.add(b)
            if finished and i == len(self._batches):
                if ordered:
                    # After an error some batches may be missing: yield the rest in order.
                    yield from in_order.rest()
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
        # A batch's values are handed out by itertools.chain, at C speed: a
        # generator yielding them one by one cost about 50 ns a value.
        return itertools.chain.from_iterable(map(self._values, self.batches(ordered)))

    def _values(self, b: BatchResult) -> Any:
        """A batch's results as ``results()`` gives them."""
        if not b.failures and not self._flatten:
            return b.values
        return self._mixed_values(b)

    def _mixed_values(self, b: BatchResult) -> Iterator[Any]:
        failed = set(b.failures)
        for j, v in enumerate(b.values):
            if j in failed:
                if not self._skip:
                    yield v
            elif self._flatten:
                yield from v
            else:
                yield v

    def statistics(self) -> Statistics:
        """A frozen snapshot of this run's statistics, at any moment."""
        return self._stream.statistics()

    def _table_source(self) -> TableSource:
        return TableSource(self.batches(ordered=True), self._layout, self._skip, self._flatten)

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
