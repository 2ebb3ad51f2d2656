"""Failures on their way to the caller: lost batches translated, failed batches built, errors raised.

The backends translate their own engine's failures into the library's types
(``WorkerCrashedError``,
``PicklingError``, ...); this module only reads those
types, never names or messages, and words the error for the tasks concerned.
"""

from __future__ import annotations

import pickle
from array import array
from concurrent.futures import BrokenExecutor
from typing import Any

from ..errors import PicklingError, TaskExitError, TaskTimeoutError, WorkerCrashedError, add_note
from ..worker.batch import BatchResult
from ..worker.failure import RemoteTraceback, TaskFailure, short_repr

__all__ = ["batch_error", "failed_batch", "is_crash", "is_pickling", "raise_failure"]


def raise_failure(failure: TaskFailure) -> None:
    """Re-raise a task's exception in the caller, as its own type.

    The worker's traceback becomes ``__cause__`` and a note names the task and
    its arguments.
    """
    exc = failure.exception
    if failure.traceback and not isinstance(exc.__cause__, RemoteTraceback):
        exc.__cause__ = RemoteTraceback(failure.traceback)
    note = f"in parallelize task {failure.index} with arguments {failure.arguments}"
    if not isinstance(exc, Exception):
        # Raised as it is, sys.exit() in a task would end the caller's program
        # and KeyboardInterrupt would pass for the user's Ctrl-C.
        wrapped = TaskExitError(
            f"task {failure.index} with arguments {failure.arguments} raised {failure.describe()}; "
            "a task's SystemExit or KeyboardInterrupt is its own failure, not the end of this program "
            "(on_error='collect' keeps going; the original is this error's .exception)",
            exc,
        )
        raise wrapped from exc
    add_note(exc, note)
    raise exc


def is_crash(exc: BaseException) -> bool:
    # Backends translate their engine's failures (see Backend); a thread pool's
    # BrokenExecutor is the one standard type that means the same.
    return isinstance(exc, BrokenExecutor)


def is_pickling(exc: BaseException) -> bool:
    return isinstance(exc, (pickle.PicklingError, PicklingError))


def batch_error(exc: BaseException, items: list[Any], first: int) -> BaseException:
    """Translate an error that lost a whole batch into one of ours."""
    span = f"tasks {first}..{first + len(items) - 1}" if len(items) > 1 else f"task {first}"
    args = f" with arguments {short_repr(items[0])}" if len(items) == 1 else ""
    if isinstance(exc, TaskTimeoutError):
        return exc
    if is_crash(exc):
        text = str(exc).strip() or type(exc).__name__
        err: BaseException = WorkerCrashedError(
            f"a worker died while running {span}{args}: {text}\nThe likely causes are a crash in "
            "native code (segfault), os._exit(), a kill signal, or the out-of-memory killer (check "
            "memory use); retries=N reruns such a task on a fresh worker"
        )
    elif is_pickling(exc):
        err = PicklingError(
            f"could not send {span}{args} to or from a worker: {exc}. On the process backend the "
            "function, its arguments and its results must be picklable (cloudpickle); the thread "
            "backend needs no pickling"
        )
    else:
        return exc
    err.__cause__ = exc
    return err


def failed_batch(exc: BaseException, items: Any, first: int, attempts: int = 1) -> BatchResult:
    values: list[Any] = [
        TaskFailure(index=first + i, exception=exc, arguments=short_repr(item), attempts=attempts)
        for i, item in enumerate(items)
    ]
    return BatchResult(
        first=first,
        values=values,
        durations=array("d"),
        failures=list(range(len(items))),
        worker="",
        elapsed=0.0,
        items=items,
    )
