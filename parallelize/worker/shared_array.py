"""Large NumPy arrays cross to worker processes as memory-mapped files, not copies.

Pickling a 200 MB array into every task costs time and a copy per task. Instead,
an array of ``THRESHOLD_BYTES`` or more is written once to a file in shared
memory (``/dev/shm`` where there is one) and each task receives only its path;
the worker maps the file read-only, so every worker shares the same pages::

    parent                                      worker
    ------                                      ------
    reduce_array(a) ──first time──> np.save(/dev/shm/parallelize-*/<id>.npy)
                    ──every task──> ("…/<id>.npy",) ──> np.load(path, mmap_mode="r")

The file of an array is reused for as long as the array lives and is deleted
when it is garbage-collected (and the folder at exit). As with joblib's
memmapping, the array must not be modified in place while tasks use it, and
workers see it read-only.
"""

from __future__ import annotations

import atexit
import os
import pickle
import shutil
import tempfile
import threading
import uuid
import weakref
from typing import Any, Callable

__all__ = ["THRESHOLD_BYTES", "load_array", "reduce_array", "reducer_override"]

# Arrays smaller than this are pickled as usual: below about a megabyte,
# writing and mapping a file costs more than copying (joblib's max_nbytes
# default is the same 1 MB).
THRESHOLD_BYTES = 1 << 20

_lock = threading.Lock()
_folder: str | None = None
# id(array) -> (weak reference to it, its file): one file per live array.
_files: dict[int, tuple[weakref.ref[Any], str]] = {}


def _temp_folder() -> str:
    global _folder
    if _folder is None:
        shm = "/dev/shm"
        base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
        _folder = tempfile.mkdtemp(prefix=f"parallelize-{os.getpid()}-", dir=base)
        atexit.register(shutil.rmtree, _folder, True)
    return _folder


def load_array(path: str) -> Any:
    """Map an array file read-only (runs in the worker)."""
    import numpy as np

    return np.load(path, mmap_mode="r")


def _forget(key: int, path: str) -> None:
    with _lock:
        _files.pop(key, None)
    try:
        os.unlink(path)
    except OSError:
        pass


def reduce_array(array: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """Pickle reduction of a NumPy array: a file path for a large one, bytes otherwise.

    Args:
        array: a ``numpy.ndarray`` (or ``numpy.memmap``).

    Returns:
        A ``(callable, args)`` pair, as ``__reduce__`` returns.
    """
    import numpy as np

    if array.nbytes < THRESHOLD_BYTES or array.dtype.hasobject:
        # NumPy's own reduction: pickled in place, not pickled twice.
        return np.asarray(array).__reduce_ex__(pickle.HIGHEST_PROTOCOL)  # type: ignore[return-value]
    key = id(array)
    with _lock:
        entry = _files.get(key)
        if entry is not None and entry[0]() is array:
            return (load_array, (entry[1],))
    path = os.path.join(_temp_folder(), f"{uuid.uuid4().hex}.npy")
    np.save(path, np.asarray(array), allow_pickle=False)
    ref = weakref.ref(array)
    weakref.finalize(array, _forget, key, path)
    with _lock:
        _files[key] = (ref, path)
    return (load_array, (path,))


def reducer_override(obj: Any) -> Any:
    """For a cloudpickle ``Pickler.reducer_override``: arrays by file, else ``NotImplemented``."""
    cls = type(obj)
    if cls.__name__ in ("ndarray", "memmap") and cls.__module__.startswith("numpy"):
        return reduce_array(obj)
    return NotImplemented
