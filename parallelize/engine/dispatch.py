"""The streaming engine under every entry point: batches in, results out.

::

    input iterator ──islice──> Batch ──backend.submit──> Future ──done──> done queue
         ^ pulled only while fewer than `window` batches are                 │
         │ outstanding, so memory is bounded for any input size              v
    caller <── BatchResult (in input order, or as completed) <── policy, stats
                                                                             │
    quarantine <── batches lost whole (worker crash, pickling) ──────────────┘
         └─> rerun one at a time, halved until the culprit task is found

``dispatch`` is a generator run in the consumer's thread (``map``) or in a
background thread (``run`` and ``ModelEvaluator``). Futures signal completion by
putting themselves in a ``SimpleQueue`` from their done callback, so the engine
sleeps in one blocking ``get`` (with a deadline only when tasks have timeouts).

Faults, and what the engine does with them:

- a task raises: recorded in the worker, reported as a
  ``TaskFailure``; the error policy decides.
  Retries follow the run's one ``RetryPolicy``: without
  a wait the worker runs the task again at once; with one, the worker goes on
  with its batch and the engine holds the batch's result, sends the task again
  when its wait is over (``retrying``, a timer; no worker sits idle) and
  puts the outcome in its place before the batch is delivered.
- a batch is lost whole (its worker died, or it could not be pickled): the batch
  goes to quarantine. Quarantined batches run alone, so a further crash is
  certainly theirs; a guilty batch is halved until the single culprit task is
  found, which the retry policy may send again to a fresh worker; then it
  fails with ``WorkerCrashedError``. Innocent tasks
  lost alongside it are rerun, never failed.
- a task outlives ``timeout`` (counted from the moment its worker starts it,
  which the backend reports by marking the future running): interrupted
  inside its process worker by SIGALRM; if that does not work (stuck in native
  code) the parent asks the backend to kill the one worker running it
  (``kill``), touching no other task;
  on threads, the parent abandons the thread and the backend replaces it.
- a batch's worker was stopped on purpose by someone else on the same backend
  (``TaskLostError``): it is run again, at no cost.
- the input iterable raises: the items read before it are run and delivered,
  then its error is raised with the position.

Another thread can stop a dispatch as Ctrl-C would through a ``Control``
(a background run whose waiting caller got the Ctrl-C), and ``runner.submit``
feeds calls into a long-lived dispatch through a ``Feed``.
"""

from __future__ import annotations

import functools
import math
import queue
import time
import weakref
from collections import deque
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Iterable, Iterator

from .. import logs
from ..backends.base import Backend
from ..errors import (
    JobCancelledError,
    TaskLostError,
    TaskTimeoutError,
    WorkerInitError,
    add_note,
)
from ..options import RunOptions
from ..space import ParamSpace
from ..statistics import StatisticsCollector
from ..worker.batch import Batch, BatchResult, run_batch
from ..worker.calls import CallMode
from ..worker.failure import short_repr
from ..worker.grid_points import GridPoints
from ..worker.pickling import FunctionHandle
from .batching import (
    IN_PROCESS_TARGET_SECONDS,
    MIN_BATCH_SECONDS,
    TARGET_BATCH_SECONDS,
    BatchSizer,
)
from .failures import batch_error, failed_batch, is_crash, is_pickling, raise_failure
from .feed import INTERRUPT, WAKE, Control, Feed
from .inputs import KeyedItems, sliceable
from .ordering import InOrder
from .retrying import Retries, Slot

__all__ = ["TaskSpec", "dispatch", "window_for"]

# How often the engine wakes to check deadlines while tasks with a timeout run.
DEADLINE_POLL_SECONDS = 0.05

# Where the worker enforces the timeout itself (SIGALRM in a process worker),
# the parent kills the task only this many seconds after its deadline: the
# worker's own report of the timeout normally arrives first.
KILL_GRACE_SECONDS = 1.0


# Seconds per task measured by the last run of a function, per backend: a
# later run of the same function starts with it instead of a probe batch.
_ESTIMATES: weakref.WeakKeyDictionary[Any, dict[str, float]] = weakref.WeakKeyDictionary()


