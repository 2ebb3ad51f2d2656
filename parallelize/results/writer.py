"""Results written to disk while a run goes on, in files of bounded size.

::

    batch results ──results_frame──> pending rows ── every max_rows rows ──┐
                                                                           v
           reduce_mem_usage (optional) ── split until each piece fits max_mem
                                                                           │
        store: unique text names; a column the format cannot keep -> text  │
                                                                           v
    folder/part-000000.parquet  <── os.replace <── fsync <── .part-000000.parquet.<hex>.tmp
           part-000001.parquet
           _results.json        (format, names, dtypes and conversions, for read_results)

Each file holds consecutive rows, and files are numbered in the order their rows
arrive, so names sort in input order for an ordered run (``part-`` plus six
digits; :func:`read_results` sorts numerically, so more than a million files
still load in order). A file is written under a hidden temporary name, flushed,
fsynced and renamed: no half-written file is ever visible under a final name,
even after a crash. If the run stops on an error, the rows received before it
are written first, then the error is raised.

Parquet (the default) needs pyarrow (``pip install "parallelize[parquet]"``);
without it parallelize raises :class:`~parallelize.errors.BackendUnavailableError`
before any work is done rather than silently switching format. CSV needs
nothing extra. ``_results.json`` records the format, the index names, whether
the run completed (``"complete": false`` after an error), and for each run of
files the stored name, real name and dtype of every column, so that
:func:`read_results` gives back the frame that was written: CSV floats exactly,
dtypes as they were, strings such as ``"n/a"`` or ``"001"`` as strings.

**No value stops the writing.** A column that a file cannot store as it is
(Parquet refuses ``"n/a"`` among integers, a dict, a set, an object of your own
class, bytes mixed with str; CSV holds only text, so anything in an object
column but plain strings) is stored *as text* in that file: each value's text
(the string itself, the digits of a number, the ``repr`` of anything else) and
one kind per row, which tells :func:`read_results` how to get the value back
(kept in the Parquet file's own metadata, or in ``_results.json`` for CSV):

=====  =============================================  ========================
kind   value                                          read back as
=====  =============================================  ========================
s      str                                            the same str
i      int of any size (numpy integers too)           the same int
f      float (numpy floats too)                       the same float
b      bool                                           the same bool
d      ``decimal.Decimal``                            the same Decimal
D t T  ``date``, ``datetime``, ``pd.Timestamp``       the same, by isoformat
                                                      (a time zone as its offset)
n m    None, NaN                                      None, NaN
a z    ``pd.NA``, ``pd.NaT``                          ``pd.NA``, ``pd.NaT``
l      a value whose repr ``ast.literal_eval`` gives  an equal value of the
       back exactly (dict, set, tuple, list, bytes,   same type
       complex... of such values)
r      anything else (objects of your own classes)    its ``repr``, a str
=====  =============================================  ========================

Each such column is reported in :attr:`WriteSummary.conversions` (which file,
which column, why) and in ``str(summary)``; so is a column whose type changes
from one file to the next (integers in one, strings in the next): each file
keeps its own type and :func:`read_results` gives every value back, but a
reader that takes one file's schema for the whole folder (a Parquet dataset)
may refuse the folder. Parquet stores lists and tuples as lists, read back as
numpy arrays.

**Column names need not be strings.** Each column is stored under a unique text
name (``0`` as ``"0"``; a name met twice, or taken by the index, as
``"name~1"``) and its real name is kept in ``_results.json``: str, int, float,
bool, None and tuples of these come back exactly, anything else as its repr
(reported). ``read_results(folder).columns`` equals the written frame's columns.

If a file cannot be written at all (disk full, no permission), the error is an
:class:`OSError` naming the folder, the part and the rows left unwritten.
"""

from __future__ import annotations

import ast
import bisect
import datetime
import decimal
import io
import json
import math
import os
import re
import sys
import uuid
import warnings
from dataclasses import dataclass
from itertools import groupby, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Hashable, Iterable, Literal

from ..errors import BackendUnavailableError, ConfigError
from ..validate import check_choice
from ..worker.batch import BatchResult
from .frame import META_COLUMNS, FrameLayout, results_frame
from .memory import _size
from .memory import reduce_mem_usage as _reduce_mem_usage

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = ["FORMATS", "MANIFEST", "Conversion", "WriteSummary", "read_results", "write_results"]

#: File formats and their extensions.
FORMATS = {"parquet": "parquet", "csv": "csv"}

#: The small JSON file describing a results folder.
MANIFEST = "_results.json"

#: 2 adds the stored names, dtypes and conversions ("layouts") to version 1.
_MANIFEST_VERSION = 2

