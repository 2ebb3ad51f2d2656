"""The retry policy: which failures are tried again, how often, and after how long.

One frozen, picklable value per run, built once from the run's options and
consulted with one attempt count by everyone who sees a task fail::

    worker: the task raised ──should_retry(exc, attempt)?── no ──> TaskFailure
                                  │ yes
                                  ├─ delay(attempt) == 0 ──> run it again at once, here
                                  └─ delay(attempt) > 0 ───> report it, with the delay
    parent: waits out the delay on a timer (the worker runs other tasks meanwhile),
            then sends the task again with attempt + 1
    parent: a timeout or a worker crash ──should_retry(error, attempt)?── same rule

``attempt`` is always the number of the attempt that just failed, counted from 1
across the worker and the parent, so ``retries=2`` means at most three attempts
whichever way they fail. The waits follow tenacity's ``wait_exponential_jitter``:
``min(max_backoff, backoff * 2 ** (attempt - 1) + uniform(0, jitter))``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .validate import check_int, check_seconds

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed task is tried again.

    Attributes:
        retries: extra attempts after the first (default 0: none).
        retry_on: exception types worth retrying (default: any ``Exception``,
            which includes ``TaskTimeoutError`` and
            ``WorkerCrashedError``).
        backoff: seconds before the first retry, doubled before each further one
            (default 0: retry at once, in the same worker).
        max_backoff: the longest wait between two attempts, in seconds (default 60).
        jitter: up to this many seconds added at random to each wait, so that
            many tasks failing together do not retry together (default 0).

    Raises:
        ConfigError: a value of the wrong type or out of range, named.
    """

    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 0.0
    max_backoff: float = 60.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        check_int("retries", self.retries, minimum=0)
        retry_on = self.retry_on
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
            object.__setattr__(self, "retry_on", retry_on)
        if not isinstance(retry_on, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
        ):
            from .errors import ConfigError

            raise ConfigError(f"retry_on must be an exception class or a tuple of them, got {self.retry_on!r}")
        for name in ("backoff", "max_backoff", "jitter"):
            object.__setattr__(self, name, check_seconds(name, getattr(self, name), allow_zero=True))

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether a task whose attempt number ``attempt`` failed with ``exc`` runs again."""
        return attempt <= self.retries and isinstance(exc, self.retry_on)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` before the next one."""
        if not self.backoff and not self.jitter:
            return 0.0
        wait = self.backoff * 2.0 ** min(attempt - 1, 64)  # capped below anyway
        if self.jitter:
            wait += random.uniform(0.0, self.jitter)
        return min(self.max_backoff, wait)
