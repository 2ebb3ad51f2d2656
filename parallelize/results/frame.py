"""Batch results as a pandas DataFrame: one row per task, inputs beside outputs.

::

    BatchResult(first, items, values, durations, failures, worker)
        │ one row per task (a list of dicts: one row per dict)
        v
    index: task position  │ parameters │ outputs │ duration │ worker │ error

- **Index**: the task's position in the input (named ``task``); for
  ``map_rows`` the input frame's own index labels (and names) instead. A task
  that returned a list of dicts gives several rows sharing its index value.
- **Parameters**: a mapping input (a :class:`~parallelize.Params` point, a dict)
  gives one column per key; a ``starmap`` tuple gives ``arg0, arg1, ...``; any
  other input gives an ``input`` column; ``map_rows`` gives none (join the
  result to the input frame on the index).
- **Outputs**: a mapping return value gives one column per key; a non-empty list
  of mappings gives one row per mapping; anything else a ``result`` column.
- **duration** (seconds the task took in its worker), **worker** (the worker's
  name) and **error** (``"ExceptionType: message"`` for a failed task, missing
  for a success). A failure has no outputs; under ``on_error="skip"`` it has no row.

Names never overwrite each other: a parameter named like one of the three
columns above is renamed ``param_<name>``, and an output named like a parameter
or one of those columns is renamed ``result_<name>``.

Anything that holds batch results (a ``map`` stream, an execution, a
``ModelEvaluator``) gets ``to_dataframe()`` and ``to_files()`` from
:class:`TabularResults` by saying which batches to use (:class:`TableSource`).

pandas is imported only when a frame is built, so importing parallelize (in
the parent or in a worker process) stays cheap.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Hashable, Iterable

from ..validate import check_choice
from ..worker.batch import BatchResult

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from .writer import WriteSummary

__all__ = [
    "FrameLayout",
    "META_COLUMNS",
    "TASK_INDEX",
    "TableSource",
    "TabularResults",
    "batch_tail",
    "results_frame",
]

#: The columns parallelize adds after the parameters and outputs.
META_COLUMNS = ("duration", "worker", "error")

#: The name of the index holding each task's input position.
TASK_INDEX = "task"

#: How an input item becomes parameter columns (see :class:`FrameLayout`).
INPUT_KINDS = ("arg", "star", "kwargs", "rows")


@dataclass(frozen=True)
class FrameLayout:
    """How the inputs of a run become the index and parameter columns of its frame.

    Attributes:
        inputs: ``"arg"`` (``map``: a mapping input gives its keys as columns,
            anything else an ``input`` column), ``"kwargs"`` (a space or dicts:
            keys as columns), ``"star"`` (``starmap``: ``arg0, arg1, ...``) or
            ``"rows"`` (``map_rows``: each input is ``(label, row)``; the label
            becomes the index and no parameter columns are added).
        index_names: names of the index levels; ``("task",)`` by default, the
            input frame's index names for ``"rows"``.

    Raises:
        ConfigError: an unknown ``inputs`` kind.
    """

    inputs: str = "arg"
    index_names: tuple[Hashable, ...] = (TASK_INDEX,)

    def __post_init__(self) -> None:
        check_choice("inputs", self.inputs, INPUT_KINDS)


def _is_rows(value: Any) -> bool:
    """A non-empty list of mappings: one output row per mapping."""
    return type(value) is list and bool(value) and all(isinstance(v, Mapping) for v in value)


def batch_tail(result: BatchResult, left: int, skip_failures: bool) -> BatchResult | None:
    """The part of ``result`` whose values have not been handed out yet.

    A stream that yielded some of a batch's values and is then turned into a
    frame must start right after the last value the caller received.

    Args:
        result: the batch being consumed.
        left: how many of its (visible) values were not handed out yet.
        skip_failures: failures were hidden from the caller (``on_error="skip"``).

    Returns:
        A batch result starting at the first value not handed out, or ``None``
        if nothing is left.
    """
    n = len(result.values)
    if left <= 0:
        return None
    if skip_failures and result.failures:
        bad = set(result.failures)
        shown = [i for i in range(n) if i not in bad]
        start = shown[len(shown) - left]
    else:
        start = n - left
    items = result.items
    return BatchResult(
        first=result.first + start,
        values=result.values[start:],
        durations=result.durations[start:],
        failures=[p - start for p in result.failures if p >= start],
        worker=result.worker,
        elapsed=result.elapsed,
        items=None if items is None else list(items[start:]),
    )


def _dedupe(names: Iterable[Hashable], taken: set[Hashable], prefix: str) -> list[Hashable]:
    out = []
    for name in names:
        new = name
        while new in taken:
            new = f"{prefix}{new}"
        taken.add(new)
        out.append(new)
    return out


def _as_dict(value: Mapping[Any, Any]) -> dict[Any, Any]:
    return value if type(value) is dict else dict(value.items())


class _Rows:
    """Column-wise accumulation of the rows of a frame, one task at a time."""

    def __init__(self, layout: FrameLayout) -> None:
        self.kind = layout.inputs
        self.index: list[Any] = []
        self.inputs: list[Any] = []
        self.mapping_inputs = False
        self.outputs: list[Any] = []
        self.dict_outputs = False
        self.durations: list[float] = []
        self.workers: list[str | None] = []
        self.errors: list[str | None] = []

    def add_batch(self, b: BatchResult, skip_failures: bool, flatten: bool) -> None:
        failed = set(b.failures)
        items = b.items
        durations = b.durations
        worker = b.worker or None
        rows_kind = self.kind == "rows"
        nan = math.nan
        for j, value in enumerate(b.values):
            is_failure = j in failed
            if is_failure and skip_failures:
                continue
            item = items[j] if items is not None and j < len(items) else None
            if rows_kind:
                label = item[0] if item is not None else b.first + j
                item = None
            else:
                label = b.first + j
            duration = durations[j] if j < len(durations) else nan
            if is_failure:
                self._row(label, item, _NO_OUTPUT, duration, worker, value.describe())
            elif flatten:
                for part in value:
                    self._outputs(label, item, part, duration, worker)
            else:
                self._outputs(label, item, value, duration, worker)

    def _outputs(self, label: Any, item: Any, value: Any, duration: float, worker: str | None) -> None:
        if _is_rows(value):
            for part in value:
                self._row(label, item, part, duration, worker, None)
        else:
            self._row(label, item, value, duration, worker, None)

    def _row(self, label: Any, item: Any, output: Any, duration: float, worker: str | None, error: str | None) -> None:
        self.index.append(label)
        self.inputs.append(item)
        if isinstance(item, Mapping):
            self.mapping_inputs = True
        self.outputs.append(output)
        if isinstance(output, Mapping):
            self.dict_outputs = True
        self.durations.append(duration)
        self.workers.append(worker)
        self.errors.append(error)

    # -- building ------------------------------------------------------------------

    def input_frame(self, pd: Any) -> Any:
        n = len(self.index)
        kind = self.kind
        if kind == "rows" or n == 0:
            return pd.DataFrame(index=pd.RangeIndex(n))
        if kind == "star":
            tuples = [() if t is None else tuple(t) for t in self.inputs]
            widths = {len(t) for t in tuples}
            if len(widths) == 1:
                width = widths.pop()
                if width == 0:
                    return pd.DataFrame(index=pd.RangeIndex(n))
                return pd.DataFrame(tuples, columns=[f"arg{i}" for i in range(width)])
            return pd.DataFrame([{f"arg{i}": v for i, v in enumerate(t)} for t in tuples], index=pd.RangeIndex(n))
        if not self.mapping_inputs:
            return pd.DataFrame({"input": self.inputs}, index=pd.RangeIndex(n))
        records = [_as_dict(v) if isinstance(v, Mapping) else ({} if v is None else {"input": v}) for v in self.inputs]
        return pd.DataFrame(records, index=pd.RangeIndex(n))

    def output_frame(self, pd: Any) -> Any:
        n = len(self.index)
        outputs = self.outputs
        if not self.dict_outputs:
            if all(v is _NO_OUTPUT for v in outputs):
                return pd.DataFrame(index=pd.RangeIndex(n))
            return pd.DataFrame({"result": [None if v is _NO_OUTPUT else v for v in outputs]}, index=pd.RangeIndex(n))
        records = [
            _as_dict(v) if isinstance(v, Mapping) else ({} if v is _NO_OUTPUT else {"result": v}) for v in outputs
        ]
        return pd.DataFrame(records, index=pd.RangeIndex(n))

    def index_object(self, pd: Any, names: tuple[Hashable, ...]) -> Any:
        if len(names) > 1:
            if not self.index:
                return pd.MultiIndex.from_arrays([[] for _ in names], names=list(names))
            return pd.MultiIndex.from_tuples(self.index, names=list(names))
        return pd.Index(self.index, name=names[0] if names else None)


class _NoOutput:
    """Marks a failed task's row: no output columns, not even ``result``."""

    def __repr__(self) -> str:
        return "<no output>"


