"""Gathering what jobs measured into one table: ``metrics(jobs)``.

::

    jobs table ── each work_dir ── files matching the pattern(s) ── parse ──┐
                                                                            ├──> params │ [job_name] │ metrics │ ...
    results frame (to_dataframe) / results folder (to_files) ── expand ─────┘

From a jobs table, each job's folder is searched (not recursively) for files
matching the pattern(s); each file is a table with a header row, comma
separated when its header line has a comma, else separated by whitespace. Each
row of each file becomes a row of the output, beside the job's parameters. A
job whose files are missing, empty or malformed keeps one row, with missing
metrics and the reason in ``metrics_error``: one bad job never stops the
gathering of the others.

From a results frame (or a folder written by ``to_files``), the parameters and
outputs are already columns: the ``error`` of a failed task becomes
``metrics_error``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any, Hashable

from ..errors import ConfigError
from ..results.folder import MANIFEST, PART
from ..results.frame import META_COLUMNS
from ..results.reading import read_results
from .table import JOB_COLUMNS

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = ["DEFAULT_PATTERN", "metrics"]

#: The files a job's folder is searched for, as param_search did.
DEFAULT_PATTERN = ("*.metrics", "*.csv")

#: Texts read as a missing value in a metrics file (pandas' usual ones, and ``""``:
#: a shell variable left empty because the command that set it failed).
_MISSING = frozenset(["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "null", "NULL", "None", "<NA>", "#N/A"])

#: The columns every output row has besides parameters and metrics.
_JOB_NAME, _FILE, _ERROR = "job_name", "metrics_file", "metrics_error"


def metrics(
    source: Any, pattern: str | Sequence[str] = DEFAULT_PATTERN, *, wait: bool = True, timeout: float | None = None
) -> pd.DataFrame:
    """Gather the metrics of a sweep into one DataFrame, one row per measurement.

    Args:
        source: one of
            - a jobs table (a DataFrame with a ``work_dir`` column, as ``submit``
              returns): the parameters are ``source.attrs["params"]`` (those
              still columns) or else every column that is not one of
              ``JOB_COLUMNS``;
            - a results frame, from ``to_dataframe()`` of a runner's stream, an
              execution or a ``ModelEvaluator`` (a DataFrame with an ``error``
              column);
            - the path of a folder written by ``to_files()``, read with
              ``read_results``.
        pattern: for a jobs table, the glob pattern(s) of the metrics files in
            each job's folder, matched against file names (not recursive);
            default ``("*.metrics", "*.csv")``. Ignored for results.
        wait: for a jobs table, first wait for the jobs still queued or
            running (``wait``); ``False`` gathers what
            the files hold now.
        timeout: the longest wait, in seconds (default none).

    Returns:
        For a jobs table: the parameters, ``job_name``, the metric columns (the
        union of every file's header, in order of first appearance; a name
        taken by a parameter or by one of the other columns gets a ``metric_``
        prefix), ``metrics_file`` (the file's path) and ``metrics_error``
        (``None``, or why the job has no metrics: no folder, no matching file,
        an empty file, undecodable bytes, a row with more values than the
        header has names). One row per row of each file, in job order and file
        name order; a file that cannot be used gives one row with missing
        metrics and the reason, and so does a job without any file. A value left empty, or ``NA``, ``nan``, ``None`` and the like,
        is missing; a column is numeric when every other value is a number.
        ``attrs["params"]`` lists the parameters.

        For results: the results frame's columns without ``duration``,
        ``worker`` and ``error``, with a ``result`` column of dicts spread into
        one column per key, then ``metrics_error`` (the failed task's
        ``"Type: message"``, else ``None``); failed tasks keep their row, with
        missing outputs. The index is the results frame's.

    Raises:
        ConfigError: ``source`` is none of the above (a path that is not a
            results folder included), or ``pattern`` is not a glob pattern or a
            sequence of them.
        BackendUnavailableError: a Parquet results folder and pyarrow missing.
        TaskTimeoutError: jobs still run after ``timeout`` seconds.
    """
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        if "work_dir" in source.columns:
            patterns = _patterns(pattern)
            if wait:
                from .sweep import wait as wait_for

                source = wait_for(source, timeout=timeout)
            return _from_jobs(source, patterns, pd)
        if "error" in source.columns:
            return _from_results(source, pd)
        raise ConfigError(
            f"metrics() cannot read a DataFrame with columns {list(source.columns)!r}; expected a jobs table "
            "(with a 'work_dir' column, as submit() returns) or a results frame from to_dataframe() "
            "(with 'duration', 'worker' and 'error' columns)"
        )
    if isinstance(source, (str, os.PathLike)):
        return _from_results(_read_folder(Path(source)), pd)
    raise ConfigError(
        f"metrics() takes a jobs table, a results DataFrame or the path of a results folder, "
        f"got {type(source).__name__} {source!r}"
    )


# -- arguments -----------------------------------------------------------------


def _patterns(pattern: Any) -> tuple[str, ...]:
    """``pattern`` as a non-empty tuple of file name patterns."""
    shown = "a glob pattern such as '*.metrics', or a list of them"
    if isinstance(pattern, str):
        patterns: tuple[Any, ...] = (pattern,)
    elif isinstance(pattern, Sequence) and not isinstance(pattern, (bytes, bytearray)):
        patterns = tuple(pattern)
        if not patterns:
            raise ConfigError(f"pattern must be {shown}, got an empty {type(pattern).__name__}")
    else:
        raise ConfigError(f"pattern must be {shown}, got {type(pattern).__name__} {pattern!r}")
    for p in patterns:
        if not isinstance(p, str) or not p:
            raise ConfigError(f"pattern must be {shown}; {p!r} in {pattern!r} is not a non-empty string")
        if "/" in p or os.sep in p:
            raise ConfigError(
                f"pattern {p!r} holds a path separator; patterns match file names in each job's own folder "
                "(not recursive), e.g. '*.metrics'"
            )
    return patterns


def _read_folder(folder: Path) -> pd.DataFrame:
    """The results frame written to ``folder`` by ``to_files``."""
    if not folder.is_dir():
        raise ConfigError(
            f"no folder at {str(folder)!r}; metrics() takes the path of a folder written by to_files(), "
            "a jobs table or a results DataFrame"
        )
    if not (folder / MANIFEST).exists() and not any(PART.fullmatch(p.name) for p in folder.iterdir()):
        raise ConfigError(
            f"{str(folder)!r} is not a results folder: it has no {MANIFEST} and no part-NNNNNN.parquet/.csv "
            "files; give a folder written by to_files(), or pass a jobs table to read each job's metrics files"
        )
    return read_results(folder)


# -- a results frame -------------------------------------------------------------


def _from_results(frame: pd.DataFrame, pd: Any) -> pd.DataFrame:
    """A results frame's parameters and outputs, with its errors as ``metrics_error``."""
    if frame.columns.empty:  # an empty results folder: no rows, no columns
        return pd.DataFrame({_ERROR: pd.Series([], dtype=object)})
    errors = frame["error"] if "error" in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    kept = [c for c in frame.columns if not (isinstance(c, str) and c in META_COLUMNS)]
    out = frame[kept].copy()
    if "result" in out.columns:
        out = _spread_dicts(out, "result", pd)
    name = _unique(_ERROR, set(out.columns), "metric_")
    if name != _ERROR:  # an output named metrics_error keeps its values under another name
        out = out.rename(columns={_ERROR: name})
    out[_ERROR] = pd.Series([None if _missing(e) else str(e) for e in errors], index=out.index, dtype=object)
    return out


def _spread_dicts(frame: pd.DataFrame, column: Hashable, pd: Any) -> pd.DataFrame:
    """``column`` replaced by one column per key, if every value it holds is a dict."""
    values = list(frame[column])
    present = [v for v in values if not _missing(v)]
    if not present or not all(isinstance(v, Mapping) for v in present):
        return frame
    records = [dict(v) if isinstance(v, Mapping) else {} for v in values]
    spread = pd.DataFrame(records, index=frame.index)
    taken = {c for c in frame.columns if c != column}
    spread.columns = [_unique(k, taken, "result_") for k in spread.columns]
    at = list(frame.columns).index(column)
    left, right = frame.iloc[:, :at], frame.iloc[:, at + 1 :]
    return pd.concat([left, spread, right], axis=1)


# -- a jobs table ------------------------------------------------------------------


def _from_jobs(jobs: pd.DataFrame, patterns: tuple[str, ...], pd: Any) -> pd.DataFrame:
    """One row per row of each job's metrics files, beside the job's parameters."""
    listed = jobs.attrs.get("params")
    if listed is not None:
        params = [p for p in listed if p in jobs.columns]
    else:
        params = [c for c in jobs.columns if c not in JOB_COLUMNS]
    taken: set[Hashable] = {*params, _JOB_NAME, _FILE, _ERROR}
    renamed: dict[Hashable, Hashable] = {}  # a metric's name in its file -> its column
    records: list[dict[Hashable, Any]] = []
    has_name = _JOB_NAME in jobs.columns
    for job in jobs.to_dict("records"):  # not iterrows: each column keeps its own type
        base = {p: job[p] for p in params}
        base[_JOB_NAME] = job[_JOB_NAME] if has_name else None
        for path, rows, error in _job_tables(job["work_dir"], patterns):
            for row in rows:
                record = dict(base)
                for key, value in row.items():
                    if key not in renamed:
                        renamed[key] = _unique(key, taken, "metric_")
                    record[renamed[key]] = value
                record[_FILE] = path
                record[_ERROR] = None
                records.append(record)
            if error is not None:
                records.append({**base, _FILE: path, _ERROR: error})
    columns = [*params, _JOB_NAME, *renamed.values(), _FILE, _ERROR]
    out = pd.DataFrame.from_records(records, columns=columns) if records else pd.DataFrame(columns=columns)
    for p in params:  # the jobs table's dtypes (category, int32...): every row has its job's value
        if out[p].dtype != jobs[p].dtype:
            try:
                out[p] = out[p].astype(jobs[p].dtype)
            except (TypeError, ValueError):  # pragma: no cover - keep the values as inferred
                pass
    for c in (_JOB_NAME, _FILE, _ERROR):
        out[c] = pd.Series([None if _missing(v) else v for v in out[c]], index=out.index, dtype=object)
    out.attrs["params"] = list(params)
    return out


def _job_tables(work_dir: Any, patterns: tuple[str, ...]) -> list[tuple[str | None, list[dict[str, Any]], str | None]]:
    """``(path, rows, error)`` for each metrics file of one job (rows parsed, or an
    error saying why there are none); one ``(None, [], error)`` if it has none."""
    shown = patterns[0] if len(patterns) == 1 else list(patterns)
    if _missing(work_dir):
        return [(None, [], f"the job has no work_dir, so no file matching {shown!r} to read")]
    folder = Path(work_dir)
    try:
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
    except OSError as exc:
        return [(None, [], f"cannot list the job's folder {str(folder)!r} ({_reason(exc)}), so no {shown!r} file")]
    found = [(n, next(p for p in patterns if fnmatch(n, p))) for n in names if any(fnmatch(n, p) for p in patterns)]
    if not found:
        return [(None, [], f"no file matching {shown!r} in {str(folder)!r}")]
    out: list[tuple[str | None, list[dict[str, Any]], str | None]] = []
    for name, matched in found:
        path = folder / name
        rows, error = _read_table(path)
        out.append((str(path), rows, None if error is None else f"{str(path)!r} (matching {matched!r}): {error}"))
    return out


def _read_table(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The rows of one metrics file as ``{name: value}``, or why it has none."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [], f"cannot be read ({_reason(exc)})"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], f"is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        return [], "is empty: the job wrote no header row (still running, or failed before writing it?)"
    header_no, header = lines[0]
    comma = "," in header
    fields = [_split(line, comma) for _, line in lines]
    names = [f.strip() for f in fields[0]]
    if any(not n for n in names):
        return [], f"line {header_no} (the header) has an empty column name: {header!r}"
    if len(fields) == 1:
        return [], f"has a header row ({', '.join(names)}) but no values"
    for (number, line), values in zip(lines[1:], fields[1:], strict=True):
        if len(values) > len(names):
            return [], (
                f"line {number} has {len(values)} values for the {len(names)} header names "
                f"({', '.join(names)}): {line!r}"
            )
    columns = _typed_columns(names, fields[1:])
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)], None


