"""The process backend: a pool of worker processes that this runner alone holds.

Workers are forked by the pool's zygote, a fresh interpreter (see ``zygote``),
never from the caller, so the backend is safe with threads in the parent, and callables travel with cloudpickle, so lambdas, closures and
functions defined in ``__main__`` or a notebook work. Each runner owns its pool
(``ProcessPool``): a timeout, a crash, a kill or
a shutdown in one runner never touches another runner's tasks.

Warm start stays: a runner that is dropped without being shut down (a notebook
cell's ``Parallelize(...)`` without ``with``) hands its idle pool on to the next
runner created with the same settings (same ``max_workers`` and ``env``, no
initializer), which then starts with its workers already up; idle workers exit
after ``idle_timeout``. A pool is only ever held by one runner at a time, and
``shutdown()`` (the end of a ``with`` block) always ends the workers.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

from ..errors import ConfigError, RunnerClosedError
from ..validate import check_seconds
from .base import Backend
from .capacity import check_worker_count
from .pool import ProcessPool

__all__ = ["ProcessBackend", "IDLE_WORKER_TIMEOUT"]

# Idle workers exit after this many seconds; loky's default (10 s) makes a
# notebook user pay start-up again after every pause.
IDLE_WORKER_TIMEOUT = 300.0

# Pools handed back by runners that shut down cleanly, by settings; the next
# runner with those settings takes the pool (and it is then no longer here).
_parked: dict[tuple[Any, ...], ProcessPool] = {}
_parked_lock = threading.Lock()


def _take_parked(key: tuple[Any, ...]) -> ProcessPool | None:
    with _parked_lock:
        return _parked.pop(key, None)


def _park(key: tuple[Any, ...], pool: ProcessPool) -> None:
    with _parked_lock:
        previous = _parked.pop(key, None)
        _parked[key] = pool
    if previous is not None:
        previous.shutdown(wait=False)


class ProcessBackend(Backend):
    """Runs tasks in worker processes owned by this backend.

    Args:
        max_workers: number of worker processes.
        initializer: run once in each worker process.
        idle_timeout: seconds an idle worker waits before exiting (> 0; default
            300), or ``None`` to keep idle workers until shutdown.
        env: environment variables set in each worker (e.g. ``{"OMP_NUM_THREADS": "1"}``).
        pool: an idle ``ProcessPool`` lent by its owner, who keeps it across
            runs (``mp_lock`` does, so that its calls do not start processes
            again): it is reset to this backend's width and initializer, and
            never shut down by the backend. ``None`` (default): a pool of its own.
    """

    name = "process"
    can_kill = True

    def __init__(
        self,
        max_workers: int | None,
        initializer: Callable[[], None] | None = None,
        *,
        idle_timeout: float | None = IDLE_WORKER_TIMEOUT,
        env: dict[str, str] | None = None,
        pool: ProcessPool | None = None,
        **options: Any,
    ) -> None:
        if options:
            raise ConfigError(
                f"unknown process backend option(s) {sorted(options)}; expected 'idle_timeout', 'env' or 'pool'"
            )
        if pool is not None and not isinstance(pool, ProcessPool):
            raise ConfigError(f"pool must be a parallelize.backends.pool.ProcessPool, got {pool!r}")
        if env is not None and not (
            isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        ):
            raise ConfigError(f"env must be a dict of str to str, got {env!r}")
        if idle_timeout is not None:  # None: idle workers stay until shutdown, as on the pool
            idle_timeout = check_seconds(
                "idle_timeout", idle_timeout, allow_zero=False, meaning="> 0, or None to keep idle workers"
            )
        super().__init__(max_workers, initializer)
        check_worker_count(self.max_workers)
        self._idle_timeout = idle_timeout
        self._env = env
        self._lock = threading.Lock()
        self._pool: ProcessPool | None = None
        self._lent = pool
        if pool is not None:
            pool.reset(self.max_workers, initializer)
            self._pool = pool
        self._closed = False
        # Only pools whose workers never ran a user's initializer may be handed on.
        self._key = (
            (self.max_workers, tuple(sorted((env or {}).items())), idle_timeout) if initializer is None else None
        )

    def _get(self) -> ProcessPool:
        with self._lock:
            if self._closed:
                raise RunnerClosedError("cannot submit to a process backend after shutdown; create a new runner")
            if self._pool is None:
                pool = _take_parked(self._key) if self._key is not None else None
                self._pool = pool or ProcessPool(
                    self.max_workers, self.initializer, self._env, idle_timeout=self._idle_timeout
                )
            return self._pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._get().submit(fn, *args, **kwargs)

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (empty before the first task)."""
        pool = self._pool
        return pool.worker_pids() if pool is not None else []

    def kill(self, future: Future[Any]) -> bool:
        """Stop the task behind ``future`` by killing the one worker running it."""
        pool = self._pool
        return pool.kill(future) if pool is not None else False

    def kill_workers(self) -> None:
        """SIGKILL every worker of this backend; its unfinished tasks fail, new workers start on demand."""
        pool = self._pool
        if pool is not None:
            pool.kill_all()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None and pool is self._lent:
            # Its owner keeps it, idle: what this backend left running ends first.
            if not wait:
                pool.kill_all()
            while not pool.idle():
                time.sleep(0.005)
            return
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __del__(self) -> None:
        # A runner dropped without shutdown(): hand its idle pool on, or end it.
        try:
            pool, self._pool = self._pool, None
            if pool is None or self._closed or pool is self._lent:
                return
            if self._key is not None and pool.idle():
                _park(self._key, pool)
            else:
                pool.shutdown(wait=False)
        except Exception:
            pass
