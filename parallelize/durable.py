"""Durable writes: data that is on disk, under its final name, once a call returns.

Three helpers, the only file-system primitives the package needs to survive a
crash or a power cut:

- ``write_all`` writes every byte to a file descriptor (``os.write`` may
  write fewer than asked).
- ``fsync_dir`` flushes a folder, so that a file created or renamed in it
  keeps its name after a power cut.
- ``atomic_write`` writes a file under a hidden temporary name, flushes and
  fsyncs it, then renames it over its final name: readers see the old file or
  the whole new one, never half of it.

Nothing of parallelize is imported here.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Callable

__all__ = ["atomic_write", "fsync_dir", "write_all"]


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make the creation or rename of a file in ``folder`` durable.

    Not possible (nor needed) on every platform: where a folder cannot be
    opened or fsynced (Windows), this does nothing.

    Args:
        folder: the folder holding the file.
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the file descriptor ``fd``, however many calls it takes.

    Args:
        fd: an open file descriptor.
        data: the bytes to write.

    Raises:
        OSError: the write failed (disk full, ...); part of ``data`` may be written.
    """
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write(path: Path, write: Callable[[Any], Any], binary: bool) -> None:
    """Write ``path`` through ``write(file)`` so that it appears whole or not at all.

    ``write`` is given a file open on ``.<name>.<32 hex digits>.tmp`` beside
    ``path``; the file is then flushed, fsynced and renamed to ``path``
    (replacing any file of that name). If anything fails, the temporary file is
    removed and the error raised; ``path`` is left as it was. The rename itself
    is made durable by ``fsync_dir`` of the folder, which is up to the
    caller (a writer of many files fsyncs the folder once per file or once at
    the end).

    Args:
        path: the final file name.
        write: called once with the open file.
        binary: open the file in binary mode; else as UTF-8 text with
            ``newline=""`` (what the ``csv`` module and ``DataFrame.to_csv`` expect).

    Raises:
        OSError: the file could not be written or renamed.
        Exception: whatever ``write`` raised.
    """
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
