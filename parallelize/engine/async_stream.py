"""``runner.amap``: a ``ResultStream`` read from asyncio without blocking the event loop.

::

    event loop thread                          pump thread (one per stream)
    ─────────────────                          ────────────────────────────
    async for x in stream ── credit ─────────> take a credit (at most one chunk ahead)
           ^                                   next(ResultStream.batches()) ── dispatch ──> backend
           │                                   │ (blocks here, off the loop)
           └── values of one batch <── call_soon_threadsafe(inbox.put, values) ─┘
    aclose() / task cancelled ── close ──────> stops before its next batch; closes the
                                               ResultStream in this thread (queued tasks
                                               cancelled), then ends

The engine's generators are only ever advanced and closed by the pump thread: a
generator cannot be closed from another thread while it runs, and the pump is
usually inside ``next`` (waiting for the engine) when the consumer gives up. A
close is therefore a request, carried out as soon as the batch being waited for
is delivered. Values cross to the loop a whole batch at a time, one thread hop
per batch rather than per result, in the order the stream gives them.

The pump holds no reference to the ``AsyncResultStream``: when one is dropped
without being closed (a ``break`` out of ``async for``), a finalizer asks the
pump to close the stream, and its thread ends.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from concurrent.futures import Future
from typing import Any, AsyncIterator, Generic, Sequence, TypeVar

from ..statistics import Statistics
from .stream import ResultStream, batch_values

__all__ = ["AsyncResultStream"]

T = TypeVar("T")

# Chunks (batches) the pump may fetch beyond the one the consumer is reading:
# one keeps the engine busy while the consumer works, and bounds how far the
# stream runs ahead of it to one batch more than a plain ``map`` would.
PREFETCH_CHUNKS = 1


class _End:
    """Posted by the pump: the stream is exhausted."""


_END = _End()


class _Raised:
    """Posted by the pump: the stream raised ``error`` (it is then finished)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Inbox:
    """The loop's side: what the pump posted, and the tasks waiting for it.

    Only touched in the event loop's thread (the pump reaches it through
    ``call_soon_threadsafe``).
    """

    def __init__(self) -> None:
        self.items: deque[Sequence[Any] | _End | _Raised] = deque()
        self._waiters: list[asyncio.Future[None]] = []

    def put(self, item: Sequence[Any] | _End | _Raised) -> None:
        self.items.append(item)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Until the pump posts something."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter


class _Pump:
    """The thread that reads the stream's batches and posts their values to the loop.

    Args:
        stream: the stream to read; from now on only this thread touches it.
        skip_failures: drop failed tasks (``on_error="skip"``), as the stream's
            own iteration does.
        loop: the event loop to post to.
        inbox: where the values go.
    """

    def __init__(
        self, stream: ResultStream[Any], skip_failures: bool, loop: asyncio.AbstractEventLoop, inbox: _Inbox
    ) -> None:
        self._stream = stream
        self._skip = skip_failures
        self._loop = loop
        self._inbox = inbox
        self._credits = threading.Semaphore(PREFETCH_CHUNKS)
        self._closing = threading.Event()
        # Set once the stream is closed and the thread is about to end, with
        # the error closing raised, if any. Marked running at once so that a
        # cancelled waiter (asyncio.wrap_future cancels its source) cannot
        # cancel it.
        self.ended: Future[BaseException | None] = Future()
        self.ended.set_running_or_notify_cancel()
        self.thread = threading.Thread(target=self._run, name="parallelize-async-stream", daemon=True)

    def want(self) -> None:
        """The consumer took a chunk: the pump may fetch one more."""
        self._credits.release()

    def close(self) -> None:
        """Stop: the stream is closed before the next batch is fetched (callable from any thread)."""
        self._closing.set()
        self._credits.release()  # wake the pump if it waits for a credit

    def _post(self, item: Sequence[Any] | _End | _Raised) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._inbox.put, item)
        except RuntimeError:  # the loop is closed: nobody will read on
            self._closing.set()
            return False
        return True

    def _run(self) -> None:
        batches = self._stream.batches()
        try:
            while True:
                self._credits.acquire()
                if self._closing.is_set():
                    return
                try:
                    result = next(batches)
                except StopIteration:
                    self._post(_END)
                    return
                values = batch_values(result, self._skip)
                if not values:
                    self._credits.release()  # nothing handed over: the credit is still ours
                elif not self._post(values):
                    return
        except BaseException as exc:  # noqa: BLE001 - the consumer raises it, in its own task
            self._post(_Raised(exc))
        finally:
            error: BaseException | None = None
            try:
                # Closing the engine's generator here, in the thread that ran it,
                # cancels the batches no worker has started.
                close = getattr(batches, "close", None)  # a generator, typed as an iterator
                if close is not None:
                    close()
                self._stream.close()
            except BaseException as exc:  # noqa: BLE001 - handed to aclose()
                error = exc
            self.ended.set_result(error)


