"""The streaming engine under every entry point: batches in, results out.

::

    input iterator ──islice──> Batch ──backend.submit──> Future ──done──> done queue
         ^ pulled only while fewer than `window` batches are                 │
         │ outstanding, so memory is bounded for any input size              v
    caller <── BatchResult (in input order, or as completed) <── policy, stats

``dispatch`` is a generator run in the consumer's thread (``map``) or in a
background thread (``run`` and ``ModelEvaluator``). Futures signal completion by
putting their sequence number in a ``SimpleQueue`` from their done callback, so
the engine sleeps in one blocking ``get`` rather than polling. Error policy,
batch sizing, statistics and progress are applied here, once per batch.
"""

from __future__ import annotations

import pickle
import queue
from concurrent.futures import BrokenExecutor, CancelledError, Future
from dataclasses import dataclass
from itertools import islice
from typing import Any, Iterable, Iterator

from .backends.base import Backend
from .batching import BatchSizer
from .errors import PicklingError, WorkerCrashedError
from .options import RunOptions
from .statistics import StatisticsCollector
from .task import Batch, BatchResult, FunctionHandle, RemoteTraceback, TaskFailure, WorkerSetup, run_batch

__all__ = ["TaskSpec", "dispatch", "raise_failure", "window_for"]


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
        call: ``"arg"``, ``"star"`` or ``"kwargs"`` (see :data:`~parallelize.task.CALL_MODES`).
        fixed: keyword arguments added to every call.
        setup: per-worker initialisation, or ``None``.
    """

    func: FunctionHandle
    call: str = "arg"
    fixed: dict[str, Any] | None = None
    setup: WorkerSetup | None = None


def raise_failure(failure: TaskFailure) -> None:
    """Re-raise a task's exception in the caller, as its own type.

    The worker's traceback becomes ``__cause__`` and a note names the task and
    its arguments.
    """
    exc = failure.exception
    if failure.traceback and not isinstance(exc.__cause__, RemoteTraceback):
        exc.__cause__ = RemoteTraceback(failure.traceback)
    note = f"in parallelize task {failure.index} with arguments {failure.arguments}"
    if hasattr(exc, "add_note") and note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)
    raise exc


def _batch_error(exc: BaseException, items: list[Any], first: int) -> BaseException:
    """Translate an error that lost a whole batch into one of ours."""
    span = f"tasks {first}..{first + len(items) - 1}" if len(items) > 1 else f"task {first}"
    if isinstance(exc, BrokenExecutor) and not isinstance(exc, WorkerCrashedError):
        text = str(exc) or type(exc).__name__
        err: BaseException = WorkerCrashedError(
            f"a worker died while running {span}: {text}. The likely causes are a crash in "
            "native code, os._exit(), a kill signal, or the out-of-memory killer (check memory "
            "use); use retries=N to rerun such tasks on a fresh worker"
        )
    elif isinstance(exc, (pickle.PicklingError, AttributeError, TypeError)) and "pickl" in str(exc).lower():
        err = PicklingError(
            f"could not send {span} to or from a worker: {exc}. Arguments, results and the "
            "function must be picklable on the process backend; the thread backend needs no pickling"
        )
    else:
        return exc
    err.__cause__ = exc
    return err


def _failed_batch(exc: BaseException, items: list[Any], first: int, seq: int) -> BatchResult:
    from array import array

    from .task import _short_repr

    values: list[Any] = [
        TaskFailure(index=first + i, exception=exc, arguments=_short_repr(item)) for i, item in enumerate(items)
    ]
    return BatchResult(
        first=first,
        values=values,
        durations=array("d"),
        failures=list(range(len(items))),
        worker="",
        elapsed=0.0,
        seq=seq,
        items=items,
    )


def dispatch(
    backend: Backend,
    spec: TaskSpec,
    items: Iterable[Any],
    options: RunOptions,
    collector: StatisticsCollector,
    *,
    ordered: bool = True,
    total: int | None = None,
    progress: Any = None,
) -> Iterator[BatchResult]:
    """Run ``spec`` over ``items`` and yield one :class:`BatchResult` per batch.

    Args:
        backend: where batches run.
        spec: the function and how to call it.
        items: the inputs; pulled lazily.
        options: the run's options (policy, retries, chunksize...).
        collector: receives statistics.
        ordered: yield batches in input order (else as they complete).
        total: number of items if known.
        progress: an object with ``update(n)`` (a tqdm bar) or ``None``.

    Yields:
        Batch results; failed tasks appear as :class:`TaskFailure` entries.

    Raises:
        Exception: under ``on_error="raise"``, the first task's error, as its own type.
    """
    it = iter(items)
    sizer = BatchSizer(options.max_workers, total, options.chunksize)
    window = window_for(options.max_workers)
    done: queue.SimpleQueue[int] = queue.SimpleQueue()
    inflight: dict[int, tuple[Future[BatchResult], list[Any], int]] = {}
    buffered: dict[int, BatchResult] = {}
    raise_first = options.on_error == "raise"
    next_index = 0
    next_seq = 0
    yield_seq = 0
    exhausted = False
    interrupted = False
    fixed = spec.fixed or {}
    try:
        while True:
            while not exhausted and len(inflight) + len(buffered) < window:
                remaining = total - next_index if total is not None else None
                n = sizer.next_size(remaining)
                chunk = list(islice(it, n))
                if not chunk:
                    exhausted = True
                    break
                batch = Batch(
                    func=spec.func,
                    call=spec.call,
                    items=chunk,
                    first=next_index,
                    fixed=fixed,
                    setup=spec.setup,
                    stop_on_error=raise_first,
                    retries=options.retries,
                    retry_on=options.retry_on,
                    backoff=options.backoff,
                    seq=next_seq,
                )
                try:
                    future = backend.submit(run_batch, batch)
                except Exception as exc:
                    err = _batch_error(exc, chunk, next_index)
                    if raise_first:
                        raise err from exc
                    future = Future()
                    future.set_exception(err)
                collector.submitted(len(chunk))
                inflight[next_seq] = (future, chunk, next_index)
                future.add_done_callback(lambda _f, s=next_seq: done.put(s))
                next_index += len(chunk)
                next_seq += 1
                if len(chunk) < n and total is None:
                    # islice came up short: the input is exhausted.
                    exhausted = True
            if ordered and yield_seq in buffered:
                yield buffered.pop(yield_seq)
                yield_seq += 1
                continue
            if not inflight:
                if buffered:  # pragma: no cover - ordered bookkeeping invariant
                    raise AssertionError(f"results stuck behind batch {yield_seq}")
                return
            seq = done.get()
            future, chunk, first = inflight.pop(seq)
            try:
                result = future.result()
                result.seq = seq
                result.items = chunk
            except CancelledError:
                collector.finished(0, 0, (), "", abandoned=len(chunk))
                continue
            except Exception as exc:
                err = _batch_error(exc, chunk, first)
                if raise_first:
                    collector.finished(0, len(chunk), (), "")
                    raise err from (exc if err is not exc else None)
                result = _failed_batch(err, chunk, first, seq)
            n_run = len(result.values)
            n_failed = len(result.failures)
            retried = sum(max(result.values[p].attempts - 1, 0) for p in result.failures)
            collector.finished(
                n_run - n_failed, n_failed, result.durations, result.worker,
                retried=retried, abandoned=len(chunk) - n_run,
            )
            sizer.observe(n_run, result.elapsed)
            if progress is not None:
                progress.update(n_run)
            if n_failed and raise_first:
                raise_failure(result.values[result.failures[0]])
            if ordered:
                buffered[seq] = result
            else:
                yield result
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        _cancel(inflight, backend, kill=interrupted, collector=collector)


def _cancel(
    inflight: dict[int, tuple[Future[BatchResult], list[Any], int]],
    backend: Backend,
    *,
    kill: bool,
    collector: StatisticsCollector,
) -> None:
    """Cancel what has not started; on Ctrl-C also stop what is running."""
    running = False
    for future, chunk, _first in inflight.values():
        if not future.cancel() and not future.done():
            running = True
        collector.finished(0, 0, (), "", abandoned=len(chunk))
    inflight.clear()
    collector.close()
    if kill and running and backend.can_kill:
        backend.kill_workers()
