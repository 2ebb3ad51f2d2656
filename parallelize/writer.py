"""Results written to disk while a run goes on, in files of bounded size.

::

    batch results ──results_frame──> pending rows ── every max_rows rows ──┐
                                                                           v
           reduce_mem_usage (optional) ── split until each piece fits max_mem
                                                                           │
    folder/part-000000.parquet  <── os.replace <── fsync <── .part-000000.parquet.<hex>.tmp
           part-000001.parquet
           _results.json        (format and index names, for read_results)

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
nothing extra; floats are read back exactly, but dtypes are inferred again on
reading. ``_results.json`` records the format, the index names and whether the
run completed (``"complete": false`` after an error).
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .dataframe import FrameLayout, results_frame
from .errors import BackendUnavailableError, ConfigError, check_choice
from .memory import _size
from .memory import reduce_mem_usage as _reduce_mem_usage
from .task import BatchResult

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

__all__ = ["FORMATS", "MANIFEST", "WriteSummary", "read_results", "write_results"]

#: File formats and their extensions.
FORMATS = {"parquet": "parquet", "csv": "csv"}

#: The small JSON file describing a results folder.
MANIFEST = "_results.json"

_MB = 2**20
_PART = re.compile(r"part-(\d{6,})\.(parquet|csv)")
_TEMP = re.compile(r"\.part-\d{6,}\.(parquet|csv)\.[0-9a-f]+\.tmp")
_PARQUET_HINT = 'writing Parquet needs pyarrow: pip install "parallelize[parquet]", or pass format="csv"'


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
    """

    folder: Path
    files: tuple[Path, ...]
    rows: int
    bytes: int
    format: str
    memory_saved: int = 0

    def __str__(self) -> str:
        return f"{self.rows} rows in {len(self.files)} {self.format} file(s) in {self.folder} ({_size(self.bytes)})"


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


def _text_columns(pa: Any, table: Any) -> Any:
    """Store ``worker`` and ``error`` as strings even in a file where they are all
    missing, so that every file has the same schema for them (readers that open
    the folder as one dataset take the schema from a single file)."""
    for name in ("worker", "error"):
        i = table.schema.get_field_index(name)
        if i >= 0 and pa.types.is_null(table.schema.field(i).type):
            table = table.set_column(i, pa.field(name, pa.string()), table.column(i).cast(pa.string()))
    return table


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

        frame = self.pending[0] if len(self.pending) == 1 else pd.concat(self.pending)
        self.pending = []
        self.pending_rows = 0
        start = 0
        while len(frame) - start >= self.max_rows or (final and start < len(frame)):
            self._write(frame.iloc[start : start + self.max_rows])
            start += self.max_rows
        if start < len(frame):
            rest = frame.iloc[start:]
            self.pending = [rest]
            self.pending_rows = len(rest)

    def _write(self, frame: pd.DataFrame) -> None:
        if self.reduce:
            frame, report = _reduce_mem_usage(frame)
            self.saved += report.saved
        pieces = [frame] if self.max_mem is None else _split_by_memory(frame, self.max_mem)
        for piece in pieces:
            self._write_file(piece)

    def _write_file(self, frame: pd.DataFrame) -> None:
        if self.index_names is None:
            self.index_names = list(frame.index.names)
            self.write_manifest()
        path = self.folder / f"part-{len(self.files):06d}.{FORMATS[self.fmt]}"
        if self.fmt == "parquet":
            import pyarrow as pa

            pq = _require_pyarrow("writing")
            try:
                table = pa.Table.from_pandas(frame, preserve_index=True)
            except (pa.ArrowException, TypeError, ValueError) as exc:
                if hasattr(exc, "add_note"):
                    exc.add_note(
                        f"while converting rows for {path.name} to Parquet: a column holds values of "
                        'mixed or unsupported types; return plain scalars, or pass format="csv"'
                    )
                raise
            table = _text_columns(pa, table)
            _atomic_write(path, lambda f: pq.write_table(table, f), binary=True)
        else:
            _atomic_write(path, lambda f: frame.to_csv(f), binary=False)
        _fsync_dir(self.folder)
        self.files.append(path)
        self.rows += len(frame)
        self.bytes += path.stat().st_size

    def write_manifest(self) -> None:
        data = {
            "format": self.fmt,
            "index": self.index_names,
            "complete": self.complete,
            "files": len(self.files),
            "rows": self.rows,
        }
        _atomic_write(self.folder / MANIFEST, lambda f: json.dump(data, f, default=str), binary=False)

    def close(self, complete: bool = True) -> None:
        self._drain(final=True)
        self.complete = complete
        self.write_manifest()
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
    Rows are those of :func:`~parallelize.dataframe.results_frame`, written in
    the order the batches arrive. Options are checked (and pyarrow looked for)
    before the first batch is pulled, so a mistake costs no work.

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
            every value (see :func:`~parallelize.memory.reduce_mem_usage`);
            dtypes may then differ between files.
        overwrite: delete the ``part-*`` files and manifest already in
            ``folder`` first; otherwise such a folder is an error.

    Returns:
        A :class:`WriteSummary`.

    Raises:
        ConfigError: a bad option, or ``folder`` already holds results.
        BackendUnavailableError: ``format="parquet"`` and pyarrow is missing.
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
            if hasattr(exc, "add_note"):
                exc.add_note(f"the rows received before this error could not be written: {write_error!r}")
        raise
    writer.close()
    return WriteSummary(
        folder=folder,
        files=tuple(writer.files),
        rows=writer.rows,
        bytes=writer.bytes,
        format=format,
        memory_saved=writer.saved,
    )


def _exact_floats(pd: Any) -> dict[str, str]:
    """read_csv options that parse floats exactly: pandas 3 does by default (and
    deprecates the option), older versions need ``float_precision="round_trip"``."""
    major = int(pd.__version__.split(".", 1)[0])
    return {} if major >= 3 else {"float_precision": "round_trip"}


def _part_number(path: Path) -> int:
    m = _PART.fullmatch(path.name)
    assert m is not None
    return int(m.group(1))


def read_results(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """Load the results written by ``to_files`` back into one DataFrame, in order.

    Files ``part-NNNNNN.parquet`` / ``.csv`` are read in numeric order and
    concatenated; the index (task positions, or ``map_rows`` labels) is
    restored. Temporary files of an interrupted write are ignored.

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
    parts = sorted((p for p in folder.iterdir() if _PART.fullmatch(p.name)), key=_part_number)
    frames = []
    for path in parts:
        if path.suffix == ".parquet":
            pq = _require_pyarrow("reading")
            frames.append(pq.read_table(path).to_pandas())
        else:
            names = manifest.get("index")
            levels = len(names) if names else 1
            frame = pd.read_csv(path, index_col=list(range(levels)), **_exact_floats(pd))
            if names:
                frame.index.names = names
            frames.append(frame)
    if not frames:
        return pd.DataFrame()
    return frames[0] if len(frames) == 1 else pd.concat(frames)
