"""``Executor``: a runner behind the ``concurrent.futures.Executor`` interface.

Code written for ``ProcessPoolExecutor`` or ``ThreadPoolExecutor`` runs on it
unchanged; every call goes through the runner's one engine::

    submit(fn, *args) ──> runner.submit ──> the engine's submit feed ──> Future
    map(fn, *iterables)
      │ the inputs are read at once; the deadline of ``timeout`` starts now
      v
    runner.run_batches(on_error="collect", ordered=True) ──> a ResultStream of batches
      │ a driver thread pulls it from the start, so work begins at the call
      v
    SimpleQueue of BatchResults ──> the result iterator, in input order: each value
      handed out and dropped; a failure raised where it stands, which ends the
      iterator and cancels the rest, as a timeout, a close or a collected iterator do

    shutdown(wait, cancel_futures) ──> this executor's futures and maps waited for
      (or cancelled), then the runner shut down if this executor made it

The executor adds no engine of its own: the runner's ``timeout``, ``retries``,
crash isolation, statistics and progress apply to ``submit`` and ``map`` alike.
"""

from __future__ import annotations

import concurrent.futures
import math
import queue
import threading
import time
import weakref
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import Any, Callable, Iterable, Iterator, TypeVar

from .backends import BackendName
from .engine.failures import raise_failure
from .engine.stream import ResultStream
from .errors import ConfigError, RunnerClosedError
from .runner import Parallelize
from .validate import check_callable, check_int
from .worker.batch import BatchResult
from .worker.calls import CallMode

__all__ = ["Executor"]

T = TypeVar("T")

# Start methods whose workers begin from a fresh interpreter, never a fork of the
# caller, as parallelize's process workers do (forked by the pool's own zygote):
# a pool asked for one of these behaves the same.
_FRESH_START_METHODS = ("spawn", "forkserver")


class _StdlibInitializer:
    """``initializer(*initargs)``, the ``concurrent.futures`` way, as the runner's
    ``initializer(shared_data)``; pickled with the runner's set-up (cloudpickle)."""

    __slots__ = ("func", "args")

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.func = func
        self.args = args

    def __call__(self, shared_data: Any) -> Any:
        return self.func(*self.args)


