"""multiprocessing_lib's API: ``mp_lock``, ``mp_lock_values`` and ``is_completed``.

The original package's own spellings are here too: ``mp_lock_value`` (the name
its code used for ``mp_lock_values``), ``is_mp_lock_completed`` and ``verbose=``.

A thin layer over the runner's public batch interface (``run_batches``) and a
``Checkpoint`` that records only completion and
calls ``save_callback`` before recording::

    data_list ──> checkpoint: done already? ──yes──> skipped (mp_lock_values: stored value)
                        │ no
                        v
    workers: process(item, shared_data, init_values)      init_function(shared_data)
                        │ batches sized by the engine      runs once per worker
                        v
    parent thread: results grouped save_batch at a time, in completion order
                        │
                        v
    save_callback(out_path/data, results, names)   one group at a time
                        │ returned
                        v
    out_path/checkpoint: group recorded (fsync) ──> now it counts as done

Unlike the original, a rerun keeps the input order and duplicate items (tasks
are identified by position), an item counts as done only once its batch was
saved, so a crash never loses a computed-but-unsaved result silently (it is
computed again), and one failing item does not stop the others: failures are
reported, not recorded, so a rerun retries them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .backends import BackendName
from .checkpoint import STORED_WORKER, Checkpoint
from .errors import ConfigError
from .runner import Parallelize
from .validate import check_callable, check_int
from .worker.failure import TaskFailure
from .worker.mp_task import ProcessItem, no_init

__all__ = [
    "MpLockReport",
    "end_workers",
    "is_completed",
    "is_mp_lock_completed",
    "mp_lock",
    "mp_lock_value",
    "mp_lock_values",
]

#: Sub-folder of ``out_path`` holding the record of finished items.
CHECKPOINT_FOLDER = "checkpoint"
#: ``save_callback`` receives ``out_path/DATA_PREFIX``: a path without extension.
DATA_PREFIX = "data"


@dataclass(frozen=True)
class MpLockReport:
    """What an ``mp_lock`` call did.

    Attributes:
        computed: items processed and saved by this call.
        resumed: items found already done in ``out_path`` and skipped.
        failures: the items whose ``process`` raised, as
            ``TaskFailure`` (``.index`` is the item's position,
            ``.exception`` the error). They were not saved nor recorded as done,
            so a rerun on the same ``out_path`` tries them again.
    """

    computed: int
    resumed: int
    failures: tuple[TaskFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every item is done."""
        return not self.failures


# The worker processes kept across mp_lock calls (process backend): the
# original's tests call mp_lock 63 times on 10 items each, and starting the
# workers again each time made them 35x slower than the original (its workers
# are forks of the caller, which has everything imported). One call at a time uses it; a call
# made while another runs gets processes of its own. Ended at exit.
_shared_pool: Any = None
_shared_lock = threading.Lock()


@contextlib.contextmanager
def _worker_pool(backend: str) -> Iterator[dict[str, Any]]:
    """The backend options that lend this call the kept pool, if it is free."""
    global _shared_pool
    if backend != "process" or not _shared_lock.acquire(blocking=False):
        yield {}
        return
    try:
        if _shared_pool is None or not _shared_pool.idle():
            from .backends.pool import ProcessPool
            from .backends.process import IDLE_WORKER_TIMEOUT

            _shared_pool = ProcessPool(1, idle_timeout=IDLE_WORKER_TIMEOUT)
        yield {"pool": _shared_pool}
    finally:
        _shared_lock.release()


def end_workers() -> None:
    """End the worker processes ``mp_lock`` keeps between calls (process backend).

    They end by themselves after 300 s without work, and when the program exits;
    the next call starts new ones.
    """
    global _shared_pool
    with _shared_lock:
        pool, _shared_pool = _shared_pool, None
    if pool is not None:
        pool.shutdown(wait=True)


def _check_data_list(data_list: Any) -> None:
    if isinstance(data_list, (str, bytes)):
        raise ConfigError(
            f"data_list must be a list (or another iterable) of items, got the string {data_list!r:.60}, "
            "which would run once per character; pass [data_list] for one item"
        )


def _check_out_path(out_path: Any) -> None:
    if not isinstance(out_path, (str, os.PathLike)):
        raise ConfigError(f"out_path must be a folder path (str or os.PathLike), got {out_path!r}")
    if not os.fspath(out_path):
        raise ConfigError(
            "out_path is empty; give the folder to keep the record of finished items and the saved data in "
            "(it is created if needed), e.g. out_path='output'"
        )


