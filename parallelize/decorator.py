"""``@parallel``: give a function ``.map`` and ``.grid`` that run it on a runner.

::

    @parallel                                    @parallel(backend="process", workers=4)
    def score(x): ...                            def fit(depth, lr): ...

    score(3)                 # a normal call     fit.grid(depth=range(2, 8), lr=[0.1, 0.01])
    list(score.map(range(100)))                  fit.statistics()

The runner is created on first use and kept; ``with_options`` gives a copy with
other settings, as tenacity's ``retry_with`` does.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from typing import Any, Callable, Generic, Iterable, ParamSpec, TypeVar, overload

from .engine.stream import ResultStream
from .errors import ConfigError
from .runner import Parallelize
from .statistics import Statistics

__all__ = ["ParallelFunction", "parallel"]

P = ParamSpec("P")
R = TypeVar("R")


class ParallelFunction(Generic[P, R]):
    """A function that still runs normally when called, plus parallel entry points.

    Attributes:
        settings: the keyword arguments used to build its :class:`Parallelize` runner.
    """

    def __init__(self, func: Callable[P, R], settings: dict[str, Any]) -> None:
        if not callable(func):
            raise ConfigError(f"@parallel must decorate a callable, got {func!r}")
        functools.update_wrapper(self, func)
        self.__wrapped__ = func
        self.settings = dict(settings)
        self._runner: Parallelize | None = None
        self._lock = threading.Lock()
        # Build the runner's options now so bad settings fail at decoration time.
        from .options import RunOptions

        names = {f.name for f in dataclasses.fields(RunOptions)}
        given = {k: v for k, v in self.settings.items() if k in names}
        if given:
            if given.get("max_workers") is None:  # None: the default, chosen at run time
                given["max_workers"] = 1
            RunOptions(**given)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.__wrapped__(*args, **kwargs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # As a method: bind like a function would.
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)

    @property
    def runner(self) -> Parallelize:
        """The runner, created on first use with :attr:`settings`."""
        with self._lock:
            if self._runner is None or self._runner._closed:
                self._runner = Parallelize(**self.settings)
            return self._runner

    def map(self, iterable: Iterable[Any], *, ordered: bool = True, **overrides: Any) -> ResultStream:
        """Call the function on every item in parallel; stream the results.

        Args:
            iterable: the inputs (a parameter space passes each point as keywords).
            ordered: input order (default) or completion order.
            **overrides: per-call options, as for :meth:`Parallelize.map`,
                including ``checkpoint=FOLDER`` to resume after a crash.
        """
        return self.runner.map(self.__wrapped__, iterable, ordered=ordered, **overrides)

    def starmap(self, iterable: Iterable[Iterable[Any]], *, ordered: bool = True, **overrides: Any) -> ResultStream:
        """Call the function with each item's elements as positional arguments."""
        return self.runner.starmap(self.__wrapped__, iterable, ordered=ordered, **overrides)

    def grid(
        self,
        space: Any = None,
        /,
        *,
        ordered: bool = True,
        options: dict[str, Any] | None = None,
        checkpoint: Any = None,
        **params: Any,
    ) -> ResultStream:
        """Call the function on every point of a grid; stream the results in grid order.

        Args:
            space: a :class:`~parallelize.ParamSpace`, or ``None``.
            ordered: grid order (default) or completion order.
            options: per-call options, as for :meth:`Parallelize.map`.
            checkpoint: a folder where finished points are recorded; a rerun
                computes only the missing ones (see :class:`~parallelize.checkpoint.Checkpoint`).
            **params: grid axes (iterables, strings excepted) and fixed values,
                combined with ``space`` as a product.
        """
        from .space import ParamSpace

        if space is None and not params:
            raise ConfigError("grid() needs a ParamSpace or keyword parameters")
        grid: Any = ParamSpace(**params) if params else space
        if space is not None and params:
            grid = space * grid
        return self.runner.map(self.__wrapped__, grid, ordered=ordered, checkpoint=checkpoint, **(options or {}))

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Schedule one call on the runner; returns a :class:`concurrent.futures.Future`."""
        return self.runner.submit(self.__wrapped__, *args, **kwargs)

    def statistics(self) -> Statistics:
        """Statistics of the latest ``map`` or ``grid``."""
        return self.runner.statistics()

    def with_options(self, **settings: Any) -> ParallelFunction[P, R]:
        """A copy with some runner settings changed, e.g. ``f.with_options(workers=8)``."""
        merged = {**self.settings, **_normalise(settings)}
        return ParallelFunction(self.__wrapped__, merged)

    def shutdown(self) -> None:
        """Release the runner's workers (a later call starts a new runner)."""
        with self._lock:
            if self._runner is not None:
                self._runner.shutdown()
                self._runner = None

    def __repr__(self) -> str:
        return f"<parallel {getattr(self.__wrapped__, '__qualname__', self.__wrapped__)!r} {self.settings}>"


def _normalise(settings: dict[str, Any]) -> dict[str, Any]:
    settings = dict(settings)
    for alias in ("workers", "threads"):
        if alias in settings:
            if "max_workers" in settings:
                raise ConfigError(f"give the number of workers once; got both {alias!r} and 'max_workers'")
            settings["max_workers"] = settings.pop(alias)
    return settings


@overload
def parallel(func: Callable[P, R], /) -> ParallelFunction[P, R]: ...


@overload
def parallel(func: None = None, /, **settings: Any) -> Callable[[Callable[P, R]], ParallelFunction[P, R]]: ...


def parallel(func: Callable[P, R] | None = None, /, **settings: Any) -> Any:
    """Decorate a function with parallel ``map``, ``starmap``, ``grid`` and ``submit``.

    Works bare (``@parallel``) and with runner settings
    (``@parallel(backend="process", workers=4, progress=True)``); the settings are
    :class:`Parallelize`'s. Calling the decorated function directly runs it
    normally, in this thread.

    Args:
        func: the function (when used bare).
        **settings: arguments for the :class:`Parallelize` runner.

    Returns:
        A :class:`ParallelFunction`, or a decorator making one.
    """
    settings = _normalise(settings)
    if func is not None:
        return ParallelFunction(func, settings)

    def decorate(f: Callable[P, R]) -> ParallelFunction[P, R]:
        return ParallelFunction(f, settings)

    return decorate