def _split(line: str, comma: bool) -> list[str]:
    """The fields of one line: CSV (quotes allowed) or separated by whitespace."""
    if comma:
        return next(csv.reader([line]), [])
    return line.split()


def _typed_columns(names: list[str], rows: list[list[str]]) -> dict[str, list[Any]]:
    """Each column's values: numbers where every non-missing text is one, else
    the texts; a missing value is NaN among numbers, None among texts (pandas
    may store it as NaN). A short row is padded with missing values."""
    import pandas as pd

    out: dict[str, list[Any]] = {}
    for j, name in enumerate(names):
        key = name if name not in out else _dedupe_header(name, out)
        texts = [row[j].strip() if j < len(row) else "" for row in rows]
        present = [t for t in texts if t not in _MISSING]
        try:
            numbers = pd.to_numeric(pd.Series(present, dtype=object)) if present else None
        except (ValueError, TypeError):
            out[key] = [None if t in _MISSING else t for t in texts]
            continue
        values: list[Any] = []
        it = iter([] if numbers is None else numbers.tolist())
        for t in texts:
            values.append(math.nan if t in _MISSING else next(it))
        out[key] = values
    return out


def _dedupe_header(name: str, taken: dict[str, Any]) -> str:
    """A repeated header name as pandas reads it: ``a``, ``a.1``, ``a.2``..."""
    i = 1
    while f"{name}.{i}" in taken:
        i += 1
    return f"{name}.{i}"


# -- helpers -----------------------------------------------------------------------


def _unique(name: Hashable, taken: set[Hashable], prefix: str) -> Hashable:
    """``name``, or ``prefix + name`` (repeated) until it is not taken; marks it taken."""
    new = name
    while new in taken:
        new = f"{prefix}{new}"
    taken.add(new)
    return new


def _missing(value: Any) -> bool:
    """None, NaN, ``pd.NA`` or ``NaT``; a list, a dict or an array is a value."""
    import pandas as pd

    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
