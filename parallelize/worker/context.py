"""What a worker knows about itself: its name, the shared data, its initializer's result.

Kept per thread (a thread pool's workers are threads); a worker process has one.
The runner's ``WorkerSetup`` runs the initializer once per worker and
installs the ``WorkerContext`` that ``worker_context`` returns.
"""

from __future__ import annotations

import os
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from .failure import portable
from .pickling import Cloud

__all__ = [
    "InterruptFlag",
    "WorkerContext",
    "WorkerSetup",
    "reraise_interrupt",
    "restore_context",
    "setup_failure",
    "swap_context",
    "worker_context",
    "worker_name",
]


class InterruptFlag:
    """Tells a real Ctrl-C from a ``KeyboardInterrupt`` that a task raised itself.

    Tasks run in worker threads and processes that never receive SIGINT, so
    there every ``KeyboardInterrupt`` is the task's own and is its failure. Only
    where a task runs in the caller's main thread (the serial backend) can the
    user's Ctrl-C land inside it; that backend installs a SIGINT handler that
    sets ``pending`` before raising, and the interrupt goes on up.
    """

    pending = False


def reraise_interrupt(exc: BaseException) -> None:
    """Raise ``exc`` again if it is the user's own Ctrl-C (see ``InterruptFlag``)."""
    if InterruptFlag.pending and isinstance(exc, KeyboardInterrupt):
        raise exc


@dataclass(frozen=True)
class WorkerContext:
    """What a worker knows about itself, from ``worker_context``.

    Attributes:
        worker: a name unique to this worker (host, pid and thread).
        shared_data: the runner's read-only ``shared_data``.
        init_values: what the runner's ``initializer`` returned in this worker.
    """

    worker: str
    shared_data: Any = None
    init_values: Any = None


_local = threading.local()

_HOST = os.uname().nodename if hasattr(os, "uname") else "localhost"


def worker_name() -> str:
    name = getattr(_local, "name", None)
    if name is None or getattr(_local, "pid", None) != os.getpid():
        name = f"{_HOST}:{os.getpid()}:{threading.current_thread().name}"
        _local.name = name
        _local.pid = os.getpid()
    return name


def worker_context() -> WorkerContext:
    """The context of the worker running the current task.

    Inside a task this gives the runner's ``shared_data`` and what its
    ``initializer`` returned in this worker (once per worker). Outside a task it
    gives a context with neither.

    Returns:
        The current ``WorkerContext``.
    """
    ctx = getattr(_local, "context", None)
    if ctx is None:
        return WorkerContext(worker=worker_name())
    return ctx


def swap_context(context: WorkerContext | None, token: str | None = None) -> tuple[Any, Any]:
    """Install ``context`` as this thread's worker context; return what was there.

    For backends that run tasks in the caller's own thread (serial), so that a
    runner's context never outlives its tasks there.
    """
    previous = (getattr(_local, "context", None), getattr(_local, "token", None))
    _local.context = context
    _local.token = token
    return previous


def restore_context(previous: tuple[Any, Any]) -> None:
    """Undo ``swap_context``."""
    _local.context, _local.token = previous


class WorkerSetup:
    """Runs the runner's initializer once per worker and remembers its result.

    Backends call an instance as their per-worker ``initializer`` (loky and the
    thread pool run it in every new worker, replacements included); calling it
    again in the same worker does nothing, so a backend may also call it before
    each batch (Dask, whose workers may join late).
    """

    __slots__ = ("token", "initializer", "shared_data")

    def __init__(self, token: str, initializer: Callable[..., Any] | None, shared_data: Any) -> None:
        self.token = token
        self.initializer = initializer
        self.shared_data = shared_data

    def __call__(self) -> None:
        ctx = getattr(_local, "context", None)
        if ctx is not None and getattr(_local, "token", None) == self.token:
            return
        init_values = None
        if self.initializer is not None:
            try:
                init_values = self.initializer(self.shared_data)
            except BaseException as exc:  # noqa: BLE001 - sys.exit() in an initializer is its failure too
                reraise_interrupt(exc)
                # Raising here would break the whole pool (thread pools and
                # loky both give up on a failed initializer, and a crash would
                # be retried worker after worker). Keep the error for this
                # runner's batches instead: run_batch raises WorkerInitError.
                _local.setup_error = (self.token, portable(exc), traceback.format_exc())
                return
        _local.context = WorkerContext(worker_name(), self.shared_data, init_values)
        _local.token = self.token

    def __reduce__(self) -> tuple[Any, ...]:
        return (WorkerSetup, (self.token, Cloud(self.initializer), Cloud(self.shared_data)))


def setup_failure(token: str | None) -> tuple[BaseException, str] | None:
    """The error and traceback of the initializer of set-up ``token``, if it failed in this worker."""
    failed = getattr(_local, "setup_error", None)
    if failed is None or token is None or failed[0] != token:
        return None
    return failed[1], failed[2]