class AsyncResultStream(AsyncIterator[T], Generic[T]):
    """An async iterator over a ``map``'s results (``runner.amap``), with statistics.

    Iterating never blocks the event loop: the stream's batches are read in a
    thread of its own (one per stream, started on the first ``__anext__``,
    not the loop's default executor), and each batch's values are handed to
    the loop at once, in the order of the underlying ``ResultStream``
    (input order with ``ordered=True``). The input iterable is read in that
    thread too, as the engine needs items.

    Closing, by ``aclose()``, the end of an ``async with`` block, cancelling
    the task that waits in ``async for``, or dropping an unfinished stream,
    closes the ``ResultStream``, which cancels the queued tasks.
    If the stream's thread is waiting for a batch at that moment, the close
    happens when that batch is delivered. Tasks already running are not
    interrupted on any backend (a thread cannot be, and closing a stream does
    not kill process workers); their results are dropped. As with an async
    generator, a cancelled ``__anext__`` ends the stream (so does an
    ``asyncio.wait_for`` that times out around it).

    Args:
        stream: the stream to read (a ``ResultStream``, not yet iterated);
            from now on only this object reads it.
        skip_failures: the stream drops failed tasks (``on_error="skip"``);
            default False.
    """

    def __init__(self, stream: ResultStream[T], *, skip_failures: bool = False) -> None:
        self._stream = stream
        self._skip = skip_failures
        self._inbox = _Inbox()
        self._values: deque[T] = deque()
        self._pump: _Pump | None = None
        self._closed = False
        self._ended = False
        self._close_error_seen = False

    def __aiter__(self) -> AsyncResultStream[T]:
        return self

    async def __anext__(self) -> T:
        while not self._values:
            if self._ended or self._closed:
                raise StopAsyncIteration
            inbox = self._inbox
            if inbox.items:
                item = inbox.items.popleft()
                if not isinstance(item, (_End, _Raised)):  # a batch of values
                    self._values.extend(item)
                    assert self._pump is not None  # only the pump posts
                    self._pump.want()
                    continue
                self._ended = True
                if isinstance(item, _Raised):
                    raise item.error
                raise StopAsyncIteration
            self._start()
            try:
                await inbox.wait()
            except asyncio.CancelledError:
                # The consumer gave up: as an async generator would, the stream ends.
                self._close_soon()
                raise
        return self._values.popleft()

    def _start(self) -> None:
        if self._pump is not None:
            return
        pump = _Pump(self._stream, self._skip, asyncio.get_running_loop(), self._inbox)
        self._pump = pump
        # Not a method of self: the pump must not keep this object alive.
        weakref.finalize(self, pump.close)
        pump.thread.start()

    def _close_soon(self) -> None:
        """Ask for the stream to be closed, without waiting."""
        if self._closed:
            return
        self._closed = True
        self._values.clear()
        self._inbox.items.clear()
        if self._pump is None:
            self._stream.close()  # never read: nothing is running, closing is immediate
        else:
            self._pump.close()

    async def aclose(self) -> None:
        """Close the stream, cancelling the queued tasks (as ``ResultStream.close`` does).

        Returns once the stream is closed (its thread ends right after); if
        the thread was waiting for a batch, that is when the batch is
        delivered (the loop keeps running meanwhile). Calling it again does nothing.
        Cancelling ``aclose`` itself stops the wait, not the close.

        Raises:
            Exception: what closing the ``ResultStream`` raised, once.
        """
        self._close_soon()
        pump = self._pump
        if pump is None:
            return
        error = await asyncio.wrap_future(pump.ended)
        if error is not None and not self._close_error_seen:
            self._close_error_seen = True
            raise error

    def statistics(self) -> Statistics:
        """A frozen snapshot of this map's statistics so far (callable at any moment)."""
        return self._stream.statistics()

    async def __aenter__(self) -> AsyncResultStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "finished" if self._ended else "open"
        return f"<AsyncResultStream {state}>"