class _End:
    """The last item a map's driver puts on its queue: the stream ended, or why not."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _MapRun:
    """One ``map`` call: its batch stream, pulled by a thread of its own from the start."""

    def __init__(self, stream: ResultStream[Any], size: int, on_end: Callable[[_MapRun], None]) -> None:
        self.results: queue.SimpleQueue[BatchResult | _End] = queue.SimpleQueue()
        self._stream = stream
        self._size = size
        self._on_end = on_end
        self._stopping = False
        self._thread = threading.Thread(target=self._drive, name="parallelize-executor-map", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _drive(self) -> None:
        end = _End(None)
        delivered = 0
        try:
            for result in self._stream.batches():
                # A batch that finished is delivered, even after a cancel.
                self.results.put(result)
                delivered += len(result.values)
                if self._stopping:
                    break
            if delivered < self._size:
                # Only a cancel ends the stream early; a reader still there (after
                # shutdown(cancel_futures=True)) learns it at the first missing result.
                end = _End(CancelledError("the rest of this map was cancelled before it ran"))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread
            end = _End(exc)
        finally:
            # Closing the stream cancels the batches not yet started; running ones finish.
            self._stream.close()
            self.results.put(end)
            self._on_end(self)

    def cancel(self) -> None:
        """Stop: batches not yet started are cancelled, running ones finish.

        A generator cannot be closed from another thread while it runs, so the
        driver closes the stream when its next batch arrives.
        """
        self._stopping = True

    def join(self) -> None:
        self._thread.join()


class _MapResults(Iterator[Any]):
    """The iterator ``Executor.map`` returns: results in input order, from ``_MapRun``."""

    def __init__(self, run: _MapRun, deadline: float | None, timeout: float | None) -> None:
        self._run: _MapRun | None = run
        self._deadline = deadline
        self._timeout = timeout
        self._values: list[Any] = []
        self._failures: set[int] = set()
        self._next = 0
        self._finished = False
        self._started = False

    def __iter__(self) -> _MapResults:
        return self

    def __next__(self) -> Any:
        self._started = True
        while self._next >= len(self._values):
            self._load()
        i = self._next
        self._next += 1
        value = self._values[i]
        # Handed out and forgotten: the iterator keeps no reference to a result.
        self._values[i] = None
        if i in self._failures:
            self.close()
            raise_failure(value)
        return value

    def _load(self) -> None:
        """Take the next batch; raises StopIteration at the end, and ends the iterator on any error."""
        run = self._run
        if self._finished or run is None:
            raise StopIteration
        try:
            got = self._get(run)
        except BaseException:
            self.close()  # a timeout, or a KeyboardInterrupt while waiting: cancel the rest
            raise
        if isinstance(got, _End):
            self._finished, self._run = True, None
            self._values = []
            if got.error is not None:
                raise got.error
            raise StopIteration
        self._values = got.values
        self._failures = set(got.failures)
        self._next = 0

    def _get(self, run: _MapRun) -> BatchResult | _End:
        if self._deadline is None:
            return run.results.get()
        remaining = self._deadline - time.monotonic()
        try:
            return run.results.get(timeout=remaining) if remaining > 0 else run.results.get_nowait()
        except queue.Empty:
            raise FuturesTimeoutError(
                f"the next result of map was not ready within timeout={self._timeout} s of the map call; "
                "the rest of its work was cancelled"
            ) from None

    def close(self) -> None:
        """Stop early: once a result has been asked for, the work not yet started is cancelled.

        As with the generator ``concurrent.futures`` returns, closing (or
        dropping) an iterator that was never read cancels nothing: the map runs
        to the end.
        """
        if self._finished:
            return
        self._finished = True
        self._values = []
        run, self._run = self._run, None
        if run is not None and self._started:
            run.cancel()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


# Executors alive, and whether the interpreter is exiting: as CPython's own
# executors do, the program does not exit before every pending call is done.
_live: weakref.WeakSet[Executor] = weakref.WeakSet()
_exiting = False


def _at_exit() -> None:
    global _exiting
    _exiting = True
    for executor in list(_live):
        executor.shutdown(wait=True)


class Executor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` over a parallelize runner.

    A drop-in for ``ProcessPoolExecutor`` (the default backend) and
    ``ThreadPoolExecutor``: ``submit``, ``map`` and ``shutdown`` keep the
    semantics the standard library documents, and the futures work with
    ``concurrent.futures.wait``, ``as_completed`` and asyncio's
    ``loop.run_in_executor``. Underneath, ``map`` runs through the runner's
    batched engine, so many small tasks cost far less than one future each.

    Differences from ``ProcessPoolExecutor``:

    - A worker that dies (segfault, ``os._exit``, the out-of-memory killer) is
      no broken pool. Only the call it was running fails, with
      ``WorkerCrashedError`` (also a ``concurrent.futures.BrokenExecutor``); the
      other calls run on, a new worker takes its place and the executor stays
      usable. A worker killed from outside fails nothing: its call runs again
      on a fresh worker. There is no ``BrokenProcessPool``.
    - An ``initializer`` that raises fails each call sent to that worker with
      ``WorkerInitError`` (a ``RuntimeError``), and each ``map`` at its first
      result, instead of breaking the pool; ``submit`` goes on accepting calls.
    - A call that raises ``SystemExit`` or ``KeyboardInterrupt`` fails with
      ``TaskExitError``, the original as its ``exception``.
    - A user's exception reaches the caller as its own type, the worker's
      traceback as ``__cause__`` (as ``ProcessPoolExecutor`` does) and a note
      naming the call's arguments.
    - Workers are forked from a fresh interpreter of the pool's own, never from
      the caller, and functions travel by
      cloudpickle, so lambdas and functions defined in ``__main__`` work. Such a
      function carries its own copy of the globals it reads: a global that the
      initializer sets in ``__main__`` is not seen by tasks defined there (put
      both in a module, or read the initializer's return value in the task as
      ``worker_context().init_values``).
    - ``map`` sends its calls in batches sized by the engine (``chunksize=None``)
      and results arrive a batch at a time; a future's ``running()`` stays
      ``False`` while its call runs.

    Args:
        max_workers: calls run at once (>= 1); default: the CPUs this process may use.
        backend: ``"process"`` (default), ``"thread"``, or another parallelize
            backend (``"dask"``...).
        initializer: ``initializer(*initargs)`` runs once in each worker before
            its first call (the ``concurrent.futures`` convention), or ``None``;
            what it returns is that worker's ``worker_context().init_values``.
        initargs: the arguments of ``initializer`` (default none).
        mp_context: accepted for ``ProcessPoolExecutor`` code: ``None`` or a
            ``"spawn"`` or ``"forkserver"`` context, whose workers start as a
            fresh interpreter as parallelize's do. A ``"fork"`` context is
            refused: its workers would inherit the parent's memory, and code
            that relies on that would break without it.
        runner: an existing ``Parallelize`` to run on, given alone (no other
            option); the executor then does not own it: ``shutdown`` waits for
            (or cancels) this executor's own work and leaves the runner open.
            Default: the executor makes one.
        **options: options of ``Parallelize`` (``timeout`` per call, ``retries``,
            ``retry_on``, ``backoff``, ``progress``, ``env``...).

    Raises:
        ConfigError: a bad option, or options given together with ``runner``.

    Example:
        >>> with Executor(2) as executor:
        ...     squares = list(executor.map(pow, range(10), [2] * 10))
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        backend: BackendName | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        mp_context: Any = None,
        runner: Parallelize | None = None,
        **options: Any,
    ) -> None:
        if "on_error" in options:
            raise ConfigError(
                f"on_error={options['on_error']!r} is not an Executor option: a failed call raises when its "
                "result is reached, as in concurrent.futures; use Parallelize(on_error=...) for the other policies"
            )
        if "max_tasks_per_child" in options:
            raise ConfigError(
                f"max_tasks_per_child={options['max_tasks_per_child']!r} is not supported: parallelize reuses its "
                "workers and replaces any that die; use idle_timeout= to have idle workers exit"
            )
        check_callable("initializer", initializer, signature="initializer(*initargs)", allow_none=True)
        try:
            args = tuple(initargs)
        except TypeError:
            raise ConfigError(f"initargs must be a tuple of arguments for initializer, got {initargs!r}") from None
        if runner is not None:
            given = {
                name: value
                for name, value in (
                    ("max_workers", max_workers),
                    ("backend", backend),
                    ("initializer", initializer),
                    ("mp_context", mp_context),
                )
                if value is not None
            }
            given.update(options)
            if args:
                given["initargs"] = args
            if given:
                raise ConfigError(
                    f"options {sorted(given)} cannot be given with runner=: the runner already has its own; "
                    "pass them to Parallelize(...) instead"
                )
            if not isinstance(runner, Parallelize):
                raise ConfigError(f"runner must be a parallelize.Parallelize, got {runner!r}")
            self._runner = runner
            self._owns = False
        else:
            name: BackendName = backend if backend is not None else "process"
            _check_mp_context(mp_context, name)
            init = _StdlibInitializer(initializer, args) if initializer is not None else None
            self._runner = Parallelize(max_workers, backend=name, initializer=init, **options)
            self._owns = True
        self._lock = threading.Lock()
        self._closed = False
        self._pending: set[Future[Any]] = set()
        self._maps: set[_MapRun] = set()
        _live.add(self)

    # -- properties --------------------------------------------------------------------

    @property
    def runner(self) -> Parallelize:
        """The runner underneath (for ``statistics()``, ``max_workers``...)."""
        return self._runner

    @property
    def max_workers(self) -> int:
        """Calls run at once."""
        return self._runner.max_workers

    def __repr__(self) -> str:
        state = "shut down" if self._closed else "open"
        return f"<Executor {state} max_workers={self.max_workers} backend={self._runner.backend.name!r}>"

    # -- submitting ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            when = "interpreter shutdown" if _exiting else "shutdown"
            raise RunnerClosedError(f"cannot schedule new futures after {when}; create a new Executor")

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)``; returns its ``concurrent.futures.Future``.

        The future can be cancelled until a worker takes the call. It fails
        with the call's own exception (the worker's traceback as ``__cause__``),
        or with ``TaskTimeoutError``, ``WorkerCrashedError`` or ``PicklingError``.

        Raises:
            RunnerClosedError: the executor (or its runner) was shut down; also
                a ``RuntimeError``, as ``concurrent.futures`` raises.
        """
        with self._lock:
            self._check_open()
            future: Future[T] = self._runner.submit(fn, *args, **kwargs)
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
    ) -> Iterator[T]:
        """``fn`` over the items of ``iterables`` in parallel; results in input order.

        As ``concurrent.futures.Executor.map``: the iterables are read at once
        and the work starts now; ``fn`` takes one argument from each iterable
        and the shortest iterable ends the map. The calls run in batches on the
        runner's engine, and their results arrive a batch at a time. A call's
        exception is raised when its result is reached, and ends the iterator.
        Closing the iterator early (``close()``, or ``break`` and dropping it)
        cancels the work not yet started when the map's next batch comes back;
        an iterator never read runs to the end, as in ``concurrent.futures``.

        Args:
            fn: the function.
            *iterables: its arguments, one iterable per parameter.
            timeout: seconds from this call by which every result must be
                ready; ``None`` (default): no limit. A result not ready in time
                raises ``TimeoutError`` from the iterator and cancels the rest.
            chunksize: calls sent to a worker at once. Default ``None``: the
                engine sizes batches from measured task times (what makes many
                small calls cheap); a number fixes the size, ``1`` being one
                call per batch (``ProcessPoolExecutor``'s default).

        Returns:
            An iterator over the results.

        Raises:
            RunnerClosedError: the executor was shut down (also a ``RuntimeError``).
            ConfigError: ``chunksize`` below 1 or a ``timeout`` that is not a number.
        """
        deadline = _deadline(timeout)
        check_callable("fn", fn)
        check_int("chunksize", chunksize, minimum=1, allow_none=True, none_means="sized by the engine")
        items, call = _collect(iterables)
        overrides: dict[str, Any] = {"on_error": "collect"}
        if chunksize is not None:
            overrides["chunksize"] = chunksize
        with self._lock:
            self._check_open()
            if not len(items):
                return iter(())
            stream = self._runner.run_batches(fn, items, call=call, ordered=True, **overrides)
            run = _MapRun(stream, len(items), self._map_ended)
            self._maps.add(run)
        run.start()
        return _MapResults(run, deadline, timeout)

    def _map_ended(self, run: _MapRun) -> None:
        with self._lock:
            self._maps.discard(run)

    # -- lifetime --------------------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more calls; release the workers once the submitted ones are done.

        May be called more than once. Either way, what was submitted and not
        cancelled still runs to the end, and the program does not exit before
        it has, as with ``concurrent.futures``.

        Args:
            wait: block until every pending call is done and (if this executor
                made its runner) the workers have exited. With ``False`` this
                returns at once and the workers are released in the background
                when the pending calls are done.
            cancel_futures: cancel the calls still waiting in the engine's queue,
                and each map's work not started when its next batch comes back.
        """
        with self._lock:
            self._closed = True
            pending = list(self._pending)
            maps = list(self._maps)
        if cancel_futures:
            for future in pending:
                future.cancel()
            for run in maps:
                run.cancel()
        if wait:
            self._finish(pending, maps, cancel_futures)
        elif self._owns:
            # The runner's own shutdown(wait=False) would stop the workers at
            # once; concurrent.futures lets pending calls finish. A non-daemon
            # thread keeps the program alive until they have.
            threading.Thread(
                target=self._finish,
                args=(pending, maps, cancel_futures),
                name="parallelize-executor-shutdown",
                daemon=False,
            ).start()

    def __del__(self) -> None:
        # As CPython's executors do once collected: the workers are released when
        # nothing is pending (pending calls and maps hold the executor alive).
        try:
            if self._owns and not self._closed and not _exiting:
                self.shutdown(wait=False)
        except Exception:  # noqa: BLE001 - never raise from a finalizer (e.g. no threads at exit)
            pass

    def _finish(self, pending: list[Future[Any]], maps: list[_MapRun], cancel_futures: bool) -> None:
        for run in maps:
            run.join()
        concurrent.futures.wait(pending)
        if self._owns:
            self._runner.shutdown(wait=True, cancel_futures=cancel_futures)


def _deadline(timeout: float | None) -> float | None:
    """The monotonic time by which a map's results are due, or ``None``."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout):
        raise ConfigError(f"timeout must be a number of seconds or None (no limit), got {timeout!r}")
    if math.isinf(timeout):
        return None if timeout > 0 else time.monotonic()
    return time.monotonic() + timeout


