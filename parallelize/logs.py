"""The ``parallelize`` logger: the rare events of a run, silent until you listen.

Everything the library logs goes to the standard ``logging`` logger named
``"parallelize"``. It carries a ``NullHandler``, so by default nothing is
printed, warnings included (Python's last-resort handler only speaks for a
logger tree with no handler at all). To see the events::

    import logging
    logging.basicConfig(level=logging.INFO)                  # every logger, or
    logging.getLogger("parallelize").setLevel(logging.INFO)  # this one, plus a handler

The events and their levels:

- WARNING: a task failed and runs again (``retrying``); a task outlived its
  ``timeout``; a worker died under a task (crash, ``os._exit``, out of memory).
- INFO: a run resumes from a checkpoint (how many results it found); the
  process pool starts a worker in place of one that died or was killed; tasks
  lost with their worker run again.

Nothing is logged per task, only on these events, and the arguments are
lazy (``%``-style, shortened reprs rendered only when a handler formats the
record), so a run of tiny tasks pays nothing for the logger. This module
imports only the standard library.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["LOG_TEXT_CHARS", "brief", "brief_error", "brief_text", "logger", "retrying", "retrying_failure", "tasks"]

#: The library's logger. Its name is the package's, so
#: ``logging.getLogger("parallelize")`` is this object.
logger = logging.getLogger("parallelize")
logger.addHandler(logging.NullHandler())

#: The longest input repr or error message put in a log line, in characters:
#: a log line stays one readable line whatever the task's input holds.
LOG_TEXT_CHARS = 200


class _Brief:
    """A value shown shortened, on one line, rendered only when a record is formatted."""

    __slots__ = ("_value", "_how")

    def __init__(self, value: object, how: str) -> None:
        self._value = value
        self._how = how  # "repr", "text" or "error"

    def __str__(self) -> str:
        value = self._value
        try:
            if self._how == "repr":
                text = repr(value)
            elif self._how == "error":
                message = str(value).strip()
                text = f"{type(value).__name__}: {message}" if message else type(value).__name__
            else:
                text = str(value)
        except Exception as exc:  # a broken __repr__ must not break the log
            text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
        text = " ".join(text.split())
        if len(text) > LOG_TEXT_CHARS:
            text = text[: LOG_TEXT_CHARS - 3] + "..."
        return text

    __repr__ = __str__


def brief(value: object) -> object:
    """``value``'s repr, shortened to one line of at most ``LOG_TEXT_CHARS``, as a lazy log argument."""
    return _Brief(value, "repr")


def brief_text(text: str) -> object:
    """A text already rendered (e.g. ``TaskFailure.arguments``), shortened, as a lazy log argument."""
    return _Brief(text, "text")


def brief_error(error: BaseException) -> object:
    """``"ValueError: message"`` for ``error``, shortened to one line, as a lazy log argument."""
    return _Brief(error, "error")


def tasks(first: int, count: int) -> str:
    """``"task 5"`` or ``"tasks 5..9"``: the positions ``first`` to ``first + count - 1``."""
    return f"task {first}" if count == 1 else f"tasks {first}..{first + count - 1}"


def retrying(index: int, arguments: object, attempt: int, attempts: int, error: BaseException, wait: float) -> None:
    """Log, at WARNING, that a failed task runs again.

    Args:
        index: the task's position in its input.
        arguments: its input, as ``brief(...)`` or ``brief_text(...)``.
        attempt: the number of the attempt that failed (from 1).
        attempts: the most attempts the retry policy allows (``retries + 1``).
        error: what the failed attempt raised.
        wait: seconds before the next attempt (0: at once).
    """
    logger.warning(
        "task %d with arguments %s failed on attempt %d of %d (%s); retrying %s",
        index,
        arguments,
        attempt,
        attempts,
        brief_error(error),
        f"in {wait:.3g} s" if wait > 0 else "at once",
    )


def retrying_failure(failure: Any, attempts: int, wait: float) -> None:
    """``retrying`` for a failure a worker reported: a ``TaskFailure``.

    Args:
        failure: the ``TaskFailure`` (its ``index``, ``arguments``, ``attempts``
            and ``exception`` are logged).
        attempts: the most attempts the retry policy allows (``retries + 1``).
        wait: seconds before the next attempt.
    """
    retrying(failure.index, brief_text(failure.arguments), failure.attempts, attempts, failure.exception, wait)
