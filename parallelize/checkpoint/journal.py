"""A checkpoint folder on disk: its manifest and its append-only, CRC-framed journals.

Writing is append-only and fsync'd per batch; reading accepts exactly what the
writer produces (see the package docstring for the folder layout).
"""

from __future__ import annotations

import json
import os
import re
import struct
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from ..durable import atomic_write, fsync_dir, write_all
from ..errors import CheckpointError, ConfigError, ResumeMismatchError
from ..validate import check_bool, check_callable, check_int
from ..worker.failure import short_repr
from .codec import MAX_POSITION, input_hash, shown_value

FORMAT = "parallelize-checkpoint"
VERSION = 1
MANIFEST = "checkpoint.json"
_HASH_SCHEME = "sha256-params-v1"
_CALLS = ("arg", "star", "kwargs")
_SEGMENT_GLOB = "journal-*.log"
_SEGMENT_MAGIC = b"PZJOURN1"
_RECORD_MAGIC = b"PZR1"
_RECORD_HEADER = struct.Struct("<4sQI")  # magic, payload length, CRC-32 of the payload
# Differing positions named in a ResumeMismatchError.
_SHOWN_MISMATCHES = 10
# input_hash's two forms: 32 hex digits, or "p" and 31 of them.
_HASH_RE = re.compile(r"[0-9a-f]{32}|p[0-9a-f]{31}")
# The writer builds each payload in memory, so a length field beyond this was
# never written by it: damage, not a record cut short by a crash.
_MAX_RECORD = 1 << 40
# Stored result kinds: tagged JSON, pickle, or none kept (only "finished").
_KINDS = frozenset(("j", "p", "-"))


# --------------------------------------------------------------------------- journal


class Entry(NamedTuple):
    """One finished task as stored: input hash, result kind and payload, and where it was read.

    ``kind`` is ``"j"`` (tagged JSON), ``"p"`` (base64 pickle) or ``"-"`` (no
    result kept) as written; a resumed run turns ``"j"`` into ``"v"`` (decoded
    value) and a ``"p"`` payload into its bytes once it has checked them.
    """

    hash: str
    kind: str
    payload: Any
    source: str  # the file and record, for messages


def damaged_error(source: str, folder: Path, what: str) -> CheckpointError:
    """The error for a journal file or record that parallelize did not write this way."""
    return CheckpointError(
        f"checkpoint journal {source} is damaged: {what}. parallelize never writes that, so the file was "
        f"changed or corrupted; nothing in it was used or run. Delete the folder {str(folder)!r} to start "
        "over, or remove just that file to recompute only its tasks"
    )


def _frame(payload: bytes) -> bytes:
    """One journal record: magic tag, length and CRC-32 of ``payload``, then ``payload``."""
    return _RECORD_HEADER.pack(_RECORD_MAGIC, len(payload), zlib.crc32(payload)) + payload


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (the writer never writes it)")


def _parse_record(payload: bytes, source: str, folder: Path) -> list[tuple[int, Entry]]:
    """The ``(position, entry)`` rows of one whole record whose checksum is right.

    Checks everything but the stored results themselves, which
    ``ResumeRun`` decodes when it opens the folder.

    Raises:
        CheckpointError: the record is not what ``JournalWriter.append`` writes.
    """
    try:
        doc = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise damaged_error(source, folder, f"the record is not UTF-8 text ({exc})") from None
    except RecursionError:  # json's own limit; far beyond anything the writer nests
        raise damaged_error(source, folder, "the record's JSON is nested too deeply to read") from None
    except ValueError as exc:
        raise damaged_error(source, folder, f"the record is not valid JSON ({exc})") from None
    if type(doc) is not dict or list(doc) != ["tasks"]:
        raise damaged_error(source, folder, f'expected {{"tasks": [...]}}, got {shown_value(doc)}')
    tasks = doc["tasks"]
    if type(tasks) is not list or not tasks:
        raise damaged_error(source, folder, f'"tasks" must be a non-empty array, got {shown_value(tasks)}')
    rows: list[tuple[int, Entry]] = []
    for i, row in enumerate(tasks):
        what = f"task {i} of the record"
        if type(row) is not list or len(row) != 4:
            raise damaged_error(source, folder, f"{what} is not [position, hash, kind, result]: {shown_value(row)}")
        pos, h, kind, stored = row
        if type(pos) is not int or not 0 <= pos <= MAX_POSITION:
            raise damaged_error(
                source, folder, f"{what} has position {shown_value(pos)}, not an integer from 0 to 2**63-1"
            )
        if type(h) is not str or _HASH_RE.fullmatch(h) is None:
            raise damaged_error(
                source, folder, f"{what} has input hash {shown_value(h)}, not an input hash (32 hex digits)"
            )
        if type(kind) is not str or kind not in _KINDS:
            raise damaged_error(source, folder, f"{what} has kind {shown_value(kind)}, not one of {sorted(_KINDS)}")
        if kind == "-" and stored is not None:
            raise damaged_error(source, folder, f"{what} keeps no result (kind '-') but holds {shown_value(stored)}")
        if kind == "p" and type(stored) is not str:
            raise damaged_error(source, folder, f"{what} is a pickle (kind 'p') but holds {shown_value(stored)}")
        rows.append((pos, Entry(h, kind, stored, source)))
    return rows