def _collect(iterables: tuple[Iterable[Any], ...]) -> tuple[Any, CallMode]:
    """The inputs of a map, read now, and how each becomes a call."""
    if len(iterables) == 1:
        only = iterables[0]
        # A range or tuple cannot change afterwards; a range's slices pickle as three numbers.
        return (only if isinstance(only, (range, tuple)) else list(only)), "arg"
    # The shortest iterable ends the map, as the built-in map and zip do.
    return list(zip(*iterables, strict=False)), "star"


def _check_mp_context(mp_context: Any, backend: str) -> None:
    if mp_context is None:
        return
    method = getattr(mp_context, "get_start_method", None)
    if not callable(method):
        raise ConfigError(f"mp_context must be a multiprocessing context or None, got {mp_context!r}")
    if backend != "process":
        raise ConfigError(
            f"mp_context applies to worker processes; the {backend!r} backend has none (use backend='process')"
        )
    start = method()
    if start not in _FRESH_START_METHODS:
        raise ConfigError(
            f"mp_context with start method {start!r} is not supported: parallelize starts its workers from a "
            f"fresh interpreter, never a fork of this process (safe with threads), as {list(_FRESH_START_METHODS)} "
            "do, and sends "
            "functions by cloudpickle; pass mp_context=None, or a 'spawn' or 'forkserver' context"
        )


# concurrent.futures.process registers an exit hook when it is imported; an import
# of it while the interpreter exits (by a library a task's pickle needs, as loky
# did when the process pool used it) fails, and the call with it. Imported here,
# it is done before any call can be pending.
import concurrent.futures.process  # noqa: E402, F401

# Registered as CPython's executors register theirs (before non-daemon threads are
# joined at exit), so pending calls finish while the workers are still there.
_register = getattr(threading, "_register_atexit", None)
try:
    if _register is not None:
        _register(_at_exit)
    else:  # pragma: no cover - CPython has had it since 3.9
        import atexit

        atexit.register(_at_exit)
except RuntimeError:  # pragma: no cover - imported while the interpreter exits
    pass
