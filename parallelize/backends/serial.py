"""The serial backend: every task runs in the calling thread, at submission."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable

from ..errors import ConfigError
from ..task import WorkerContext, restore_context, swap_context
from .base import Backend

__all__ = ["SerialBackend"]


class SerialBackend(Backend):
    """Runs each task at once in the caller's thread; for debugging and profiling.

    Breakpoints, ``print`` and profilers see the task as ordinary code. The
    returned future is already done.
    """

    name = "serial"
    in_process = True

    def __init__(self, max_workers: int, initializer: Callable[[], None] | None = None, **options: Any) -> None:
        if options:
            raise ConfigError(f"the serial backend takes no options; got {sorted(options)}")
        super().__init__(max_workers, initializer)
        self._initialized = False
        self._closed = False
        self._context: WorkerContext | None = None
        self._token: str | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed:
            raise RuntimeError("cannot submit to a serial backend after shutdown")
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        # The "worker" is the caller's own thread: install this runner's worker
        # context for the call only, so it never leaks into the caller.
        previous = swap_context(self._context, self._token)
        try:
            if not self._initialized and self.initializer is not None:
                self.initializer()
                self._context, self._token = swap_context(None)
                restore_context((self._context, self._token))
            self._initialized = True
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the future carries it, as an executor's would
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            future.set_exception(exc)
        finally:
            restore_context(previous)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
