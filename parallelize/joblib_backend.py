"""A joblib backend: ``joblib.Parallel``, and so scikit-learn's ``n_jobs``, on a parallelize runner.

::

    joblib.Parallel ── BatchedCalls ──> ParallelizeBackend.submit ──> runner.submit(_run_joblib_batch, batch)
          ^                                                                  │ concurrent.futures.Future
          └── callback(future): retrieve_result_callback -> future.result() <┘ (the runner's engine)

Every joblib batch (one or more ``delayed`` calls that joblib groups, as it
does for loky) is one call of ``runner.submit``, so the runner's timeout,
retries, statistics and progress bar apply to it, on any of its backends.
Calls made inside a batch run joblib sequentially (``get_nested_backend``), so
a nested ``Parallel`` never starts workers inside a worker.

Use::

    import joblib
    import parallelize

    parallelize.register_joblib_backend()      # once; importing parallelize never imports joblib
    with joblib.parallel_config(backend="parallelize", n_jobs=4, runner_backend="process", progress=True):
        search.fit(X, y)                       # GridSearchCV, cross_val_score, RandomForest(n_jobs=...)
    print(parallelize.joblib_backend.last_runner().statistics())

This module imports joblib (``pip install joblib``, which scikit-learn brings);
it is only imported when asked for.
"""

from __future__ import annotations

import copy
import threading
import weakref
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable

from .backends import available_backends, get_backend_class
from .backends.base import default_workers
from .errors import BackendUnavailableError, ConfigError
from .options import RunOptions
from .validate import check_choice

try:
    import joblib
    from joblib import parallel_config  # noqa: F401 - new in joblib 1.3, the oldest release supported
    from joblib.parallel import AutoBatchingMixin, ParallelBackendBase, SequentialBackend
except ImportError as exc:  # joblib missing, or older than 1.3
    raise BackendUnavailableError(
        "the joblib backend needs joblib 1.3 or newer (scikit-learn brings it): pip install 'joblib>=1.3'"
    ) from exc

if TYPE_CHECKING:
    from .runner import Parallelize

__all__ = [
    "BACKEND_NAME",
    "DEFAULT_RUNNER_BACKEND",
    "ParallelizeBackend",
    "last_runner",
    "register",
    "register_joblib_backend",
]

#: The name ``register`` gives the backend: ``parallel_config(backend="parallelize")``.
BACKEND_NAME = "parallelize"

#: Where a runner made by the backend runs tasks, unless ``runner_backend=`` says otherwise:
#: worker processes, as joblib's own default (loky) does.
DEFAULT_RUNNER_BACKEND = "process"

# Options of Parallelize that have no meaning here, with what to do instead.
_REFUSED = {
    "max_workers": "the number of workers comes from joblib's n_jobs",
    "threads": "the number of workers comes from joblib's n_jobs",
    "workers": "the number of workers comes from joblib's n_jobs",
    "on_error": "joblib stops at the first error and re-raises it (scikit-learn's error_score decides per fit)",
}

# The options a Parallelize hands to its RunOptions, checked when the backend is made.
_RUN_OPTIONS = ("timeout", "retries", "retry_on", "backoff", "max_backoff", "jitter", "progress", "chunksize")

_last_lock = threading.Lock()
_last: Parallelize | None = None


def register() -> None:
    """Make ``joblib.parallel_config(backend="parallelize", ...)`` run joblib on parallelize.

    Idempotent: calling it again registers the same backend again, and changes
    nothing. Also reachable as ``parallelize.register_joblib_backend``.
    """
    joblib.register_parallel_backend(BACKEND_NAME, ParallelizeBackend)


#: ``register`` under the name ``parallelize`` exports it by.
register_joblib_backend = register


def last_runner() -> Parallelize | None:
    """The runner that ran the most recent parallel joblib call of this process, or ``None``.

    Its ``statistics()`` cover every joblib batch that runner ran (one task per
    batch): with the backend's own runner, every call made under one
    ``parallel_config`` block; with ``runner=``, every call made on that runner.
    The runner the backend made itself is shut down when its block ends, and
    its statistics stay readable.
    """
    with _last_lock:
        return _last


def _set_last(runner: Parallelize) -> None:
    global _last
    with _last_lock:
        _last = runner


def _run_joblib_batch(batch: _JoblibBatch) -> Any:
    """Run one joblib batch in a worker (the function every ``runner.submit`` call names)."""
    return batch.calls()


