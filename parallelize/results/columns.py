"""How each column of a part file is stored: as it is, or as text the reader turns back.

A file's index levels and columns are each a ``Slot``: the real name, the
stored name (unique text), the values, and how they go into the file::

    values ──choose──> as they are   numbers, bools, dates, categories, and what the format keeps
                  └──> "str"         CSV: plain strings, read back as str ("n/a", "001" included)
                  └──> "text"        anything else: texts and kinds (see parallelize.results.text)

``stored_frame`` builds the frame that goes into the file; ``Slot.entry``
what the manifest says of each column. For Parquet, the helpers below store
text columns with one schema in every file and keep their kinds in the file's
own metadata. pandas and pyarrow are passed in (``pd``, ``pa``, ``pq``), never
imported here.
"""

from __future__ import annotations

import io
import json
import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from .folder import KINDS_KEY
from .text import label_json, shown_types, to_text

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = ["Slot", "arrow_refusal", "choose", "family", "stored_frame", "text_columns", "with_kinds"]

#: What ``pandas.api.types.infer_dtype`` says of an object column that pyarrow
#: stores with one exact type (it may still refuse one, e.g. an int over 64 bits).
_ARROW_KINDS = frozenset(
    ["string", "bytes", "integer", "floating", "boolean", "decimal", "datetime", "datetime64"]
    + ["date", "time", "timedelta", "timedelta64", "period", "interval"]
)


@dataclass(eq=False)
class Slot:
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
        """Store the values as text; ``reason`` follows their types in the conversion's reason."""
        self.texts, self.kinds, types = to_text(self.values, pd)
        self.mode = "text"
        self.reason = f"{shown_types(types)}{reason}"

    def stored_values(self, pd: Any) -> Any:
        """The values as they go into the file: a Series or an Index of them."""
        if self.mode == "text":
            return pd.Series(self.texts, dtype=object)
        return self.values

    def entry(self, kinds: bool) -> dict[str, Any]:
        """What read_results needs to know of this column, for the manifest;
        ``kinds``: with the kinds of a column stored as text (CSV: a Parquet
        file holds them itself)."""
        data: dict[str, Any] = {"name": self.stored, "label": label_json(self.label), "dtype": str(self.values.dtype)}
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


def choose(slot: Slot, fmt: str, pd: Any) -> None:
    """Keep the column as it is, or store it as text, by what the format keeps."""
    values = slot.values
    if not (values.dtype == object or isinstance(values.dtype, pd.StringDtype)):
        # Numbers, bools, dates, categories: the format keeps them (a column that
        # pyarrow refuses all the same is turned into text when the file is written).
        return
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "empty":
        return
    if fmt == "csv":
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


def stored_frame(slots: list[Slot], pd: Any) -> pd.DataFrame:
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


def family(values: Any, pd: Any) -> str | None:
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


def text_columns(pa: Any, table: Any, names: Iterable[str | None]) -> Any:
    """Store ``names`` (``worker``, ``error`` and the columns stored as text) as
    strings even in a file where they are all missing, so that every file has
    the same schema for them (readers that open the folder as one dataset take
    the schema from a single file)."""
    for name in names:
        i = table.schema.get_field_index(name) if name is not None else -1
        if i >= 0 and pa.types.is_null(table.schema.field(i).type):
            table = table.set_column(i, pa.field(name, pa.string()), table.column(i).cast(pa.string()))
    return table


def with_kinds(table: Any, slots: list[Slot]) -> Any:
    """The kinds of the columns stored as text, in the file's own metadata: the
    manifest then changes only when the columns do, not with every file."""
    kinds = {
        "index": [s.kinds if s.mode == "text" else None for s in slots if s.index],
        "columns": {s.stored: s.kinds for s in slots if not s.index and s.mode == "text"},
    }
    if not kinds["columns"] and not any(kinds["index"]):
        return table
    return table.replace_schema_metadata({**(table.schema.metadata or {}), KINDS_KEY: json.dumps(kinds)})


def arrow_refusal(pa: Any, pq: Any, values: Any) -> Exception | None:
    """Why pyarrow cannot convert ``values`` or Parquet cannot store them; None if both can."""
    try:
        pq.write_table(pa.table({"c": pa.array(values, from_pandas=True)}), io.BytesIO())
    except OSError:
        raise
    except Exception as exc:
        return exc
    return None
