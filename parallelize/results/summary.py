"""What ``write_results`` reports: a WriteSummary and its Conversions.

A ``WriteSummary`` is a frozen record of raw numbers (files, rows, bytes,
bytes saved in memory); ``str(summary)`` formats it, naming at most a few
``Conversion`` (columns stored as text, changing type between files, or
with a name that cannot be kept) and counting the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Hashable, Iterable, Literal

from .memory import shown_size
from .text import safe_repr

__all__ = ["Conversion", "ConversionKind", "WriteSummary"]

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
            each value's kind, and ``read_results``
            gives them back (see ``parallelize.results.text`` for what comes back);
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
    """What ``write_results`` wrote.

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
        text = (
            f"{self.rows} rows in {len(self.files)} {self.format} file(s) in {self.folder} ({shown_size(self.bytes)})"
        )
        if self.conversions:
            text += "; " + _describe(self.conversions)
        return text


def _describe(conversions: Iterable[Conversion]) -> str:
    """One clause per (column, kind, reason), naming the files concerned."""
    groups: dict[tuple[str, bool, str, str], list[str]] = {}
    for c in conversions:
        groups.setdefault((c.kind, c.index, safe_repr(c.column), c.reason), []).append(c.file.name)
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
