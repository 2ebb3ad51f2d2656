"""Options of a run: one frozen record, validated once.

The runner holds a ``RunOptions``; a call's keyword overrides make a new
record with ``RunOptions.replace``, validated again. Nothing mutates options.
How many workers run, and on which backend, are not options of a run: the
runner's backend owns them (``runner.max_workers``, ``runner.backend``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, TypeAlias, get_args

from .errors import ConfigError
from .retry import RetryPolicy
from .validate import check_choice, check_int, check_seconds

__all__ = ["ON_ERROR", "OnError", "ProgressOption", "RunOptions", "TqdmOptions", "default_workers"]

#: What a failed task does to the run (see README, "Failures").
OnError = Literal["raise", "collect", "skip"]
ON_ERROR: tuple[str, ...] = get_args(OnError)

#: The longest timeout, in seconds, that every timer involved can hold: the
#: interval timer that interrupts a task in a process worker takes at most a
#: 32-bit count of seconds on some platforms (about 68 years).
MAX_TIMEOUT_SECONDS = 2**31 - 1


#: What ``progress=`` takes: ``False`` (no bar), ``True`` (a bar on a terminal or
#: in a notebook, plain lines elsewhere), a mapping of tqdm keyword options, or
#: a tqdm class (any callable taking tqdm's keywords). See README, "Progress bars and logs".
ProgressOption: TypeAlias = bool | Mapping[str, Any] | Callable[..., Any]

# The keywords the engine passes to a progress class (parallelize.engine.progress).
_PROGRESS_KEYWORDS = {"total": None, "desc": "parallelize", "unit": "task", "dynamic_ncols": True, "smoothing": 0.1}


class TqdmOptions(Mapping[str, Any]):
    """tqdm keyword options given as ``progress={...}``, frozen: a copy no one can change.

    Equal to any mapping with the same items; hashable (by its keys) so that a
    ``RunOptions`` holding it stays hashable.

    Args:
        options: the keyword options, e.g. ``{"desc": "fit", "leave": False}``.
    """

    __slots__ = ("_options",)

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._options = dict(options)

    def __getitem__(self, key: str) -> Any:
        return self._options[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)

    def __hash__(self) -> int:
        # Equal mappings have equal keys; the values (a file, a dict) may not be hashable.
        return hash(frozenset(self._options))

    def __repr__(self) -> str:
        return repr(self._options)


@functools.lru_cache(maxsize=1)
def _tqdm_keywords() -> frozenset[str]:
    """The keyword options a tqdm bar takes (the notebook bar adds ``display``)."""
    from tqdm.std import tqdm

    names = set(inspect.signature(tqdm.__init__).parameters) - {"self", "iterable", "kwargs"}
    return frozenset(names | {"display"})


def check_progress(value: Any) -> ProgressOption:
    """``value`` as ``RunOptions.progress`` keeps it (a mapping frozen as ``TqdmOptions``).

    Raises:
        ConfigError: ``value`` is none of the allowed forms, a mapping names a
            keyword tqdm does not take (or ``total``, which the run sets), or a
            callable cannot take tqdm's keywords.
    """
    allowed = (
        "True, False, a dict of tqdm keyword options (e.g. {'desc': 'fit', 'leave': False}) "
        "or a tqdm class (e.g. tqdm.notebook.tqdm, or any callable taking tqdm's keywords)"
    )
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        keywords = _tqdm_keywords()
        unknown = sorted(repr(k) for k in value if not isinstance(k, str) or k not in keywords or k == "total")
        if unknown:
            raise ConfigError(
                f"progress={dict(value)!r}: {', '.join(unknown)} is not a tqdm option one may set here; "
                f"expected some of {sorted(keywords - {'total'})} (the run sets total)"
            )
        return TqdmOptions(value)
    if callable(value):
        try:
            signature = inspect.signature(value)
        except (TypeError, ValueError):  # no signature to read (some builtins): trusted
            return value
        try:
            signature.bind(**_PROGRESS_KEYWORDS)
        except TypeError as exc:
            raise ConfigError(
                f"progress={value!r} cannot be called with tqdm's keywords "
                f"({', '.join(f'{k}=' for k in _PROGRESS_KEYWORDS)}): {exc}; expected {allowed}"
            ) from None
        return value
    raise ConfigError(f"progress={value!r} is not allowed; expected {allowed}")


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
        progress: ``False``, ``True`` (a tqdm bar on a terminal or in a
            notebook, plain lines elsewhere), tqdm keyword options (kept as a
            ``TqdmOptions``) or a tqdm class; see ``ProgressOption``.
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
    progress: ProgressOption = False
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
        object.__setattr__(self, "progress", check_progress(self.progress))
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