_NO_OUTPUT = _NoOutput()


def results_frame(
    batches: Iterable[BatchResult],
    layout: FrameLayout | None = None,
    *,
    skip_failures: bool = False,
    flatten: bool = False,
) -> pd.DataFrame:
    """Build the results frame of some batch results, in input order.

    Args:
        batches: batch results (with their ``items`` attached), in any order.
        layout: how inputs become the index and parameter columns; default
            ``FrameLayout()`` (``map`` style).
        skip_failures: leave failed tasks out (``on_error="skip"``).
        flatten: each task returned a list of results, one row each (the
            ``queue`` style of ``Parallelize.run``).

    Returns:
        A DataFrame indexed by task position (or by the input frame's labels for
        ``map_rows``), with parameter, output, ``duration``, ``worker`` and
        ``error`` columns; see the module documentation for the exact rules.
    """
    import pandas as pd

    layout = layout or FrameLayout()
    rows = _Rows(layout)
    for b in sorted(batches, key=lambda b: b.first):
        rows.add_batch(b, skip_failures, flatten)
    inputs = rows.input_frame(pd)
    outputs = rows.output_frame(pd)
    meta = pd.DataFrame(
        {
            "duration": pd.array(rows.durations, dtype="float64"),
            "worker": pd.Series(rows.workers, dtype=object),
            "error": pd.Series(rows.errors, dtype=object),
        },
        index=pd.RangeIndex(len(rows.index)),
    )
    taken: set[Hashable] = set(META_COLUMNS)
    names = _dedupe(inputs.columns, taken, "param_") + _dedupe(outputs.columns, taken, "result_")
    frame = pd.concat([inputs, outputs, meta], axis=1)
    frame.columns = names + list(META_COLUMNS)
    frame.index = rows.index_object(pd, layout.index_names)
    return frame


