"""Options of a run: one frozen record, validated once.

The runner holds a :class:`RunOptions`; a call's keyword overrides make a new
record with :meth:`RunOptions.replace`, validated again. Nothing mutates options.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .validate import check_choice

__all__ = ["ON_ERROR", "RunOptions", "default_workers"]

#: What a failed task does to the run (see README, "Failures").
ON_ERROR = ("raise", "collect", "skip")

#: The longest timeout, in seconds, that every timer involved can hold: the
#: interval timer that interrupts a task in a process worker takes at most a
#: 32-bit count of seconds on some platforms (about 68 years).
MAX_TIMEOUT_SECONDS = 2**31 - 1


def _seconds(name: str, value: Any, *, allow_zero: bool, meaning: str) -> float:
    """``value`` as a finite number of seconds, or a ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds {meaning}, got {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise ConfigError(f"{name} must be a finite number of seconds {meaning}, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name} must be a number of seconds {meaning}, got {value!r}")
    return float(value)


def default_workers() -> int:
    """The number of CPUs this process may use (at least 1)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class RunOptions:
    """How tasks are run. Every field has the meaning it has on :class:`Parallelize`.

    Attributes:
        max_workers: tasks run at once (>= 1).
        backend: where tasks run: a registered backend name.
        timeout: seconds a single task may run, or ``None`` for no limit.
        on_error: ``"raise"``, ``"collect"`` or ``"skip"``.
        retries: extra attempts for a task that raised one of ``retry_on``.
        retry_on: exception types that are retried.
        backoff: seconds before the first retry, doubled on each further one.
        progress: show a progress bar.
        chunksize: tasks per batch, or ``None`` to size batches adaptively.
    """

    max_workers: int
    backend: str = "thread"
    timeout: float | None = None
    on_error: str = "raise"
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 0.0
    progress: bool = False
    chunksize: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_workers, bool) or not isinstance(self.max_workers, int) or self.max_workers < 1:
            raise ConfigError(f"max_workers must be an integer >= 1, got {self.max_workers!r}")
        if not isinstance(self.backend, str):
            raise ConfigError(f"backend must be a name such as 'thread' or 'process', got {self.backend!r}")
        from .backends import available_backends

        check_choice("backend", self.backend, available_backends())
        if isinstance(self.timeout, float) and self.timeout == math.inf:
            object.__setattr__(self, "timeout", None)  # infinity: no limit, as None
        if self.timeout is not None:
            _seconds("timeout", self.timeout, allow_zero=False, meaning="> 0, or None (or math.inf) for no limit")
            if self.timeout > MAX_TIMEOUT_SECONDS:
                raise ConfigError(
                    f"timeout={self.timeout!r} s is longer than the timers can hold ({MAX_TIMEOUT_SECONDS} s); "
                    "use None (or math.inf) for no limit"
                )
        check_choice("on_error policy", self.on_error, ON_ERROR)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"retries must be an integer >= 0, got {self.retries!r}")
        retry_on = self.retry_on
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
            object.__setattr__(self, "retry_on", retry_on)
        if not isinstance(retry_on, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
        ):
            raise ConfigError(f"retry_on must be an exception class or a tuple of them, got {self.retry_on!r}")
        _seconds("backoff", self.backoff, allow_zero=True, meaning=">= 0")
        if not isinstance(self.progress, bool):
            raise ConfigError(f"progress must be True or False, got {self.progress!r}")
        if self.chunksize is not None and (
            isinstance(self.chunksize, bool) or not isinstance(self.chunksize, int) or self.chunksize < 1
        ):
            raise ConfigError(f"chunksize must be an integer >= 1 or None (adaptive), got {self.chunksize!r}")

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with ``changes`` applied, validated again.

        Raises:
            ConfigError: an unknown option name or a bad value.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown}; expected some of {sorted(names)}")
        return dataclasses.replace(self, **changes)
