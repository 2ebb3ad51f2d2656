"""How the user's functions and set-up travel to workers: pickled once, cached there.

Functions, closures and lambdas go by cloudpickle; large NumPy arrays inside them
by memory-mapped file (``parallelize.worker.shared_array``).
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import time
from typing import Any, Callable

import cloudpickle

from .shared_array import reducer_override

__all__ = ["ArrayCloudPickler", "Cloud", "FunctionHandle", "dumps_any"]


def dumps_any(obj: Any) -> bytes:
    """``obj`` pickled for the trip back to the parent: plain pickle, else cloudpickle.

    Plain pickle is faster for ordinary values; cloudpickle takes what it cannot
    (values defined in ``__main__`` or a notebook, lambdas).
    """
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


class FunctionHandle:
    """The user's function, pickled once in the parent and cached in each worker.

    Pickling a closure or a lambda with cloudpickle costs far more than running a
    tiny task, so the parent pays it once per call of ``map`` and every worker
    unpickles it once per handle, not once per batch.
    """

    __slots__ = ("key", "payload", "_func")

    def __init__(self, func: Callable[..., Any]) -> None:
        self._func: Callable[..., Any] | None = func
        self.payload: bytes | None = None
        self.key = f"{os.getpid()}-{id(self)}-{time.monotonic_ns()}"

    def get(self) -> Callable[..., Any]:
        """The function, unpickling it on first use in this process."""
        if self._func is not None:
            return self._func
        func = _FUNC_CACHE.get(self.key)
        if func is None:
            assert self.payload is not None
            func = cloudpickle.loads(self.payload)
            if len(_FUNC_CACHE) >= 64:
                _FUNC_CACHE.clear()
            _FUNC_CACHE[self.key] = func
        self._func = func
        return func

    def __getstate__(self) -> tuple[str, bytes]:
        if self.payload is None:
            self.payload = cloudpickle.dumps(self._func)
        return (self.key, self.payload)

    def __setstate__(self, state: tuple[str, bytes]) -> None:
        self.key, self.payload = state
        self._func = None


_FUNC_CACHE: dict[str, Callable[..., Any]] = {}


class Cloud:
    """Pickles its value with cloudpickle (for lambdas and closures), unwraps on load.

    Large NumPy arrays inside (``shared_data``) go by memory-mapped file, so
    every worker shares one copy.
    """

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        buffer = io.BytesIO()
        ArrayCloudPickler(buffer).dump(self.value)
        return (cloudpickle.loads, (buffer.getvalue(),))


# Objects saved by name without asking cloudpickle (see ``by_reference``), by id:
# they are module globals, alive as long as their module is.
_BY_REFERENCE: set[int] = set()
# Built-in classes (``range``, ``Exception``) are saved by name too; not every
# class whose module says "builtins" is one (``types.CodeType``).
_BUILTINS = vars(builtins)


def by_reference(*objects: Any) -> None:
    """Mark parallelize's own functions and classes that every batch pickles, to be saved by name at once.

    cloudpickle asks, for every function and class it meets, whether it can be
    saved by name (a few microseconds each, in Python); a batch carries half a
    dozen of them, every one importable in a worker, so asking costs more
    than pickling the rest of a small batch.
    """
    _BY_REFERENCE.update(id(obj) for obj in objects)


class ArrayCloudPickler(cloudpickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if id(obj) in _BY_REFERENCE or (type(obj) is type and _BUILTINS.get(obj.__qualname__) is obj):
            return NotImplemented  # pickle's own save by name
        reduced = reducer_override(obj)
        if reduced is not NotImplemented:
            return reduced
        return super().reducer_override(obj)


by_reference(FunctionHandle, Cloud)