@dataclass(frozen=True)
class TableSource:
    """The batch results to tabulate, and how: what :class:`TabularResults` asks for.

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
    """Gives a holder of batch results :meth:`to_dataframe` and :meth:`to_files`.

    Subclasses say which batches to use in :meth:`_table_source`: a ``map``
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
        :mod:`parallelize.results.frame` for the exact rules.

        An :class:`~parallelize.engine.execution.Execution` or a ``ModelEvaluator``
        waits for the run to end and can be asked again. A ``map`` stream is
        consumed: one already partly iterated gives only the tasks whose values
        were not yet handed out, and is exhausted afterwards.

        Returns:
            A :class:`pandas.DataFrame`.

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
            if hasattr(exc, "add_note"):
                exc.add_note(f"the {len(frame)} rows finished before this error are on it as .partial_frame")
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
        """Write the rows of :meth:`to_dataframe` to files as the results arrive.

        Every ``max_rows`` rows go to ``part-000000.parquet``,
        ``part-000001.parquet``... in the order the results arrive: input order,
        except for the stream of a map started with ``ordered=False``. Returns
        once the last row is written: like :meth:`to_dataframe`, it waits for
        the run of an execution or ``ModelEvaluator`` and consumes the rest of a
        stream. Read the files back with :func:`parallelize.read_results`. See
        :func:`parallelize.results.writer.write_results`.

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
                (values unchanged; see :func:`parallelize.reduce_mem_usage`).
            overwrite: replace results already in ``folder`` (else an error).

        Returns:
            A :class:`~parallelize.results.writer.WriteSummary` (files, rows, bytes, and
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
        from .writer import write_results  # writer builds on this module

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
