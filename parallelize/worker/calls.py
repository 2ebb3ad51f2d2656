"""How an input item becomes a call of the user's function, and ``runner.submit``'s calls."""

from __future__ import annotations

from typing import Any, Literal, get_args

from .pickling import FunctionHandle

__all__ = ["CALL_MODES", "Call", "CallMode", "run_call"]

#: How an input item becomes a call: ``f(item)`` (``map``), ``f(*item)``
#: (``starmap``), ``f(**item)`` (parameter spaces), or for a tuple of values with
#: the batch's ``keys``, ``f(**dict(zip(keys, item)))`` (spaces, as the engine ships them).
CallMode = Literal["arg", "star", "kwargs", "keyed"]
CALL_MODES: tuple[str, ...] = get_args(CallMode)


class Call:
    """One ``runner.submit(func, *args, **kwargs)`` call, as an item of the engine's input.

    Only the function, the arguments and the keywords travel to a worker; the
    caller's future stays behind on the parent's copy.
    """

    __slots__ = ("func", "args", "kwargs", "future")

    def __init__(self, func: FunctionHandle, args: tuple[Any, ...], kwargs: dict[str, Any], future: Any = None) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.future = future

    def __reduce__(self) -> tuple[Any, ...]:
        return (Call, (self.func, self.args, self.kwargs))

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"({', '.join(parts)})"


def run_call(call: Call) -> Any:
    """Run one submitted call (the engine's function for ``runner.submit``)."""
    return call.func.get()(*call.args, **call.kwargs)
