"""How a checkpoint stores inputs and results: content hashes and tagged JSON.

Inputs are identified by position and ``input_hash``, the same in every
process and run. Results are stored as tagged JSON when they are plain data
(see the package docstring) and pickled with cloudpickle otherwise.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import math
import re
import types
from collections.abc import Mapping
from typing import Any

import cloudpickle

from ..errors import ConfigError, PicklingError
from ..space import params_hash
from ..worker.failure import short_repr

_HASH_CHARS = 32
_NUMPY_KINDS = "biufcmMSU"
# What ``dtype.str`` looks like for those kinds ('<f8', '|b1', '<M8[10ns]', '<U2'):
# a stored dtype must match it before NumPy parses it.
_DTYPE_RE = re.compile(r"[<>|][biufcmMSU][0-9]{1,10}(?:\[[0-9]{0,10}[a-zA-Z]{1,2}\])?")
# JSON containers one stored result may nest (a tuple takes two, a list one).
# Deeper results are pickled instead, so decoding, which recurses, stays far
# below Python's default limit of 1000 frames, and so does json.loads.
_MAX_NESTING = 200
# Ints longer than this are pickled: json writes and reads at most 4300 decimal
# digits (sys.int_info.default_max_str_digits), about 14,284 bits.
_MAX_INT_BITS = 14_000
# Positions beyond this are no input's (NumPy and most sequences index with int64).
MAX_POSITION = 2**63 - 1


# --------------------------------------------------------------------------- input hash


def _is_canonical(value: Any, depth: int = 0) -> bool:
    """Whether ``parallelize.params_hash`` encodes ``value`` exactly (not by repr)."""
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
    dataclasses, enums) is hashed by value with ``parallelize.params_hash``,
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
            f"cannot checkpoint the input {short_repr(item)}: it is not plain data and cannot be "
            f"pickled ({exc}); use inputs such as numbers, strings, tuples or dicts"
        ) from exc
    return "p" + hashlib.sha256(data).hexdigest()[: _HASH_CHARS - 1]


# --------------------------------------------------------------------------- result codec


class _NotPlain(Exception):
    """Raised inside the encoder: the value needs a pickle."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any) -> bytes:
    """The bytes of a base64 string; ValueError for anything ``_b64`` never returns."""
    if type(text) is not str:
        raise ValueError(f"expected a base64 string, got {shown_value(text)}")
    return base64.b64decode(text, validate=True)  # binascii.Error is a ValueError


def shown_value(value: Any) -> str:
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