def _progress(progress: bool, verbose: bool | None) -> bool:
    """``verbose=`` is the original's spelling of ``progress=``."""
    if verbose is None:
        return progress
    if not isinstance(verbose, bool):
        raise ConfigError(f"verbose must be True or False, got {verbose!r}")
    if progress and not verbose:
        raise ConfigError("progress=True and verbose=False disagree; verbose= is another name for progress=, give one")
    return verbose


def _check(
    data_list: Any, process: Any, save_callback: Any, out_path: Any, save_batch: Any, init_function: Any
) -> None:
    _check_data_list(data_list)
    check_callable("process", process, signature="process(item, shared_data, init_values)")
    check_callable("save_callback", save_callback, signature="save_callback(path, results, names)", allow_none=True)
    check_callable("init_function", init_function, signature="init_function(shared_data)", allow_none=True)
    _check_out_path(out_path)
    check_int("save_batch", save_batch, minimum=1)


def _run(
    data_list: Iterable[Any],
    process: Callable[..., Any],
    save_callback: Callable[[str, list[Any], list[Any]], Any] | None,
    num_procs: int,
    out_path: str | os.PathLike[str],
    save_batch: int,
    shared_data: Any,
    init_function: Callable[[Any], Any] | None,
    *,
    keep_values: bool,
    backend: BackendName,
    allow_pickle: bool,
    progress: bool,
) -> tuple[MpLockReport, list[Any]]:
    _check(data_list, process, save_callback, out_path, save_batch, init_function)
    folder = Path(out_path)
    folder.mkdir(parents=True, exist_ok=True)
    data_path = str(folder / DATA_PREFIX)

    def commit(positions: list[int], names: list[Any], results: list[Any]) -> None:
        # Called in this thread, one batch at a time, before the batch is recorded.
        if save_callback is not None:
            save_callback(data_path, list(results), list(names))

    checkpoint = Checkpoint(
        folder / CHECKPOINT_FOLDER,
        allow_pickle=allow_pickle,
        store_values=keep_values,
        before_record=commit,
        record_every=save_batch,
    )

    values: dict[int, Any] = {}
    failures: list[TaskFailure] = []
    computed = resumed = 0
    with (
        _worker_pool(backend) as options,
        Parallelize(
            num_procs,
            backend=backend,
            on_error="collect",
            progress=progress,
            initializer=init_function or no_init,
            shared_data={} if shared_data is None else shared_data,
            **options,
        ) as runner,
    ):
        stream = runner.run_batches(ProcessItem(process), data_list, call="arg", ordered=False, checkpoint=checkpoint)
        for result in stream.batches():
            failed = set(result.failures)
            stored = result.worker == STORED_WORKER
            for k, value in enumerate(result.values):
                if k in failed:
                    failures.append(value)
                elif stored:
                    resumed += 1
                else:
                    computed += 1
                if keep_values:
                    values[result.first + k] = value
    if failures:
        failures.sort(key=lambda f: f.index)
        shown = "; ".join(f"item {f.index}: {f.describe()}" for f in failures[:3])
        warnings.warn(
            f"{len(failures)} item(s) failed and were not saved ({shown}); "
            f"run again with the same out_path to retry only those",
            RuntimeWarning,
            stacklevel=3,
        )
    ordered = [values[i] for i in range(len(values))] if keep_values else []
    return MpLockReport(computed, resumed, tuple(failures)), ordered


