"""Values and column names as text, and back: how a column no file format can hold is stored.

A column that a file cannot store as it is (Parquet refuses ``"n/a"`` among
integers, a dict, a set, an object of your own class, bytes mixed with str;
CSV holds only text, so anything in an object column but plain strings) is
stored *as text*: each value's text (the string itself, the digits of a
number, the ``repr`` of anything else) and one kind per row, which tells the
reader how to get the value back. Kinds are kept run-length encoded
(``"i3s1i1"``: three ints, a str, an int):

=====  =============================================  ========================
kind   value                                          read back as
=====  =============================================  ========================
s      str                                            the same str
i      int of any size (numpy integers too)           the same int
f      float (numpy floats too)                       the same float
b      bool                                           the same bool
d      ``decimal.Decimal``                            the same Decimal
D t T  ``date``, ``datetime``, ``pd.Timestamp``       the same, by isoformat
                                                      (a time zone as its offset)
n m    None, NaN                                      None, NaN
a z    ``pd.NA``, ``pd.NaT``                          ``pd.NA``, ``pd.NaT``
l      a value whose repr ``ast.literal_eval`` gives  an equal value of the
       back exactly (dict, set, tuple, list, bytes,   same type
       complex... of such values)
r      anything else (objects of your own classes)    its ``repr``, a str
=====  =============================================  ========================

Column and index names go into the manifest as JSON (``label_json``):
str, int, float, bool, None and tuples of these come back exactly, anything
else as its repr.

pandas is passed in (``pd``) rather than imported, so this module stays cheap
to import.
"""

from __future__ import annotations

import ast
import datetime
import decimal
import math
import re
import sys
from itertools import groupby
from typing import Any, Iterable

__all__ = [
    "expand_kinds",
    "from_text",
    "label_exact",
    "label_from_json",
    "label_json",
    "label_text",
    "safe_repr",
    "shown_label",
    "shown_types",
    "to_text",
]

# -- values ------------------------------------------------------------------------


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a placeholder naming its type if that ``__repr__`` raises."""
    try:
        return repr(value)
    except Exception:  # a user's __repr__ may raise; the row is kept all the same
        return f"<{type(value).__qualname__} object (repr failed)>"


def _as_python(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (numpy 2's repr is ``np.int64(5)``)."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic) and not isinstance(value, (np.datetime64, np.timedelta64)):
        return value.item()
    return value


def _is_literal(text: str, value: Any) -> bool:
    """``ast.literal_eval(text)`` gives back a value equal to ``value``, of its type."""
    try:
        back = ast.literal_eval(text)
        return type(back) is type(value) and bool(back == value)
    except Exception:  # not a literal, or == is not a plain bool (arrays)
        return False


def _value_text(value: Any, pd: Any) -> tuple[str, str | None, str | None]:
    """A value's kind (see the module documentation), its text (``None`` if
    missing) and its type's name (``None`` if missing)."""
    if value is None:
        return "n", None, None
    if value is pd.NA:
        return "a", None, None
    if value is pd.NaT:
        return "z", None, None
    value = _as_python(value)
    kind = type(value)
    name = kind.__name__
    if kind is str:
        return "s", value, name
    if kind is float:
        return ("m", None, None) if math.isnan(value) else ("f", repr(value), name)
    if kind is int:
        try:
            return "i", str(value), name
        except ValueError:  # more digits than sys.get_int_max_str_digits(): hex has no limit
            return "i", hex(value), name
    if kind is bool or kind is decimal.Decimal:
        return ("b" if kind is bool else "d"), str(value), name
    dates = {datetime.date: "D", datetime.datetime: "t", pd.Timestamp: "T"}
    if kind in dates:
        return dates[kind], value.isoformat(), name
    text = safe_repr(value)
    return ("l" if _is_literal(text, value) else "r"), text, name


def to_text(values: Iterable[Any], pd: Any) -> tuple[list[str | None], str, list[str]]:
    """Texts, run-length kinds (``"i3s1i1"``) and the sorted type names of ``values``."""
    texts: list[str | None] = []
    kinds: list[str] = []
    types: set[str] = set()
    for value in values:
        kind, text, name = _value_text(value, pd)
        kinds.append(kind)
        texts.append(text)
        if name is not None:
            types.add(name)
    runs = "".join(f"{k}{sum(1 for _ in run)}" for k, run in groupby(kinds))
    return texts, runs, sorted(types)


def from_text(texts: Iterable[Any], kinds: list[str], pd: Any) -> list[Any]:
    """The values that ``to_text`` turned into ``texts``; a text that does
    not parse (a damaged file) is given back as it is."""
    missing = {"n": None, "m": math.nan, "a": pd.NA, "z": pd.NaT}
    parse: dict[str, Any] = {
        "i": lambda t: int(t, 0),
        "f": float,
        "b": lambda t: t == "True",
        "d": decimal.Decimal,
        "D": datetime.date.fromisoformat,
        "t": datetime.datetime.fromisoformat,
        "T": pd.Timestamp,
        "l": ast.literal_eval,  # literals only: never runs code
    }
    out: list[Any] = []
    for kind, raw in zip(kinds, texts, strict=True):  # lengths checked by the caller
        text = raw if isinstance(raw, str) else None
        try:
            if kind == "s":
                out.append(text or "")  # CSV reads an empty string back as missing
            elif text is None:
                out.append(missing.get(kind))
            else:
                out.append(parse[kind](text) if kind in parse else text)
        except Exception:
            out.append(text)
    return out


def expand_kinds(runs: str) -> list[str]:
    """One kind per value from run-length kinds: ``"i2s1"`` -> ``["i", "i", "s"]``."""
    return [k for k, n in re.findall(r"([A-Za-z])(\d+)", runs) for _ in range(int(n))]


# -- names ------------------------------------------------------------------------


def label_json(label: Any) -> Any:
    """A JSON value from which ``label_from_json`` gives ``label`` back: exactly
    for str, int, float, bool, None and tuples of them, else its repr."""
    label = _as_python(label)
    if label is None or type(label) in (str, int, bool):
        return label
    if type(label) is float:
        return label if math.isfinite(label) else {"float": repr(label)}
    if type(label) is tuple:
        return {"tuple": [label_json(x) for x in label]}
    return {"repr": safe_repr(label)}


def label_from_json(data: Any) -> Any:
    """The name that ``label_json`` turned into ``data``."""
    if isinstance(data, dict):
        if "tuple" in data:
            return tuple(label_from_json(x) for x in data["tuple"])
        if "float" in data:
            return float(data["float"])
        return str(data.get("repr"))
    if isinstance(data, list):
        return tuple(label_from_json(x) for x in data)
    return data


def label_exact(data: Any) -> bool:
    """``data`` (from ``label_json``) gives its name back exactly, not as a repr."""
    if isinstance(data, dict):
        return "repr" not in data and all(label_exact(x) for x in data.get("tuple", ()))
    return True


def label_text(label: Any) -> str:
    """``str(label)``, or its repr if that raises: the base of a stored column name."""
    try:
        return str(label)
    except Exception:
        return safe_repr(label)


def shown_label(label: Any) -> str:
    """``5`` rather than numpy 2's ``np.int64(5)``."""
    if type(label) is tuple:
        return safe_repr(tuple(_as_python(x) for x in label))
    return safe_repr(_as_python(label))


def shown_types(types: list[str]) -> str:
    """The sorted type names of a column's values, for a conversion's reason."""
    if not types:
        return "missing values only"
    if len(types) == 1:
        return f"values of type {types[0]}"
    return f"values of mixed types ({', '.join(types)})"
