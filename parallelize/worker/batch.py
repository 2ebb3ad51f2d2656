"""What runs inside a worker: a batch of calls to the user's function.

The parent never ships one task at a time. It ships a ``Batch`` (the
function, how to call it, a slice of inputs and the index of the first one) and
gets back one ``BatchResult``::

    parent                                   worker (thread, process or remote)
    ------                                   ------
    Batch(func, call, items, first) --->     run_batch(batch)
                                               for each item: time it, call it,
                                               keep the value or a TaskFailure
    BatchResult(values, durations,   <---    one record back per batch
                failures, worker)

Keeping the per-task bookkeeping inside the worker and returning one record per
batch is what makes tiny tasks cheap: the parent's cost is per batch, not per
task. The module imports nothing of parallelize but the errors, so a worker
process only pays for this file and cloudpickle.
"""

from __future__ import annotations

import itertools
import operator
import signal
import threading
import time
import traceback
from array import array
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator, Sequence

from ..durations import Durations, GroupedDurations, Timings
from ..retry import RetryPolicy
from .calls import CallMode, run_call
from .context import reraise_interrupt, setup_failure, worker_name
from .failure import RemoteTraceback, TaskFailure, portable, short_repr
from .pickling import FunctionHandle, by_reference

NO_RETRY = RetryPolicy()

__all__ = ["Batch", "BatchResult", "report_start", "run_batch", "set_start_hook"]


@dataclass
class Batch:
    """A slice of consecutive tasks shipped to one worker.

    Attributes:
        func: the user's function.
        call: one of ``CALL_MODES``.
        items: the inputs, in order.
        first: the index of ``items[0]`` in the whole input.
        fixed: keyword arguments passed to every call.
        stop_on_error: stop at the first failure (the caller will raise anyway).
        retry: the run's retry policy. A retry without a wait runs here at
            once; one with a wait is handed back to the parent
            (``BatchResult.retry_after``), which waits on a timer while
            this worker goes on with other tasks.
        attempt: the attempt number of these tasks' first try here (1, or
            more when the parent sends a task again).
        timeout: seconds one task may run; enforced here with SIGALRM when the
            batch runs in a process's main thread (process workers, the serial
            backend), and by the parent otherwise.
        timing_group: tasks timed together (1: each task on its own). For
            tasks of a few microseconds the clock costs more than the task.
        keys: parameter names, for the ``"keyed"`` call mode.
        setup_token: the token of the runner's per-worker set-up, to find out
            whether it failed in this worker.
        record: called with the batch's result before it is returned, to make
            its successes durable where the worker runs (a checkpoint written
            by a cluster job, which may outlive the process that submitted it);
            ``None`` (the default) leaves recording to the parent.
    """

    func: FunctionHandle
    call: CallMode
    items: Sequence[Any]
    first: int
    fixed: dict[str, Any] = field(default_factory=dict)
    stop_on_error: bool = False
    retry: RetryPolicy = NO_RETRY
    attempt: int = 1
    timeout: float | None = None
    timing_group: int = 1
    keys: tuple[str, ...] = ()
    setup_token: str | None = None
    record: Callable[[BatchResult], None] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # The four fields every batch sets, then only the others that differ
        # from their defaults: a small batch pickles in a third of the time a
        # dataclass's whole state takes.
        changed = {name: value for name, default in _DEFAULTS if (value := getattr(self, name)) is not default}
        return (_rebuild_batch, (self.func, self.call, self.items, self.first, changed))


def _rebuild_batch(
    func: FunctionHandle, call: CallMode, items: Sequence[Any], first: int, changed: dict[str, Any]
) -> Batch:
    return Batch(func, call, items, first, **changed)


