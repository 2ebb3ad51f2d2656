"""A task's failure as the caller sees it: the exception, its traceback, the arguments.

Built in the worker, where the exception is raised, and made safe to send back
(``portable``); the parent re-raises it as its own type.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import cloudpickle

__all__ = ["RemoteTraceback", "TaskFailure", "portable", "short_repr"]

# Items are shown in error notes; a huge argument must not make a huge message.
_MAX_ARG_REPR = 300


class RemoteTraceback(Exception):
    """Carries a worker's formatted traceback as the ``__cause__`` of an error."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


@dataclass(frozen=True, repr=False)
class TaskFailure:
    """A task that raised: the exception, where, and with which arguments.

    Under ``on_error="collect"`` these appear in the results in place of a value.

    Attributes:
        index: position of the task in its input (0-based).
        exception: the exception raised by the user's function (or a
            ``ParallelizeError`` for timeouts and crashes).
        traceback: the worker's formatted traceback, or ``""``.
        arguments: a short ``repr`` of the task's input.
        attempts: how many times the task was tried.
    """

    index: int
    exception: BaseException
    traceback: str = ""
    arguments: str = ""
    attempts: int = 1

    @property
    def error_type(self) -> str:
        """The exception's class name, e.g. ``"ValueError"``."""
        return type(self.exception).__name__

    def describe(self) -> str:
        """One line: ``"ValueError: bad value"``."""
        return f"{self.error_type}: {self.exception}"

    def __str__(self) -> str:
        return f"<task {self.index} failed: {self.describe()}>"

    # Failures sit among results in lists: keep their repr one short line.
    __repr__ = __str__


def short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the real error
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    if len(text) > _MAX_ARG_REPR:
        text = text[: _MAX_ARG_REPR - 3] + "..."
    return text


def portable(exc: BaseException) -> BaseException:
    """``exc`` itself if it survives pickling, else a stand-in that does.

    A worker process must never fail to send back a batch because one user
    exception holds something unpicklable (a lock, a socket, a lambda).
    """
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        try:
            pickle.loads(cloudpickle.dumps(exc))
            return exc
        except Exception:
            from ..errors import PicklingError

            return PicklingError(
                f"the task raised {type(exc).__name__}: {exc}, "
                "which could not be pickled to send it back from the worker"
            )
