"""The thread backend: a pool of threads in this process that keeps its width.

Threads share memory, so nothing is pickled; they share the GIL too, so this
suits I/O-bound tasks and code that releases the GIL (NumPy, I/O, sleeps).

A running thread cannot be killed. When a task outlives its timeout the engine
abandons it: its thread is retired (it exits once the task returns) and a new
thread takes its place at once, so hung tasks never starve the pool::

    submit ──> work queue ──> thread 1..max_workers ──> future.set_result
                                 │ a task marked abandoned: its thread leaves
                                 └─ after it and a replacement starts
"""

from __future__ import annotations

import queue
import threading
import warnings
from concurrent.futures import Future
from typing import Any, Callable

from ..errors import ConfigError, RunnerClosedError
from .base import Backend

__all__ = ["ThreadBackend"]


class _Item:
    __slots__ = ("future", "fn", "args", "kwargs", "thread")

    def __init__(self, future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.thread: _Worker | None = None


class _Worker(threading.Thread):
    def __init__(self, backend: ThreadBackend, number: int) -> None:
        super().__init__(name=f"parallelize-{number}", daemon=True)
        self.backend = backend
        self.retired = False

    def run(self) -> None:
        backend = self.backend
        if backend.initializer is not None:
            try:
                backend.initializer()
            except BaseException:  # noqa: BLE001 - the set-up keeps its own error for the tasks
                pass
        work = backend._work
        while not self.retired:
            item = work.get()
            if item is None:
                work.put(None)  # wake the next thread too
                return
            if not item.future.set_running_or_notify_cancel():
                continue
            item.thread = self
            try:
                value = item.fn(*item.args, **item.kwargs)
            except BaseException as exc:  # noqa: BLE001 - the future carries every failure
                item.future.set_exception(exc)
            else:
                item.future.set_result(value)
                del value  # an idle thread keeps no result alive
            del item


# Threads one runner may start: beyond a few thousand, start-up and the GIL
# dominate, and the machine's thread limit comes into view.
MAX_THREADS = 4096


def _check_thread_count(max_workers: int) -> None:
    if max_workers > MAX_THREADS:
        raise ConfigError(
            f"max_workers={max_workers} threads is more than the thread backend allows ({MAX_THREADS}); "
            "for I/O-bound work a few hundred threads is plenty"
        )


class ThreadBackend(Backend):
    """Runs tasks on a pool of threads in this process."""

    name = "thread"
    in_process = True

    def __init__(self, max_workers: int | None, initializer: Callable[[], None] | None = None, **options: Any) -> None:
        if options:
            raise ConfigError(f"the thread backend takes no options; got {sorted(options)}")
        super().__init__(max_workers, initializer)
        _check_thread_count(self.max_workers)
        self._work: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[_Worker] = []
        self._running: dict[int, _Item] = {}
        self._started = 0
        self._closed = False
        self._abandoned = 0

    def _grow(self) -> None:
        """Start threads until ``max_workers`` of them are not retired."""
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive() or not t.ident]
            live = sum(1 for t in self._threads if not t.retired)
            while live < self.max_workers:
                self._started += 1
                thread = _Worker(self, self._started)
                thread.start()
                self._threads.append(thread)
                live += 1

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed:
            raise RunnerClosedError("cannot submit to a thread backend after shutdown; create a new runner")
        future: Future[Any] = Future()
        item = _Item(future, fn, args, kwargs)
        with self._lock:
            self._running[id(future)] = item
        future.add_done_callback(self._forget)
        if len(self._threads) < self.max_workers:
            self._grow()
        self._work.put(item)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._running.pop(id(future), None)

    def abandon(self, future: Future[Any]) -> None:
        """A task timed out: retire its thread (it cannot be stopped) and start a replacement."""
        with self._lock:
            item = self._running.get(id(future))
        if item is None or item.thread is None:
            future.cancel()
            return
        item.thread.retired = True
        self._abandoned += 1
        self._grow()
        warnings.warn(
            "a task on the thread backend outlived its timeout; its thread cannot be killed "
            "and keeps running until the task returns (a new thread took its place). "
            "Use backend='process' to have hung tasks killed.",
            RuntimeWarning,
            stacklevel=2,
        )

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item.future.cancel()
        self._work.put(None)
        if wait:
            for thread in list(self._threads):
                # Waiting would hang on a thread abandoned after a timeout.
                if not thread.retired and thread is not threading.current_thread():
                    thread.join()
