"""Checks of user-given values, each raising a ConfigError that names the value and what is allowed.

Every option of every entry point is checked with these, so the same mistake
reads the same way wherever it is made::

    check_int("retries", -1, minimum=0)
    # ConfigError: retries must be an integer >= 0, got -1
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from .errors import ConfigError

__all__ = ["check_bool", "check_callable", "check_choice", "check_int", "check_seconds"]


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (not merely truthy)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return value


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    allow_none: bool = False,
    none_means: str = "",
) -> Any:
    """``value`` if it is an int (not a bool) within the bounds, or ``None`` when allowed.

    Args:
        name: the option's name, used in the message.
        value: the value given.
        minimum: the smallest value allowed, or ``None`` for no bound.
        maximum: the largest value allowed, or ``None`` for no bound.
        allow_none: whether ``None`` is allowed.
        none_means: what ``None`` stands for, shown in the message (e.g. ``"adaptive"``).
    """
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        if minimum is not None and maximum is not None:
            bound = f" from {minimum} to {maximum}"
        else:
            bound = f" >= {minimum}" if minimum is not None else f" <= {maximum}" if maximum is not None else ""
        alt = f" or None ({none_means})" if allow_none and none_means else " or None" if allow_none else ""
        raise ConfigError(f"{name} must be an integer{bound}{alt}, got {value!r}")
    return value


def check_seconds(name: str, value: Any, *, allow_zero: bool, meaning: str = "") -> float:
    """``value`` as a finite, non-negative float of seconds (> 0 unless ``allow_zero``).

    Args:
        name: the option's name, used in the message.
        value: the value given.
        allow_zero: whether 0 is allowed.
        meaning: what the allowed range is, for the message (default from ``allow_zero``).
    """
    meaning = meaning or (">= 0" if allow_zero else "> 0")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds {meaning}, got {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise ConfigError(f"{name} must be a finite number of seconds {meaning}, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name} must be a number of seconds {meaning}, got {value!r}")
    return float(value)


def check_callable(name: str, value: Any, *, signature: str = "", allow_none: bool = False) -> Any:
    """``value`` if it can be called (or is ``None`` when allowed).

    Args:
        name: the argument's name, used in the message.
        value: the value given.
        signature: how it will be called, e.g. ``"save_callback(path, results, names)"``.
        allow_none: whether ``None`` is allowed.
    """
    if value is None and allow_none:
        return None
    if not callable(value):
        how = f" as {signature}" if signature else " (a function, method or object with __call__)"
        none = "None or " if allow_none else ""
        raise ConfigError(f"{name} must be {none}callable{how}, got {value!r}")
    return value


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` if it is one of ``allowed``.

    Args:
        name: the option's name, used in the message.
        value: the value given.
        allowed: the values accepted.

    Raises:
        ConfigError: naming the bad value and the sorted allowed set.
    """
    allowed = list(allowed)
    try:
        found = value in allowed
    except TypeError:  # an unhashable or uncomparable value is not among them either
        found = False
    if not found:
        shown = sorted(allowed, key=repr)
        raise ConfigError(f"unknown {name} {value!r}; expected one of {shown}")
    return value