def _read_segment(path: Path, entries: dict[int, Entry]) -> int:
    """Add the records of one journal file to ``entries``; return records ignored (0 or 1).

    A crash can only leave the end of a file unfinished: a file header cut short
    (or zeros, after a power cut), then records followed by a cut, zero-filled or
    garbled last one. That end is ignored and its tasks run again. A record that
    is whole, with the right checksum, but holds anything the writer never writes
    is not a crash: it raises.

    Raises:
        CheckpointError: the file or one of its whole records is not what parallelize wrote.
    """
    folder = path.parent
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # removed while we listed the folder
        return 0
    except IsADirectoryError:
        raise damaged_error(repr(str(path)), folder, "it is a folder, not a journal file") from None
    if not data.startswith(_SEGMENT_MAGIC):
        if _SEGMENT_MAGIC.startswith(data) or not data.strip(b"\0"):
            return 1 if data else 0  # created, then its header was cut short by a crash
        raise damaged_error(repr(str(path)), folder, f"it starts with {data[:8]!r}, not {_SEGMENT_MAGIC!r}")
    offset = len(_SEGMENT_MAGIC)
    size = _RECORD_HEADER.size
    record = 0
    while offset < len(data):
        record += 1
        if len(data) - offset < size:
            return 1
        magic, length, crc = _RECORD_HEADER.unpack_from(data, offset)
        source = f"{str(path)!r}, record {record} at byte {offset}"
        if magic != _RECORD_MAGIC:
            # Zeros or garbage where a record should start (what a power cut leaves
            # at the end of a file): nothing after it can be framed, it is ignored.
            return 1
        if length > _MAX_RECORD:
            raise damaged_error(
                source, folder, f"its header claims {length} bytes, more than any record ({_MAX_RECORD})"
            )
        start = offset + size
        payload = data[start : start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            # A torn or damaged record: it and anything after it in this file are
            # not trusted; those tasks run again.
            return 1
        entries.update(_parse_record(payload, source, folder))  # a later record wins
        offset = start + length
    return 0


class JournalWriter:
    """Appends fsync'd records to a new journal file of its own, created on first use."""

    def __init__(self, folder: Path, call: str) -> None:
        self.folder = folder
        self.call = call
        self._fd: int | None = None

    def _open(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / MANIFEST
        if not manifest.exists():
            doc = {"format": FORMAT, "version": VERSION, "call": self.call, "hash": _HASH_SCHEME}
            atomic_write(manifest, lambda f: json.dump(doc, f), binary=False)
        name = f"journal-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.log"
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        write_all(fd, _SEGMENT_MAGIC)
        os.fsync(fd)
        fsync_dir(self.folder)  # the new file's name must survive a power cut too
        return fd

    def append(self, tasks: list[list[Any]]) -> None:
        """Write one record of ``[position, hash, kind, payload]`` rows and fsync it."""
        if self._fd is None:
            self._fd = self._open()
        payload = json.dumps({"tasks": tasks}, separators=(",", ":"), allow_nan=False).encode("utf-8")
        write_all(self._fd, _frame(payload))
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# --------------------------------------------------------------------------- checkpoint


@dataclass(frozen=True)
class Checkpoint:
    """A folder where finished tasks are recorded so that a rerun resumes.

    Pass ``checkpoint=Checkpoint(folder)`` (or just the folder) to
    ``Parallelize.map``, ``starmap``, ``run_batches``, ``ModelEvaluator.run`` or a
    ``@parallel`` function's ``map``/``grid``. Creating the object touches no file.

    Attributes:
        folder: the folder; created on the first finished task. It must be new,
            empty, or a checkpoint folder.
        allow_pickle: load results that had to be pickled (anything but plain
            data). Loading a pickle can run code, so only allow it for folders you
            wrote yourself. Default False: such a folder raises
            ``CheckpointError`` when opened.
        store_values: record each task's result (default). ``False`` records
            only that a task finished: a rerun skips it and yields ``None`` in
            its place (``mp_lock``, where ``save_callback`` keeps the results).
        before_record: ``before_record(positions, items, values)``, called in the
            consuming thread with each batch's successful tasks after they are
            computed and before they are recorded; if it raises, the batch is
            not recorded (so a rerun computes it again) and the error goes on
            up. ``mp_lock``'s ``save_callback`` runs here. Default ``None``.
        record_every: with ``before_record``, successes are handed to it and
            recorded in groups of exactly this many, across batches (the last
            group smaller, at the end of the run), however the work was split
            into batches. A group still short when the run stops early is
            neither handed over nor recorded: a rerun computes it again. Until
            then results may be yielded before they are recorded. Default
            ``None``: one group per computed batch.

    Raises:
        ConfigError: ``folder`` is not a path, or a field has the wrong type.
    """

    folder: Path
    allow_pickle: bool = False
    store_values: bool = True
    before_record: Callable[[list[int], list[Any], list[Any]], None] | None = None
    record_every: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.folder, (str, os.PathLike)):
            raise ConfigError(f"a checkpoint folder must be a path (str or os.PathLike), got {self.folder!r}")
        object.__setattr__(self, "folder", Path(self.folder))
        check_bool("allow_pickle", self.allow_pickle)
        check_bool("store_values", self.store_values)
        check_callable(
            "before_record", self.before_record, signature="before_record(positions, items, values)", allow_none=True
        )
        if self.record_every is not None:
            check_int("record_every", self.record_every, minimum=1)
            if self.before_record is None:
                raise ConfigError("record_every groups the calls of before_record; give before_record too")

    @classmethod
    def of(cls, value: Any) -> Checkpoint:
        """``value`` if it is a ``Checkpoint``, else ``Checkpoint(value)``."""
        return value if isinstance(value, Checkpoint) else cls(value)

    # -- reading -----------------------------------------------------------------

    def _manifest(self) -> dict[str, Any] | None:
        path = self.folder / MANIFEST
        if not self.folder.exists():
            return None
        if not self.folder.is_dir():
            raise ConfigError(f"checkpoint folder {str(self.folder)!r} is a file; give a folder path")
        if not path.exists():
            ours = sorted(p.name for p in self.folder.glob(_SEGMENT_GLOB))
            others = [p.name for p in self.folder.iterdir() if p.name not in ours and not p.name.startswith(".")]
            # Looked at again: a writer may have put it in place during the listing
            # (a reader polling a checkpoint that a new run is creating saw it so).
            if not path.exists():
                if others:
                    raise ConfigError(
                        f"folder {str(self.folder)!r} is not a parallelize checkpoint (no {MANIFEST}) and is not "
                        f"empty (it holds {sorted(others)[:5]}); give a new or empty folder"
                    )
                if ours:  # the writer puts the manifest in place before any journal file
                    raise self._bad_manifest(path, f"it is missing, but the folder holds journal files {ours[:3]}")
                return None
        try:
            doc = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_no_constant)
        except IsADirectoryError:
            raise self._bad_manifest(path, "it is a folder, not a file") from None
        except RecursionError:
            raise self._bad_manifest(path, "its JSON is nested too deeply to read") from None
        except ValueError as exc:  # UnicodeDecodeError and json's errors included
            raise self._bad_manifest(path, f"it is not valid JSON text ({exc})") from None
        if type(doc) is not dict or doc.get("format") != FORMAT:
            raise self._bad_manifest(path, f"it is not a parallelize checkpoint manifest ({shown_value(doc)})")
        if doc.get("version") != VERSION:
            raise CheckpointError(
                f"checkpoint {str(self.folder)!r} has format version {shown_value(doc.get('version'))}; this "
                f"version of parallelize reads version {VERSION}. Open it with the version that wrote it, "
                "or delete the folder to start over"
            )
        expected = {"format": FORMAT, "version": VERSION, "call": None, "hash": _HASH_SCHEME}
        if sorted(doc) != sorted(expected) or doc["hash"] != _HASH_SCHEME or doc["call"] not in _CALLS:
            raise self._bad_manifest(
                path, f"expected the keys {sorted(expected)} with call one of {list(_CALLS)}, got {shown_value(doc)}"
            )
        return doc

    def _bad_manifest(self, path: Path, what: str) -> CheckpointError:
        return CheckpointError(
            f"checkpoint manifest {str(path)!r} is damaged: {what}. parallelize never writes that, so the "
            f"file was changed or corrupted. Delete the folder {str(self.folder)!r} to start over"
        )

    def load(self) -> tuple[dict[str, Any] | None, dict[int, Entry], int]:
        """The manifest, the recorded entries by position, and how many torn records were ignored.

        Raises:
            CheckpointError: a file of the folder is damaged or crafted.
        """
        manifest = self._manifest()
        entries: dict[int, Entry] = {}
        ignored = 0
        if self.folder.is_dir():
            for path in sorted(self.folder.glob(_SEGMENT_GLOB)):
                ignored += _read_segment(path, entries)
        return manifest, entries, ignored

    def completed_positions(self) -> frozenset[int]:
        """Positions of the input whose task is recorded as finished.

        Read-only and safe while a run is writing (a record being written is
        simply not counted yet). Checks the files' framing and records but does
        not decode the stored results; a resumed run does.

        Raises:
            CheckpointError: a file of the folder is damaged or crafted.
        """
        return frozenset(self.load()[1])

    def is_completed(self, iterable: Iterable[Any]) -> bool:
        """Whether every item of ``iterable`` has a finished task recorded here.

        Args:
            iterable: the inputs, as they would be passed to the run.

        Returns:
            True if a rerun would compute nothing.

        Raises:
            CheckpointError: a file of the folder is damaged or crafted.
            ResumeMismatchError: some recorded positions hold other inputs.
        """
        _, entries, _ = self.load()
        it = enumerate(iterable)
        for pos, item in it:
            entry = entries.get(pos)
            if entry is None:
                return False
            if input_hash(item) != entry.hash:
                raise mismatch_error(self.folder, entries, [(pos, item)], it)
        return True


def mismatch_error(
    folder: Path, entries: dict[int, Entry], found: list[tuple[int, Any]], rest: Iterator[tuple[int, Any]] | None
) -> ResumeMismatchError:
    """The error for inputs that differ from the recorded ones, scanning ``rest`` for more."""
    if rest is not None and entries:
        last = max(entries)
        for pos, item in rest:
            if pos > last:
                break
            entry = entries.get(pos)
            if entry is not None and input_hash(item) != entry.hash:
                found.append((pos, item))
    shown = ", ".join(f"{pos} (now {short_repr(item)[:60]})" for pos, item in found[:_SHOWN_MISMATCHES])
    more = f" and {len(found) - _SHOWN_MISMATCHES} more" if len(found) > _SHOWN_MISMATCHES else ""
    return ResumeMismatchError(
        f"checkpoint {str(folder)!r} holds results for other inputs at {len(found)} position(s): "
        f"{shown}{more}. Old and new results are never mixed: restore the original inputs, or use a "
        "new folder (or delete this one) to start over"
    )