@dataclass
class BatchResult:
    """What a worker sends back for one ``Batch``.

    Attributes:
        first: index of the batch's first task.
        values: one entry per task run; a failed task's entry is its
            ``TaskFailure``.
        durations: seconds each task took in the worker: an ``array('d')``, or
            for tasks timed in groups a ``GroupedDurations`` that reads the same.
        failures: positions (within the batch) of the failed tasks.
        worker: the name of the worker that ran it.
        elapsed: seconds the whole batch took in the worker.
        items: the batch's inputs, attached by the parent on arrival (never
            shipped back from the worker).
        summary: ``(sum, min, max)`` of ``durations``, computed in the worker.
        retried: extra attempts made for the batch's tasks (in the worker, and
            by the parent when it sent them again), successes and failures alike.
        retry_after: positions (within the batch) of failed tasks that the
            retry policy wants tried again, with the seconds to wait first; the
            parent sends them again and puts their outcome in their place.
        recorded: the worker made the successes durable itself
            (``Batch.record``); the parent need not record them again.
    """

    first: int
    values: list[Any]
    durations: Durations
    failures: list[int]
    worker: str
    elapsed: float
    items: Sequence[Any] | None = None
    summary: tuple[float, float, float] | None = None
    retried: int = 0
    retry_after: dict[int, float] | None = None
    recorded: bool = False


# A batch of at least this many tasks timed one by one first times PROBE_TASKS
# of them; if they average under GROUP_BELOW_SECONDS, the rest is timed in
# groups (``timing_group_for``, the engine's own rule, for batches it sized
# before it had measured anything; see parallelize.engine.batching).
PROBE_BATCH_MIN = 1024
PROBE_TASKS = 32
GROUP_BELOW_SECONDS = 10e-6

# Tiny tasks are timed in groups of about GROUP_SECONDS of work, of
# MIN_TIMING_GROUP to MAX_TIMING_GROUP tasks. A group costs about 1.5 us (two
# clock readings, a slice, a map, the durations): on 10,000 calls of x + 1,
# groups of 64 made the loop 1.43x a bare list(map(f, items)), of 1,024 1.04x.
GROUP_SECONDS = 50e-6
MIN_TIMING_GROUP = 64
MAX_TIMING_GROUP = 1024


def timing_group_for(per_task: float) -> int:
    """Tasks to time together when one takes ``per_task`` seconds (1: each on its own)."""
    if per_task >= GROUP_BELOW_SECONDS:
        return 1
    if per_task <= 0:
        return MAX_TIMING_GROUP
    return max(MIN_TIMING_GROUP, min(MAX_TIMING_GROUP, int(GROUP_SECONDS / per_task)))


def _positional_order(func: Callable[..., Any], keys: tuple[str, ...]) -> tuple[int, ...] | None:
    """How to call ``func(**dict(zip(keys, values)))`` positionally, if it can be.

    When ``keys`` are ``func``'s first parameters, in some order, each one that
    may be passed by position or by keyword, returns for each of those
    parameters the position of its value in ``values``; else ``None``.
    Checked once per batch, so that a point costs a tuple, not a mapping.
    """
    import inspect

    try:
        params = list(inspect.signature(func).parameters.values())[: len(keys)]
    except (TypeError, ValueError):  # no signature to read (some builtins)
        return None
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    names = [p.name for p in params]
    if len(params) < len(keys) or any(p.kind is not kind for p in params) or sorted(names) != sorted(keys):
        return None
    where = {k: i for i, k in enumerate(keys)}
    return tuple(where[name] for name in names)


class _Reordered:
    """Calls ``func(*values in parameter order)`` for a tuple of values in key order."""

    __slots__ = ("func", "pick")

    def __init__(self, func: Callable[..., Any], order: tuple[int, ...]) -> None:
        self.func = func
        self.pick = operator.itemgetter(*order)

    def __call__(self, values: tuple[Any, ...], **fixed: Any) -> Any:
        return self.func(*self.pick(values), **fixed)


class _Keyed:
    """Calls ``func(**dict(zip(keys, values)))`` for a tuple of values."""

    __slots__ = ("func", "keys")

    def __init__(self, func: Callable[..., Any], keys: tuple[str, ...]) -> None:
        self.func = func
        self.keys = keys

    def __call__(self, values: tuple[Any, ...], **fixed: Any) -> Any:
        return self.func(**dict(zip(self.keys, values, strict=True)), **fixed)


