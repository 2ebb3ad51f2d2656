"""The runner: ``Parallelize``, the one object users hold.

It owns a backend (threads, processes, serial, Dask...) and hands every entry
point to the same engine (``parallelize.engine.dispatch``):

- ``run(func, **kw)``: the original API, ``func`` once per worker, in the background;
- ``map`` / ``starmap``: a lazy stream over any iterable or parameter space;
- ``submit``: one call, one ``concurrent.futures.Future``, through the same
  engine (``parallelize.engine.submitter``), so every option applies to it too.

The runner never asks which backend it holds.
"""

from __future__ import annotations

import uuid
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal, TypeVar

from .backends import BackendName, make_backend
from .backends.base import Backend
from .engine.dispatch import TaskSpec, dispatch
from .engine.execution import Execution
from .engine.feed import Control
from .engine.progress import make_progress
from .engine.stream import ResultStream
from .errors import ConfigError, RunnerClosedError
from .options import OnError, ProgressOption, RunOptions
from .results.frame import FrameLayout
from .statistics import Statistics, StatisticsCollector
from .validate import check_callable
from .worker.batch import BatchResult
from .worker.calls import CallMode
from .worker.context import WorkerSetup
from .worker.pickling import FunctionHandle
from .worker.result_queue import QueueCall, wants_queue

if TYPE_CHECKING:
    import asyncio

    from .checkpoint.resume import Resume
    from .engine.async_stream import AsyncResultStream

__all__ = ["Parallelize"]

R = TypeVar("R")


def _length(iterable: Any) -> int | None:
    """``len(iterable)`` when it is cheap and meaningful, else ``None``."""
    if hasattr(iterable, "__len__") and not hasattr(iterable, "__next__"):
        try:
            return len(iterable)
        except TypeError:  # e.g. a space with a distribution axis
            return None
        except OverflowError:  # a space larger than sys.maxsize still has a size
            size = getattr(iterable, "size", None)
            return size if isinstance(size, int) else None
    return None


