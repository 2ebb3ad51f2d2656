"""to_dataframe() and to_files() for anything that holds batch results.

A ``map`` stream, an execution and a ``ModelEvaluator`` each subclass
``TabularResults`` and say, in ``_table_source``, which batches to use and
how (``TableSource``); the table itself is built by
``results_frame``, the files written by
``write_results`` (imported on first use). This
module sits above both, so that neither imports the other.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from ..errors import add_note
from ..worker.batch import BatchResult
from .frame import FrameLayout, results_frame

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from .summary import WriteSummary

__all__ = ["TableSource", "TabularResults"]


@dataclass(frozen=True)
class TableSource:
    """The batch results to tabulate, and how: what ``TabularResults`` asks for.

    Attributes:
        batches: the batch results (with their ``items`` attached), pulled lazily.
        layout: how inputs become the index and parameter columns; ``None`` for
            ``map`` style.
        skip_failures: leave failed tasks out (``on_error="skip"``).
        flatten: each task returned a list of results, one row each.
    """

    batches: Iterable[BatchResult]
    layout: FrameLayout | None = None
    skip_failures: bool = False
    flatten: bool = False


class TabularResults(ABC):
    """Gives a holder of batch results ``to_dataframe`` and ``to_files``.

    Subclasses say which batches to use in ``_table_source``: a ``map``
    stream the ones it has not handed out yet, an execution every batch of
    the run in input order.
    """

    __slots__ = ()

    @abstractmethod
    def _table_source(self) -> TableSource:
        """The batches to turn into rows (a lazy iterator: nothing is pulled yet)."""

    def to_dataframe(self) -> pd.DataFrame:
        """Return the results as a DataFrame, one row per task, in input order.

        Columns: the parameters (a mapping input's keys, ``arg0, arg1...`` for
        ``starmap``, else ``input``), the outputs (a dict's keys, one row per
        dict of a returned list of dicts, else ``result``), then ``duration``
        (seconds), ``worker`` and ``error`` (``"Type: message"`` for a failed
        task under ``on_error="collect"``). The index is the task's input
        position, named ``task`` (for ``map_rows``: the input's labels; for a
        ``ModelEvaluator``: the point's position in the grid). See
        ``parallelize.results.frame`` for the exact rules.

        An ``Execution`` or a ``ModelEvaluator``
        waits for the run to end and can be asked again. A ``map`` stream is
        consumed: one already partly iterated gives only the tasks whose values
        were not yet handed out, and is exhausted afterwards.

        Returns:
            A ``pandas.DataFrame``.

        Raises:
            ConfigError: a ``ModelEvaluator`` that has not run yet.
            Exception: under ``on_error="raise"``, the error that stopped the
                run; or the input iterable's own error. Either way the rows
                finished before it are kept on the error as ``partial_frame``.
        """
        source = self._table_source()
        kept: list[BatchResult] = []
        try:
            kept.extend(source.batches)
        except Exception as exc:
            # Never throw away a finished result: what came before the error
            # (a task's under on_error="raise", the input iterable's own) goes
            # with it as a frame.
            frame = results_frame(kept, source.layout, skip_failures=source.skip_failures, flatten=source.flatten)
            try:
                exc.partial_frame = frame  # type: ignore[attr-defined]
            except AttributeError:  # an exception type that takes no attributes
                raise
            add_note(exc, f"the {len(frame)} rows finished before this error are on it as .partial_frame")
            raise
        return results_frame(kept, source.layout, skip_failures=source.skip_failures, flatten=source.flatten)

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
        """Write the rows of ``to_dataframe`` to files as the results arrive.

        Every ``max_rows`` rows go to ``part-000000.parquet``,
        ``part-000001.parquet``... in the order the results arrive: input order,
        except for the stream of a map started with ``ordered=False``. Returns
        once the last row is written: like ``to_dataframe``, it waits for
        the run of an execution or ``ModelEvaluator`` and consumes the rest of a
        stream. Read the files back with ``parallelize.read_results``. See
        ``parallelize.results.files.write_results``.

        No value stops the writing: a column a file cannot store as it is
        (``"n/a"`` among integers, dicts, sets, objects of your own classes) is
        stored as text in that file, with what ``read_results`` needs to give
        the values back, and reported in the summary's ``conversions``. Column
        names need not be strings (ints and tuples come back exactly).

        Args:
            folder: the output folder, created if needed.
            max_rows: rows per file (default 10,000).
            max_mem: split a file further so that its rows take at most this many
                megabytes (2**20 bytes) in memory; default ``None``: no limit.
            format: ``"parquet"`` (default; needs pyarrow) or ``"csv"``.
            reduce_mem_usage: downcast numeric columns of each file first
                (values unchanged; see ``parallelize.reduce_mem_usage``).
            overwrite: replace results already in ``folder`` (else an error).

        Returns:
            A ``WriteSummary`` (files, rows, bytes, and
            the columns stored as text or changing type between files).

        Raises:
            ConfigError: a bad option, ``folder`` already holds results, or a
                ``ModelEvaluator`` that has not run yet.
            BackendUnavailableError: Parquet requested and pyarrow is missing.
            OSError: a file could not be written (disk full, no permission); the
                message names the folder, the part and the rows not written.
            Exception: the error that stopped the run, once the rows before it
                are written.
        """
        # Imported on first use: a run that never writes files never loads the writer.
        from .files import write_results

        source = self._table_source()
        return write_results(
            source.batches,
            folder,
            layout=source.layout,
            skip_failures=source.skip_failures,
            flatten=source.flatten,
            max_rows=max_rows,
            max_mem=max_mem,
            format=format,
            reduce_mem_usage=reduce_mem_usage,
            overwrite=overwrite,
        )
