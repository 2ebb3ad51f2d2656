"""Results written to disk while a run goes on, in files of bounded size.

::

    batch results ──results_frame──> pending rows ── every max_rows rows ──┐
                                                                           v
           reduce_mem_usage (optional) ── split until each piece fits max_mem
                                                                           │
      columns: unique text names; a column the format cannot keep -> text  │
                                                                           v
    folder/part-000000.parquet  <── os.replace <── fsync <── .part-000000.parquet.<hex>.tmp
           part-000001.parquet
           _results.json        (format, names, dtypes and conversions, for read_results)

Each file holds consecutive rows, and files are numbered in the order their rows
arrive (see ``parallelize.results.folder`` for the layout of the folder). A
file is written under a hidden temporary name, flushed, fsynced and renamed
(``atomic_write``): no half-written file is ever
visible under a final name, even after a crash. The manifest is written before
the file it describes, so a crash never leaves a file read with a wrong layout.
If the run stops on an error, the rows received before it are written first,
then the error is raised.

Parquet (the default) needs pyarrow (``pip install "parallelize[parquet]"``);
without it parallelize raises ``BackendUnavailableError``
before any work is done rather than silently switching format. CSV needs
nothing extra. ``read_results`` gives back the
frame that was written: CSV floats exactly, dtypes as they were, strings such
as ``"n/a"`` or ``"001"`` as strings.

**No value stops the writing.** A column that a file cannot store as it is
(Parquet refuses ``"n/a"`` among integers, a dict, a set, an object of your own
class, bytes mixed with str; CSV holds only text, so anything in an object
column but plain strings) is stored *as text* in that file, with one kind per
row that tells ``read_results`` how to get each value back (the table of kinds
is in ``parallelize.results.text``).

Each such column is reported in ``WriteSummary.conversions`` (which file,
which column, why) and in ``str(summary)``; so is a column whose type changes
from one file to the next (integers in one, strings in the next): each file
keeps its own type and ``read_results`` gives every value back, but a reader
that takes one file's schema for the whole folder (a Parquet dataset) may
refuse the folder. Parquet stores lists and tuples as lists, read back as
numpy arrays.

**Column names need not be strings.** Each column is stored under a unique text
name (``0`` as ``"0"``; a name met twice, or taken by the index, as
``"name~1"``) and its real name is kept in ``_results.json``: str, int, float,
bool, None and tuples of these come back exactly, anything else as its repr
(reported). ``read_results(folder).columns`` equals the written frame's columns.

If a file cannot be written at all (disk full, no permission), the error is an
``OSError`` naming the folder, the part and the rows left unwritten.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..durable import atomic_write, fsync_dir
from ..errors import ConfigError
from ..validate import check_choice, check_int
from ..worker.batch import BatchResult
from .columns import Slot, arrow_refusal, choose, family, stored_frame, text_columns, with_kinds
from .folder import FORMATS, INDEX_FIELD, MANIFEST, MANIFEST_VERSION, part_name, prepare_folder, require_pyarrow
from .frame import META_COLUMNS, FrameLayout, meta_last, results_frame
from .memory import reduce_mem_usage as _reduce_mem_usage
from .summary import Conversion, WriteSummary
from .text import label_exact, label_json, label_text, shown_label

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = ["PartWriter", "split_by_memory", "write_results"]

_MB = 2**20


def _note(exc: BaseException, text: str) -> None:
    """Attach ``text`` to ``exc`` (Python 3.11+), else say it as a warning: never drop it."""
    if hasattr(exc, "add_note"):
        exc.add_note(text)
    else:  # pragma: no cover - Python 3.10
        warnings.warn(text, RuntimeWarning, stacklevel=3)


def split_by_memory(frame: pd.DataFrame, limit: int) -> list[pd.DataFrame]:
    """Consecutive slices of ``frame`` each taking at most ``limit`` bytes (a row
    bigger than that on its own stays whole)."""
    size = int(frame.memory_usage(deep=True).sum())
    if size <= limit or len(frame) <= 1:
        return [frame]
    n = min(math.ceil(size / limit), len(frame))
    bounds = [len(frame) * k // n for k in range(n + 1)]
    pieces: list[pd.DataFrame] = []
    for a, b in pairwise(bounds):
        # Rows differ in size: a slice may still be over the limit, so check again.
        pieces.extend(split_by_memory(frame.iloc[a:b], limit))
    return pieces


class PartWriter:
    """Accumulates frames and writes them out ``max_rows`` rows at a time."""

    def __init__(self, folder: Path, fmt: str, max_rows: int, max_mem: int | None, reduce: bool) -> None:
        self.folder = folder
        self.fmt = fmt
        self.max_rows = max_rows
        self.max_mem = max_mem
        self.reduce = reduce
        self.pending: list[pd.DataFrame] = []
        self.pending_rows = 0
        self.files: list[Path] = []
        self.rows = 0
        self.bytes = 0
        self.saved = 0
        self.index_names: list[Any] | None = None
        self.complete = False
        # Stored names: the same column gets the same one in every file.
        self.index_stored: list[str | None] | None = None
        self.names: dict[str, str] = {}
        self.used: set[str] = set()
        # Each layout holds from its part number ("from") until the next one.
        self.layouts: list[dict[str, Any]] = []
        self.conversions: list[Conversion] = []
        self.families: dict[str, tuple[str, str, str]] = {}  # key -> (family, type shown, file)
        self.named: set[str] = set()  # keys whose inexact name is reported

    def add(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            if self.index_names is None:
                self.index_names = list(frame.index.names)
            return
        self.pending.append(frame)
        self.pending_rows += len(frame)
        if self.pending_rows >= self.max_rows:
            self._drain(final=False)

    def _drain(self, final: bool) -> None:
        if not self.pending:
            return
        import pandas as pd

        frame = self.pending[0] if len(self.pending) == 1 else meta_last(pd.concat(self.pending))
        self.pending = [frame]
        self.pending_rows = len(frame)
        before = self.rows
        start = 0
        try:
            while len(frame) - start >= self.max_rows or (final and start < len(frame)):
                self._write(frame.iloc[start : start + self.max_rows])
                start += self.max_rows
        except BaseException as exc:
            # Keep every row not yet in a file, so that close() can try again.
            rest = frame.iloc[self.rows - before :]
            self.pending = [rest] if len(rest) else []
            self.pending_rows = len(rest)
            if isinstance(exc, OSError) and len(rest):
                raise self._lost(exc, rest) from exc
            raise
        rest = frame.iloc[start:]
        self.pending = [rest] if len(rest) else []
        self.pending_rows = len(rest)

    def _lost(self, exc: OSError, rest: pd.DataFrame) -> OSError:
        """The disk error, naming the folder, the part and the rows left unwritten."""
        part = part_name(len(self.files), self.fmt)
        first, last = (shown_label(rest.index[i]) for i in (0, -1))
        message = (
            f"could not write {part} in the folder {str(self.folder)!r}: {exc}. "
            f"{self.rows} row(s) are safe in the {len(self.files)} file(s) before it, but "
            f"{len(rest)} computed row(s) (index {first} to {last}) are not written; "
            "free some space or fix the folder's permissions, then run those tasks again"
        )
        # OSError(errno, ...) is the subclass of that errno (PermissionError...).
        return OSError(exc.errno, message) if exc.errno is not None else OSError(message)

    def _write(self, frame: pd.DataFrame) -> None:
        if self.reduce:
            frame, report = _reduce_mem_usage(frame)
            self.saved += report.saved
        pieces = [frame] if self.max_mem is None else split_by_memory(frame, self.max_mem)
        for piece in pieces:
            self._write_file(piece)

    # -- one file --------------------------------------------------------------------

    def _write_file(self, frame: pd.DataFrame) -> None:
        import pandas as pd

        if self.index_names is None:
            self.index_names = list(frame.index.names)
        path = self.folder / part_name(len(self.files), self.fmt)
        slots = self._slots(frame, pd)
        if self.fmt == "parquet":
            payload = self._parquet(slots, pd)
            write: Any = lambda f: f.write(payload)  # noqa: E731
        else:
            stored = stored_frame(slots, pd)
            write = lambda f: stored.to_csv(f)  # noqa: E731
        found, families = self._conversions(slots, path, pd)
        self._use_layout(self._layout(slots, frame, pd), found)
        atomic_write(path, write, binary=self.fmt == "parquet")
        fsync_dir(self.folder)
        self.files.append(path)
        self.rows += len(frame)
        self.bytes += path.stat().st_size
        self.conversions.extend(found)
        self.families.update(families)

    def _reserve(self, names: list[Any]) -> None:
        """Stored names of the index levels, taken once for the whole run."""
        stored: list[str | None] = []
        for i, name in enumerate(names):
            if name is None and self.fmt == "parquet":
                stored.append(None)  # pyarrow names it __index_level_<i>__ and restores None
            elif type(name) is str and name and name not in stored and not INDEX_FIELD.fullmatch(name):
                stored.append(name)
            else:
                stored.append(f"__index_level_{i}__")
        self.index_stored = stored
        # CSV: an empty header is read back as "Unnamed: 0"; index and column names share the header.
        self.used = {s for s in stored if s} | {f"__index_level_{i}__" for i in range(len(names))} | {""}

    def _stored_name(self, key: str, label: Any) -> str:
        name = self.names.get(key)
        if name is None:
            base = label if type(label) is str else label_text(label)
            name, n = base, 0
            while name in self.used:
                n += 1
                name = f"{base}~{n}"
            self.used.add(name)
            self.names[key] = name
        return name

    def _slots(self, frame: pd.DataFrame, pd: Any) -> list[Slot]:
        names = list(frame.index.names)
        if self.index_stored is None or len(self.index_stored) != len(names):
            self._reserve(names)
        assert self.index_stored is not None
        slots = [
            Slot(name, f"index:{i}", self.index_stored[i], frame.index.get_level_values(i), True)
            for i, name in enumerate(names)
        ]
        count: dict[str, int] = {}
        for i, label in enumerate(frame.columns):
            data = json.dumps(label_json(label), sort_keys=True)
            count[data] = count.get(data, 0) + 1
            key = json.dumps([json.loads(data), count[data]])  # the n-th column of that name
            slots.append(Slot(label, key, self._stored_name(key, label), frame.iloc[:, i], False))
        for slot in slots:
            choose(slot, self.fmt, pd)
        return slots

    def _parquet(self, slots: list[Slot], pd: Any) -> bytes:
        """The Parquet bytes of the file; a column pyarrow or Parquet refuses is
        turned into text, and the file written all the same."""
        import pyarrow as pa

        pq = require_pyarrow("writing")
        forced = [s for s in slots if not s.index and isinstance(s.label, str) and s.label in META_COLUMNS[1:]]
        while True:
            try:
                table = pa.Table.from_pandas(stored_frame(slots, pd), preserve_index=True)
                table = text_columns(pa, table, [s.stored for s in slots if s.mode == "text" or s in forced])
                table = with_kinds(table, slots)
                buffer = io.BytesIO()
                pq.write_table(table, buffer)
                return buffer.getvalue()
            except OSError:
                raise
            except Exception as exc:  # ArrowInvalid, ArrowTypeError, OverflowError, ArrowNotImplementedError
                left = [s for s in slots if s.mode != "text"]
                if not left:
                    _note(exc, "while writing rows to Parquet with every column as text")
                    raise
                # Which columns: each one alone; if none fails alone, every one left.
                refusals = [(s, arrow_refusal(pa, pq, s.values)) for s in left]
                bad = [(s, e) for s, e in refusals if e is not None] or [(s, exc) for s in left]
                for s, error in bad:
                    why = f"{type(error).__name__}: {error}"
                    s.to_text(f", which pyarrow refused ({why[:200]})", pd)

    def _conversions(
        self, slots: list[Slot], path: Path, pd: Any
    ) -> tuple[list[Conversion], dict[str, tuple[str, str, str]]]:
        """What this file changes (text, type, names) and the types it stores."""
        found: list[Conversion] = []
        families: dict[str, tuple[str, str, str]] = {}
        for s in slots:
            if not s.index and s.key not in self.named and not label_exact(label_json(s.label)):
                self.named.add(s.key)
                reason = (
                    f"the name comes back as its repr {s.stored!r}: only str, int, float, bool, None "
                    "and tuples of these come back exactly"
                )
                found.append(Conversion(path, s.label, "name", reason))
            if s.mode == "text":
                found.append(Conversion(path, s.label, "text", s.reason, s.index))
                continue
            held = family(s.values, pd)
            if held is None:
                continue
            shown = str(s.values.dtype) if s.values.dtype != object else held
            previous = self.families.get(s.key)
            if previous is not None and previous[0] != held:
                reason = f"{previous[1]} in {previous[2]}, {shown} here"
                found.append(Conversion(path, s.label, "type", reason, s.index))
            families[s.key] = (held, shown, path.name)
        return found, families

    def _layout(self, slots: list[Slot], frame: pd.DataFrame, pd: Any) -> dict[str, Any]:
        columns = frame.columns
        return {
            "index": [s.entry(self.fmt == "csv") for s in slots if s.index],
            "columns": [s.entry(self.fmt == "csv") for s in slots if not s.index],
            "labels": {
                "dtype": str(columns.dtype),
                "multi": isinstance(columns, pd.MultiIndex),
                "names": [label_json(n) for n in columns.names],
            },
        }

    def _use_layout(self, layout: dict[str, Any], found: list[Conversion]) -> None:
        """Record the layout of the next part in the manifest *before* the part
        is written, so that a crash never leaves a file read with a wrong layout."""
        number = len(self.files)
        retried = bool(self.layouts) and self.layouts[-1]["from"] == number  # a failed write tried again
        if retried:
            self.layouts.pop()
        last = dict(self.layouts[-1]) if self.layouts else None
        if last is not None:
            last.pop("from")
        if last != layout:
            self.layouts.append({"from": number, **layout})
        elif not retried:
            return
        self.write_manifest(found)

    def write_manifest(self, found: Iterable[Conversion] = ()) -> None:
        data = {
            "format": self.fmt,
            "version": MANIFEST_VERSION,
            "index": self.index_names,
            "complete": self.complete,
            "files": len(self.files),
            "rows": self.rows,
            "layouts": self.layouts,
            "conversions": [
                {
                    "file": c.file.name,
                    "column": label_json(c.column),
                    "index": c.index,
                    "kind": c.kind,
                    "reason": c.reason,
                }
                for c in [*self.conversions, *found]
            ],
        }
        atomic_write(self.folder / MANIFEST, lambda f: json.dump(data, f, default=str), binary=False)

    def close(self, complete: bool = True) -> None:
        self._drain(final=True)
        self.complete = complete
        self.layouts = [layout for layout in self.layouts if layout["from"] < len(self.files)]
        try:
            self.write_manifest()
        except OSError as exc:
            message = (
                f"could not write {MANIFEST} in the folder {str(self.folder)!r}: {exc}. The {self.rows} row(s) "
                f"are in {len(self.files)} file(s) there, but read_results may not restore their names and types"
            )
            raise (OSError(exc.errno, message) if exc.errno is not None else OSError(message)) from exc
        fsync_dir(self.folder)


def write_results(
    batches: Iterable[BatchResult],
    folder: str | os.PathLike[str],
    *,
    layout: FrameLayout | None = None,
    skip_failures: bool = False,
    flatten: bool = False,
    max_rows: int = 10_000,
    max_mem: float | None = None,
    format: str = "parquet",
    reduce_mem_usage: bool = False,
    overwrite: bool = False,
) -> WriteSummary:
    """Write batch results to ``folder`` as they arrive, ``max_rows`` rows per file.

    What ``to_files`` on a stream, an execution or a ``ModelEvaluator`` calls.
    Rows are those of ``results_frame``, written in
    the order the batches arrive. Options are checked (and pyarrow looked for)
    before the first batch is pulled, so a mistake costs no work.

    No value a task returns stops the writing: a column that a file cannot
    store as it is (``"n/a"`` among integers, dicts, sets, objects of your own
    classes) is stored as text in that file, with what ``read_results``
    needs to give the values back, and reported in
    ``WriteSummary.conversions``; so is a column changing type from one
    file to the next. Column names need not be strings (see
    ``parallelize.results.files``).

    Args:
        batches: batch results with their ``items`` attached.
        folder: the output folder, created if needed.
        layout: how inputs become the index and parameter columns.
        skip_failures: leave failed tasks out (``on_error="skip"``).
        flatten: each task returned a list of results (``queue`` style).
        max_rows: rows per file (default 10,000); the last file may have fewer.
        max_mem: if set, a file's rows are split further into consecutive files
            each taking at most this many megabytes (2**20 bytes) in memory, as
            measured by ``DataFrame.memory_usage(deep=True)``; a single row
            larger than that gets a file of its own. Sizes on disk differ
            (Parquet compresses; CSV text of numbers can be larger).
        format: ``"parquet"`` (default) or ``"csv"``.
        reduce_mem_usage: downcast each file's numeric columns first, keeping
            every value (see ``reduce_mem_usage``);
            dtypes may then differ between files.
        overwrite: delete the ``part-*`` files and manifest already in
            ``folder`` first; otherwise such a folder is an error.

    Returns:
        A ``WriteSummary``.

    Raises:
        ConfigError: a bad option, or ``folder`` already holds results.
        BackendUnavailableError: ``format="parquet"`` and pyarrow is missing.
        OSError: a file could not be written (disk full, no permission); the
            message names the folder, the part and the rows not written.
        Exception: an error raised by the run, after the rows received before
            it are written.
    """
    check_choice("format", format, sorted(FORMATS))
    check_int("max_rows", max_rows, minimum=1)
    limit: int | None = None
    if max_mem is not None:
        if isinstance(max_mem, bool) or not isinstance(max_mem, (int, float)) or not max_mem > 0 or math.isinf(max_mem):
            raise ConfigError(f"max_mem must be a positive number of megabytes or None, got {max_mem!r}")
        limit = max(int(max_mem * _MB), 1)
    if format == "parquet":
        require_pyarrow("writing")
    folder = Path(folder)
    prepare_folder(folder, overwrite)
    writer = PartWriter(folder, format, max_rows, limit, reduce_mem_usage)
    try:
        for batch in batches:
            writer.add(results_frame([batch], layout, skip_failures=skip_failures, flatten=flatten))
    except BaseException as exc:
        # Keep what was computed: write the rows received before the error.
        try:
            writer.close(complete=False)
        except Exception as write_error:
            if str(write_error) != str(exc):  # not the same disk error once more
                _note(exc, f"the rows received before this error could not be written: {write_error}")
        raise
    writer.close()
    return WriteSummary(
        folder=folder,
        files=tuple(writer.files),
        rows=writer.rows,
        bytes=writer.bytes,
        format=format,
        memory_saved=writer.saved,
        conversions=tuple(writer.conversions),
    )
