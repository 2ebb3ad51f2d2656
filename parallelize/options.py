"""Options of a run: one frozen record, validated once.

The runner holds a ``RunOptions``; a call's keyword overrides make a new
record with ``RunOptions.replace``, validated again. Nothing mutates options.
How many workers run, and on which backend, are not options of a run: the
runner's backend owns them (``runner.max_workers``, ``runner.backend``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .errors import ConfigError
from .retry import RetryPolicy
from .validate import check_bool, check_choice, check_int, check_seconds

__all__ = ["ON_ERROR", "OnError", "RunOptions", "default_workers"]

#: What a failed task does to the run (see README, "Failures").
OnError = Literal["raise", "collect", "skip"]
ON_ERROR: tuple[str, ...] = get_args(OnError)

#: The longest timeout, in seconds, that every timer involved can hold: the
#: interval timer that interrupts a task in a process worker takes at most a
#: 32-bit count of seconds on some platforms (about 68 years).
MAX_TIMEOUT_SECONDS = 2**31 - 1


def default_workers() -> int:
    """The number of CPUs this process may use (at least 1)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class RunOptions:
    """How tasks are run. Every field has the meaning it has on ``Parallelize``.

    Attributes:
        timeout: seconds a single task may run, or ``None`` for no limit.
        on_error: ``"raise"``, ``"collect"`` or ``"skip"``.
        retries: extra attempts for a task that failed with one of ``retry_on``.
        retry_on: exception types that are retried.
        backoff: seconds before the first retry, doubled on each further one.
        max_backoff: the longest wait between two attempts, in seconds.
        jitter: up to this many seconds added at random to each wait.
        progress: show a progress bar.
        chunksize: tasks per batch, or ``None`` to size batches adaptively.
        retry: the ``RetryPolicy`` built from the retry
            fields (not given: derived).
    """

    timeout: float | None = None
    on_error: OnError = "raise"
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 0.0
    max_backoff: float = 60.0
    jitter: float = 0.0
    progress: bool = False
    chunksize: int | None = None
    retry: RetryPolicy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.timeout, float) and self.timeout == math.inf:
            object.__setattr__(self, "timeout", None)  # infinity: no limit, as None
        if self.timeout is not None:
            check_seconds("timeout", self.timeout, allow_zero=False, meaning="> 0, or None (or math.inf) for no limit")
            if self.timeout > MAX_TIMEOUT_SECONDS:
                raise ConfigError(
                    f"timeout={self.timeout!r} s is longer than the timers can hold ({MAX_TIMEOUT_SECONDS} s); "
                    "use None (or math.inf) for no limit"
                )
        check_choice("on_error policy", self.on_error, ON_ERROR)
        policy = RetryPolicy(self.retries, self.retry_on, self.backoff, self.max_backoff, self.jitter)
        object.__setattr__(self, "retry_on", policy.retry_on)
        object.__setattr__(self, "retry", policy)
        check_bool("progress", self.progress)
        check_int("chunksize", self.chunksize, minimum=1, allow_none=True, none_means="adaptive")

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with ``changes`` applied, validated again.

        Raises:
            ConfigError: an unknown option name or a bad value.
        """
        names = {f.name for f in dataclasses.fields(self) if f.init}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown}; expected some of {sorted(names)}")
        return dataclasses.replace(self, **changes)