class Parallelize:
    """Runs a function over many inputs on a pool of workers.

    Args:
        max_workers: tasks run at once; default: the CPUs this process may use.
            ``threads=`` and ``workers=`` are accepted as aliases.
        backend: ``"thread"`` (default), ``"process"``, ``"serial"`` or ``"dask"``;
            see ``parallelize.backends.available_backends``.
        timeout: seconds one task may run before it fails with
            ``TaskTimeoutError``; ``None`` (default): no limit.
        on_error: ``"raise"`` (default) stops at the first failure and re-raises it;
            ``"collect"`` keeps going and yields a ``TaskFailure``
            in place of the result; ``"skip"`` keeps going and drops failures.
        retries: extra attempts for a task that failed with one of ``retry_on``
            (default 0). A timeout or a worker crash counts as a failure too
            (``TaskTimeoutError``,
            ``WorkerCrashedError``); one attempt count
            covers them all (see ``RetryPolicy``).
        retry_on: exception types to retry (default: any ``Exception``).
        backoff: seconds before the first retry, doubled after each (default 0:
            retry at once). While a task waits to be retried, its worker runs
            other tasks.
        max_backoff: the longest wait between two attempts (default 60 s).
        jitter: up to this many seconds added at random to each wait (default 0).
        progress: ``False`` (default); ``True``: a tqdm bar on a terminal or in a
            notebook, plain lines elsewhere (a log file, CI); a dict of tqdm
            options; or a tqdm class (see README, "Progress bars and logs").
        chunksize: tasks per batch; default ``None`` sizes batches adaptively.
        initializer: ``initializer(shared_data)`` runs once in each worker; its
            return value is that worker's ``worker_context().init_values``.
        shared_data: read-only data available in every worker as
            ``worker_context().shared_data``, shipped once per worker.
        **backend_options: options of the chosen backend (e.g. ``address=`` for Dask).

    Raises:
        ConfigError: a bad option, named with what is allowed.

    Example:
        >>> with Parallelize(4, backend="process") as runner:
        ...     squares = list(runner.map(lambda x: x * x, range(10)))
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        threads: int | None = None,
        workers: int | None = None,
        backend: BackendName = "thread",
        timeout: float | None = None,
        on_error: OnError = "raise",
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        backoff: float = 0.0,
        max_backoff: float = 60.0,
        jitter: float = 0.0,
        progress: ProgressOption = False,
        chunksize: int | None = None,
        initializer: Callable[[Any], Any] | None = None,
        shared_data: Any = None,
        **backend_options: Any,
    ) -> None:
        given = {
            k: v for k, v in (("max_workers", max_workers), ("threads", threads), ("workers", workers)) if v is not None
        }
        if len(given) > 1:
            raise ConfigError(f"give the number of workers once; got {given}")
        check_callable("initializer", initializer, signature="initializer(shared_data)", allow_none=True)
        self.options = RunOptions(
            timeout=timeout,
            on_error=on_error,
            retries=retries,
            retry_on=retry_on if isinstance(retry_on, tuple) else (retry_on,),
            backoff=backoff,
            max_backoff=max_backoff,
            jitter=jitter,
            progress=progress,
            chunksize=chunksize,
        )
        setup = None
        if initializer is not None or shared_data is not None:
            setup = WorkerSetup(uuid.uuid4().hex, initializer, shared_data)
        self._setup = setup
        self._setup_token = setup.token if setup is not None else None
        # The backend owns the number of workers: None lets it choose (a
        # cluster knows its threads; else the CPUs this process may use).
        self._backend: Backend = make_backend(backend, next(iter(given.values()), None), setup, **backend_options)
        self._check_timeout(self.options)
        self._last_execution: Execution | None = None
        self._last_collector: StatisticsCollector | None = None
        self._submit_collector = StatisticsCollector()
        self._submitter: Any = None
        self._closed = False

    # -- properties ----------------------------------------------------------------

    @property
    def max_workers(self) -> int:
        """Tasks run at once (the backend's number)."""
        return self._backend.max_workers

    @property
    def backend(self) -> Backend:
        """The backend this runner holds."""
        return self._backend

    def __repr__(self) -> str:
        b = self._backend
        return f"Parallelize(max_workers={b.max_workers}, backend={b.name!r}, on_error={self.options.on_error!r})"

    # -- the engine ------------------------------------------------------------------

    def _options(self, overrides: dict[str, Any]) -> RunOptions:
        if not overrides:
            return self.options
        for fixed in ("max_workers", "backend"):
            if fixed in overrides:
                raise ConfigError(f"{fixed} is fixed when the runner is created; make another Parallelize to change it")
        if "retry_on" in overrides and isinstance(overrides["retry_on"], type):
            overrides["retry_on"] = (overrides["retry_on"],)
        return self._check_timeout(self.options.replace(**overrides))

    def _check_timeout(self, options: RunOptions) -> RunOptions:
        if options.timeout is not None and not self._backend.can_time_out:
            raise ConfigError(
                f"timeout={options.timeout} cannot be enforced on the {self._backend.name!r} backend here "
                "(the serial backend interrupts a task with SIGALRM, which only the main thread receives); "
                "create the runner in the main thread, or use backend='thread' or 'process'"
            )
        return options

    def _check_open(self) -> None:
        if self._closed:
            raise RunnerClosedError("this runner was shut down; create a new Parallelize to run more work")

    def _compute(
        self,
        func: Callable[..., Any],
        call: CallMode,
        options: RunOptions,
        collector: StatisticsCollector,
        progress: Any,
        *,
        ordered: bool,
        total: int | None,
        fixed: dict[str, Any] | None,
        control: Control | None,
        resume: Resume | None = None,
    ) -> Callable[[Iterable[Any]], Iterator[BatchResult]]:
        """The engine over this runner's backend, as a function of the inputs.

        With a ``resume`` and a backend whose jobs may outlive this process
        (the cluster backends), each batch records its own successes in the
        checkpoint where it runs, so a rerun finds what orphaned jobs finished.
        """
        spec = TaskSpec(FunctionHandle(func), call, fixed, self._setup_token)
        job_record = resume.job_record if resume is not None and self._backend.outlives_submitter else None

        def compute(items: Iterable[Any]) -> Iterator[BatchResult]:
            return dispatch(
                self._backend,
                spec,
                items,
                options,
                collector,
                ordered=ordered,
                total=total,
                progress=progress,
                control=control,
                job_record=job_record,
            )

        return compute

    # -- entry points ----------------------------------------------------------------

    def run(self, func: Callable[..., Any], **kwargs: Any) -> Execution:
        """Call ``func(**kwargs)`` once in each worker, in the background.

        If ``func`` has a parameter named ``queue``, it receives a queue and
        reports results with ``queue.put(x)`` (the original API); otherwise its
        return value is the result. Returns at once; read the results with
        ``results``.

        Args:
            func: the function.
            **kwargs: keyword arguments passed to every call.

        Returns:
            The running ``Execution``.
        """
        check_callable("func", func)
        queued = wants_queue(func) and "queue" not in kwargs
        target: Callable[..., Any] = QueueCall(func) if queued else func
        n = self._backend.max_workers
        execution: Execution = self.run_batches(
            target, [kwargs] * n, call="kwargs", background=True, chunksize=1, flatten=queued
        )
        return execution

    def results(self, ordered: bool = False) -> Any:
        """Stream the results of the last ``run``, waiting for it to finish.

        Can be called again: results are kept, not drained.

        Args:
            ordered: in input order rather than completion order.
        """
        if self._last_execution is None:
            raise ConfigError("there are no results yet; call runner.run(func, ...) first")
        return self._last_execution.results(ordered)

    def map(
        self,
        func: Callable[..., R],
        iterable: Iterable[Any],
        *,
        ordered: bool = True,
        checkpoint: Any = None,
        **overrides: Any,
    ) -> ResultStream[R]:
        """Lazily apply ``func`` to every item of ``iterable``.

        Items are pulled as workers need them and at most a few batches per
        worker are outstanding, so a huge or infinite input is never held in
        memory. Over a ``ParamSpace`` (or any
        ``Space``) each point is passed as keyword
        arguments: ``func(**point)``.

        Args:
            func: the function, called as ``func(item)``.
            iterable: the inputs.
            ordered: yield in input order (default) or as tasks complete.
            checkpoint: a folder (or ``Checkpoint``)
                where each finished task is recorded before it is yielded; a
                rerun computes only what is missing. Default ``None``: no checkpoint.
            **overrides: per-call options: ``timeout``, ``on_error``, ``retries``,
                ``retry_on``, ``backoff``, ``progress``, ``chunksize``.

        Returns:
            A ``ResultStream`` of the results.

        Raises:
            ResumeMismatchError: ``checkpoint`` holds results for other inputs.
        """
        call: CallMode = "kwargs" if _is_space(iterable) else "arg"
        return self.run_batches(func, iterable, call=call, ordered=ordered, checkpoint=checkpoint, **overrides)

    def starmap(
        self,
        func: Callable[..., R],
        iterable: Iterable[Iterable[Any]],
        *,
        ordered: bool = True,
        checkpoint: Any = None,
        **overrides: Any,
    ) -> ResultStream[R]:
        """Like ``map``, calling ``func(*item)`` for each item (a tuple of arguments)."""
        return self.run_batches(func, iterable, call="star", ordered=ordered, checkpoint=checkpoint, **overrides)

    def map_rows(
        self,
        func: Callable[..., R],
        frame: Any,
        *,
        pass_as: Literal["pair", "kwargs"] = "pair",
        ordered: bool = True,
        checkpoint: Any = None,
        **overrides: Any,
    ) -> ResultStream[R]:
        """Lazily apply ``func`` to every row of a pandas DataFrame (the mproc style).

        Rows are produced one at a time as workers need them (``iterrows`` or
        ``itertuples``), never copied per task beyond the row itself. The
        stream's ``to_dataframe`` is indexed
        by the input frame's own index labels (and names), so
        ``frame.join(stream.to_dataframe())`` lines results up with their rows.

        Args:
            func: the function.
            frame: the ``pandas.DataFrame`` whose rows are the inputs.
            pass_as: ``"pair"`` (default): ``func((label, row))`` with the
                ``(index, Series)`` pair exactly as ``frame.iterrows()`` gives it
                (note that ``iterrows`` casts a row of mixed ints and floats to
                float); ``"kwargs"``: ``func(**fields)`` with the row's values as
                keyword arguments, each column keeping its own type (column names
                must be unique strings).
            ordered: yield in input order (default) or as tasks complete.
            checkpoint: a folder to record finished rows in and resume from, as
                for ``map``; the resumed frame keeps the input's index.
            **overrides: per-call options as for ``map``.

        Returns:
            A ``ResultStream`` of the results.

        Raises:
            ConfigError: ``frame`` is not a DataFrame, an unknown ``pass_as``, or
                (for ``"kwargs"``) column names that are not unique strings.
        """
        from .results.rows import row_tasks

        target, rows, layout = row_tasks(func, frame, pass_as)
        return self.run_batches(
            target, rows, call="arg", ordered=ordered, layout=layout, checkpoint=checkpoint, **overrides
        )

    def run_batches(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Any],
        *,
        call: CallMode = "arg",
        ordered: bool = False,
        fixed: dict[str, Any] | None = None,
        background: bool = False,
        checkpoint: Any = None,
        layout: FrameLayout | None = None,
        flatten: bool = False,
        **overrides: Any,
    ) -> Any:
        """The engine's batch-level interface, for layers built on the runner.

        Args:
            func: the function.
            iterable: the inputs.
            call: ``"arg"``, ``"star"`` or ``"kwargs"``.
            ordered: batches in input order.
            fixed: keyword arguments added to every call.
            background: return a running ``Execution``
                instead of a lazy ``ResultStream``.
            checkpoint: a folder (or ``Checkpoint``)
                to record finished tasks in and resume from, as for ``map``.
                It filters the stream: only missing items reach the engine.
            layout: how inputs become DataFrame columns (default: from ``call``).
            flatten: each result is a list of values to yield one by one (the
                seed API's ``queue``).
            **overrides: per-call options as for ``map``.
        """
        check_callable("func", func)
        self._check_open()
        options = self._options(overrides)
        resume = None
        if checkpoint is not None:
            from .checkpoint import Checkpoint
            from .checkpoint.resume import Resume

            # Jobs an earlier run of this sweep left queued or running record
            # into the checkpoint themselves: wait for them, then read it.
            self._backend.reattach()
            # Opened and checked now: a damaged or foreign folder fails before anything runs.
            resume = Resume(Checkpoint.of(checkpoint), iterable, call=call, ordered=ordered)
            total = resume.missing
        else:
            total = _length(iterable)
        collector = StatisticsCollector(total)
        self._last_collector = collector
        progress = make_progress(options.progress, total)
        control = Control() if background else None
        compute = self._compute(
            func,
            call,
            options,
            collector,
            progress,
            ordered=ordered,
            total=total,
            fixed=fixed,
            control=control,
            resume=resume,
        )
        batches = compute(iterable) if resume is None else _resumed(resume, compute, collector)
        skip = options.on_error == "skip"
        layout = layout or FrameLayout(call)
        if background:
            execution = Execution(
                batches,
                collector,
                flatten=flatten,
                skip_failures=skip,
                progress=progress,
                layout=layout,
                control=control,
            )
            self._last_execution = execution
            return execution
        return ResultStream(batches, collector, skip_failures=skip, progress=progress, layout=layout)

    def submit(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule one call ``func(*args, **kwargs)``, through the same engine as ``map``.

        The runner's ``timeout``, ``retries``, ``retry_on``, ``backoff``,
        statistics and progress apply to it; calls submitted in a row travel
        together when the workers are busy.

        Returns:
            A ``concurrent.futures.Future`` of its value. A failure is set
            on it as ``map`` under ``on_error="raise"`` would raise it: the
            user's exception as its own type (``SystemExit`` and other
            ``BaseException``s as ``TaskExitError``),
            or a ``TaskTimeoutError``,
            ``WorkerCrashedError`` or
            ``PicklingError``. ``cancel()`` succeeds while the call waits to
            be handed to the backend; calls already handed over (a few batches
            ahead while workers are busy, like ``ProcessPoolExecutor``'s call
            queue) will run, and ``cancel()`` returns False for them.

        Raises:
            RunnerClosedError: the runner was shut down.
        """
        check_callable("func", func)
        self._check_open()
        if self._submitter is None:
            from .engine.submitter import Submitter

            self._submitter = Submitter(self._backend, self.options, self._setup_token, self._submit_collector)
        self._last_collector = self._submit_collector
        return self._submitter.submit(func, args, kwargs)

    # -- asyncio -----------------------------------------------------------------------

    def asubmit(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """``submit`` for asyncio: ``value = await runner.asubmit(func, *args, **kwargs)``.

        Call it while an event loop runs (in a coroutine). The call is
        scheduled at once, exactly as by ``submit`` (same engine, options and
        statistics); awaiting the future never blocks the loop.

        Cancelling the awaiting task (or the future) cancels the call if it
        still waits in the runner's queue of submitted calls. The engine hands
        waiting calls to the backend, in batches, whenever its window of
        batches has room, so a call is often handed over at once; a call
        handed over, like a running one, runs to the end on every backend
        (threads cannot be interrupted, and the engine kills a process worker
        only for a timeout or Ctrl-C), and its outcome is dropped. On the
        serial backend the call runs at once, in the loop's thread, as that
        backend runs everything in the caller's thread.

        Returns:
            An ``asyncio.Future`` of the value, failing as ``submit``'s future would.

        Raises:
            RuntimeError: no event loop is running in this thread.
            RunnerClosedError: the runner was shut down.
        """
        import asyncio

        loop = asyncio.get_running_loop()  # first: no call is scheduled without a loop to await it
        return asyncio.wrap_future(self.submit(func, *args, **kwargs), loop=loop)

    def amap(
        self,
        func: Callable[..., R],
        iterable: Iterable[Any],
        *,
        ordered: bool = True,
        checkpoint: Any = None,
        **overrides: Any,
    ) -> AsyncResultStream[R]:
        """``map`` for asyncio: ``async for result in runner.amap(func, iterable)``.

        The same engine, options, statistics and checkpoint as ``map``; the
        engine is driven from a thread of the stream's own, so the event loop
        never blocks, and results reach the loop a batch at a time. Options
        and the checkpoint are checked now, as by ``map``; nothing runs until
        the stream is first iterated. ``aclose()``, the end of an
        ``async with`` block or cancelling the iterating task closes the
        stream: queued tasks are cancelled, running ones finish and are
        dropped (see ``AsyncResultStream``).

        Args:
            func: the function, called as ``func(item)``.
            iterable: the inputs (read in the stream's thread).
            ordered: yield in input order (default) or as tasks complete.
            checkpoint: a folder (or ``Checkpoint``) to record finished tasks
                in and resume from, as for ``map``. Default ``None``.
            **overrides: per-call options, as for ``map``.

        Returns:
            An ``AsyncResultStream`` of the results.

        Raises:
            ConfigError: a bad option, or a ``timeout`` on the serial backend
                (its tasks would run in the stream's thread, where no timeout
                can be enforced).
            ResumeMismatchError: ``checkpoint`` holds results for other inputs.
        """
        return self._async_stream(
            lambda: self.map(func, iterable, ordered=ordered, checkpoint=checkpoint, **overrides), overrides
        )

    def astarmap(
        self,
        func: Callable[..., R],
        iterable: Iterable[Iterable[Any]],
        *,
        ordered: bool = True,
        checkpoint: Any = None,
        **overrides: Any,
    ) -> AsyncResultStream[R]:
        """Like ``amap``, calling ``func(*item)`` for each item (a tuple of arguments)."""
        return self._async_stream(
            lambda: self.starmap(func, iterable, ordered=ordered, checkpoint=checkpoint, **overrides), overrides
        )

    def _async_stream(self, make: Callable[[], ResultStream[R]], overrides: dict[str, Any]) -> AsyncResultStream[R]:
        from .engine.async_stream import AsyncResultStream

        if self._backend.runs_inline and overrides.get("timeout", self.options.timeout) is not None:
            raise ConfigError(
                f"timeout={overrides.get('timeout', self.options.timeout)} cannot be enforced by amap on the "
                f"{self._backend.name!r} backend: its tasks run in the stream's own thread, and only the main "
                "thread receives SIGALRM; use backend='thread' or 'process', or map without a timeout"
            )
        skip = overrides.get("on_error", self.options.on_error) == "skip"
        return AsyncResultStream(make(), skip_failures=skip)

    def statistics(self) -> Statistics:
        """Statistics of the most recent ``run``, ``map`` or grid (or of ``submit`` calls).

        Returns:
            A frozen ``Statistics``, at any moment.
        """
        collector = self._last_collector or self._submit_collector
        return collector.snapshot()

    # -- lifetime ----------------------------------------------------------------------

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the last ``run`` to finish, as the original's ``join()`` waited for its threads.

        Like ``Thread.join`` it does not raise the run's error: ``results()``
        does. Returns at once when nothing was ``run``.

        Args:
            timeout: seconds to wait at most; ``None`` (default): until it ends.

        Returns:
            True if no run is going on any more.
        """
        if self._last_execution is None:
            return True
        return self._last_execution.wait(timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Release the workers. Further calls raise ``RunnerClosedError``.

        Args:
            wait: wait for running tasks to finish.
            cancel_futures: cancel tasks not yet started.
        """
        if self._closed:
            return
        self._closed = True
        if self._last_execution is not None and wait:
            self._last_execution.wait()
        if self._submitter is not None:
            self._submitter.shutdown(wait=wait, cancel_futures=cancel_futures)
        self._backend.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __enter__(self) -> Parallelize:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # On an error (Ctrl-C included) do not wait for queued work.
        self.shutdown(wait=exc_type is None, cancel_futures=exc_type is not None)


def _resumed(
    resume: Any, compute: Callable[[Iterable[Any]], Iterator[BatchResult]], collector: StatisticsCollector
) -> Iterator[BatchResult]:
    """A resumed run's batches; its statistics end even when nothing was left to compute."""
    try:
        yield from resume.batches(compute)
    finally:
        collector.close()


def _is_space(obj: Any) -> bool:
    try:
        from .space import Space
    except ImportError:  # pragma: no cover - the module ships with the package
        return False
    return isinstance(obj, Space)
