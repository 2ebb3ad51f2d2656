"""Checkpoints: resume a run after a crash, computing only what is missing.

With ``checkpoint=FOLDER``, every finished task is written to a journal in
``FOLDER`` before its result is handed to the caller. A rerun reads the journal,
checks that the stored inputs are still the inputs at those positions, runs only
the missing positions and merges old and new results back into input order::

    input ──enumerate──> position stored? ──yes──> stored value ──────────────┐
                                │ no                                           v
                                └─> runner (only missing items) ─> journal ─> merge in
                                                                   (fsync)    input order

Folder layout:

- ``checkpoint.json``: the format version and the call mode (``map``, ``starmap``
  or keyword points), written atomically (temp file, fsync, rename).
- ``journal-<time>-<pid>-<id>.log``: one append-only file per run. Each record
  holds one finished batch (position, input hash, encoded result per task) and is
  framed by a magic tag, its length and a CRC-32, then fsync'd. A record torn by
  a crash (short, or with a wrong checksum) ends the reading of that file and is
  ignored, so its tasks simply run again; it is never mixed into results.

Anything else that is not what this module writes (a whole record with the right
checksum but the wrong content, a huge length field, JSON nested too deeply, a
foreign or missing manifest) raises :class:`~parallelize.errors.CheckpointError`
naming the file and record, before anything runs: the reader accepts exactly
the shapes the writer produces, never recurses more than a few hundred frames
and never unpickles without ``allow_pickle``.

Results are stored as tagged JSON when they are plain data (None, bool, int,
float including nan/inf, str, bytes, complex, list, tuple, dict, set, frozenset,
and NumPy arrays and scalars of numeric, bool, datetime or string dtypes), so that
tuples stay tuples and ``1.0`` stays a float. Any other result, and plain data
nested more than ``_MAX_NESTING`` JSON levels deep or ints of over 14,000 bits,
is pickled with cloudpickle. Reading a pickle can run arbitrary code, so a
checkpoint holding pickled results is only loaded with
``Checkpoint(folder, allow_pickle=True)``; by default opening it raises
:class:`~parallelize.errors.CheckpointError` before anything runs.

Inputs are identified by position and a content hash
(:func:`input_hash`), the same in every process and run.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import json
import math
import os
import pickle
import re
import struct
import time
import types
import uuid
import zlib
from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import cloudpickle

from .errors import CheckpointError, ConfigError, PicklingError, ResumeMismatchError
from .space import params_hash
from .statistics import Statistics, StatisticsCollector
from .task import BatchResult, TaskFailure, _short_repr

__all__ = ["STORED_WORKER", "Checkpoint", "ResumeRun", "input_hash", "resume"]

FORMAT = "parallelize-checkpoint"
VERSION = 1
MANIFEST = "checkpoint.json"
_HASH_SCHEME = "sha256-params-v1"
_CALLS = ("arg", "star", "kwargs")
_SEGMENT_GLOB = "journal-*.log"
_SEGMENT_MAGIC = b"PZJOURN1"
_RECORD_MAGIC = b"PZR1"
_RECORD_HEADER = struct.Struct("<4sQI")  # magic, payload length, CRC-32 of the payload
_HASH_CHARS = 32
# Stored results at the start of the input are handed out in runs of this many,
# so a long finished prefix never sits in memory twice.
_PREFIX_RUN = 1024
# Differing positions named in a ResumeMismatchError.
_SHOWN_MISMATCHES = 10
_NUMPY_KINDS = "biufcmMSU"
# What ``dtype.str`` looks like for those kinds ('<f8', '|b1', '<M8[10ns]', '<U2'):
# a stored dtype must match it before NumPy parses it.
_DTYPE_RE = re.compile(r"[<>|][biufcmMSU][0-9]{1,10}(?:\[[0-9]{0,10}[a-zA-Z]{1,2}\])?")
# input_hash's two forms: 32 hex digits, or "p" and 31 of them.
_HASH_RE = re.compile(r"[0-9a-f]{32}|p[0-9a-f]{31}")
# JSON containers one stored result may nest (a tuple takes two, a list one).
# Deeper results are pickled instead, so decoding, which recurses, stays far
# below Python's default limit of 1000 frames, and so does json.loads.
_MAX_NESTING = 200
# Ints longer than this are pickled: json writes and reads at most 4300 decimal
# digits (sys.int_info.default_max_str_digits), about 14,284 bits.
_MAX_INT_BITS = 14_000
# Positions beyond this are no input's (NumPy and most sequences index with int64).
_MAX_POSITION = 2**63 - 1
# The writer builds each payload in memory, so a length field beyond this was
# never written by it: damage, not a record cut short by a crash.
_MAX_RECORD = 1 << 40
# Stored result kinds: tagged JSON, pickle, or none kept (only "finished").
_KINDS = frozenset(("j", "p", "-"))
#: The ``worker`` of batch results read back from a checkpoint rather than computed.
STORED_WORKER = "checkpoint"


# --------------------------------------------------------------------------- input hash


def _is_canonical(value: Any, depth: int = 0) -> bool:
    """Whether :func:`parallelize.params_hash` encodes ``value`` exactly (not by repr)."""
    if depth > 100:
        return False
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, enum.Enum)):
        return True
    if type(value).__module__ == "numpy":
        dtype = getattr(value, "dtype", None)
        return dtype is not None and not dtype.hasobject
    if isinstance(value, (tuple, list, set, frozenset)):
        return all(_is_canonical(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return all(_is_canonical(k, depth + 1) and _is_canonical(v, depth + 1) for k, v in value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_is_canonical(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return "<" not in value.__qualname__
    return False


def input_hash(item: Any) -> str:
    """A content hash of one input, the same in every process, run and machine.

    Plain data (numbers, strings, bytes, containers, mappings, NumPy arrays,
    dataclasses, enums) is hashed by value with :func:`parallelize.params_hash`,
    which sorts sets and mappings, so ``PYTHONHASHSEED`` does not matter. Any
    other object is hashed by its cloudpickle bytes, which are stable for a given
    object unless it holds a set of strings (a rerun then reports a mismatch
    rather than reusing a result).

    Args:
        item: the input.

    Returns:
        32 hex digits.

    Raises:
        ConfigError: the item can be neither encoded nor pickled.
    """
    t = type(item)
    if t is int or t is str:
        # The common case, hashed without the general encoder; the tag keeps
        # these apart from each other and from params_hash's encodings.
        data = (b"i" + str(item).encode()) if t is int else (b"s" + item.encode("utf-8", "surrogatepass"))
        return hashlib.sha256(data).hexdigest()[:_HASH_CHARS]
    if _is_canonical(item):
        return params_hash({"input": item}, _HASH_CHARS)
    try:
        data = cloudpickle.dumps(item, protocol=4)
    except Exception as exc:
        raise ConfigError(
            f"cannot checkpoint the input {_short_repr(item)}: it is not plain data and cannot be "
            f"pickled ({exc}); use inputs such as numbers, strings, tuples or dicts"
        ) from exc
    return "p" + hashlib.sha256(data).hexdigest()[: _HASH_CHARS - 1]


# --------------------------------------------------------------------------- result codec


class _NotPlain(Exception):
    """Raised inside the encoder: the value needs a pickle."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    """The bytes of a base64 string; ValueError for anything :func:`_b64` never returns."""
    if type(text) is not str:
        raise ValueError(f"expected a base64 string, got {_shown(text)}")
    return base64.b64decode(text, validate=True)  # binascii.Error is a ValueError


def _shown(value: Any) -> str:
    """A short description of a JSON value for a message, never expensive (no deep repr)."""
    if isinstance(value, list):
        return f"a JSON array of {len(value)} item(s)"
    if isinstance(value, dict):
        return f"a JSON object with keys {sorted(map(str, value))[:5]}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain_dtype(dtype: Any) -> bool:
    """Whether a NumPy dtype is stored as JSON: numeric, bool, date/time or string, no objects."""
    return (
        dtype.kind in _NUMPY_KINDS
        and dtype.fields is None
        and dtype.subdtype is None
        and not dtype.hasobject
        and dtype.itemsize > 0
        and _DTYPE_RE.fullmatch(dtype.str) is not None
    )


def _room(room: int, needed: int) -> None:
    if room < needed:
        raise ValueError(f"nested more than {_MAX_NESTING} levels deep")


def _encode(value: Any, room: int = _MAX_NESTING) -> Any:
    """A JSON document for ``value`` that decodes to an equal value of the same types.

    Lists and scalars are themselves; everything else is a one-key object whose
    key is a type tag (a real dict is always tagged, so tags are unambiguous).

    Args:
        value: the value.
        room: how many more JSON containers (arrays, objects) may nest here. A
            value needing more raises :class:`_NotPlain` and is pickled instead, so
            that :func:`_decode`, which allows exactly as much, never recurses deeply.
    """
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        if value.bit_length() > _MAX_INT_BITS:
            raise _NotPlain
        return value
    if t is float and math.isfinite(value):
        return value
    if room < 1:
        raise _NotPlain
    if t is float:
        return {"f": repr(value)}
    if t is list:
        return [_encode(v, room - 1) for v in value]
    if t is bytes:
        return {"b": _b64(value)}
    if room < 2:
        raise _NotPlain
    if t is tuple:
        return {"t": [_encode(v, room - 2) for v in value]}
    if t is dict:
        if all(type(k) is str for k in value):
            return {"m": {k: _encode(v, room - 2) for k, v in value.items()}}
        if room < 3:
            raise _NotPlain
        return {"d": [[_encode(k, room - 3), _encode(v, room - 3)] for k, v in value.items()]}
    if t is set or t is frozenset:
        return {"set" if t is set else "fset": [_encode(v, room - 2) for v in value]}
    if t is complex:
        return {"c": [_encode(value.real, room - 2), _encode(value.imag, room - 2)]}
    if t.__module__ == "numpy":
        dtype = getattr(value, "dtype", None)
        if dtype is None or not _plain_dtype(dtype):
            raise _NotPlain
        import numpy as np

        if isinstance(value, np.ndarray) and t is np.ndarray and room >= 3:
            return {"nd": [dtype.str, list(value.shape), _b64(np.ascontiguousarray(value).tobytes())]}
        if isinstance(value, np.generic):
            return {"ns": [dtype.str, _b64(np.asarray(value).tobytes())]}
    raise _NotPlain


def _body(what: str, body: Any, size: int | None = None) -> list[Any]:
    """``body`` if it is a JSON array (of ``size`` items when given), else ValueError."""
    if type(body) is not list or (size is not None and len(body) != size):
        shape = "an array" if size is None else f"an array of {size} items"
        raise ValueError(f"{what} must be {shape}, got {_shown(body)}")
    return body


def _numpy_dtype(text: Any) -> Any:
    """The NumPy dtype named by a stored ``dtype.str``; ValueError for any other dtype."""
    import numpy as np

    if type(text) is not str or _DTYPE_RE.fullmatch(text) is None:
        raise ValueError(f"refusing NumPy dtype {_shown(text)}")
    try:
        dtype = np.dtype(text)
    except TypeError as exc:
        raise ValueError(f"refusing NumPy dtype {text!r} ({exc})") from exc
    if not _plain_dtype(dtype):  # never an object dtype: those would need a pickle
        raise ValueError(f"refusing NumPy dtype {text!r}")
    return dtype


def _decode(doc: Any, room: int = _MAX_NESTING) -> Any:
    """The value :func:`_encode` made ``doc`` from.

    Accepts exactly what :func:`_encode` writes, so a crafted document cannot
    recurse deeply, allocate more than its own size, or reach a pickle. Loops
    rather than comprehensions keep it at one stack frame per nesting level.

    Args:
        doc: a JSON document as :func:`json.loads` returns it.
        room: how many more JSON containers may nest here, as in :func:`_encode`.

    Returns:
        The value.

    Raises:
        ValueError: ``doc`` is not something :func:`_encode` returns (unknown or
            misused tag, wrong shape or type, nested too deeply).
    """
    t = type(doc)
    if doc is None or t is bool or t is int or t is str:
        return doc
    if t is float:
        if not math.isfinite(doc):  # the encoder tags these ({"f": "nan"})
            raise ValueError(f"untagged non-finite float {doc!r}")
        return doc
    _room(room, 1)
    out: list[Any] = []
    if t is list:
        for v in doc:
            out.append(_decode(v, room - 1))
        return out
    if t is not dict or len(doc) != 1:
        raise ValueError(f"expected a value or a one-key tagged object, got {_shown(doc)}")
    ((tag, body),) = doc.items()
    if tag == "f":
        if body not in ("nan", "inf", "-inf"):
            raise ValueError(f"bad float {_shown(body)}")
        return float(body)
    if tag == "b":
        return _unb64(body)
    if tag not in ("t", "set", "fset", "m", "d", "c", "nd", "ns"):
        raise ValueError(f"unknown tag {_shown(tag)}")
    _room(room, 2)
    if tag == "m":
        if type(body) is not dict:
            raise ValueError(f"the body of tag 'm' must be an object, got {_shown(body)}")
        mapping: dict[str, Any] = {}
        for k, v in body.items():
            mapping[k] = _decode(v, room - 2)
        return mapping
    if tag in ("t", "set", "fset"):
        for v in _body(f"the body of tag {tag!r}", body):
            out.append(_decode(v, room - 2))
        if tag == "t":
            return tuple(out)
        try:
            return set(out) if tag == "set" else frozenset(out)
        except TypeError as exc:  # an element that can never be in a set, such as a list
            raise ValueError(f"a {tag} holds an unhashable element ({exc})") from exc
    if tag == "d":
        _room(room, 3)
        result: dict[Any, Any] = {}
        for pair in _body("the body of tag 'd'", body):
            k, v = _body("a key-value pair of tag 'd'", pair, 2)
            try:
                result[_decode(k, room - 3)] = _decode(v, room - 3)
            except TypeError as exc:
                raise ValueError(f"a dict key is unhashable ({exc})") from exc
        return result
    if tag == "c":
        for part in _body("the body of tag 'c'", body, 2):
            out.append(_decode(part, room - 2))
        if type(out[0]) is not float or type(out[1]) is not float:
            raise ValueError(f"a complex number needs two floats, got {_shown(body)}")
        return complex(out[0], out[1])
    import numpy as np

    if tag == "ns":
        text, data = _body("the body of tag 'ns'", body, 2)
        dtype = _numpy_dtype(text)
        raw = _unb64(data)
        if len(raw) != dtype.itemsize:
            raise ValueError(f"a NumPy {dtype} scalar needs {dtype.itemsize} bytes, got {len(raw)}")
        return np.frombuffer(raw, dtype=dtype)[0]
    _room(room, 3)
    text, shape, data = _body("the body of tag 'nd'", body, 3)
    dtype = _numpy_dtype(text)
    dims = _body("a NumPy shape", shape)
    if len(dims) > 64 or any(type(n) is not int or not 0 <= n <= _MAX_POSITION for n in dims):
        raise ValueError(f"a NumPy shape is up to 64 integers from 0 to 2**63-1, got {_shown(shape)}")
    raw = _unb64(data)
    if len(raw) != math.prod(dims) * dtype.itemsize:  # exact ints: no overflow, nothing allocated
        raise ValueError(f"{len(raw)} bytes do not make a NumPy {dtype} array of shape {tuple(dims)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _encode_result(value: Any, position: int) -> tuple[str, Any]:
    """``("j", json_doc)`` for plain data, else ``("p", base64_pickle)``."""
    try:
        return "j", _encode(value)
    except _NotPlain:
        pass
    except RecursionError:
        pass
    try:
        return "p", _b64(cloudpickle.dumps(value))
    except Exception as exc:
        raise PicklingError(
            f"the result of task {position} ({_short_repr(value)}) cannot be stored in the checkpoint: "
            f"it is not plain data and cannot be pickled ({exc}); return plain data or pickleable objects"
        ) from exc


# --------------------------------------------------------------------------- journal


class _Entry(NamedTuple):
    """One finished task as stored: input hash, result kind and payload, and where it was read.

    ``kind`` is ``"j"`` (tagged JSON), ``"p"`` (base64 pickle) or ``"-"`` (no
    result kept) as written; a resumed run turns ``"j"`` into ``"v"`` (decoded
    value) and a ``"p"`` payload into its bytes once it has checked them.
    """

    hash: str
    kind: str
    payload: Any
    source: str  # the file and record, for messages


def _damaged(source: str, folder: Path, what: str) -> CheckpointError:
    """The error for a journal file or record that parallelize did not write this way."""
    return CheckpointError(
        f"checkpoint journal {source} is damaged: {what}. parallelize never writes that, so the file was "
        f"changed or corrupted; nothing in it was used or run. Delete the folder {str(folder)!r} to start "
        "over, or remove just that file to recompute only its tasks"
    )


def _fsync_dir(folder: Path) -> None:
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _frame(payload: bytes) -> bytes:
    """One journal record: magic tag, length and CRC-32 of ``payload``, then ``payload``."""
    return _RECORD_HEADER.pack(_RECORD_MAGIC, len(payload), zlib.crc32(payload)) + payload


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (the writer never writes it)")


def _parse_record(payload: bytes, source: str, folder: Path) -> list[tuple[int, _Entry]]:
    """The ``(position, entry)`` rows of one whole record whose checksum is right.

    Checks everything but the stored results themselves, which
    :class:`ResumeRun` decodes when it opens the folder.

    Raises:
        CheckpointError: the record is not what :meth:`_JournalWriter.append` writes.
    """
    try:
        doc = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise _damaged(source, folder, f"the record is not UTF-8 text ({exc})") from None
    except RecursionError:  # json's own limit; far beyond anything the writer nests
        raise _damaged(source, folder, "the record's JSON is nested too deeply to read") from None
    except ValueError as exc:
        raise _damaged(source, folder, f"the record is not valid JSON ({exc})") from None
    if type(doc) is not dict or list(doc) != ["tasks"]:
        raise _damaged(source, folder, f'expected {{"tasks": [...]}}, got {_shown(doc)}')
    tasks = doc["tasks"]
    if type(tasks) is not list or not tasks:
        raise _damaged(source, folder, f'"tasks" must be a non-empty array, got {_shown(tasks)}')
    rows: list[tuple[int, _Entry]] = []
    for i, row in enumerate(tasks):
        what = f"task {i} of the record"
        if type(row) is not list or len(row) != 4:
            raise _damaged(source, folder, f"{what} is not [position, hash, kind, result]: {_shown(row)}")
        pos, h, kind, stored = row
        if type(pos) is not int or not 0 <= pos <= _MAX_POSITION:
            raise _damaged(source, folder, f"{what} has position {_shown(pos)}, not an integer from 0 to 2**63-1")
        if type(h) is not str or _HASH_RE.fullmatch(h) is None:
            raise _damaged(source, folder, f"{what} has input hash {_shown(h)}, not an input hash (32 hex digits)")
        if type(kind) is not str or kind not in _KINDS:
            raise _damaged(source, folder, f"{what} has kind {_shown(kind)}, not one of {sorted(_KINDS)}")
        if kind == "-" and stored is not None:
            raise _damaged(source, folder, f"{what} keeps no result (kind '-') but holds {_shown(stored)}")
        if kind == "p" and type(stored) is not str:
            raise _damaged(source, folder, f"{what} is a pickle (kind 'p') but holds {_shown(stored)}")
        rows.append((pos, _Entry(h, kind, stored, source)))
    return rows


def _read_segment(path: Path, entries: dict[int, _Entry]) -> int:
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
        raise _damaged(repr(str(path)), folder, "it is a folder, not a journal file") from None
    if not data.startswith(_SEGMENT_MAGIC):
        if _SEGMENT_MAGIC.startswith(data) or not data.strip(b"\0"):
            return 1 if data else 0  # created, then its header was cut short by a crash
        raise _damaged(repr(str(path)), folder, f"it starts with {data[:8]!r}, not {_SEGMENT_MAGIC!r}")
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
            raise _damaged(source, folder, f"its header claims {length} bytes, more than any record ({_MAX_RECORD})")
        start = offset + size
        payload = data[start : start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            # A torn or damaged record: it and anything after it in this file are
            # not trusted; those tasks run again.
            return 1
        entries.update(_parse_record(payload, source, folder))  # a later record wins
        offset = start + length
    return 0


class _JournalWriter:
    """Appends fsync'd records to a new journal file of its own, created on first use."""

    def __init__(self, folder: Path, call: str) -> None:
        self.folder = folder
        self.call = call
        self._fd: int | None = None

    def _open(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / MANIFEST
        if not manifest.exists():
            tmp = self.folder / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
            doc = {"format": FORMAT, "version": VERSION, "call": self.call, "hash": _HASH_SCHEME}
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, manifest)
        name = f"journal-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.log"
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        _write_all(fd, _SEGMENT_MAGIC)
        os.fsync(fd)
        _fsync_dir(self.folder)  # the new file's name must survive a power cut too
        return fd

    def append(self, tasks: list[list[Any]]) -> None:
        """Write one record of ``[position, hash, kind, payload]`` rows and fsync it."""
        if self._fd is None:
            self._fd = self._open()
        payload = json.dumps({"tasks": tasks}, separators=(",", ":"), allow_nan=False).encode("utf-8")
        _write_all(self._fd, _frame(payload))
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
            :class:`~parallelize.errors.CheckpointError` when opened.

    Raises:
        ConfigError: ``folder`` is not a path.
    """

    folder: Path
    allow_pickle: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.folder, (str, os.PathLike)):
            raise ConfigError(f"a checkpoint folder must be a path (str or os.PathLike), got {self.folder!r}")
        object.__setattr__(self, "folder", Path(self.folder))
        if not isinstance(self.allow_pickle, bool):
            raise ConfigError(f"allow_pickle must be True or False, got {self.allow_pickle!r}")

    @classmethod
    def of(cls, value: Any) -> Checkpoint:
        """``value`` if it is a :class:`Checkpoint`, else ``Checkpoint(value)``."""
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
            raise self._bad_manifest(path, f"it is not a parallelize checkpoint manifest ({_shown(doc)})")
        if doc.get("version") != VERSION:
            raise CheckpointError(
                f"checkpoint {str(self.folder)!r} has format version {_shown(doc.get('version'))}; this "
                f"version of parallelize reads version {VERSION}. Open it with the version that wrote it, "
                "or delete the folder to start over"
            )
        expected = {"format": FORMAT, "version": VERSION, "call": None, "hash": _HASH_SCHEME}
        if sorted(doc) != sorted(expected) or doc["hash"] != _HASH_SCHEME or doc["call"] not in _CALLS:
            raise self._bad_manifest(
                path, f"expected the keys {sorted(expected)} with call one of {list(_CALLS)}, got {_shown(doc)}"
            )
        return doc

    def _bad_manifest(self, path: Path, what: str) -> CheckpointError:
        return CheckpointError(
            f"checkpoint manifest {str(path)!r} is damaged: {what}. parallelize never writes that, so the "
            f"file was changed or corrupted. Delete the folder {str(self.folder)!r} to start over"
        )

    def _load(self) -> tuple[dict[str, Any] | None, dict[int, _Entry], int]:
        """The manifest, the recorded entries by position, and how many torn records were ignored.

        Raises:
            CheckpointError: a file of the folder is damaged or crafted.
        """
        manifest = self._manifest()
        entries: dict[int, _Entry] = {}
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
        return frozenset(self._load()[1])

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
        _, entries, _ = self._load()
        it = enumerate(iterable)
        for pos, item in it:
            entry = entries.get(pos)
            if entry is None:
                return False
            if input_hash(item) != entry.hash:
                raise _mismatch(self.folder, entries, [(pos, item)], it)
        return True


def _mismatch(
    folder: Path, entries: dict[int, _Entry], found: list[tuple[int, Any]], rest: Iterator[tuple[int, Any]] | None
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
    shown = ", ".join(f"{pos} (now {_short_repr(item)[:60]})" for pos, item in found[:_SHOWN_MISMATCHES])
    more = f" and {len(found) - _SHOWN_MISMATCHES} more" if len(found) > _SHOWN_MISMATCHES else ""
    return ResumeMismatchError(
        f"checkpoint {str(folder)!r} holds results for other inputs at {len(found)} position(s): "
        f"{shown}{more}. Old and new results are never mixed: restore the original inputs, or use a "
        "new folder (or delete this one) to start over"
    )


# --------------------------------------------------------------------------- resume


@dataclass(slots=True)
class _Slot:
    """One position on its way out: the input, the value (or failure), its origin."""

    pos: int
    item: Any
    value: Any
    failed: bool = False
    duration: float = math.nan
    worker: str = STORED_WORKER


def _runs(slots: list[_Slot], elapsed: float = 0.0) -> Iterator[BatchResult]:
    """Group slots into BatchResults of consecutive positions from one origin."""
    i = 0
    while i < len(slots):
        j = i + 1
        while j < len(slots) and slots[j].pos == slots[j - 1].pos + 1 and slots[j].worker == slots[i].worker:
            j += 1
        part = slots[i:j]
        yield BatchResult(
            first=part[0].pos,
            values=[s.value for s in part],
            durations=array("d", [s.duration for s in part]),
            failures=[k for k, s in enumerate(part) if s.failed],
            worker=part[0].worker,
            elapsed=elapsed if i == 0 else 0.0,
            items=[s.item for s in part],
        )
        i = j


class _Statistics:
    """Statistics of the computed part of a resumed run (stored tasks are not counted)."""

    def __init__(self) -> None:
        self.stream: Any = None
        self.empty = StatisticsCollector(0)
        self.empty.close()

    def snapshot(self) -> Statistics:
        if self.stream is not None:
            return self.stream.statistics()
        return self.empty.snapshot()


class _Missing:
    """The items still to compute, as an iterable the runner can take a length of."""

    def __init__(self, feed: Iterator[Any], count: int | None) -> None:
        self._feed = feed
        self._count = count

    def __len__(self) -> int:
        if self._count is None:
            raise TypeError("unknown number of missing items")
        return self._count

    def __iter__(self) -> Iterator[Any]:
        return self._feed


class ResumeRun:
    """One resumed run over a checkpoint: opened and checked at once, run lazily.

    Args:
        runner: the :class:`~parallelize.Parallelize` runner computing missing items.
        func: the function.
        iterable: all inputs, in order.
        call: ``"arg"``, ``"star"`` or ``"kwargs"``.
        ordered: yield in input order (else stored results first, then as completed).
        checkpoint: the folder or :class:`Checkpoint`.
        overrides: per-call options for the runner.
        fixed: keyword arguments added to every call.
        store_values: record results (False records only that a task finished).
        commit: called with ``(positions, items, values)`` of a batch's successful
            tasks after they are computed and before they are recorded; if it raises,
            the batch is not recorded.

    Raises:
        ConfigError: a bad folder or option.
        CheckpointError: a file of the folder is damaged or crafted, or it holds
            pickled results and ``allow_pickle`` is False.
        ResumeMismatchError: a sized input differs from the recorded inputs.
    """

    def __init__(
        self,
        runner: Any,
        func: Callable[..., Any],
        iterable: Iterable[Any],
        *,
        call: str,
        ordered: bool,
        checkpoint: Any,
        overrides: dict[str, Any] | None = None,
        fixed: dict[str, Any] | None = None,
        store_values: bool = True,
        commit: Callable[[list[int], list[Any], list[Any]], None] | None = None,
    ) -> None:
        if not callable(func):
            raise ConfigError(f"func must be callable (a function, method or object with __call__), got {func!r}")
        self.checkpoint = Checkpoint.of(checkpoint)
        self._runner = runner
        self._func = func
        self._iterable = iterable
        self._call = call
        self._ordered = ordered
        self._overrides = dict(overrides or {})
        options = runner._options(dict(self._overrides))  # validates now, not at the first result
        self.skip_failures = options.on_error == "skip"
        self._fixed = fixed
        self._store = store_values
        self._commit = commit
        self.statistics = _Statistics()
        manifest, self._entries, self.ignored_records = self.checkpoint._load()
        folder = self.checkpoint.folder
        if manifest is not None and manifest.get("call") != call:
            raise ResumeMismatchError(
                f"checkpoint {str(folder)!r} was written by a run calling func with call mode "
                f"{manifest.get('call')!r}; this run uses {call!r} (map: 'arg', starmap: 'star', "
                "parameter spaces: 'kwargs'). Use a new folder"
            )
        pickled = [e for e in self._entries.values() if e.kind == "p"]
        if pickled and not self.checkpoint.allow_pickle:
            raise CheckpointError(
                f"checkpoint {str(folder)!r} holds {len(pickled)} pickled result(s) (the first in journal "
                f"{pickled[0].source}); loading a pickle can run arbitrary code, so it is refused by default. "
                "If you wrote this folder yourself, pass checkpoint=Checkpoint(folder, allow_pickle=True); "
                "otherwise delete the folder to start over"
            )
        self._check_stored()
        self._verified = False
        self.missing: int | None = None
        self._prescan()
        self._meta: dict[int, tuple[int, str]] = {}
        self._stored_seen: deque[_Slot] = deque()

    def _usable(self, entry: _Entry | None) -> bool:
        return entry is not None and (entry.kind != "-" or not self._store)

    def _prescan(self) -> None:
        """Check the recorded positions of an indexable input before anything runs."""
        from .space import Space

        data = self._iterable
        if isinstance(data, Space):
            if not data.is_finite:
                return
        elif not isinstance(data, (Sequence, range)) or isinstance(data, (str, bytes)):
            return
        n = len(data)
        found = [(pos, data[pos]) for pos in sorted(self._entries) if pos < n]
        bad = [(pos, item) for pos, item in found if input_hash(item) != self._entries[pos].hash]
        if bad:
            raise _mismatch(self.checkpoint.folder, self._entries, bad, None)
        self._verified = True
        self.missing = n - sum(1 for pos, _ in found if self._usable(self._entries[pos]))

    def _check(self, pos: int, item: Any, entry: _Entry, rest: Iterator[tuple[int, Any]]) -> None:
        if not self._verified and input_hash(item) != entry.hash:
            raise _mismatch(self.checkpoint.folder, self._entries, [(pos, item)], rest)

    def _feed(self, it: Iterator[tuple[int, Any]]) -> Iterator[Any]:
        """The missing items, for the runner; stored ones are set aside for the merge."""
        index = 0
        for pos, item in it:
            entry = self._entries.get(pos)
            if entry is not None:
                self._check(pos, item, entry, it)
                if self._usable(entry):
                    self._stored_seen.append(self._stored_slot(pos, item, entry))
                    continue
            self._meta[index] = (pos, input_hash(item))
            index += 1
            yield item

    def _stored_batch(self, first: int, items: list[Any], entries: list[_Entry]) -> BatchResult:
        """Consecutive stored results from ``first`` on, as one BatchResult."""
        return BatchResult(
            first=first,
            values=[self._value(first + k, e) for k, e in enumerate(entries)],
            durations=array("d", [math.nan]) * len(entries),
            failures=[],
            worker=STORED_WORKER,
            elapsed=0.0,
            items=items,
        )

    def _stored_slot(self, pos: int, item: Any, entry: _Entry) -> _Slot:
        return _Slot(pos, item, entry)  # unpickled (if a pickle) when handed out

    def _decoded(self, slots: list[_Slot]) -> list[_Slot]:
        for s in slots:
            if isinstance(s.value, _Entry):
                s.value = self._value(s.pos, s.value)
        return slots

    def _check_stored(self) -> None:
        """Decode every stored JSON result (and a pickle's base64) now, before anything runs.

        A damaged or crafted result raises here rather than after work was done;
        decoded values replace their JSON, so they are not held twice.
        """
        for pos, entry in self._entries.items():
            if entry.kind == "j":
                self._entries[pos] = entry._replace(kind="v", payload=self._value(pos, entry))
            elif entry.kind == "p" and type(entry.payload) is str:
                try:
                    self._entries[pos] = entry._replace(payload=_unb64(entry.payload))
                except ValueError as exc:
                    raise self._damaged_result(pos, entry, exc) from None

    def _damaged_result(self, pos: int, entry: _Entry, exc: BaseException) -> CheckpointError:
        return _damaged(entry.source, self.checkpoint.folder, f"the stored result of task {pos} cannot be read ({exc})")

    def _value(self, pos: int, entry: _Entry) -> Any:
        if entry.kind == "v":
            return entry.payload
        if entry.kind == "-":
            return None
        if entry.kind == "j":
            try:
                return _decode(entry.payload)
            except Exception as exc:  # whatever a crafted document trips, it is damage
                raise self._damaged_result(pos, entry, exc) from None
        # Only pickles are left. __init__ refuses them without allow_pickle; checked
        # again here, since this is the one line of the module that can run code.
        if entry.kind != "p" or not self.checkpoint.allow_pickle or type(entry.payload) is not bytes:
            raise self._damaged_result(pos, entry, ValueError(f"kind {entry.kind!r} may not be loaded"))
        try:
            return pickle.loads(entry.payload)
        except Exception as exc:
            raise CheckpointError(
                f"the pickled result of task {pos} in checkpoint journal {entry.source} cannot be loaded "
                f"({type(exc).__name__}: {exc}); delete the folder {str(self.checkpoint.folder)!r} to "
                "recompute everything"
            ) from exc

    def _record(self, journal: _JournalWriter, result: BatchResult) -> list[_Slot]:
        """Map a computed batch back to input positions, commit and record its successes."""
        failed = set(result.failures)
        items = result.items if result.items is not None else [None] * len(result.values)
        slots: list[_Slot] = []
        rows: list[list[Any]] = []
        done: tuple[list[int], list[Any], list[Any]] = ([], [], [])
        for j, value in enumerate(result.values):
            pos, h = self._meta.pop(result.first + j)
            duration = result.durations[j] if j < len(result.durations) else math.nan
            if j in failed:
                if isinstance(value, TaskFailure):
                    value = dataclasses.replace(value, index=pos)
                slots.append(_Slot(pos, items[j], value, True, duration, result.worker))
                continue
            slots.append(_Slot(pos, items[j], value, False, duration, result.worker))
            if self._store:
                kind, payload = _encode_result(value, pos)
            else:
                kind, payload = "-", None
            rows.append([pos, h, kind, payload])
            done[0].append(pos)
            done[1].append(items[j])
            done[2].append(value)
        for j in range(len(result.values), len(items)):  # tasks a stopped batch never ran
            self._meta.pop(result.first + j, None)
        if rows:
            if self._commit is not None:
                self._commit(*done)
            journal.append(rows)
        return slots

    def _drain(self, before: int | None) -> list[_Slot]:
        out: list[_Slot] = []
        seen = self._stored_seen
        while seen and (before is None or seen[0].pos < before):
            out.append(seen.popleft())
        return self._decoded(out)

    def batches(self) -> Iterator[BatchResult]:
        """Run what is missing; yield stored and new results as BatchResults.

        Batch ``first`` and ``items`` refer to positions of the whole input.

        Raises:
            ResumeMismatchError: an input from a generator differs from the recorded one.
        """
        journal = _JournalWriter(self.checkpoint.folder, self._call)
        stream: Any = None
        # runner.statistics() describes the latest run, even one that computes nothing.
        self._runner._last_collector = self.statistics.empty
        try:
            # The finished prefix of the input goes out directly, in runs.
            it: Iterator[tuple[int, Any]] | None = enumerate(self._iterable)
            assert it is not None
            first = 0
            items: list[Any] = []
            stored: list[_Entry] = []
            for pos, item in it:
                entry = self._entries.get(pos)
                if entry is not None:
                    self._check(pos, item, entry, it)
                if entry is None or not self._usable(entry):
                    it = chain([(pos, item)], it)
                    break
                items.append(item)
                stored.append(entry)
                if len(items) >= _PREFIX_RUN:
                    yield self._stored_batch(first, items, stored)
                    first, items, stored = pos + 1, [], []
            else:
                it = None
            if items:
                yield self._stored_batch(first, items, stored)
            if it is None:  # everything was stored: no worker is started
                return
            stream = self._runner.run_batches(
                self._func,
                _Missing(self._feed(it), self.missing),
                call=self._call,
                ordered=self._ordered,
                fixed=self._fixed,
                **self._overrides,
            )
            self.statistics.stream = stream
            computed = stream.batches()
            try:
                for result in computed:
                    slots = self._record(journal, result)
                    if not self._ordered:
                        yield from _runs(self._drain(None))
                        yield from _runs(slots, result.elapsed)
                        continue
                    merged: list[_Slot] = []
                    for slot in slots:
                        merged += self._drain(slot.pos)
                        merged.append(slot)
                    # Stored positions before the next missing one can go out now.
                    nxt = next(iter(self._meta.values()), None)
                    merged += self._drain(nxt[0] if nxt is not None else None)
                    yield from _runs(merged, result.elapsed)
            except KeyboardInterrupt:
                # Ctrl-C while recording or handing out: let the engine see it
                # too, so that it stops the running tasks instead of waiting.
                try:
                    computed.throw(KeyboardInterrupt())
                except (KeyboardInterrupt, StopIteration):
                    pass
                raise
            yield from _runs(self._drain(None))
        finally:
            journal.close()
            if stream is not None:
                stream.close()


def resume(
    runner: Any,
    func: Callable[..., Any],
    iterable: Iterable[Any],
    *,
    call: str,
    ordered: bool,
    overrides: dict[str, Any],
    checkpoint: Any,
    fixed: dict[str, Any] | None = None,
    background: bool = False,
) -> Any:
    """What ``runner.map(..., checkpoint=...)`` and friends return.

    Args:
        runner: the runner.
        func: the function.
        iterable: the inputs.
        call: ``"arg"``, ``"star"`` or ``"kwargs"``.
        ordered: input order (else stored results first, then completion order).
        overrides: per-call options.
        checkpoint: a folder path or :class:`Checkpoint`.
        fixed: keyword arguments added to every call.
        background: return a running :class:`~parallelize.execution.Execution`.

    Returns:
        A :class:`~parallelize.stream.ResultStream`, or an
        :class:`~parallelize.execution.Execution` when ``background``.

    Raises:
        ConfigError: a bad folder or option.
        CheckpointError: a file of the folder is damaged or crafted, or it holds
            pickled results and ``allow_pickle`` is False.
        ResumeMismatchError: a list, range or space differs from the recorded inputs.
    """
    from .execution import Execution
    from .stream import ResultStream

    run = ResumeRun(
        runner, func, iterable, call=call, ordered=ordered, checkpoint=checkpoint, overrides=overrides, fixed=fixed
    )
    if background:
        return Execution(run.batches(), run.statistics, skip_failures=run.skip_failures)  # type: ignore[arg-type]
    extra: dict[str, Any] = {}
    if call != "arg":  # what to_dataframe() makes of the inputs, as for a run without checkpoint
        from .dataframe import FrameLayout

        extra["layout"] = FrameLayout(inputs=call)
    return ResultStream(run.batches(), run.statistics, skip_failures=run.skip_failures, **extra)  # type: ignore[arg-type]
