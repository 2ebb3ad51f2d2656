"""Content hashes of parameter points: stable across processes, runs and machines.

Python's builtin ``hash`` is salted per process, so it cannot name a job, a
checkpoint entry or a file. ``params_hash`` hashes a canonical, type-tagged
encoding of the values instead (so ``1``, ``1.0`` and ``True`` differ).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
import types
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError
from .validate import check_int

__all__ = ["params_hash"]


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def _encode(value: Any, out: list[bytes]) -> None:
    """Append a canonical, type-tagged, length-prefixed encoding of ``value``."""
    if value is None:
        out.append(b"N")
    elif isinstance(value, bool):  # before int: True must not hash like 1
        out.append(b"T" if value else b"F")
    elif type(value).__module__ == "numpy":
        _encode_numpy(value, out)
    elif isinstance(value, enum.Enum):  # before int/str: IntEnum members are ints
        out.append(b"E")
        _encode(f"{type(value).__module__}.{type(value).__qualname__}.{value.name}", out)
    elif isinstance(value, int):
        out.append(b"i%d;" % value)
    elif isinstance(value, float):
        out.append(b"f" + repr(value).encode() + b";")  # repr round-trips exactly
    elif isinstance(value, complex):
        out.append(b"c" + repr(value).encode() + b";")
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        out.append(b"s%d:" % len(data) + data)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        out.append(b"b%d:" % len(data) + data)
    elif isinstance(value, (tuple, list)):
        out.append((b"t" if isinstance(value, tuple) else b"l") + b"%d:" % len(value))
        for item in value:
            _encode(item, out)
    elif isinstance(value, Mapping):
        items = []
        for k, v in value.items():
            kb: list[bytes] = []
            vb: list[bytes] = []
            _encode(k, kb)
            _encode(v, vb)
            items.append((b"".join(kb), b"".join(vb)))
        out.append(b"d%d:" % len(items))
        for kb_, vb_ in sorted(items):  # key order must not matter
            out += (kb_, vb_)
    elif isinstance(value, (set, frozenset)):
        encoded = []
        for item in value:
            ib: list[bytes] = []
            _encode(item, ib)
            encoded.append(b"".join(ib))
        out.append(b"S%d:" % len(encoded))
        out.extend(sorted(encoded))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(b"D")
        _encode(f"{type(value).__module__}.{type(value).__qualname__}", out)
        _encode({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, out)
    elif isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)) and "<" not in value.__qualname__:
        out.append(b"Q")  # by import path; lambdas and local functions have none
        _encode(f"{value.__module__}.{value.__qualname__}", out)
    else:
        text = repr(value)
        if _ADDRESS.search(text):
            raise ConfigError(
                f"cannot hash a value of type {type(value).__name__}: its repr {text!r} holds a memory "
                "address, which differs between runs; pass plain values (numbers, strings, tuples, ...)"
            )
        out.append(b"R")
        _encode(f"{type(value).__module__}.{type(value).__qualname__}", out)
        _encode(text, out)


def _encode_numpy(value: Any, out: list[bytes]) -> None:
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        _encode(value.item(), out)  # numpy scalar: hash like the Python value
    elif hasattr(value, "dtype") and hasattr(value, "tobytes"):
        out.append(b"A")
        _encode(value.dtype.str, out)
        _encode(tuple(value.shape), out)
        if value.dtype.hasobject:  # object arrays hold pointers: encode the items
            _encode(value.tolist(), out)
        else:
            import numpy as np

            _encode(np.ascontiguousarray(value).tobytes(), out)
    else:
        raise ConfigError(f"cannot hash a value of type {type(value).__name__}")


def params_hash(params: Mapping[Any, Any], length: int = 16) -> str:
    """A content hash of a point that is the same in every process, run and machine.

    The mapping is canonically encoded (keys sorted by their encoding; each value
    tagged by type, so ``1``, ``1.0`` and ``True`` differ, as do tuple and list)
    and hashed with SHA-256. Supported values: None, bool, int, float (by exact
    repr), complex, str, bytes, tuple, list, mappings, sets, enums, dataclasses,
    classes and named functions (by import path), NumPy scalars (like the equal
    Python scalar) and arrays (dtype, shape and bytes). Any other object is hashed
    by its type and repr, unless the repr holds a memory address (``0x...``).

    Args:
        params: a ``Params`` or any mapping.
        length: number of hex characters to return, 1 to 64; 16 (64 bits) by default.

    Returns:
        The first ``length`` hex digits of the SHA-256 digest.

    Raises:
        ConfigError: if ``params`` is not a mapping, ``length`` is out of range, or a
            value's repr holds a memory address (naming its type).
    """
    if not isinstance(params, Mapping):
        raise ConfigError(f"params_hash needs a mapping, got {type(params).__name__}")
    check_int("length", length, minimum=1, maximum=64)
    out: list[bytes] = []
    _encode(params, out)
    return hashlib.sha256(b"".join(out)).hexdigest()[:length]