def encode(value: Any, room: int = _MAX_NESTING) -> Any:
    """A JSON document for ``value`` that decodes to an equal value of the same types.

    Lists and scalars are themselves; everything else is a one-key object whose
    key is a type tag (a real dict is always tagged, so tags are unambiguous).

    Args:
        value: the value.
        room: how many more JSON containers (arrays, objects) may nest here. A
            value needing more raises ``_NotPlain`` and is pickled instead, so
            that ``decode``, which allows exactly as much, never recurses deeply.
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
        return [encode(v, room - 1) for v in value]
    if t is bytes:
        return {"b": _b64(value)}
    if room < 2:
        raise _NotPlain
    if t is tuple:
        return {"t": [encode(v, room - 2) for v in value]}
    if t is dict:
        if all(type(k) is str for k in value):
            return {"m": {k: encode(v, room - 2) for k, v in value.items()}}
        if room < 3:
            raise _NotPlain
        return {"d": [[encode(k, room - 3), encode(v, room - 3)] for k, v in value.items()]}
    if t is set or t is frozenset:
        return {"set" if t is set else "fset": [encode(v, room - 2) for v in value]}
    if t is complex:
        return {"c": [encode(value.real, room - 2), encode(value.imag, room - 2)]}
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
        raise ValueError(f"{what} must be {shape}, got {shown_value(body)}")
    return body


def _numpy_dtype(text: Any) -> Any:
    """The NumPy dtype named by a stored ``dtype.str``; ValueError for any other dtype."""
    import numpy as np

    if type(text) is not str or _DTYPE_RE.fullmatch(text) is None:
        raise ValueError(f"refusing NumPy dtype {shown_value(text)}")
    try:
        dtype = np.dtype(text)
    except TypeError as exc:
        raise ValueError(f"refusing NumPy dtype {text!r} ({exc})") from exc
    if not _plain_dtype(dtype):  # never an object dtype: those would need a pickle
        raise ValueError(f"refusing NumPy dtype {text!r}")
    return dtype


def decode(doc: Any, room: int = _MAX_NESTING) -> Any:
    """The value ``encode`` made ``doc`` from.

    Accepts exactly what ``encode`` writes, so a crafted document cannot
    recurse deeply, allocate more than its own size, or reach a pickle. Loops
    rather than comprehensions keep it at one stack frame per nesting level.

    Args:
        doc: a JSON document as ``json.loads`` returns it.
        room: how many more JSON containers may nest here, as in ``encode``.

    Returns:
        The value.

    Raises:
        ValueError: ``doc`` is not something ``encode`` returns (unknown or
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
            out.append(decode(v, room - 1))
        return out
    if t is not dict or len(doc) != 1:
        raise ValueError(f"expected a value or a one-key tagged object, got {shown_value(doc)}")
    ((tag, body),) = doc.items()
    if tag == "f":
        if body not in ("nan", "inf", "-inf"):
            raise ValueError(f"bad float {shown_value(body)}")
        return float(body)
    if tag == "b":
        return unb64(body)
    if tag not in ("t", "set", "fset", "m", "d", "c", "nd", "ns"):
        raise ValueError(f"unknown tag {shown_value(tag)}")
    _room(room, 2)
    if tag == "m":
        if type(body) is not dict:
            raise ValueError(f"the body of tag 'm' must be an object, got {shown_value(body)}")
        mapping: dict[str, Any] = {}
        for k, v in body.items():
            mapping[k] = decode(v, room - 2)
        return mapping
    if tag in ("t", "set", "fset"):
        for v in _body(f"the body of tag {tag!r}", body):
            out.append(decode(v, room - 2))
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
                result[decode(k, room - 3)] = decode(v, room - 3)
            except TypeError as exc:
                raise ValueError(f"a dict key is unhashable ({exc})") from exc
        return result
    if tag == "c":
        for part in _body("the body of tag 'c'", body, 2):
            out.append(decode(part, room - 2))
        if type(out[0]) is not float or type(out[1]) is not float:
            raise ValueError(f"a complex number needs two floats, got {shown_value(body)}")
        return complex(out[0], out[1])
    import numpy as np

    if tag == "ns":
        text, data = _body("the body of tag 'ns'", body, 2)
        dtype = _numpy_dtype(text)
        raw = unb64(data)
        if len(raw) != dtype.itemsize:
            raise ValueError(f"a NumPy {dtype} scalar needs {dtype.itemsize} bytes, got {len(raw)}")
        return np.frombuffer(raw, dtype=dtype)[0]
    _room(room, 3)
    text, shape, data = _body("the body of tag 'nd'", body, 3)
    dtype = _numpy_dtype(text)
    dims = _body("a NumPy shape", shape)
    if len(dims) > 64 or any(type(n) is not int or not 0 <= n <= MAX_POSITION for n in dims):
        raise ValueError(f"a NumPy shape is up to 64 integers from 0 to 2**63-1, got {shown_value(shape)}")
    raw = unb64(data)
    if len(raw) != math.prod(dims) * dtype.itemsize:  # exact ints: no overflow, nothing allocated
        raise ValueError(f"{len(raw)} bytes do not make a NumPy {dtype} array of shape {tuple(dims)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def encode_result(value: Any, position: int) -> tuple[str, Any]:
    """``("j", json_doc)`` for plain data, else ``("p", base64_pickle)``."""
    try:
        return "j", encode(value)
    except _NotPlain:
        pass
    except RecursionError:
        pass
    try:
        return "p", _b64(cloudpickle.dumps(value))
    except Exception as exc:
        raise PicklingError(
            f"the result of task {position} ({short_repr(value)}) cannot be stored in the checkpoint: "
            f"it is not plain data and cannot be pickled ({exc}); return plain data or pickleable objects"
        ) from exc
