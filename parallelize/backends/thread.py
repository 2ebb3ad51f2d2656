"""The thread backend: a :class:`concurrent.futures.ThreadPoolExecutor`."""

from __future__ import annotations

import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from ..errors import ConfigError
from .base import Backend

__all__ = ["ThreadBackend"]


class ThreadBackend(Backend):
    """Runs tasks on a pool of threads in this process.

    Threads share memory, so nothing is pickled; they share the GIL too, so this
    suits I/O-bound tasks and code that releases the GIL (NumPy, I/O, sleeps).
    A running thread cannot be killed: see the README on timeouts.
    """

    name = "thread"
    in_process = True

    def __init__(self, max_workers: int, initializer: Callable[[], None] | None = None, **options: Any) -> None:
        if options:
            raise ConfigError(f"the thread backend takes no options; got {sorted(options)}")
        super().__init__(max_workers, initializer)
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="parallelize", initializer=initializer
        )
        self._abandoned = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._pool.submit(fn, *args, **kwargs)

    def abandon(self, future: Future[Any]) -> None:
        """A task timed out: its thread cannot be stopped, so stop waiting for it."""
        self._abandoned += 1
        warnings.warn(
            "a task on the thread backend outlived its timeout; its thread cannot be killed "
            "and keeps running until the task returns (the interpreter waits for it at exit). "
            "Use backend='process' to have hung tasks killed.",
            RuntimeWarning,
            stacklevel=2,
        )

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        # Waiting would hang on a thread abandoned after a timeout.
        self._pool.shutdown(wait=wait and not self._abandoned, cancel_futures=cancel_futures)
