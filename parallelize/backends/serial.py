"""The serial backend: every task runs in the calling thread, at submission."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import Future
from typing import Any, Callable

from ..errors import ConfigError, RunnerClosedError
from ..worker.context import InterruptFlag, WorkerContext, restore_context, swap_context
from .base import Backend

__all__ = ["SerialBackend"]


class SerialBackend(Backend):
    """Runs each task at once in the caller's thread; for debugging and profiling.

    Breakpoints, ``print`` and profilers see the task as ordinary code. The
    returned future is already done.
    """

    name = "serial"
    in_process = True
    runs_inline = True

    def __init__(self, max_workers: int | None, initializer: Callable[[], None] | None = None, **options: Any) -> None:
        if options:
            raise ConfigError(f"the serial backend takes no options; got {sorted(options)}")
        super().__init__(max_workers, initializer)
        # A timeout interrupts the task with SIGALRM, which only a process's
        # main thread receives: off it, a timeout could not be kept.
        self.can_time_out = threading.current_thread() is threading.main_thread()
        self._initialized = False
        self._closed = False
        self._context: WorkerContext | None = None
        self._token: str | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed:
            raise RunnerClosedError("cannot submit to a serial backend after shutdown; create a new runner")
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        # The "worker" is the caller's own thread: install this runner's worker
        # context for the call only, so it never leaks into the caller.
        previous = swap_context(self._context, self._token)
        handler = _install_interrupt_marker()
        try:
            if not self._initialized and self.initializer is not None:
                self.initializer()
                self._context, self._token = swap_context(None)
                restore_context((self._context, self._token))
            self._initialized = True
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - the future carries it, as an executor's would
            if isinstance(exc, KeyboardInterrupt) and InterruptFlag.pending:
                raise  # the user's own Ctrl-C: stop the run
            future.set_exception(exc)
        finally:
            restore_context(previous)
            if handler is not None:
                signal.signal(signal.SIGINT, handler)
                InterruptFlag.pending = False
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True


def _on_sigint(signum: int, frame: Any) -> None:
    InterruptFlag.pending = True
    raise KeyboardInterrupt


def _install_interrupt_marker() -> Any:
    """In the main thread, mark a real Ctrl-C during a task as such; returns the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    current = signal.getsignal(signal.SIGINT)
    if current is not signal.default_int_handler:
        return None  # someone else handles Ctrl-C here: leave it to them
    signal.signal(signal.SIGINT, _on_sigint)
    return current