def _estimate(spec: TaskSpec, backend: Backend) -> float | None:
    if not spec.remember:
        return None
    try:
        return _ESTIMATES.get(spec.func.get(), {}).get(backend.name)
    except TypeError:  # not weakly referable (a builtin): measured afresh
        return None


def _remember(spec: TaskSpec, backend: Backend, per_task: float | None) -> None:
    if per_task is None or not spec.remember:
        return
    try:
        _ESTIMATES.setdefault(spec.func.get(), {})[backend.name] = per_task
    except TypeError:
        pass


def window_for(max_workers: int) -> int:
    """Batches outstanding at once (submitted, or done but not yet consumed).

    Enough to keep every worker busy while the parent handles results, few
    enough that results waiting for a slow earlier batch stay bounded.
    """
    return max(4 * max_workers, 8)


@dataclass(frozen=True)
class TaskSpec:
    """What to call and how, shared by every batch of one run.

    Attributes:
        func: the user's function, pickled once.
        call: ``"arg"``, ``"star"`` or ``"kwargs"`` (see ``CALL_MODES``).
        fixed: keyword arguments added to every call.
        setup_token: the token of the runner's per-worker set-up, if any.
        remember: keep the measured task time for the next run of ``func``
            (not for ``submit``, whose one function runs every kind of call).
    """

    func: FunctionHandle
    call: CallMode = "arg"
    fixed: dict[str, Any] | None = None
    setup_token: str | None = None
    remember: bool = True


