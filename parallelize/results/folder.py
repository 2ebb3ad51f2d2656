"""The layout of a results folder on disk, shared by its writer and its reader.

::

    folder/part-000000.parquet     consecutive rows, numbered in the order they arrive
           part-000001.parquet
           .part-000002.parquet.<hex>.tmp   a file being written (never read)
           _results.json           the manifest: format, names, dtypes, conversions

``part-`` is followed by at least six digits: names sort in input order for an
ordered run, and readers sort numerically, so more than a million files still
load in order. The manifest (``MANIFEST``) records the format, the index
names, whether the run completed (``"complete": false`` after an error), and
for each run of files (``"layouts"``, each holding from its part number
``"from"`` on) the stored name, real name and dtype of every column. Parquet
files keep the kinds of their columns stored as text in their own schema
metadata (``KINDS_KEY``); CSV files in the manifest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, ConfigError

__all__ = [
    "FORMATS",
    "INDEX_FIELD",
    "KINDS_KEY",
    "MANIFEST",
    "MANIFEST_VERSION",
    "PART",
    "TEMP",
    "part_name",
    "part_number",
    "prepare_folder",
    "require_pyarrow",
]

#: File formats and their extensions.
FORMATS = {"parquet": "parquet", "csv": "csv"}

#: The small JSON file describing a results folder.
MANIFEST = "_results.json"

#: 2 adds the stored names, dtypes and conversions ("layouts") to version 1.
MANIFEST_VERSION = 2

#: The name of a part file, and of a part file being written (see ``atomic_write``).
PART = re.compile(r"part-(\d{6,})\.(parquet|csv)")
TEMP = re.compile(r"\.part-\d{6,}\.(parquet|csv)\.[0-9a-f]+\.tmp")

#: pyarrow's name for an unnamed index level.
INDEX_FIELD = re.compile(r"__index_level_\d+__")

#: Parquet schema metadata: kinds of the columns stored as text.
KINDS_KEY = b"parallelize.kinds"


def part_name(number: int, fmt: str) -> str:
    """The name of part file ``number`` in format ``fmt``: ``part-000003.csv``."""
    return f"part-{number:06d}.{FORMATS[fmt]}"


def part_number(path: Path) -> int:
    """The number of the part file ``path`` (a name matching ``PART``)."""
    m = PART.fullmatch(path.name)
    assert m is not None
    return int(m.group(1))


def require_pyarrow(action: str, instead: str = 'pass format="csv"') -> Any:
    """``pyarrow.parquet``, or a BackendUnavailableError saying what is wrong.

    pyarrow missing and pyarrow installed but failing to import (a library it
    needs, a NumPy it was not built for) are told apart: the second names the
    import's own error, since installing pyarrow would not help.

    Args:
        action: ``"writing"`` or ``"reading"``, for the message.
        instead: the way around it offered when writing.
    """
    alternative = f", or {instead}" if action == "writing" else ""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq
    except ModuleNotFoundError as exc:
        if exc.name not in ("pyarrow", "pyarrow.parquet"):
            raise _broken_pyarrow(action, exc, alternative) from exc
        hint = f'{action} Parquet needs pyarrow: pip install "parallelize[parquet]"{alternative}'
        raise BackendUnavailableError(hint) from exc
    except Exception as exc:  # installed, but its import fails for a reason of its own
        raise _broken_pyarrow(action, exc, alternative) from exc
    return pq


def _broken_pyarrow(action: str, exc: BaseException, alternative: str) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"{action} Parquet needs pyarrow, which is installed but failed to import: "
        f"{type(exc).__name__}: {exc}; repair that install (for example pip install --force-reinstall pyarrow, "
        f"or a pyarrow built for this NumPy){alternative}"
    )


def prepare_folder(folder: Path, overwrite: bool) -> None:
    """Create ``folder``, or empty it of results (part files, manifest, temporary files).

    Args:
        folder: the output folder.
        overwrite: delete results already there; otherwise they are an error.

    Raises:
        ConfigError: ``folder`` is a file, or holds results and not ``overwrite``.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"the output folder {str(folder)!r} is a file; give a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    ours = sorted(p.name for p in folder.iterdir() if PART.fullmatch(p.name) or p.name == MANIFEST)
    if ours and not overwrite:
        shown = ", ".join(ours[:3]) + (", ..." if len(ours) > 3 else "")
        raise ConfigError(
            f"the folder {str(folder)!r} already holds results ({shown}); "
            "pass overwrite=True to replace them, or choose another folder"
        )
    for p in folder.iterdir():
        if PART.fullmatch(p.name) or p.name == MANIFEST or TEMP.fullmatch(p.name):
            p.unlink()