class _Alarm:
    """Interrupts a task that outlives its timeout, from SIGALRM, in a main thread.

    Only a process's main thread receives signals, so this covers process
    workers and the serial backend; elsewhere the parent enforces the timeout.
    """

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.active = (
            timeout is not None
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        )
        self._previous: Any = None

    def _fire(self, signum: int, frame: Any) -> None:
        from ..errors import TaskTimeoutError

        raise TaskTimeoutError(
            f"the task ran longer than timeout={self.timeout} s and was interrupted; "
            "raise the timeout or make the task shorter"
        )

    def __enter__(self) -> _Alarm:
        if self.active:
            self._previous = signal.signal(signal.SIGALRM, self._fire)
        return self

    def arm(self) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, self.timeout)  # type: ignore[arg-type]

    def disarm(self) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def __exit__(self, *exc: object) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)


# Set by a process worker while it runs a job (see backends.pool_worker): tells
# the parent the moment the batch's first task starts, after the functions are
# unpickled (which may import slow modules), so timeouts count from there.
_on_start: list[Callable[[], None] | None] = [None]


def set_start_hook(hook: Callable[[], None] | None) -> None:
    """Have ``report_start`` call ``hook`` once, for the job about to run (``None``: no one)."""
    _on_start[0] = hook


def report_start() -> None:
    """Tell whoever runs this job that its tasks start now (once; a no-op elsewhere)."""
    hook = _on_start[0]
    if hook is not None:
        _on_start[0] = None
        hook()


# Each optional field of a Batch and its default (a default factory's value is
# never the same object, so ``fixed`` always travels: an empty dict is 1 byte).
_DEFAULTS: tuple[tuple[str, Any], ...] = tuple(
    (f.name, f.default) for f in fields(Batch) if f.name not in ("func", "call", "items", "first")
)


def run_batch(batch: Batch) -> BatchResult:
    """Run every task of ``batch`` in this worker and report each one.

    Never raises for a task's own error: failures are recorded in the result so
    one bad input does not cost the rest of the batch.

    Args:
        batch: the tasks to run.

    Returns:
        The batch's ``BatchResult``.
    """
    failed_setup = setup_failure(batch.setup_token)
    if failed_setup is not None:
        exc, tb = failed_setup
        from ..errors import WorkerInitError

        err = WorkerInitError(
            f"the runner's initializer raised {type(exc).__name__}: {exc} in worker "
            f"{worker_name()}, so no task can run; fix the initializer (its traceback is the cause)"
        )
        err.__cause__ = RemoteTraceback(tb)
        raise err
    func = batch.func.get()
    if func is run_call:
        # Submitted calls carry their own functions: unpickle them (which may
        # import their modules) before any task's clock or timeout starts.
        for call in batch.items:
            call.func.get()
    call = batch.call
    if call == "keyed":
        order = _positional_order(func, batch.keys)
        if order is None:
            func = _Keyed(func, batch.keys)
        elif order != tuple(range(len(batch.keys))):
            func = _Reordered(func, order)
            call = "arg"
        else:
            call = "star"  # the same call, positionally: no mapping built per point
    report_start()
    # Measured after set-up and unpickling: the batch sizer wants the cost of
    # the tasks themselves.
    batch_start = time.perf_counter()
    fixed = batch.fixed
    call = "arg" if call == "keyed" else call
    values: list[Any] = []
    timings = Timings()
    failures: list[int] = []
    alarm = _Alarm(batch.timeout)
    retry_after: dict[int, float] = {}
    with alarm:
        retried = _run_items(batch, func, fixed, call, alarm, values, timings, failures, retry_after)
    elapsed = time.perf_counter() - batch_start
    durations = timings.result()
    # Summarised here, in parallel across workers, rather than in the parent;
    # from the runs when tasks were timed in groups (a pass over each task's
    # duration would cost a third of a tiny task's time).
    if isinstance(durations, GroupedDurations):
        summary = durations.summary()
    else:
        summary = (sum(durations), min(durations), max(durations)) if durations else (0.0, 0.0, 0.0)
    result = BatchResult(
        first=batch.first,
        values=values,
        durations=durations,
        failures=failures,
        worker=worker_name(),
        elapsed=elapsed,
        summary=summary,
        retried=retried,
        retry_after=retry_after or None,
    )
    if batch.record is not None:
        try:
            batch.record(result)
            result.recorded = True
        except Exception:  # noqa: BLE001 - not durable here: the parent records it as usual
            pass
    return result