class _JoblibBatch:
    """A joblib batch on its way to a worker, named readably in error messages.

    ``runner.submit`` always names the same function (``_run_joblib_batch``), so
    it is pickled once; the batch travels as its argument.
    """

    __slots__ = ("calls",)

    def __init__(self, calls: Callable[[], Any]) -> None:
        self.calls = calls

    def __reduce__(self) -> tuple[Any, ...]:
        return (_JoblibBatch, (self.calls,))

    def __repr__(self) -> str:
        items = getattr(self.calls, "items", None)
        if not isinstance(items, list) or not items:
            return f"joblib batch {self.calls!r}"
        names = {_name(item[0]) for item in items}
        what = names.pop() if len(names) == 1 else "several functions"
        return f"joblib batch of {len(items)} call{'s' if len(items) != 1 else ''} to {what}"


def _name(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or type(func).__name__)


def _close(runner: Parallelize) -> None:
    """Shut down a runner the backend made (when the backend is released, or at exit)."""
    try:
        runner.shutdown(wait=False, cancel_futures=True)
    except Exception:  # noqa: BLE001 - at exit or in a finalizer nothing can be done about it
        pass


class ParallelizeBackend(AutoBatchingMixin, ParallelBackendBase):
    """joblib's batches on a parallelize runner: ``parallel_config(backend="parallelize", ...)``.

    joblib builds it from the keywords of ``parallel_config`` (after ``register``);
    ``joblib.Parallel(backend=ParallelizeBackend(...))`` takes an instance too.

    Args:
        runner: an existing ``Parallelize`` to run on, used as it is: the
            backend never shuts it down, and its ``max_workers`` caps ``n_jobs``.
            Default ``None``: the backend makes its own runner from the options
            below, with ``n_jobs`` workers, on the first parallel call; keeps it
            for the later calls of the same ``parallel_config`` block (so
            processes start once); makes a new one when a call asks for another
            number of workers; and shuts it down when the block ends (when joblib
            drops the backend) or at exit.
        runner_backend: where that runner runs tasks: ``"process"`` (default,
            as loky), ``"thread"``, ``"dask"``, ``"slurm"``, ``"sge"``, ``"pbs"``
            (see ``parallelize.backends.available_backends``); ``"serial"`` leaves
            the calls to joblib's own sequential loop, as ``n_jobs=1`` does.
            Named apart from joblib's own ``backend=``.
        nesting_level: set by joblib.
        inner_max_num_threads: threads each worker process of a ``"process"``
            runner may give BLAS and OpenMP (set by joblib from
            ``parallel_config(inner_max_num_threads=...)``); default, as loky:
            the CPUs divided by ``n_jobs``, unless the variables are already set
            or ``env=`` is given.
        **runner_options: options of the runner the backend makes, as
            ``Parallelize`` takes them: ``progress=``, ``timeout=`` (seconds per
            joblib batch), ``retries=``, ``retry_on=``, ``backoff=``,
            ``chunksize=``, ``initializer=``, ``shared_data=``, and the chosen
            backend's own (``address=`` for Dask, ``env=`` for processes, ...).

    Raises:
        ConfigError: ``runner`` is not a ``Parallelize``, or is given together
            with runner options; an unknown ``runner_backend``; a bad run option;
            or an option with no meaning here (``max_workers=``, ``on_error=``).
        BackendUnavailableError: the chosen backend's library is not installed.

    ``n_jobs`` means what it means to joblib: ``n_jobs=1`` runs the calls in
    the caller, ``-1`` uses all the workers (the CPUs here, a Dask cluster's
    threads, or the ``runner``'s workers), ``-2`` all but one, and so on;
    ``None`` (not set anywhere) means ``-1``, as for joblib's Dask backend.
    """

    supports_retrieve_callback = True
    supports_return_generator = True
    supports_timeout = True
    supports_inner_max_num_threads = True
    default_n_jobs = -1

    def __init__(
        self,
        runner: Parallelize | None = None,
        *,
        runner_backend: str | None = None,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        **runner_options: Any,
    ) -> None:
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads)
        from .runner import Parallelize

        if runner is not None:
            if not isinstance(runner, Parallelize):
                raise ConfigError(f"runner must be a parallelize.Parallelize, got {runner!r}")
            given = sorted(runner_options) + (["runner_backend"] if runner_backend is not None else [])
            if given:
                raise ConfigError(
                    f"runner= is used as it is, so {given} cannot apply to it; "
                    "set them on the Parallelize you pass, or leave runner= out to let the backend make one"
                )
        for name, instead in _REFUSED.items():
            if name in runner_options:
                raise ConfigError(f"{name}={runner_options[name]!r} has no meaning for the joblib backend: {instead}")
        kind = DEFAULT_RUNNER_BACKEND if runner_backend is None else runner_backend
        check_choice("runner_backend", kind, available_backends())
        run = {k: runner_options[k] for k in _RUN_OPTIONS if k in runner_options}
        if isinstance(run.get("retry_on"), type):
            run["retry_on"] = (run["retry_on"],)
        RunOptions(**run)  # a bad value fails here, when parallel_config is entered
        self._given = runner
        self._kind = kind
        self._options = runner_options
        in_process = runner.backend.in_process if runner is not None else _class_says(kind, "in_process")
        self._inline = runner.backend.runs_inline if runner is not None else _class_says(kind, "runs_inline")
        # Read by joblib: whether tasks share this process's memory (require="sharedmem").
        self.uses_threads = in_process
        self.supports_sharedmem = in_process
        self._lock = threading.Lock()
        self._runner: Parallelize | None = None
        self._runner_default = False
        self._finalizer: weakref.finalize | None = None
        self._default_workers: int | None = None
        self._active: Parallelize | None = None
        self._pending: set[Future[Any]] = set()

    def __repr__(self) -> str:
        where = f"runner={self._given!r}" if self._given is not None else f"runner_backend={self._kind!r}"
        return f"ParallelizeBackend({where})"

    # -- how many workers ------------------------------------------------------------

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """How many batches may run at once for ``n_jobs``, with joblib's meaning of it.

        Raises:
            ConfigError: ``n_jobs=0`` (also a ``ValueError``, as joblib raises).
        """
        if n_jobs is None:
            n_jobs = self.default_n_jobs
        if n_jobs == 0:
            raise ConfigError("n_jobs=0 has no meaning; expected a number of workers, -1 for all, -2 for all but one")
        if n_jobs == 1 or self._inline:
            return 1
        if self._given is not None:
            total = self._given.max_workers
            return min(n_jobs, total) if n_jobs > 0 else max(total + 1 + n_jobs, 1)
        if n_jobs > 0:
            return n_jobs
        return max(self._default_count() + 1 + n_jobs, 1)

    def _default_count(self) -> int:
        """The workers of a runner made without a number (the CPUs here, a cluster's threads)."""
        if self._default_workers is None:
            self._default_workers = self._owned(None).max_workers
        return self._default_workers

    def _owned(self, workers: int | None) -> Parallelize:
        """The backend's own runner with ``workers`` workers (``None``: its default), made when needed."""
        with self._lock:
            runner = self._runner
            if runner is not None and (runner.max_workers == workers or (workers is None and self._runner_default)):
                return runner
            if runner is not None and self._finalizer is not None:
                # Another number of workers: as loky's executor, the pool is replaced.
                self._finalizer.detach()
                runner.shutdown(wait=True)
            runner = self._make_runner(workers)
            self._runner, self._runner_default = runner, workers is None
            self._finalizer = weakref.finalize(self, _close, runner)
            return runner

    def _make_runner(self, workers: int | None) -> Parallelize:
        from .runner import Parallelize

        options = dict(self._options)
        if self._kind == "process" and "env" not in options:
            # As loky: each worker's BLAS/OpenMP gets its share of the CPUs.
            options["env"] = self._prepare_worker_env(n_jobs=workers or default_workers())
        return Parallelize(workers, backend=self._kind, **options)  # type: ignore[arg-type]

    # -- joblib's protocol -------------------------------------------------------------

    def configure(
        self, n_jobs: int | None = 1, parallel: Any = None, prefer: Any = None, require: Any = None, **_: Any
    ) -> int:
        """Choose the runner for one ``Parallel`` call; returns how many batches run at once.

        joblib's memory-mapping options (``max_nbytes``, ``mmap_mode``,
        ``temp_folder``) are not used: the process runner ships NumPy arrays of
        1 MB or more by memory-mapped file by itself.
        """
        self.parallel = parallel
        n = self.effective_n_jobs(n_jobs)
        if n > 1:
            runner = self._given if self._given is not None else self._owned(n)
            self._active = runner
            _set_last(runner)
        return n

    def submit(self, func: Callable[[], Any], callback: Callable[[Any], Any] | None = None) -> Future[Any]:
        """Run one joblib batch on the runner; ``callback(future)`` runs when it is done.

        joblib gets a future of its own that follows the runner's (see
        ``_Relay``): the runner's engine may hold on to its last finished
        future for a while, and through joblib's callback it would hold the
        whole ``Parallel`` call, and this backend with it.
        """
        runner = self._active
        try:
            if runner is None:
                raise RuntimeError("ParallelizeBackend.submit was called before configure")
            inner = runner.submit(_run_joblib_batch, _JoblibBatch(func))
        except Exception as exc:  # noqa: BLE001 - handed to joblib through the future, never lost in a callback
            inner = Future()
            inner.set_exception(exc)
        outer: Future[Any] = Future()
        with self._lock:
            self._pending.add(inner)
        inner.add_done_callback(_Relay(outer, callback, weakref.ref(self)))
        return outer

    def apply_async(self, func: Callable[[], Any], callback: Callable[[Any], Any] | None = None) -> Future[Any]:
        """``submit`` under the name joblib 1.3 and 1.4 call."""
        return self.submit(func, callback)

    def _forget(self, inner: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(inner)

    def retrieve_result_callback(self, out: Future[Any]) -> Any:
        """The batch's list of results, or its first error raised as its own type."""
        return out.result()

    def get_nested_backend(self) -> tuple[Any, int | None]:
        """Calls made inside a batch run joblib sequentially: no workers inside a worker."""
        return SequentialBackend(nesting_level=(self.nesting_level or 0) + 1), None

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """Cancel the batches that no worker has taken; running ones finish and are dropped.

        The runner stays usable whatever ``ensure_ready`` says.
        """
        with self._lock:
            pending = list(self._pending)
        for inner in pending:
            inner.cancel()  # joblib's own future follows (see _Relay)

    def terminate(self) -> None:
        """End of a ``Parallel`` call: the runner is kept for the next one."""
        self.reset_batch_stats()
        self._active = None
        self.parallel = None  # joblib's Parallel refers to this backend: no cycle left behind


def _class_says(kind: str, attribute: str) -> bool:
    """A class attribute (``in_process``, ``runs_inline``) of the backend registered as ``kind``."""
    return bool(getattr(get_backend_class(kind), attribute, False))


class _Relay:
    """Hands the outcome of the runner's future to joblib's, calls joblib's callback, then lets go.

    joblib's callback is called here rather than registered on its future: a
    batch cancelled by ``abort_everything`` keeps its future in joblib's
    callback object, and the callback on the future would close a reference
    cycle through joblib's ``Parallel`` and this backend, freed only by the
    cyclic garbage collector, some time later.
    """

    __slots__ = ("outer", "callback", "owner")

    def __init__(
        self,
        outer: Future[Any],
        callback: Callable[[Any], Any] | None,
        owner: weakref.ref[ParallelizeBackend],
    ) -> None:
        self.outer: Future[Any] | None = outer
        self.callback = callback
        self.owner: weakref.ref[ParallelizeBackend] | None = owner

    def __call__(self, inner: Future[Any]) -> None:
        outer, callback, owner = self.outer, self.callback, self.owner
        self.outer = self.callback = self.owner = None
        backend = owner() if owner is not None else None
        if backend is not None:
            backend._forget(inner)
        if outer is None:
            return
        if inner.cancelled():
            outer.cancel()
        elif inner.exception() is not None:
            outer.set_exception(_detached(inner.exception()))  # type: ignore[arg-type]
        else:
            outer.set_result(inner.result())
        if callback is not None:
            callback(outer)


def _detached(exc: BaseException) -> BaseException:
    """A copy of ``exc`` for joblib to raise: same type, arguments, notes, cause and traceback.

    joblib raises the error in the caller, which adds the caller's frames (and
    through them joblib's ``Parallel`` and this backend) to the traceback of
    the object raised. The runner's engine may still hold ``exc`` itself (its
    last finished call), so raising ``exc`` would keep the backend, and the
    runner it would shut down, alive for good. An exception that cannot be
    copied faithfully (its ``__init__`` does not take its own ``args``) is
    raised as it is.
    """
    try:
        clone = copy.copy(exc)
        if type(clone) is not type(exc) or clone.args != exc.args:
            return exc
    except Exception:  # noqa: BLE001 - a copy is a nicety; the original is always right
        return exc
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        clone.__notes__ = list(notes)  # type: ignore[attr-defined]
    clone.__cause__ = exc.__cause__
    clone.__context__ = exc.__context__
    clone.__suppress_context__ = exc.__suppress_context__
    return clone.with_traceback(exc.__traceback__)