class _Engine:
    """State of one dispatch; see the module docstring for the data flow."""

    def __init__(
        self,
        backend: Backend,
        spec: TaskSpec,
        items: Iterable[Any] | Feed,
        options: RunOptions,
        collector: StatisticsCollector,
        ordered: bool,
        total: int | None,
        progress: Any,
        job_record: Callable[[int, int], Callable[[BatchResult], None] | None] | None = None,
    ) -> None:
        self.backend = backend
        self.job_record = job_record
        self.spec = spec
        self.options = options
        self.collector = collector
        self.ordered = ordered
        self.total = total
        self.progress = progress
        chunksize = options.chunksize
        if options.timeout is not None:
            # A timeout is per task: one task per batch keeps it exact.
            chunksize = 1
        target = backend.target_batch_seconds or (
            IN_PROCESS_TARGET_SECONDS if backend.in_process else TARGET_BATCH_SECONDS
        )
        self.workers = backend.max_workers
        self.retries = Retries(options.retry)
        # Where a batch is costly to start (a cluster job), the fair-share cap keeps
        # at least half the target in each batch, so a run ends in a few big batches.
        floor = target / 2 if backend.target_batch_seconds else MIN_BATCH_SECONDS
        self.sizer = BatchSizer(self.workers, total, chunksize, target, floor, _estimate(spec, backend))
        # A range, list, tuple or NumPy array is cut by slicing: a slice of a
        # range pickles as three numbers and a slice of an array as one buffer,
        # where a list of its items would pickle item by item (a row of an
        # array each carrying its own header).
        self.sequence: Any = items if sliceable(items) else None
        # A parameter space in keyword mode travels as tuples of values plus its
        # keys once per batch: far cheaper to build and pickle than a mapping
        # per point. Results get the points back, lazily, as KeyedItems.
        self.keys: tuple[str, ...] | None = None
        self.feed: Feed | None = items if isinstance(items, Feed) else None
        self.it: Iterator[Any]
        if self.feed is not None:
            self.it = iter(())
        elif spec.call == "kwargs" and hasattr(items, "iter_values") and hasattr(items, "keys"):
            self.it = items.iter_values()  # a sample-only space raises here
            self.keys = tuple(items.keys)
            # A grid's batches are ranges of its points (see GridPoints): the
            # axes and two numbers travel, not a tuple per point.
            if isinstance(items, ParamSpace):
                self.sequence = GridPoints(tuple(items.axes[k] for k in self.keys))
        else:
            self.it = iter(items)  # type: ignore[arg-type]  # a Feed was handled above
        self.window = window_for(self.workers)
        self.done: queue.SimpleQueue[tuple[Slot, Future[BatchResult]]] = queue.SimpleQueue()
        self.active: set[Slot] = set()
        self.quarantine: deque[Slot] = deque()
        self.buffered = InOrder()
        self.raise_first = options.on_error == "raise"
        self.next_index = 0
        self.exhausted = False
        self.input_error: tuple[Exception, int] | None = None
        self.fixed = spec.fixed or {}

    # -- submission ------------------------------------------------------------------

    def outstanding(self) -> int:
        return len(self.active) + len(self.quarantine) + len(self.buffered) + len(self.retries)

    def outstanding_items(self) -> int:
        return sum(len(s.items) for s in self.active) + self.buffered.held_values()

    def fill(self) -> None:
        """Submit new batches while the window has room and no batch is quarantined."""
        # Until a first batch has been measured, send one batch per worker: the
        # window filled with single-task probes would cost a round trip each.
        window = self.window if self.sizer.calibrated else self.workers
        item_cap = self.sizer.outstanding_cap
        # Results waiting behind a slow batch (ordered mode) do not count
        # against the window, so workers stay busy; they are capped apart.
        while (
            not self.exhausted
            and not self.quarantine
            and len(self.active) < window
            and len(self.buffered) < 2 * window
            and (self.outstanding() == 0 or self.outstanding_items() < item_cap)
        ):
            remaining = self.total - self.next_index if self.total is not None else None
            n = self.sizer.next_size(remaining)
            if self.feed is not None:
                # Submitted calls of any duration share one estimate: never put
                # more than a worker's share of what waits into one batch.
                n = min(n, max(1, -(-self.feed.waiting() // self.workers)))
                chunk, finished = self.feed.take(n)
                if not chunk:
                    self.exhausted = finished
                    return
            elif self.sequence is not None:
                chunk = self.sequence[self.next_index : self.next_index + n]
            else:
                chunk = self.read(n)
            if not len(chunk):
                self.exhausted = True
                return
            slot = Slot(first=self.next_index, items=chunk)
            self.next_index += len(chunk)
            self.collector.submitted(len(chunk))
            self.submit(slot)
            if len(chunk) < n and self.total is None and self.feed is None:
                self.exhausted = True  # islice came up short: the input is exhausted
            if self.input_error is not None:
                return

    def read(self, n: int) -> list[Any]:
        """Up to ``n`` items from the input; if it raises, what came before and the error.

        Items read before the input's own error are run and delivered like any
        other; the error is raised after them (see ``raise_input_error``).
        """
        chunk: list[Any] = []
        try:
            chunk.extend(islice(self.it, n))
        except Exception as exc:  # the caller's iterable failed: keep what it gave
            self.input_error = (exc, self.next_index + len(chunk))
            self.exhausted = True
        return chunk

    def raise_input_error(self) -> None:
        """Raise the input's own error, once every earlier item is delivered."""
        if self.input_error is None:
            return
        exc, position = self.input_error
        self.input_error = None
        note = (
            f"raised by the input iterable while parallelize read item {position}; "
            f"the results of the {position} items before it were delivered"
        )
        add_note(exc, note)
        raise exc

    def submit(self, slot: Slot) -> None:
        batch = Batch(
            func=self.spec.func,
            call="keyed" if self.keys is not None else self.spec.call,
            keys=self.keys or (),
            setup_token=self.spec.setup_token,
            items=slot.items,
            first=slot.first,
            fixed=self.fixed,
            stop_on_error=self.raise_first,
            retry=self.retries.policy,
            attempt=slot.attempt,
            timeout=self.options.timeout,
            timing_group=self.sizer.timing_group,
            record=self.job_record(slot.first, len(slot.items)) if self.job_record is not None else None,
        )
        try:
            future = self.backend.submit(run_batch, batch)
        except Exception as exc:  # e.g. pickling checked at submission by some backends
            future = Future()
            future.set_exception(exc)
        slot.future = future
        slot.started = None
        self.active.add(slot)
        future.add_done_callback(functools.partial(self._finished, slot))

    def _finished(self, slot: Slot, future: Future[BatchResult]) -> None:
        # Runs in whichever thread completed the future: only hand it over.
        self.done.put((slot, future))

    def release_quarantine(self) -> None:
        """Run the next quarantined batch, alone, once nothing else runs."""
        if self.quarantine and not self.active:
            self.submit(self.quarantine.popleft())

    def release_retries(self) -> None:
        """Send the slots whose retry wait is over (alone, through quarantine, after a crash)."""
        for slot, alone in self.retries.due():
            if alone:
                self.quarantine.appendleft(slot)
            else:
                self.submit(slot)

    # -- waiting -----------------------------------------------------------------------

    def wait(self) -> tuple[Slot, Future[BatchResult]] | None:
        """The next finished future, or ``None`` when a deadline check, a retry or a fill is due."""
        limit = DEADLINE_POLL_SECONDS if self.options.timeout is not None else math.inf
        due = self.retries.next_due()
        if due is not None:
            limit = min(limit, max(due - time.monotonic(), 0.0))
        if limit == math.inf:
            got = self.done.get()
        else:
            try:
                got = self.done.get(timeout=limit)
            except queue.Empty:
                return None
        if got is INTERRUPT:
            raise KeyboardInterrupt("the run was interrupted while the caller waited for it")
        if got is WAKE:
            return None
        return got

    def check_deadlines(self) -> list[BatchResult]:
        """Fail batches whose task outlived the timeout; returns their results.

        The clock of a batch starts when its worker really starts it (the
        backend marks its future running then), never while it waits in a queue.
        """
        timeout = self.options.timeout
        assert timeout is not None
        now = time.monotonic()
        limit = timeout + KILL_GRACE_SECONDS if self.backend.can_kill else timeout
        expired: list[Slot] = []
        for slot in self.active:
            fut = slot.future
            assert fut is not None
            if slot.started is None:
                if fut.running() or fut.done():
                    slot.started = now
                continue
            if not fut.done() and now - slot.started > limit:
                expired.append(slot)
        out = []
        for slot in expired:
            self.active.discard(slot)
            future, slot.future = slot.future, None
            assert future is not None
            killed = self.backend.kill(future)
            if not killed:
                self.backend.abandon(future)
            how = (
                "its worker was killed and replaced; the other tasks were not touched"
                if killed
                else "the thread running it cannot be killed and was abandoned; it runs on in the background"
            )
            exc = TaskTimeoutError(
                f"task {slot.first} with arguments {short_repr(self.inputs(slot)[0])} ran longer than "
                f"timeout={timeout} s; {how}"
            )
            logs.logger.warning("a task timed out on attempt %d (%s)", slot.attempt, logs.brief_error(exc))
            if self.retries.again(slot, exc):
                continue
            out += self.retries.settle(slot, failed_batch(exc, self.inputs(slot), slot.first, attempts=slot.attempt))
        return out

    # -- completion --------------------------------------------------------------------

    def complete(self, slot: Slot, future: Future[BatchResult]) -> list[BatchResult]:
        """Turn a finished future into the results it completes (none if its batch was requeued)."""
        result = self._outcome(slot, future)
        return [] if result is None else self.retries.settle(slot, result)

    def _outcome(self, slot: Slot, future: Future[BatchResult]) -> BatchResult | None:
        if slot not in self.active or slot.future is not future:
            return None  # a stale future of a batch already resubmitted or abandoned
        self.active.discard(slot)
        # slot -> future -> done callback -> slot is a reference cycle: break it
        # now, or every finished batch (inputs and results) waits for the
        # cyclic garbage collector, and a long stream's memory grows with it.
        slot.future = None
        try:
            result = future.result()
        except CancelledError as exc:
            # Cancelled from outside (a cluster shutting down): report, never stall.
            return failed_batch(exc, self.inputs(slot), slot.first)
        except TaskLostError as exc:
            # Killed on purpose by someone else on this runner (another map's
            # interrupt): not this batch's doing, so run it again.
            logs.logger.info("%s run again: %s", logs.tasks(slot.first, len(slot.items)), exc)
            self.submit(slot)
            return None
        except BaseException as exc:  # noqa: BLE001 - backends deliver every failure as an exception
            return self.lost(slot, exc)
        result.items = self.inputs(slot)
        if result.retried or result.failures:  # rare: what the worker retried or timed out, for the log
            self.log_worker_events(result)
        return result

    def log_worker_events(self, result: BatchResult) -> None:
        """Log the retries a worker made at once and the timeouts it enforced (the parent saw neither)."""
        if result.retried:
            logs.logger.warning(
                "%s: %d failed attempt(s) retried at once in worker %s (retries without backoff run where "
                "they failed and their errors stay there; give backoff= to have each one logged)",
                logs.tasks(result.first, len(result.values)),
                result.retried,
                result.worker,
            )
        for k in result.failures:
            failure = result.values[k]
            if isinstance(failure.exception, TaskTimeoutError):
                logs.logger.warning(
                    "task %d with arguments %s timed out on attempt %d (%s)",
                    failure.index,
                    logs.brief_text(failure.arguments),
                    failure.attempts,
                    logs.brief_error(failure.exception),
                )

    def inputs(self, slot: Slot) -> Any:
        """The slot's inputs as the caller gave them (points, for a keyed space)."""
        return KeyedItems(self.keys, slot.items) if self.keys is not None else slot.items

    def lost(self, slot: Slot, exc: BaseException) -> BatchResult | None:
        """A batch came back with no results at all: isolate the cause."""
        if isinstance(exc, WorkerInitError):
            raise exc  # no task can run: stop whatever the policy
        if isinstance(exc, JobCancelledError):
            # Cancelled on purpose by someone: no culprit to look for.
            if self.retries.again(slot, exc):
                return None
            return failed_batch(exc, self.inputs(slot), slot.first, attempts=slot.attempt)
        crash = is_crash(exc)
        pickling = is_pickling(exc)
        if not (crash or pickling):
            err = batch_error(exc, self.inputs(slot), slot.first)
            return failed_batch(err, self.inputs(slot), slot.first)
        if crash and not slot.quarantined:
            logs.logger.warning(
                "a worker crashed under %s (%s); rerunning alone to find the task at fault",
                logs.tasks(slot.first, len(slot.items)),
                logs.brief_error(exc),
            )
        if len(slot.items) > 1:
            # Which task is guilty is unknown: halve the batch and try both halves alone.
            half = len(slot.items) // 2
            a = Slot(first=slot.first, items=slot.items[:half], quarantined=True)
            b = Slot(first=slot.first + half, items=slot.items[half:], quarantined=True)
            if crash and not slot.quarantined:
                # Lost alongside others: it may be innocent. Rerun whole, alone, first.
                slot.quarantined = True
                self.quarantine.appendleft(slot)
            else:
                self.quarantine.extendleft([b, a])
            return None
        if crash and not slot.quarantined:
            slot.quarantined = True
            self.quarantine.appendleft(slot)
            return None
        # One task, and (for crashes) it ran alone: it is certainly the culprit.
        err = batch_error(exc, self.inputs(slot), slot.first)
        if crash and self.retries.again(slot, err, quarantine=True):
            return None
        return failed_batch(err, self.inputs(slot), slot.first, attempts=slot.attempt)

    def account(self, result: BatchResult) -> None:
        n_run = len(result.values)
        n_failed = len(result.failures)
        items = result.items if result.items is not None else result.values
        self.collector.finished(
            n_run - n_failed,
            n_failed,
            result.durations,
            result.worker,
            retried=result.retried,
            abandoned=len(items) - n_run,
            summary=result.summary,
        )
        if result.worker:
            # The tasks' own time: the batch's elapsed time also holds set-up
            # and unpickling, which made a first one-task probe look 30x slow.
            busy = result.summary[0] if result.summary is not None else result.elapsed
            self.sizer.observe(n_run, busy)
        if self.progress is not None:
            self.progress.update(n_run)

    def deliver(self, result: BatchResult) -> Iterator[BatchResult]:
        """Apply the error policy and the ordering; yields what may go out now."""
        self.account(result)
        if result.failures and self.raise_first:
            raise_failure(result.values[result.failures[0]])
        if not self.ordered:
            yield result
            return
        yield from self.buffered.add(result)

    def cancel(self, kill: bool) -> None:
        """Cancel what has not started; on Ctrl-C also stop what is running."""
        slots = list(self.active) + list(self.quarantine)
        waiting = self.retries.waiting()
        held = {id(s.owner): s.owner for s in slots + waiting if s.owner is not None}
        for slot in slots + waiting:
            if slot.owner is None:
                self.collector.finished(0, 0, (), "", abandoned=len(slot.items))
        for h in held.values():  # computed, but never delivered
            self.collector.finished(0, 0, (), "", abandoned=len(h.result.values))
        self.active.clear()
        self.quarantine.clear()
        self.retries.clear()
        self.collector.close()
        if kill and self.backend.can_kill and slots:
            # Killing fails every pending future from the executor's side;
            # cancelling them first as well makes loky trip over them.
            self.backend.kill_workers()
            return
        for slot in slots:
            if slot.future is not None:
                slot.future.cancel()


def dispatch(
    backend: Backend,
    spec: TaskSpec,
    items: Iterable[Any] | Feed,
    options: RunOptions,
    collector: StatisticsCollector,
    *,
    ordered: bool = True,
    total: int | None = None,
    progress: Any = None,
    control: Control | None = None,
    job_record: Callable[[int, int], Callable[[BatchResult], None] | None] | None = None,
) -> Iterator[BatchResult]:
    """Run ``spec`` over ``items`` and yield one ``BatchResult`` per batch.

    Args:
        backend: where batches run.
        spec: the function and how to call it.
        items: the inputs, pulled lazily; or a ``Feed`` that callers add to.
        options: the run's options (policy, retries, timeout, chunksize...).
        collector: receives statistics.
        ordered: yield batches in input order (else as they complete).
        total: number of items if known.
        progress: an object with ``update(n)`` (a tqdm bar) or ``None``.
        control: lets another thread interrupt the dispatch, or ``None``.
        job_record: ``job_record(first, count)`` gives the recorder a batch
            carries to its worker (``record``),
            for backends whose jobs may outlive this process; ``None``: none.

    Yields:
        Batch results; failed tasks appear as ``TaskFailure`` entries.

    Raises:
        Exception: under ``on_error="raise"``, the first task's error, as its own type.
    """
    engine = _Engine(backend, spec, items, options, collector, ordered, total, progress, job_record)
    if control is not None:
        control.attach(engine)
    if engine.feed is not None:
        engine.feed.attach(engine)
    interrupted = False
    try:
        while True:
            engine.release_retries()
            engine.fill()
            engine.release_quarantine()
            if not engine.active and not engine.quarantine and not engine.retries:
                # Nothing running: what is buffered waits for nothing, so the
                # input must be exhausted (fill() submits whenever it is not).
                if engine.buffered:  # pragma: no cover - ordering invariant
                    raise AssertionError(f"results stuck behind task {engine.buffered.next_first}")
                if engine.exhausted:
                    engine.raise_input_error()
                    return
                if engine.feed is None:
                    continue
                # A feed with nothing waiting: sleep until it wakes us.
            got = engine.wait()
            if got is None:
                if options.timeout is not None:
                    for result in engine.check_deadlines():
                        yield from engine.deliver(result)
                continue
            for finished in engine.complete(*got):
                yield from engine.deliver(finished)
                # Not kept while waiting for the next one: a result (or an error
                # and its frames) must not outlive its delivery by an idle engine.
                del finished
            got = None
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        engine.cancel(kill=interrupted)
        _remember(spec, backend, engine.sizer.per_task)