def _run_items(
    batch: Batch,
    func: Callable[..., Any],
    fixed: dict[str, Any],
    call: str,
    alarm: _Alarm,
    values: list[Any],
    timings: Timings,
    failures: list[int],
    retry_after: dict[int, float],
) -> int:
    """Run the batch's tasks into ``values`` and their durations into ``timings``; return the number of retries made."""
    items = batch.items
    n = len(items)
    pos = 0
    retried = 0
    group = batch.timing_group
    # A large batch timed task by task (the parent had no estimate yet, or the
    # size is the user's chunksize) times its first tasks alone, then groups
    # the rest if they turn out tiny.
    probe = group == 1 and n >= PROBE_BATCH_MIN
    while pos < n:
        first_error: tuple[BaseException, str, float] | None = None
        if not alarm.active and not fixed:
            # Fast path: one clock reading per task (or per group of tiny tasks)
            # and no per-task branching; a task that raises hands over to the
            # careful path for its retries.
            if group > 1:
                pos, first_error = _grouped_loop(func, call, items, pos, values, timings, group)
            elif probe:
                probe = False
                start = pos
                pos, first_error = _fast_loop(func, call, items, pos, values, timings.each, stop=pos + PROBE_TASKS)
                if first_error is None and pos - start == PROBE_TASKS:
                    group = timing_group_for(sum(timings.each[-PROBE_TASKS:]) / PROBE_TASKS)
                    continue
            else:
                pos, first_error = _fast_loop(func, call, items, pos, values, timings.each)
            if pos >= n:
                return retried
        retried += _one_task(
            batch, func, fixed, call, alarm, pos, values, timings.each, failures, retry_after, first_error
        )
        pos += 1
        if batch.stop_on_error and len(failures) > len(retry_after):
            return retried  # a failure no retry will mend: the caller raises it
    return retried


def _fast_loop(
    func: Callable[..., Any],
    call: str,
    items: Sequence[Any],
    start: int,
    values: list[Any],
    durations: array,
    stop: int | None = None,
) -> tuple[int, tuple[BaseException, str, float] | None]:
    """Run ``items[start:stop]`` until one raises.

    Returns:
        The position reached, and for a task that raised: its exception, formatted
        traceback and duration.
    """
    append = values.append
    record = durations.append
    clock = time.perf_counter
    pos = start
    rest = items[start:stop] if start or stop is not None else items
    t0 = clock()
    try:
        if call == "arg":
            for item in rest:
                value = func(item)
                t1 = clock()
                append(value)
                record(t1 - t0)
                t0 = t1
                pos += 1
        elif call == "kwargs":
            for item in rest:
                value = func(**item)
                t1 = clock()
                append(value)
                record(t1 - t0)
                t0 = t1
                pos += 1
        else:
            for item in rest:
                value = func(*item)
                t1 = clock()
                append(value)
                record(t1 - t0)
                t0 = t1
                pos += 1
    except BaseException as exc:  # noqa: BLE001 - any exception a task raises is its failure
        reraise_interrupt(exc)
        return pos, (exc, traceback.format_exc(), clock() - t0)
    return pos, None