def mp_lock(
    data_list: Iterable[Any],
    process: Callable[..., Any],
    save_callback: Callable[[str, list[Any], list[Any]], Any] | None,
    num_procs: int,
    out_path: str | os.PathLike[str],
    save_batch: int = 10,
    shared_data: Any = None,
    init_function: Callable[[Any], Any] | None = None,
    *,
    backend: BackendName = "process",
    progress: bool = False,
    verbose: bool | None = None,
) -> MpLockReport:
    """Process every item in parallel, saving results in batches; resumable.

    A rerun with the same ``out_path`` processes only the items not done yet.
    Items are identified by their position and content, so duplicates are
    processed once per occurrence and a changed ``data_list`` is reported
    rather than mixed with old results.

    Args:
        data_list: the items (any picklable values; a generator is fine).
        process: ``process(item, shared_data, init_values)``, run in a worker; its
            return value is a result.
        save_callback: ``save_callback(path, results, names)`` or ``None``. Called in
            the calling process, never two at once, with each group of
            ``save_batch`` results (the last group smaller; failed items left
            out); ``path`` is ``out_path/data`` without extension; ``names`` are
            the group's items. An item counts as done only after its group's
            call returned.
        num_procs: number of worker processes.
        out_path: a folder; created if needed. The record of finished items is
            kept in ``out_path/checkpoint`` (no results are stored there).
        save_batch: results per ``save_callback`` call (default 10): saving
            and recording happen in groups of this many (the last one smaller).
            It does not change how the items are spread over the workers.
        shared_data: read-only data passed to every call of ``process`` and to
            ``init_function``; shipped once per worker. Default: ``{}``.
        init_function: ``init_function(shared_data)``, run once per worker; its
            return value is ``init_values`` (for models that cannot be pickled).
            Default: ``init_values`` is ``{}``.
        backend: ``"process"`` (default, as the original) or another backend name.
        progress: show a progress bar (default False).
        verbose: the original's name for ``progress`` (there it defaulted to
            True; here, as ``progress``, to quiet).

    Returns:
        An ``MpLockReport``; failed items are in ``.failures`` (and a
        ``RuntimeWarning`` names them) and are retried by a rerun.

    Raises:
        ConfigError: a bad argument.
        ResumeMismatchError: ``out_path`` records other items at some positions.
        Exception: whatever ``save_callback`` raises (that batch is not done).
    """
    report, _ = _run(
        data_list,
        process,
        save_callback,
        num_procs,
        out_path,
        save_batch,
        shared_data,
        init_function,
        keep_values=False,
        backend=backend,
        allow_pickle=False,
        progress=_progress(progress, verbose),
    )
    return report


def mp_lock_values(
    data_list: Iterable[Any],
    process: Callable[..., Any],
    save_callback: Callable[[str, list[Any], list[Any]], Any] | None,
    num_procs: int,
    out_path: str | os.PathLike[str],
    save_batch: int = 10,
    shared_data: Any = None,
    init_function: Callable[[Any], Any] | None = None,
    *,
    backend: BackendName = "process",
    progress: bool = False,
    allow_pickle: bool = False,
    verbose: bool | None = None,
) -> list[Any]:
    """Like ``mp_lock``, and return the results in input order.

    Results are also recorded in ``out_path/checkpoint`` (as JSON when they are
    plain data, else pickled), so a rerun on the same ``out_path`` returns them
    without recomputing. Items recorded by ``mp_lock`` (which keeps no
    results) are computed again.

    Args:
        data_list: the items.
        process: ``process(item, shared_data, init_values)``.
        save_callback: as for ``mp_lock``, or ``None``.
        num_procs: number of worker processes.
        out_path: a folder; created if needed.
        save_batch: results per ``save_callback`` call (default 10): saving
            and recording happen in groups of this many (the last one smaller).
            It does not change how the items are spread over the workers.
        shared_data: read-only data for ``process`` and ``init_function``.
        init_function: ``init_function(shared_data)``, once per worker.
        backend: ``"process"`` (default) or another backend name.
        progress: show a progress bar (default False).
        verbose: the original's name for ``progress``.
        allow_pickle: load results that were pickled by an earlier run (needed
            to resume when results are not plain data). Loading a pickle can run
            code: only allow it for folders you wrote. Default False.

    Returns:
        One entry per item, in input order: the result, or the
        ``TaskFailure`` of an item whose ``process`` raised
        (a ``RuntimeWarning`` names them; a rerun retries them).

    Raises:
        ConfigError: a bad argument, or pickled results without ``allow_pickle``.
        ResumeMismatchError: ``out_path`` records other items at some positions.
    """
    _, values = _run(
        data_list,
        process,
        save_callback,
        num_procs,
        out_path,
        save_batch,
        shared_data,
        init_function,
        keep_values=True,
        backend=backend,
        allow_pickle=allow_pickle,
        progress=_progress(progress, verbose),
    )
    return values


#: The original package's code called ``mp_lock_values`` this (its README said ``mp_lock_values``).
mp_lock_value = mp_lock_values


def is_completed(data_list: Iterable[Any], out_path: str | os.PathLike[str]) -> bool:
    """Whether every item of ``data_list`` is recorded as done in ``out_path``.

    Args:
        data_list: the items, as given to ``mp_lock``.
        out_path: the folder given to ``mp_lock``.

    Returns:
        True if a rerun would process nothing.

    Raises:
        ResumeMismatchError: ``out_path`` records other items at some positions.
    """
    _check_data_list(data_list)
    _check_out_path(out_path)
    return Checkpoint(Path(out_path) / CHECKPOINT_FOLDER).is_completed(data_list)


#: The original package's name for ``is_completed``.
is_mp_lock_completed = is_completed
