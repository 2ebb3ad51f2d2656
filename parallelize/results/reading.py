"""Reading a results folder back: the frame that was written, names, values and dtypes.

::

    _results.json: for each run of parts, stored name -> real name, dtype, how stored
          │
          v
    part-000000.parquet ──read, restore values and dtypes──┐
    part-000001.parquet ──read, restore values and dtypes──┴── concat, real names ──> DataFrame

Files are read in numeric order, each with the layout that holds from its part
number on; a column stored as text comes back through
``from_text``. A folder written before the
manifest had layouts (version 1) is read with the index names alone.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .folder import KINDS_KEY, MANIFEST, PART, part_number, require_pyarrow
from .frame import meta_last
from .text import expand_kinds, from_text, label_from_json

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = ["read_results"]


def _exact_floats(pd: Any) -> dict[str, str]:
    """read_csv options that parse floats exactly: pandas 3 does by default (and
    deprecates the option), older versions need ``float_precision="round_trip"``."""
    major = int(pd.__version__.split(".", 1)[0])
    return {} if major >= 3 else {"float_precision": "round_trip"}


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


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _big_ints(column: Any, entry: dict[str, Any]) -> Any:
    """Integers beyond 64 bits, which pandas before 3 reads from CSV as strings.

    Only in an object column that was not text when written (the writer marks
    text columns ``"as": "str"`` or ``"text"``), and only when every value is
    such a string: then they can only have been those integers.
    """
    if entry.get("dtype") != "object" or "as" in entry or column.dtype != object:
        return column
    values = column.dropna()
    if values.empty or not all(isinstance(v, str) and _INTEGER.fullmatch(v) for v in values):
        return column
    return column.map(lambda v: int(v) if isinstance(v, str) else v)


def _restore(values: Any, entry: dict[str, Any], pd: Any, runs: Any = None) -> Any:
    """One column (a Series) or index level (an Index) as it was written;
    ``runs``: its kinds, when the file holds them rather than the manifest."""
    if entry.get("as") == "text":
        kinds = expand_kinds(str(runs or entry.get("kinds", "")))
        if len(kinds) == len(values):
            decoded = from_text(values, kinds, pd)
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
        pq = require_pyarrow("reading")
        table = pq.read_table(path)
        kinds = json.loads((table.schema.metadata or {}).get(KINDS_KEY, b"{}"))
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
            read = _big_ints(column, entry) if path.suffix == ".csv" else column
            restored = _restore(read, entry, pd, kinds.get("columns", {}).get(name))
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
            label_of[entry.get("name")] = label_from_json(entry.get("label"))
    labels = [label_of.get(c, c) for c in frame.columns]
    last = layouts[-1]
    meta = last.get("labels", {})
    names = [label_from_json(n) for n in meta.get("names", [None])]
    if meta.get("multi") and all(isinstance(x, tuple) for x in labels):
        frame.columns = pd.MultiIndex.from_tuples(labels, names=names)
    else:
        dtype = object if meta.get("dtype") == "object" else None
        frame.columns = pd.Index(labels, dtype=dtype, name=names[0] if names else None, tupleize_cols=False)
    levels = last.get("index", [])
    if len(levels) == frame.index.nlevels:
        frame.index.names = [label_from_json(e.get("label")) for e in levels]
    return frame


def _read_legacy(path: Path, manifest: dict[str, Any], pd: Any) -> pd.DataFrame:
    """A file of a folder written before the manifest had layouts (version 1)."""
    if path.suffix == ".parquet":
        return require_pyarrow("reading").read_table(path).to_pandas()
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
    file stored as text (see
    ``conversions``) comes back
    as an object column of the original values: the same str, int, float,
    bool, None, NaN, Decimal, date or datetime; an equal dict, set, tuple,
    list, bytes or complex of such values; and the ``repr`` (a str) of
    anything else.
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
    parts = sorted((p for p in folder.iterdir() if PART.fullmatch(p.name)), key=part_number)
    frames = []
    for path in parts:
        i = bisect.bisect_right(starts, part_number(path)) - 1
        frames.append(_read_part(path, layouts[i], pd) if i >= 0 else _read_legacy(path, manifest, pd))
    if not frames:
        return pd.DataFrame()
    frame = frames[0] if len(frames) == 1 else pd.concat(frames)
    return meta_last(_restore_names(frame, layouts, pd) if layouts else frame)