def _grouped_loop(
    func: Callable[..., Any],
    call: str,
    items: Sequence[Any],
    start: int,
    values: list[Any],
    timings: Timings,
    group: int,
) -> tuple[int, tuple[BaseException, str, float] | None]:
    """Like ``_fast_loop``, timing groups of ``group`` tasks at once (each a run in ``timings``).

    For tasks of a few microseconds, reading the clock around each one would
    cost more than the task; each task of a group is credited the group's mean.
    A group that raises is rerun task by task (from where it started) so that
    no task runs twice: values are only kept for complete groups.
    """
    clock = time.perf_counter
    pos = start
    n = len(items)
    # map and starmap call at C speed: a Python wrapper per task tripled the
    # cost of a tiny grid point (1.0 ms against 0.32 ms for 6,090 points).
    spread: Callable[[Callable[..., Any], Any], Iterator[Any]]
    if call == "arg":
        run, spread = func, map
    elif call == "kwargs":

        def run(item: Any) -> Any:
            return func(**item)

        spread = map
    else:
        run, spread = func, itertools.starmap

    extend = values.extend
    while pos < n:
        chunk = items[pos : pos + group]
        before = len(values)
        t0 = clock()
        try:
            extend(spread(run, chunk))
        except BaseException as exc:  # noqa: BLE001 - any exception a task raises is its failure
            reraise_interrupt(exc)
            # list.extend keeps what it appended before the failing task: keep those.
            k = len(values) - before
            dt = clock() - t0
            if k:
                timings.group(dt / (k + 1), k)
            return pos + k, (exc, traceback.format_exc(), dt / (k + 1))
        timings.group((clock() - t0) / len(chunk), len(chunk))
        pos += len(chunk)
    return pos, None


def _one_task(
    batch: Batch,
    func: Callable[..., Any],
    fixed: dict[str, Any],
    call: str,
    alarm: _Alarm,
    pos: int,
    values: list[Any],
    durations: array,
    failures: list[int],
    retry_after: dict[int, float],
    first_error: tuple[BaseException, str, float] | None = None,
) -> int:
    """Run one task with retries, timeout and failure recording.

    ``first_error`` is the outcome of an attempt already made by the fast path.
    A retry the policy wants after a wait is not waited for here: the failure
    is recorded with its wait in ``retry_after``, for the parent to send again.

    Returns:
        The number of retries made here (attempts beyond the first).
    """
    item = batch.items[pos]
    clock = time.perf_counter
    timed = alarm.active
    policy = batch.retry
    attempt = batch.attempt - 1
    while True:
        attempt += 1
        if first_error is not None:
            exc, tb, elapsed = first_error
            first_error = None
        else:
            t0 = clock()
            try:
                if timed:
                    alarm.arm()
                if call == "arg":
                    value = func(item, **fixed)
                elif call == "kwargs":
                    value = func(**item, **fixed)
                else:
                    value = func(*item, **fixed)
                if timed:
                    alarm.disarm()
            except BaseException as caught:  # noqa: BLE001 - any exception a task raises is its failure
                if timed:
                    alarm.disarm()
                reraise_interrupt(caught)
                exc, tb, elapsed = caught, traceback.format_exc(), clock() - t0
            else:
                durations.append(clock() - t0)
                values.append(value)
                return attempt - batch.attempt
        if policy.should_retry(exc, attempt):
            wait = policy.delay(attempt)
            if wait <= 0:
                continue
            retry_after[pos] = wait
        values.append(
            TaskFailure(
                index=batch.first + pos,
                exception=portable(exc),
                traceback=tb,
                arguments=short_repr(dict(zip(batch.keys, item, strict=True)) if batch.call == "keyed" else item),
                attempts=attempt,
            )
        )
        durations.append(elapsed)
        failures.append(pos)
        return attempt - batch.attempt


# run_batch reports its own start (after unpickling): see report_start.
run_batch.reports_start = True  # type: ignore[attr-defined]

by_reference(run_batch, _rebuild_batch, Batch, BatchResult, RetryPolicy, GroupedDurations)