_MB = 2**20
_PART = re.compile(r"part-(\d{6,})\.(parquet|csv)")
_TEMP = re.compile(r"\.part-\d{6,}\.(parquet|csv)\.[0-9a-f]+\.tmp")
_INDEX_FIELD = re.compile(r"__index_level_\d+__")  # pyarrow's name for an unnamed index level
_KINDS_KEY = b"parallelize.kinds"  # Parquet schema metadata: kinds of the columns stored as text
_PARQUET_HINT = 'writing Parquet needs pyarrow: pip install "parallelize[parquet]", or pass format="csv"'

#: What ``pandas.api.types.infer_dtype`` says of an object column that pyarrow
#: stores with one exact type (it may still refuse one, e.g. an int over 64 bits).
_ARROW_KINDS = frozenset(
    ["string", "bytes", "integer", "floating", "boolean", "decimal", "datetime", "datetime64"]
    + ["date", "time", "timedelta", "timedelta64", "period", "interval"]
)

#: Conversions shown by ``str(summary)``; the rest are in ``summary.conversions``.
_SHOWN = 5

ConversionKind = Literal["text", "type", "name"]


@dataclass(frozen=True)
class Conversion:
    """A column that one file could not keep exactly as it was in memory.

    Attributes:
        file: the file concerned.
        column: the column's name (an index level's name when ``index``).
        kind: ``"text"``: the file stores the column's values as text, with
            each value's kind, and :func:`read_results` gives them back (see :mod:`parallelize.results.writer` for what comes back);
            ``"type"``: the column has another type in this file than in an
            earlier one; ``"name"``: the name cannot be kept and comes back as
            its repr.
        reason: why, e.g. ``"values of mixed types (int, str), which Parquet
            cannot hold in one column"``.
        index: the column is a level of the index.
    """

    file: Path
    column: Hashable
    kind: ConversionKind
    reason: str
    index: bool = False

    def __str__(self) -> str:
        return _describe([self])


@dataclass(frozen=True)
class WriteSummary:
    """What :func:`write_results` wrote.

    Attributes:
        folder: the output folder.
        files: the files written, in order.
        rows: rows written in all.
        bytes: total size of the files on disk.
        format: ``"parquet"`` or ``"csv"``.
        memory_saved: bytes saved in memory by ``reduce_mem_usage`` (0 if off).
        conversions: the columns stored as text, changing type between files,
            or with a name that could not be kept, in file order (empty when
            every file holds its rows as they were).
    """

    folder: Path
    files: tuple[Path, ...]
    rows: int
    bytes: int
    format: str
    memory_saved: int = 0
    conversions: tuple[Conversion, ...] = ()

    def __str__(self) -> str:
        text = f"{self.rows} rows in {len(self.files)} {self.format} file(s) in {self.folder} ({_size(self.bytes)})"
        if self.conversions:
            text += "; " + _describe(self.conversions)
        return text


def _describe(conversions: Iterable[Conversion]) -> str:
    """One clause per (column, kind, reason), naming the files concerned."""
    groups: dict[tuple[str, bool, str, str], list[str]] = {}
    for c in conversions:
        groups.setdefault((c.kind, c.index, _safe_repr(c.column), c.reason), []).append(c.file.name)
    parts = []
    for (kind, index, column, reason), files in list(groups.items())[:_SHOWN]:
        what = f"column {column}" if not index else "the index" if column == "None" else f"index level {column}"
        where = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        if kind == "text":
            parts.append(f"{what} stored as text in {where} ({reason}); read_results gives the values back")
        elif kind == "type":
            parts.append(f"{what} changes type in {where} ({reason})")
        else:
            parts.append(f"{what}: {reason}")
    if len(groups) > _SHOWN:
        parts.append(f"{len(groups) - _SHOWN} more in summary.conversions")
    return "; ".join(parts)


