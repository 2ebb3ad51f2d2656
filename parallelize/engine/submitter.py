"""``runner.submit``: one call, one future, through the same engine as ``map``.

::

    submit(f, *args) ──> Call ──> Feed ──> dispatch (a background thread) ──> backend
          Future <── set_result / set_exception <── BatchResult, per Call <──┘

Every submitted call goes through ``dispatch``, so the
runner's ``timeout``, ``retries``, crash isolation, statistics and progress apply
to it exactly as to a ``map``. Calls submitted in a row travel together in one
batch when workers are busy, and each call's future gets its own outcome: the
engine runs with ``on_error="collect"`` and the future raises what
``on_error="raise"`` would have raised.
"""

from __future__ import annotations

import threading
import types
from concurrent.futures import Future
from typing import Any, Callable

from ..backends.base import Backend
from ..options import RunOptions
from ..statistics import StatisticsCollector
from ..worker.batch import BatchResult
from ..worker.calls import Call, run_call
from ..worker.failure import TaskFailure
from ..worker.pickling import FunctionHandle
from .dispatch import TaskSpec, dispatch
from .failures import raise_failure
from .feed import Feed
from .progress import make_progress

__all__ = ["Submitter"]

# Distinct functions whose pickled form is kept for reuse: submitting the same
# function many times pickles it once.
_HANDLE_CACHE_SIZE = 64


class _SubmitFuture(Future):  # type: ignore[type-arg]
    """A future that can be cancelled while its call still waits in the feed."""

    def __init__(self, feed: Feed) -> None:
        super().__init__()
        self._feed = feed
        self.call: Call | None = None

    def cancel(self) -> bool:
        if self.call is not None and self._feed.discard(self.call):
            self.call = None
            cancelled = super().cancel()
            # What an executor does when it would have started the call: the
            # waiters of concurrent.futures.wait and as_completed hear of it.
            self.set_running_or_notify_cancel()
            return cancelled
        return self.cancelled()


class Submitter:
    """The engine behind ``runner.submit``, started on the first call.

    Args:
        backend: where calls run.
        options: the runner's options (timeout, retries, progress...).
        setup_token: the runner's per-worker set-up token, or ``None``.
        collector: the statistics of submitted calls.
    """

    def __init__(
        self, backend: Backend, options: RunOptions, setup_token: str | None, collector: StatisticsCollector
    ) -> None:
        self._backend = backend
        self._options = options.replace(on_error="collect")
        self._collector = collector
        self._lock = threading.Lock()
        self._feed: Feed | None = None
        self._thread: threading.Thread | None = None
        self._handles: dict[int, tuple[Callable[..., Any], FunctionHandle]] = {}
        self._outstanding: set[Call] = set()
        # Every call runs through run_call; only the calls differ.
        self._spec = TaskSpec(FunctionHandle(run_call), "arg", None, setup_token, remember=False)

    def _handle(self, func: Callable[..., Any]) -> FunctionHandle:
        if isinstance(func, types.MethodType):
            # A bound method is a new object at each access (no cache would
            # hit), and a kept one would keep its object alive.
            return FunctionHandle(func)
        cached = self._handles.get(id(func))
        if cached is not None and cached[0] is func:
            return cached[1]
        if len(self._handles) >= _HANDLE_CACHE_SIZE:
            self._handles.clear()
        handle = FunctionHandle(func)
        self._handles[id(func)] = (func, handle)
        return handle

    def submit(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        """Schedule ``func(*args, **kwargs)``; returns its future."""
        if self._backend.runs_inline:
            return self._run_inline(func, args, kwargs)
        with self._lock:
            feed = self._start()
            future = _SubmitFuture(feed)
            call = Call(self._handle(func), args, kwargs, future)
            future.call = call
            self._outstanding.add(call)
        feed.put(call)
        return future

    def _run_inline(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        """The same engine, driven in the caller's thread: the serial backend runs
        the call right here (breakpoints and profilers see it), as it runs a map."""
        future: Future[Any] = Future()
        call = Call(self._handle(func), args, kwargs, future)
        progress = make_progress(self._options.progress, None)
        try:
            for result in dispatch(
                self._backend, self._spec, [call], self._options, self._collector, ordered=False, progress=progress
            ):
                self._route(result)
        except Exception as exc:  # the engine stopped (a failing initializer): the future says why
            _fail(future, exc)
        finally:
            if progress is not None:
                progress.close()
        return future

    def _start(self) -> Feed:
        if self._feed is not None and self._thread is not None and self._thread.is_alive():
            return self._feed
        feed = Feed()
        progress = make_progress(self._options.progress, None)
        batches = dispatch(
            self._backend, self._spec, feed, self._options, self._collector, ordered=False, progress=progress
        )
        thread = threading.Thread(
            target=self._drive, args=(feed, batches, progress), name="parallelize-submit", daemon=True
        )
        self._feed, self._thread = feed, thread
        thread.start()
        return feed

    def _drive(self, feed: Feed, batches: Any, progress: Any) -> None:
        try:
            for result in batches:
                self._route(result)
                del result  # an idle engine must not keep the last call's value or error alive
        except BaseException as exc:  # noqa: BLE001 - the engine stopped: every waiting call gets why
            with self._lock:
                calls = list(self._outstanding) + feed.drain()
                self._outstanding.clear()
            for call in calls:
                _fail(call.future, exc)
        finally:
            if progress is not None:
                progress.close()

    def _route(self, result: BatchResult) -> None:
        items = result.items if result.items is not None else ()
        failed = set(result.failures)
        for i, call in enumerate(items):
            with self._lock:
                self._outstanding.discard(call)
            future = call.future
            if isinstance(future, _SubmitFuture):
                future.call = None  # a finished future does not keep its arguments
            if i >= len(result.values) or future is None:
                continue
            value = result.values[i]
            if i in failed and isinstance(value, TaskFailure):
                try:
                    raise_failure(value)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                    _fail(future, exc)
            elif not future.done():
                future.set_result(value)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more calls; with ``wait``, block until the submitted ones finish.

        Args:
            wait: wait for the calls already submitted.
            cancel_futures: cancel the calls that no worker has taken yet.
        """
        with self._lock:
            feed, thread = self._feed, self._thread
        if feed is None or thread is None:
            return
        if cancel_futures:
            for call in feed.drain():
                with self._lock:
                    self._outstanding.discard(call)
                if call.future is not None:
                    Future.cancel(call.future)
        feed.close()
        if wait and thread is not threading.current_thread():
            thread.join()


def _fail(future: Future[Any] | None, exc: BaseException) -> None:
    if future is not None and not future.done():
        future.set_exception(exc)
