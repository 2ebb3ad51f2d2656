"""The process backend: loky's reusable process pool, pickling with cloudpickle.

loky starts workers with fork+exec, so it is safe with threads in the parent,
and pickles callables with cloudpickle, so lambdas, closures and functions
defined in ``__main__`` or a notebook work. Its executor is reused across runners
with the same settings, so a second runner starts warm.
"""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import Future
from typing import Any, Callable

from ..errors import ConfigError
from ..shared_array import array_reducers
from .base import Backend

__all__ = ["ProcessBackend"]

# Idle workers of the reusable executor exit after this many seconds; loky's
# default (10 s) makes a notebook user pay start-up again after every pause.
IDLE_WORKER_TIMEOUT = 300


def _ignore_sigint() -> None:
    """Worker start-up: Ctrl-C is the parent's to handle.

    A terminal sends SIGINT to the whole process group; the parent then kills
    the workers itself. Without this each worker would also print its own
    KeyboardInterrupt traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _WorkerInit:
    """Ignore SIGINT, then run the runner's per-worker initializer."""

    def __init__(self, initializer: Callable[[], None]) -> None:
        self.initializer = initializer

    def __call__(self) -> None:
        _ignore_sigint()
        self.initializer()


class ProcessBackend(Backend):
    """Runs tasks in worker processes from loky's reusable executor.

    Args:
        max_workers: number of worker processes.
        initializer: run once in each worker process.
        idle_timeout: seconds an idle worker waits before exiting (default 300).
        env: environment variables set in each worker (e.g. ``{"OMP_NUM_THREADS": "1"}``).
    """

    name = "process"
    can_kill = True

    def __init__(
        self,
        max_workers: int,
        initializer: Callable[[], None] | None = None,
        *,
        idle_timeout: float = IDLE_WORKER_TIMEOUT,
        env: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        if options:
            raise ConfigError(f"unknown process backend option(s) {sorted(options)}; expected 'idle_timeout' or 'env'")
        super().__init__(max_workers, initializer)
        self._idle_timeout = idle_timeout
        self._env = env
        self._lock = threading.Lock()
        self._executor: Any = None
        self._closed = False
        self._init = _WorkerInit(initializer) if initializer is not None else None

    def _get(self, fresh: bool = False) -> Any:
        from loky import get_reusable_executor

        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a process backend after shutdown")
            if self._executor is None or fresh:
                # A module-level function when there is no user initializer, so
                # that runners with the same settings share one warm executor.
                init = _ignore_sigint if self.initializer is None else self._init
                reducers = array_reducers()
                self._executor = get_reusable_executor(
                    max_workers=self.max_workers,
                    timeout=self._idle_timeout,
                    initializer=init,
                    # Large NumPy arguments go by memory-mapped file; results
                    # come back as usual (an empty dict, not None, says so).
                    job_reducers=reducers,
                    result_reducers={} if reducers else None,
                    env=self._env,
                    reuse="auto",
                )
            return self._executor

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        executor = self._get()
        try:
            return executor.submit(fn, *args, **kwargs)
        except RuntimeError:
            # The shared reusable executor was shut down or broken by someone else
            # (another runner's shutdown, a crashed worker): take a fresh one.
            return self._get(fresh=True).submit(fn, *args, **kwargs)

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (empty before the first task)."""
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return [p.pid for p in list(processes.values()) if p.pid is not None]

    def kill_workers(self) -> None:
        """SIGKILL every worker; running tasks fail and the next submit gets a new pool."""
        for pid in self.worker_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            try:
                executor.shutdown(wait=True, kill_workers=True)
            except Exception:  # already broken by the kill: nothing left to release
                pass

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            if cancel_futures:
                # loky has no cancel_futures: cancel what is still queued by hand.
                for item in list(getattr(executor, "_pending_work_items", {}).values()):
                    item.future.cancel()
            executor.shutdown(wait=wait, kill_workers=not wait)