def _require_pyarrow(action: str) -> Any:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq
    except ImportError as exc:
        hint = (
            _PARQUET_HINT
            if action == "writing"
            else 'reading Parquet needs pyarrow: pip install "parallelize[parquet]"'
        )
        raise BackendUnavailableError(hint) from exc
    return pq


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable; not possible (nor needed) on every platform."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Any, binary: bool) -> None:
    """Write through ``write(file)`` to a temporary name, fsync, then rename to ``path``."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        f: Any
        with open(tmp, "wb") if binary else open(tmp, "w", newline="", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def _note(exc: BaseException, text: str) -> None:
    """Attach ``text`` to ``exc`` (Python 3.11+), else say it as a warning: never drop it."""
    if hasattr(exc, "add_note"):
        exc.add_note(text)
    else:  # pragma: no cover - Python 3.10
        warnings.warn(text, RuntimeWarning, stacklevel=3)


def _split_by_memory(frame: pd.DataFrame, limit: int) -> list[pd.DataFrame]:
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
        pieces.extend(_split_by_memory(frame.iloc[a:b], limit))
    return pieces


def _meta_last(frame: pd.DataFrame) -> pd.DataFrame:
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


# -- values and names as text -----------------------------------------------------


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a user's __repr__ may raise; the row is kept all the same
        return f"<{type(value).__qualname__} object (repr failed)>"


def _as_python(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (numpy 2's repr is ``np.int64(5)``)."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic) and not isinstance(value, (np.datetime64, np.timedelta64)):
        return value.item()
    return value


def _is_literal(text: str, value: Any) -> bool:
    """``ast.literal_eval(text)`` gives back a value equal to ``value``, of its type."""
    try:
        back = ast.literal_eval(text)
        return type(back) is type(value) and bool(back == value)
    except Exception:  # not a literal, or == is not a plain bool (arrays)
        return False


def _value_text(value: Any, pd: Any) -> tuple[str, str | None, str | None]:
    """A value's kind (see the module documentation), its text (``None`` if
    missing) and its type's name (``None`` if missing)."""
    if value is None:
        return "n", None, None
    if value is pd.NA:
        return "a", None, None
    if value is pd.NaT:
        return "z", None, None
    value = _as_python(value)
    kind = type(value)
    name = kind.__name__
    if kind is str:
        return "s", value, name
    if kind is float:
        return ("m", None, None) if math.isnan(value) else ("f", repr(value), name)
    if kind is int:
        try:
            return "i", str(value), name
        except ValueError:  # more digits than sys.get_int_max_str_digits(): hex has no limit
            return "i", hex(value), name
    if kind is bool or kind is decimal.Decimal:
        return ("b" if kind is bool else "d"), str(value), name
    dates = {datetime.date: "D", datetime.datetime: "t", pd.Timestamp: "T"}
    if kind in dates:
        return dates[kind], value.isoformat(), name
    text = _safe_repr(value)
    return ("l" if _is_literal(text, value) else "r"), text, name


def _to_text(values: Iterable[Any], pd: Any) -> tuple[list[str | None], str, list[str]]:
    """Texts, run-length kinds (``"i3s1i1"``) and the sorted type names of ``values``."""
    texts: list[str | None] = []
    kinds: list[str] = []
    types: set[str] = set()
    for value in values:
        kind, text, name = _value_text(value, pd)
        kinds.append(kind)
        texts.append(text)
        if name is not None:
            types.add(name)
    runs = "".join(f"{k}{sum(1 for _ in run)}" for k, run in groupby(kinds))
    return texts, runs, sorted(types)


def _from_text(texts: Iterable[Any], kinds: list[str], pd: Any) -> list[Any]:
    """The values that :func:`_to_text` turned into ``texts``; a text that does
    not parse (a damaged file) is given back as it is."""
    missing = {"n": None, "m": math.nan, "a": pd.NA, "z": pd.NaT}
    parse: dict[str, Any] = {
        "i": lambda t: int(t, 0),
        "f": float,
        "b": lambda t: t == "True",
        "d": decimal.Decimal,
        "D": datetime.date.fromisoformat,
        "t": datetime.datetime.fromisoformat,
        "T": pd.Timestamp,
        "l": ast.literal_eval,  # literals only: never runs code
    }
    out: list[Any] = []
    for kind, raw in zip(kinds, texts, strict=True):  # lengths checked by the caller
        text = raw if isinstance(raw, str) else None
        try:
            if kind == "s":
                out.append(text or "")  # CSV reads an empty string back as missing
            elif text is None:
                out.append(missing.get(kind))
            else:
                out.append(parse[kind](text) if kind in parse else text)
        except Exception:
            out.append(text)
    return out


def _expand(runs: str) -> list[str]:
    return [k for k, n in re.findall(r"([A-Za-z])(\d+)", runs) for _ in range(int(n))]


def _label_json(label: Any) -> Any:
    """A JSON value from which :func:`_label_from_json` gives ``label`` back: exactly
    for str, int, float, bool, None and tuples of them, else its repr."""
    label = _as_python(label)
    if label is None or type(label) in (str, int, bool):
        return label
    if type(label) is float:
        return label if math.isfinite(label) else {"float": repr(label)}
    if type(label) is tuple:
        return {"tuple": [_label_json(x) for x in label]}
    return {"repr": _safe_repr(label)}


