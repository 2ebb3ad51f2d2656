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
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, ParamSpec, TypeVar, overload

from .backends import available_backends
from .engine.stream import ResultStream
from .errors import ConfigError
from .options import RunOptions
from .runner import Parallelize
from .space import grid_from_arguments
from .statistics import Statistics
from .validate import check_callable, check_choice, check_int

if TYPE_CHECKING:
    import asyncio

    from .engine.async_stream import AsyncResultStream

__all__ = ["ParallelFunction", "parallel"]

P = ParamSpec("P")
R = TypeVar("R")


class ParallelFunction(Generic[P, R]):
    """A function that still runs normally when called, plus parallel entry points.

    Attributes:
        settings: the keyword arguments used to build its ``Parallelize`` runner.
    """

    def __init__(self, func: Callable[P, R], settings: dict[str, Any]) -> None:
        check_callable("the object given to @parallel", func)
        functools.update_wrapper(self, func)
        self.__wrapped__ = func
        self.settings = dict(settings)
        self._runner: Parallelize | None = None
        self._lock = threading.Lock()
        _check_settings(self.settings)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.__wrapped__(*args, **kwargs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # As a method: bind like a function would.
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)

    @property
    def runner(self) -> Parallelize:
        """The runner, created on first use with ``settings``."""
        with self._lock:
            if self._runner is None or self._runner._closed:
                self._runner = Parallelize(**self.settings)
            return self._runner

    def map(self, iterable: Iterable[Any], *, ordered: bool = True, **overrides: Any) -> ResultStream:
        """Call the function on every item in parallel; stream the results.

        Args:
            iterable: the inputs (a parameter space passes each point as keywords).
            ordered: input order (default) or completion order.
            **overrides: per-call options, as for ``Parallelize.map``,
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
            space: a ``ParamSpace`` (or any space), or ``None``.
            ordered: grid order (default) or completion order.
            options: per-call options, as for ``Parallelize.map``.
            checkpoint: a folder where finished points are recorded; a rerun
                computes only the missing ones (see ``Checkpoint``).
            **params: grid axes (iterables, strings excepted) and fixed values,
                combined with ``space`` as a product.

        Raises:
            ConfigError: ``space`` is not a space, or neither it nor ``params`` is given.
        """
        name = getattr(self.__wrapped__, "__name__", "f")
        grid = grid_from_arguments(space, params, caller=f"{name}.grid()")
        return self.runner.map(self.__wrapped__, grid, ordered=ordered, checkpoint=checkpoint, **(options or {}))

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Schedule one call on the runner; returns a ``concurrent.futures.Future``."""
        return self.runner.submit(self.__wrapped__, *args, **kwargs)

    # -- asyncio: the same entry points, awaited (see ``Parallelize.amap``) --------------

    def amap(self, iterable: Iterable[Any], *, ordered: bool = True, **overrides: Any) -> AsyncResultStream[R]:
        """``map`` for ``async for``: the results reach the event loop without blocking it."""
        return self.runner.amap(self.__wrapped__, iterable, ordered=ordered, **overrides)

    def astarmap(
        self, iterable: Iterable[Iterable[Any]], *, ordered: bool = True, **overrides: Any
    ) -> AsyncResultStream[R]:
        """``starmap`` for ``async for``."""
        return self.runner.astarmap(self.__wrapped__, iterable, ordered=ordered, **overrides)

    def agrid(
        self,
        space: Any = None,
        /,
        *,
        ordered: bool = True,
        options: dict[str, Any] | None = None,
        checkpoint: Any = None,
        **params: Any,
    ) -> AsyncResultStream[R]:
        """``grid`` for ``async for``; the same arguments."""
        name = getattr(self.__wrapped__, "__name__", "f")
        grid = grid_from_arguments(space, params, caller=f"{name}.agrid()")
        return self.runner.amap(self.__wrapped__, grid, ordered=ordered, checkpoint=checkpoint, **(options or {}))

    def asubmit(self, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[R]:
        """``submit`` for ``await``: an ``asyncio.Future`` of the call's value (call it in a running loop)."""
        return self.runner.asubmit(self.__wrapped__, *args, **kwargs)

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


def _check_settings(settings: dict[str, Any]) -> None:
    """Check the runner's settings now, so that bad ones fail at decoration time.

    The runner is built on first use; this checks what it would: the run
    options (with ``RunOptions``), the worker count and the backend's name.
    The backend's own options are left to the backend, which is not built yet.

    Raises:
        ConfigError: naming the bad setting and what is allowed.
    """
    names = {f.name for f in dataclasses.fields(RunOptions) if f.init}
    given = {k: v for k, v in settings.items() if k in names}
    if given:
        RunOptions(**given)
    check_int(
        "max_workers",
        settings.get("max_workers"),
        minimum=1,
        allow_none=True,
        none_means="the CPUs this process may use",
    )
    if "backend" in settings:
        check_choice("backend", settings["backend"], available_backends())


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
    ``Parallelize``'s. Calling the decorated function directly runs it
    normally, in this thread.

    Args:
        func: the function (when used bare).
        **settings: arguments for the ``Parallelize`` runner.

    Returns:
        A ``ParallelFunction``, or a decorator making one.
    """
    settings = _normalise(settings)
    if func is not None:
        return ParallelFunction(func, settings)

    def decorate(f: Callable[P, R]) -> ParallelFunction[P, R]:
        return ParallelFunction(f, settings)

    return decorate
