"""The one interface every backend implements, in ``concurrent.futures`` terms.

A backend owns a pool of workers and nothing else: it takes a callable and its
arguments and returns a ``concurrent.futures.Future``. It knows nothing of
batches, statistics or error policies; the runner knows nothing of which backend
it holds.
"""

from __future__ import annotations

import abc
import os
from concurrent.futures import Future
from typing import Any, Callable, ClassVar

from ..validate import check_int

__all__ = ["Backend", "default_workers"]


def default_workers() -> int:
    """The number of CPUs this process may use (at least 1)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Backend(abc.ABC):
    """A pool of workers that runs callables and hands back futures.

    Args:
        max_workers: how many tasks may run at once (>= 1); ``None``: what
            ``suggested_workers`` says, else the CPUs this process may use.
            The backend is the one owner of this number (``runner.max_workers``
            reads it here).
        initializer: called once in each worker before its first task, or ``None``.
        **options: backend-specific options; unknown ones raise ``ConfigError``.

    Failures are the backend's to translate: a future fails with
    ``WorkerCrashedError`` when the worker running it
    died, ``PicklingError`` when the task or its result
    could not cross to or from the worker, and with the task's own exception
    otherwise. The engine reads only those types.

    Attributes:
        name: the name the backend is registered under.
        can_kill: whether a running task can be stopped by killing its worker
            (processes: yes; threads: no).
        in_process: whether tasks run in the caller's process (no pickling).
        runs_inline: whether ``submit`` runs the task at once, in the
            submitting thread, and returns a finished future.
        can_time_out: whether a per-task ``timeout`` can be enforced here; the
            runner refuses a timeout it cannot keep rather than ignore it.
        outlives_submitter: whether a submitted task can go on running after
            this process died (a cluster job): with a checkpoint, its batch
            then records its own successes where it runs.
    """

    name: ClassVar[str] = "base"
    can_kill: ClassVar[bool] = False
    in_process: ClassVar[bool] = False
    #: Whether a per-task ``timeout`` can be enforced (an instance may say no).
    can_time_out: bool = True
    #: Whether ``submit`` runs the task at once in the submitting thread (serial).
    runs_inline: ClassVar[bool] = False
    #: Seconds of work the engine should put in one batch here, where starting a
    #: batch costs more than on a local pool (a cluster job); ``None``: the engine's own.
    target_batch_seconds: ClassVar[float | None] = None
    outlives_submitter: ClassVar[bool] = False

    def __init__(self, max_workers: int | None, initializer: Callable[[], None] | None = None, **options: Any) -> None:
        check_int("max_workers", max_workers, minimum=1, allow_none=True, none_means="the CPUs this process may use")
        self._max_workers = max_workers
        self.initializer = initializer

    @property
    def max_workers(self) -> int:
        """Tasks run at once: as given, else ``suggested_workers``, else the CPUs here."""
        if self._max_workers is None:
            self._max_workers = self.suggested_workers() or default_workers()
        return self._max_workers

    @abc.abstractmethod
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` and return its future."""

    @abc.abstractmethod
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Release the workers.

        Args:
            wait: block until running tasks finish.
            cancel_futures: cancel tasks that have not started.
        """

    def kill(self, future: Future[Any]) -> bool:
        """Stop the one task behind ``future`` now, leaving every other task alone.

        Where ``can_kill`` is true this kills the worker running it (a new
        one replaces it); the future then fails and the caller ignores it.

        Returns:
            Whether the task was stopped; the default cannot and returns False.
        """
        return False

    def kill_workers(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Stop every worker of this backend now, running tasks included (Ctrl-C).

        Only meaningful where ``can_kill`` is true; the default does nothing.
        """

    def reattach(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Before a checkpointed run: wait for what an earlier, dead run left running.

        Only backends whose tasks ``outlive the submitter``
        have anything to wait for; the default does nothing.
        """

    def suggested_workers(self) -> int | None:
        """How many tasks this backend can run at once, if it knows better than
        the local CPU count (a remote cluster's total threads); else ``None``."""
        return None

    def abandon(self, future: Future[Any]) -> None:  # noqa: B027 - optional hook
        """The caller stopped waiting for ``future`` (its task timed out) and will
        not kill it. The default does nothing."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} max_workers={self.max_workers}>"