def _label_from_json(data: Any) -> Any:
    if isinstance(data, dict):
        if "tuple" in data:
            return tuple(_label_from_json(x) for x in data["tuple"])
        if "float" in data:
            return float(data["float"])
        return str(data.get("repr"))
    if isinstance(data, list):
        return tuple(_label_from_json(x) for x in data)
    return data


def _label_exact(data: Any) -> bool:
    if isinstance(data, dict):
        return "repr" not in data and all(_label_exact(x) for x in data.get("tuple", ()))
    return True


def _label_text(label: Any) -> str:
    try:
        return str(label)
    except Exception:
        return _safe_repr(label)


def _shown_label(label: Any) -> str:
    """``5`` rather than numpy 2's ``np.int64(5)``."""
    if type(label) is tuple:
        return _safe_repr(tuple(_as_python(x) for x in label))
    return _safe_repr(_as_python(label))


def _shown_types(types: list[str]) -> str:
    if not types:
        return "missing values only"
    if len(types) == 1:
        return f"values of type {types[0]}"
    return f"values of mixed types ({', '.join(types)})"


def _family(values: Any, pd: Any) -> str | None:
    """What kind of data a column holds, to tell a change of type between files;
    ``None`` when it holds nothing but missing values."""
    if not len(values) or bool(values.isna().all()):
        return None
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    kind = getattr(dtype, "kind", "O")
    if kind in "iu":
        return "int"
    if kind in "fcbMm":
        return {"f": "float", "c": "complex", "b": "bool", "M": "datetime", "m": "timedelta"}[kind]
    inferred = str(pd.api.types.infer_dtype(values, skipna=True))
    return {"string": "str", "integer": "int", "floating": "float", "boolean": "bool"}.get(inferred, inferred)


@dataclass(eq=False)
class _Slot:
    """One index level or column of a file on its way to being stored."""

    label: Any  # the real name
    key: str  # the same column in every file
    stored: str | None  # its name in the file (None: an unnamed Parquet index level)
    values: Any  # a pandas Series or Index
    index: bool
    mode: str = ""  # "": as it is; "str": CSV text read back as str; "text": converted
    texts: list[str | None] | None = None
    kinds: str = ""
    reason: str = ""

    def to_text(self, reason: str, pd: Any) -> None:
        self.texts, self.kinds, types = _to_text(self.values, pd)
        self.mode = "text"
        self.reason = f"{_shown_types(types)}{reason}"

    def stored_values(self, pd: Any) -> Any:
        """The values as they go into the file: a Series or an Index of them."""
        if self.mode == "text":
            return pd.Series(self.texts, dtype=object)
        return self.values

    def entry(self, kinds: bool) -> dict[str, Any]:
        """What read_results needs to know of this column, for the manifest;
        ``kinds``: with the kinds of a column stored as text (CSV: a Parquet
        file holds them itself)."""
        data: dict[str, Any] = {"name": self.stored, "label": _label_json(self.label), "dtype": str(self.values.dtype)}
        if self.mode:
            data["as"] = self.mode
        if self.mode == "text":
            if kinds:
                data["kinds"] = self.kinds
        elif self.values.dtype == object:
            # Text and Parquet have one missing value; say which of None and NaN it was.
            nones = sum(1 for v in self.values if v is None)
            if nones and 2 * nones >= int(self.values.isna().sum()):
                data["missing"] = "None"
        return data


def _sequences(values: Any) -> bool:
    """Every value a list, a tuple or an array (or missing): a Parquet list column."""
    np = sys.modules["numpy"]
    return all(
        isinstance(v, (list, tuple, np.ndarray)) or v is None or (isinstance(v, float) and math.isnan(v))
        for v in values
    )


def _text_columns(pa: Any, table: Any, names: Iterable[str | None]) -> Any:
    """Store ``names`` (``worker``, ``error`` and the columns stored as text) as
    strings even in a file where they are all missing, so that every file has
    the same schema for them (readers that open the folder as one dataset take
    the schema from a single file)."""
    for name in names:
        i = table.schema.get_field_index(name) if name is not None else -1
        if i >= 0 and pa.types.is_null(table.schema.field(i).type):
            table = table.set_column(i, pa.field(name, pa.string()), table.column(i).cast(pa.string()))
    return table


def _with_kinds(table: Any, slots: list[_Slot]) -> Any:
    """The kinds of the columns stored as text, in the file's own metadata: the
    manifest then changes only when the columns do, not with every file."""
    kinds = {
        "index": [s.kinds if s.mode == "text" else None for s in slots if s.index],
        "columns": {s.stored: s.kinds for s in slots if not s.index and s.mode == "text"},
    }
    if not kinds["columns"] and not any(kinds["index"]):
        return table
    return table.replace_schema_metadata({**(table.schema.metadata or {}), _KINDS_KEY: json.dumps(kinds)})


