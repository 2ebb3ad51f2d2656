"""The errors parallelize raises.

Every error is rooted at ``ParallelizeError`` and is also the builtin it is,
so callers can catch either:

    ParallelizeError
    ├── ConfigError (ValueError)              bad option or argument, raised at once
    ├── BackendUnavailableError (ImportError) optional engine not installed
    ├── TaskTimeoutError (TimeoutError)       a task ran longer than its timeout
    ├── WorkerCrashedError (BrokenExecutor)   a worker died mid-task
    │   ├── TaskLostError                     its worker was stopped on purpose: rerun, not the task's fault
    │   └── JobCancelledError                 its cluster job was cancelled from outside (scancel, qdel)
    ├── PicklingError (TypeError)             an argument or result cannot be pickled
    ├── ResumeMismatchError (ValueError)      a checkpoint holds results for other inputs
    ├── CheckpointError (ConfigError)         a checkpoint's files are damaged or crafted
    ├── RunnerClosedError (RuntimeError)      the runner was shut down by its owner
    ├── WorkerInitError (RuntimeError)        the runner's initializer raised in a worker
    ├── TaskExitError (RuntimeError)          a task raised SystemExit, KeyboardInterrupt or another
    │                                         BaseException; the original is its .exception
    ├── SchedulerUnreachableError (OSError)   a cluster scheduler did not answer
    └── SubmissionError (RuntimeError)        a batch scheduler (Slurm, Grid Engine, PBS) refused
                                              a job; its own message is quoted

An exception raised by the user's own function is *not* wrapped: it reaches the
caller as its own type, with the worker's traceback as ``__cause__`` and a note
naming the task's arguments.
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor

__all__ = [
    "ParallelizeError",
    "ConfigError",
    "BackendUnavailableError",
    "TaskTimeoutError",
    "WorkerCrashedError",
    "TaskLostError",
    "JobCancelledError",
    "PicklingError",
    "ResumeMismatchError",
    "CheckpointError",
    "RunnerClosedError",
    "SchedulerUnreachableError",
    "SubmissionError",
    "WorkerInitError",
    "TaskExitError",
]


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, once; on Python 3.10, which has no notes, the
    same ``__notes__`` list, so code reading the notes finds them (3.10's
    traceback does not print them)."""
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list) and note in notes:
        return
    if hasattr(exc, "add_note"):
        exc.add_note(note)
        return
    try:
        if not isinstance(notes, list):
            notes = []
            exc.__notes__ = notes  # type: ignore[attr-defined]
        notes.append(note)
    except AttributeError:  # an exception type that takes no attributes
        pass


class ParallelizeError(Exception):
    """Base class of every error raised by parallelize itself."""


class ConfigError(ParallelizeError, ValueError):
    """An option or argument has a value that is not allowed.

    Raised before any work starts, so nothing is lost.
    """


class BackendUnavailableError(ParallelizeError, ImportError):
    """An optional backend's library is not installed."""


class TaskTimeoutError(ParallelizeError, TimeoutError):
    """A task ran longer than its ``timeout`` and was stopped."""


class WorkerCrashedError(ParallelizeError, BrokenExecutor):
    """The worker process running a task died (signal, ``os._exit``, out of memory)."""


class TaskLostError(WorkerCrashedError):
    """The task's worker was stopped on purpose (another task's timeout, an interrupt).

    A backend sets it on the futures of tasks that were not at fault; the engine
    runs such a task again instead of counting a crash against it.
    """


class JobCancelledError(WorkerCrashedError):
    """A cluster job running the task was cancelled from outside (``scancel``, ``qdel``).

    Someone decided it: the task is not rerun to find a culprit as after a
    crash; it fails, or runs again only within ``retries``.
    """


class PicklingError(ParallelizeError, TypeError):
    """An argument or a result could not be serialised between processes."""


class ResumeMismatchError(ParallelizeError, ValueError):
    """A checkpoint folder holds results computed for different inputs."""


class CheckpointError(ConfigError):
    """A checkpoint folder's files are damaged, truncated or not what parallelize wrote.

    Never executes anything found in the files; the message names the file and
    says how to start over (delete the folder) or keep going.
    """


class RunnerClosedError(ParallelizeError, RuntimeError):
    """The runner (or its pool) was shut down by its owner; make a new one to run more work.

    The "closed it yourself" case, as CPython's ``cannot schedule new futures
    after shutdown``; not a bad argument (``ConfigError``) and not a pool
    broken from outside (``WorkerCrashedError``).
    """


class TaskExitError(ParallelizeError, RuntimeError):
    """A task raised a ``BaseException`` that is not an ``Exception``.

    ``sys.exit()`` or ``raise KeyboardInterrupt`` inside a task is that task's
    failure, never the end of the calling program: under ``on_error="collect"``
    the ``TaskFailure`` holds the original exception; where an
    error is raised in the caller, it is this one, with the original as
    ``__cause__`` and as ``exception``.
    """

    def __init__(self, message: str, exception: BaseException | None = None) -> None:
        super().__init__(message)
        self.exception = exception


class SchedulerUnreachableError(ParallelizeError, OSError):
    """A cluster scheduler did not answer at the given address."""


class WorkerInitError(ParallelizeError, RuntimeError):
    """The runner's ``initializer`` raised in a worker, so no task can run there.

    Always stops the run, whatever the error policy: every task would fail the
    same way. The initializer's own exception is the ``__cause__``.
    """


class SubmissionError(ParallelizeError, RuntimeError):
    """A batch scheduler (Slurm, Grid Engine, PBS) refused to take a job.

    The message quotes the command and what the scheduler said (a partition or
    resource it does not know, a limit, a daemon that is down); nothing was
    submitted for that array, and no result is awaited from it.

    Attributes:
        command: the command that was run, as a list.
        output: what the scheduler printed on stderr and stdout.
    """

    def __init__(self, message: str, command: list[str] | None = None, output: str = "") -> None:
        super().__init__(message)
        self.command = command or []
        self.output = output
