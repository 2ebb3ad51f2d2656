"""Batch results as a pandas DataFrame: one row per task, inputs beside outputs.

::

    BatchResult(first, items, values, durations, failures, worker)
        │ one row per task (a list of dicts: one row per dict)
        v
    index: task position  │ parameters │ outputs │ duration │ worker │ error

- **Index**: the task's position in the input (named ``task``); for
  ``map_rows`` the input frame's own index labels (and names) instead. A task
  that returned a list of dicts gives several rows sharing its index value.
- **Parameters**: a mapping input (a ``Params`` point, a dict)
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
``TabularResults``.

pandas is imported only when a frame is built, so importing parallelize (in
the parent or in a worker process) stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Hashable, Iterable

from ..durations import per_task
from ..validate import check_choice
from ..worker.batch import BatchResult

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = [
    "FrameLayout",
    "META_COLUMNS",
    "TASK_INDEX",
    "batch_tail",
    "meta_last",
    "results_frame",
]

#: The columns parallelize adds after the parameters and outputs.
META_COLUMNS = ("duration", "worker", "error")

#: The name of the index holding each task's input position.
TASK_INDEX = "task"

#: How an input item becomes parameter columns (see ``FrameLayout``).
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
        durations = per_task(b.durations)
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


def meta_last(frame: pd.DataFrame) -> pd.DataFrame:
    """``duration``, ``worker``, ``error`` back at the end, where results_frame puts
    them: concatenating batches whose columns differ (a batch of failures has no
    outputs) appends the missing columns after them."""
    columns = list(frame.columns)
    meta = [i for i, c in enumerate(columns) if isinstance(c, str) and c in META_COLUMNS]
    if meta == list(range(len(columns) - len(meta), len(columns))):
        return frame
    kept = set(meta)
    meta.sort(key=lambda i: META_COLUMNS.index(columns[i]))
    return frame.iloc[:, [i for i in range(len(columns)) if i not in kept] + meta]