def _arrow_refusal(pa: Any, pq: Any, values: Any) -> Exception | None:
    """Why pyarrow cannot convert ``values`` or Parquet cannot store them; None if both can."""
    try:
        pq.write_table(pa.table({"c": pa.array(values, from_pandas=True)}), io.BytesIO())
    except OSError:
        raise
    except Exception as exc:
        return exc
    return None


class _PartWriter:
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

        frame = self.pending[0] if len(self.pending) == 1 else _meta_last(pd.concat(self.pending))
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
        part = f"part-{len(self.files):06d}.{FORMATS[self.fmt]}"
        first, last = (_shown_label(rest.index[i]) for i in (0, -1))
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
        pieces = [frame] if self.max_mem is None else _split_by_memory(frame, self.max_mem)
        for piece in pieces:
            self._write_file(piece)

    # -- one file --------------------------------------------------------------------

    def _write_file(self, frame: pd.DataFrame) -> None:
        import pandas as pd

        if self.index_names is None:
            self.index_names = list(frame.index.names)
        path = self.folder / f"part-{len(self.files):06d}.{FORMATS[self.fmt]}"
        slots = self._slots(frame, pd)
        if self.fmt == "parquet":
            payload = self._parquet(slots, pd)
            write: Any = lambda f: f.write(payload)  # noqa: E731
        else:
            stored = self._frame(slots, pd)
            write = lambda f: stored.to_csv(f)  # noqa: E731
        found, families = self._conversions(slots, path, pd)
        self._use_layout(self._layout(slots, frame, pd), found)
        _atomic_write(path, write, binary=self.fmt == "parquet")
        _fsync_dir(self.folder)
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
            elif type(name) is str and name and name not in stored and not _INDEX_FIELD.fullmatch(name):
                stored.append(name)
            else:
                stored.append(f"__index_level_{i}__")
        self.index_stored = stored
        # CSV: an empty header is read back as "Unnamed: 0"; index and column names share the header.
        self.used = {s for s in stored if s} | {f"__index_level_{i}__" for i in range(len(names))} | {""}

    def _stored_name(self, key: str, label: Any) -> str:
        name = self.names.get(key)
        if name is None:
            base = label if type(label) is str else _label_text(label)
            name, n = base, 0
            while name in self.used:
                n += 1
                name = f"{base}~{n}"
            self.used.add(name)
            self.names[key] = name
        return name

    def _slots(self, frame: pd.DataFrame, pd: Any) -> list[_Slot]:
        names = list(frame.index.names)
        if self.index_stored is None or len(self.index_stored) != len(names):
            self._reserve(names)
        assert self.index_stored is not None
        slots = [
            _Slot(name, f"index:{i}", self.index_stored[i], frame.index.get_level_values(i), True)
            for i, name in enumerate(names)
        ]
        count: dict[str, int] = {}
        for i, label in enumerate(frame.columns):
            data = json.dumps(_label_json(label), sort_keys=True)
            count[data] = count.get(data, 0) + 1
            key = json.dumps([json.loads(data), count[data]])  # the n-th column of that name
            slots.append(_Slot(label, key, self._stored_name(key, label), frame.iloc[:, i], False))
        for slot in slots:
            self._choose(slot, pd)
        return slots

    def _choose(self, slot: _Slot, pd: Any) -> None:
        """Keep the column as it is, or store it as text, by what the format keeps."""
        values = slot.values
        if not (values.dtype == object or isinstance(values.dtype, pd.StringDtype)):
            return  # numbers, bools, dates, categories: the format keeps them (else _parquet)
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if inferred == "empty":
            return
        if self.fmt == "csv":
            # A loop, not values == "": pandas' str comparison may import pyarrow.
            if inferred == "string" and not any(isinstance(v, str) and not v for v in values):
                slot.mode = "str"  # plain strings: read back as str, "n/a" and "001" included
            elif inferred == "string":
                slot.to_text(", and CSV reads an empty string back as a missing value", pd)
            elif inferred == "floating" or (inferred in ("integer", "boolean") and not bool(values.isna().any())):
                pass  # read back as numbers (or bools), then made objects again
            else:
                slot.to_text(", which CSV would read back as text or numbers", pd)
        elif inferred not in _ARROW_KINDS and not (inferred == "mixed" and _sequences(values)):
            slot.to_text(", which Parquet cannot hold in one column", pd)

    def _frame(self, slots: list[_Slot], pd: Any) -> pd.DataFrame:
        """The frame as stored: unique text names, text where the format needs it."""
        arrays = []
        for s in slots:
            if s.index:
                values = s.stored_values(pd)
                arrays.append(pd.Index(values, dtype=values.dtype, name=s.stored))
        index = arrays[0] if len(arrays) == 1 else pd.MultiIndex.from_arrays(arrays)
        n = len(index)
        data = {}
        for s in slots:
            if not s.index:
                values = s.stored_values(pd)
                data[s.stored] = pd.Series(values.array, index=pd.RangeIndex(n), dtype=values.dtype)
        stored = pd.DataFrame(data, index=pd.RangeIndex(n))
        stored.index = index
        return stored

    def _parquet(self, slots: list[_Slot], pd: Any) -> bytes:
        """The Parquet bytes of the file; a column pyarrow or Parquet refuses is
        turned into text, and the file written all the same."""
        import pyarrow as pa

        pq = _require_pyarrow("writing")
        forced = [s for s in slots if not s.index and isinstance(s.label, str) and s.label in META_COLUMNS[1:]]
        while True:
            try:
                table = pa.Table.from_pandas(self._frame(slots, pd), preserve_index=True)
                table = _text_columns(pa, table, [s.stored for s in slots if s.mode == "text" or s in forced])
                table = _with_kinds(table, slots)
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
                refusals = [(s, _arrow_refusal(pa, pq, s.values)) for s in left]
                bad = [(s, e) for s, e in refusals if e is not None] or [(s, exc) for s in left]
                for s, error in bad:
                    why = f"{type(error).__name__}: {error}"
                    s.to_text(f", which pyarrow refused ({why[:200]})", pd)

    def _conversions(
        self, slots: list[_Slot], path: Path, pd: Any
    ) -> tuple[list[Conversion], dict[str, tuple[str, str, str]]]:
        """What this file changes (text, type, names) and the types it stores."""
        found: list[Conversion] = []
        families: dict[str, tuple[str, str, str]] = {}
        for s in slots:
            if not s.index and s.key not in self.named and not _label_exact(_label_json(s.label)):
                self.named.add(s.key)
                reason = (
                    f"the name comes back as its repr {s.stored!r}: only str, int, float, bool, None "
                    "and tuples of these come back exactly"
                )
                found.append(Conversion(path, s.label, "name", reason))
            if s.mode == "text":
                found.append(Conversion(path, s.label, "text", s.reason, s.index))
                continue
            family = _family(s.values, pd)
            if family is None:
                continue
            shown = str(s.values.dtype) if s.values.dtype != object else family
            previous = self.families.get(s.key)
            if previous is not None and previous[0] != family:
                reason = f"{previous[1]} in {previous[2]}, {shown} here"
                found.append(Conversion(path, s.label, "type", reason, s.index))
            families[s.key] = (family, shown, path.name)
        return found, families

    def _layout(self, slots: list[_Slot], frame: pd.DataFrame, pd: Any) -> dict[str, Any]:
        columns = frame.columns
        return {
            "index": [s.entry(self.fmt == "csv") for s in slots if s.index],
            "columns": [s.entry(self.fmt == "csv") for s in slots if not s.index],
            "labels": {
                "dtype": str(columns.dtype),
                "multi": isinstance(columns, pd.MultiIndex),
                "names": [_label_json(n) for n in columns.names],
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
            "version": _MANIFEST_VERSION,
            "index": self.index_names,
            "complete": self.complete,
            "files": len(self.files),
            "rows": self.rows,
            "layouts": self.layouts,
            "conversions": [
                {
                    "file": c.file.name,
                    "column": _label_json(c.column),
                    "index": c.index,
                    "kind": c.kind,
                    "reason": c.reason,
                }
                for c in [*self.conversions, *found]
            ],
        }
        _atomic_write(self.folder / MANIFEST, lambda f: json.dump(data, f, default=str), binary=False)

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
        _fsync_dir(self.folder)


def _prepare_folder(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"the output folder {str(folder)!r} is a file; give a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    ours = sorted(p.name for p in folder.iterdir() if _PART.fullmatch(p.name) or p.name == MANIFEST)
    if ours and not overwrite:
        shown = ", ".join(ours[:3]) + (", ..." if len(ours) > 3 else "")
        raise ConfigError(
            f"the folder {str(folder)!r} already holds results ({shown}); "
            "pass overwrite=True to replace them, or choose another folder"
        )
    for p in folder.iterdir():
        if _PART.fullmatch(p.name) or p.name == MANIFEST or _TEMP.fullmatch(p.name):
            p.unlink()


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
    Rows are those of :func:`~parallelize.results.frame.results_frame`, written in
    the order the batches arrive. Options are checked (and pyarrow looked for)
    before the first batch is pulled, so a mistake costs no work.

    No value a task returns stops the writing: a column that a file cannot
    store as it is (``"n/a"`` among integers, dicts, sets, objects of your own
    classes) is stored as text in that file, with what :func:`read_results`
    needs to give the values back, and reported in
    :attr:`WriteSummary.conversions`; so is a column changing type from one
    file to the next. Column names need not be strings (see
    :mod:`parallelize.results.writer`).

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
            every value (see :func:`~parallelize.results.memory.reduce_mem_usage`);
            dtypes may then differ between files.
        overwrite: delete the ``part-*`` files and manifest already in
            ``folder`` first; otherwise such a folder is an error.

    Returns:
        A :class:`WriteSummary`.

    Raises:
        ConfigError: a bad option, or ``folder`` already holds results.
        BackendUnavailableError: ``format="parquet"`` and pyarrow is missing.
        OSError: a file could not be written (disk full, no permission); the
            message names the folder, the part and the rows not written.
        Exception: an error raised by the run, after the rows received before
            it are written.
    """
    check_choice("format", format, sorted(FORMATS))
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ConfigError(f"max_rows must be a positive int, got {max_rows!r}")
    limit: int | None = None
    if max_mem is not None:
        if isinstance(max_mem, bool) or not isinstance(max_mem, (int, float)) or not max_mem > 0 or math.isinf(max_mem):
            raise ConfigError(f"max_mem must be a positive number of megabytes or None, got {max_mem!r}")
        limit = max(int(max_mem * _MB), 1)
    if format == "parquet":
        _require_pyarrow("writing")
    folder = Path(folder)
    _prepare_folder(folder, overwrite)
    writer = _PartWriter(folder, format, max_rows, limit, reduce_mem_usage)
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


# -- reading ------------------------------------------------------------------------


def _exact_floats(pd: Any) -> dict[str, str]:
    """read_csv options that parse floats exactly: pandas 3 does by default (and
    deprecates the option), older versions need ``float_precision="round_trip"``."""
    major = int(pd.__version__.split(".", 1)[0])
    return {} if major >= 3 else {"float_precision": "round_trip"}


def _part_number(path: Path) -> int:
    m = _PART.fullmatch(path.name)
    assert m is not None
    return int(m.group(1))


def _cast(values: Any, dtype: Any, pd: Any) -> Any:
    """``values`` as the dtype they had when written, where that keeps every value."""
    if not isinstance(dtype, str) or str(values.dtype) == dtype:
        return values
    if dtype == "str" and int(pd.__version__.split(".", 1)[0]) < 3:
        return values  # pandas 2 has no "str" dtype: astype(str) would turn NaN into "nan"
    try:
        return values.astype(object if dtype == "object" else dtype)
    except Exception:  # e.g. a dtype this pandas does not know: keep the values as read
        return values


def _restore(values: Any, entry: dict[str, Any], pd: Any, runs: Any = None) -> Any:
    """One column (a Series) or index level (an Index) as it was written;
    ``runs``: its kinds, when the file holds them rather than the manifest."""
    if entry.get("as") == "text":
        kinds = _expand(str(runs or entry.get("kinds", "")))
        if len(kinds) == len(values):
            decoded = _from_text(values, kinds, pd)
            if isinstance(values, pd.Index):
                values = pd.Index(decoded, dtype=object, name=values.name, tupleize_cols=False)
            else:
                values = pd.Series(decoded, index=values.index, dtype=object, name=values.name)
    values = _cast(values, entry.get("dtype"), pd)
    if entry.get("missing") == "None" and values.dtype == object:
        data = values.to_numpy(dtype=object, copy=True)
        data[pd.isna(data)] = None
        if isinstance(values, pd.Index):
            return pd.Index(data, dtype=object, name=values.name, tupleize_cols=False)
        return pd.Series(data, index=values.index, dtype=object, name=values.name)
    return values


def _read_part(path: Path, layout: dict[str, Any], pd: Any) -> pd.DataFrame:
    """One file, under its stored names, with values and dtypes as written."""
    levels = layout.get("index", [])
    columns = layout.get("columns", [])
    kinds: dict[str, Any] = {}
    if path.suffix == ".parquet":
        pq = _require_pyarrow("reading")
        table = pq.read_table(path)
        kinds = json.loads((table.schema.metadata or {}).get(_KINDS_KEY, b"{}"))
        # integer_object_nulls: an object column of ints and None stays so, not float.
        frame = table.to_pandas(integer_object_nulls=True)
    else:
        text = {e["name"]: str for e in [*levels, *columns] if e.get("as") in ("str", "text")}
        frame = pd.read_csv(
            path,
            index_col=list(range(max(len(levels), 1))),
            dtype=text,
            keep_default_na=False,  # "n/a", "NA", "null" are strings; to_csv writes missing as ""
            na_values=[""],
            **_exact_floats(pd),
        )
    for entry in columns:
        name = entry.get("name")
        if name in frame.columns:
            column = frame[name]
            restored = _restore(column, entry, pd, kinds.get("columns", {}).get(name))
            if restored is not column:
                frame[name] = restored
    if len(levels) == frame.index.nlevels:
        runs = [*(kinds.get("index") or []), *[None] * len(levels)]
        restored = [_restore(frame.index.get_level_values(i), e, pd, runs[i]) for i, e in enumerate(levels)]
        frame.index = restored[0] if len(restored) == 1 else pd.MultiIndex.from_arrays(restored)
    return frame


def _restore_names(frame: pd.DataFrame, layouts: list[dict[str, Any]], pd: Any) -> pd.DataFrame:
    """The real column and index names in place of the stored ones."""
    label_of: dict[str, Any] = {}
    for layout in layouts:
        for entry in layout.get("columns", []):
            label_of[entry.get("name")] = _label_from_json(entry.get("label"))
    labels = [label_of.get(c, c) for c in frame.columns]
    last = layouts[-1]
    meta = last.get("labels", {})
    names = [_label_from_json(n) for n in meta.get("names", [None])]
    if meta.get("multi") and all(isinstance(x, tuple) for x in labels):
        frame.columns = pd.MultiIndex.from_tuples(labels, names=names)
    else:
        dtype = object if meta.get("dtype") == "object" else None
        frame.columns = pd.Index(labels, dtype=dtype, name=names[0] if names else None, tupleize_cols=False)
    levels = last.get("index", [])
    if len(levels) == frame.index.nlevels:
        frame.index.names = [_label_from_json(e.get("label")) for e in levels]
    return frame


def _read_legacy(path: Path, manifest: dict[str, Any], pd: Any) -> pd.DataFrame:
    """A file of a folder written before the manifest had layouts (version 1)."""
    if path.suffix == ".parquet":
        return _require_pyarrow("reading").read_table(path).to_pandas()
    names = manifest.get("index")
    levels = len(names) if names else 1
    frame = pd.read_csv(path, index_col=list(range(levels)), **_exact_floats(pd))
    if names:
        frame.index.names = names
    return frame


def read_results(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """Load the results written by ``to_files`` back into one DataFrame, in order.

    Files ``part-NNNNNN.parquet`` / ``.csv`` are read in numeric order and
    concatenated; the index (task positions, or ``map_rows`` labels), the
    column names (ints, tuples... included) and each file's dtypes are
    restored from ``_results.json``. Temporary files of an interrupted write
    are ignored.

    What comes back: the rows as written, in order, with their values and
    dtypes; CSV strings stay strings (``"n/a"``, ``"001"``, ``""``). A column a
    file stored as text (see :attr:`WriteSummary.conversions`) comes back as an
    object column of the original values: the same str, int, float, bool,
    None, NaN, Decimal, date or datetime; an equal dict, set, tuple, list,
    bytes or complex of such values; and the ``repr`` (a str) of anything else.
    Where a column's type differs between files, the concatenation holds each
    file's values (an object column for ints and strings). Parquet gives lists
    back as numpy arrays; CSV keeps only the categories a file uses.

    Args:
        folder: the folder given to ``to_files``.

    Returns:
        The rows of every file; an empty frame if there are none.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        BackendUnavailableError: Parquet files and pyarrow missing.
    """
    import pandas as pd

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder at {str(folder)!r}")
    manifest: dict[str, Any] = {}
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    layouts = sorted(manifest.get("layouts") or [], key=lambda layout: layout.get("from", 0))
    starts = [layout.get("from", 0) for layout in layouts]
    parts = sorted((p for p in folder.iterdir() if _PART.fullmatch(p.name)), key=_part_number)
    frames = []
    for path in parts:
        i = bisect.bisect_right(starts, _part_number(path)) - 1
        frames.append(_read_part(path, layouts[i], pd) if i >= 0 else _read_legacy(path, manifest, pd))
    if not frames:
        return pd.DataFrame()
    frame = frames[0] if len(frames) == 1 else pd.concat(frames)
    return _meta_last(_restore_names(frame, layouts, pd) if layouts else frame)
