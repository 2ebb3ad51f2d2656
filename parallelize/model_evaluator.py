"""ModelEvaluator: run a function over every combination of its iterable arguments.

``evaluator.run(func, impurity=['gini', 'entropy'], depth=range(2, 31), foo='bar')``
calls ``func`` for every point of the grid (strings count as one value), first
keyword outermost, on the runner's workers, in the background; ``results()``
streams return values as they complete and ``statistics()`` reports at any moment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from .engine.execution import Execution
from .errors import ConfigError
from .results.tabular import TableSource, TabularResults
from .runner import Parallelize
from .space import grid_from_arguments
from .statistics import Statistics

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = ["ModelEvaluator"]


class ModelEvaluator(TabularResults):
    """Evaluates a function over a parameter grid on a ``Parallelize`` runner.

    ``to_dataframe`` and ``to_files`` give the current run's results,
    one row per grid point in grid order, waiting for the run to end;
    ``plot`` draws them against the parameters.

    Args:
        runner: the runner whose workers do the work (default: ``Parallelize()``).
    """

    def __init__(self, runner: Parallelize | None = None) -> None:
        if runner is None:
            runner = Parallelize()
        if not isinstance(runner, Parallelize):
            raise ConfigError(f"ModelEvaluator needs a Parallelize runner, got {runner!r}")
        self.runner = runner
        self._execution: Execution | None = None
        self.space: Any = None

    def run(self, func: Callable[..., Any] | None = None, space: Any = None, /, **params: Any) -> Execution:
        """Start calling ``func(**point)`` for every point of the grid; return at once.

        Args:
            func: the function to evaluate; may also be given as ``func=`` (as the
                original README does), so no grid parameter can be named ``func``.
            space: a ``ParamSpace`` (or any space) to sweep; optional.
            **params: more parameters: an iterable (not a string) is an axis of
                the grid, anything else is passed as is. Combined with ``space``
                as a product. Per-call options (``on_error``, ``retries``,
                ``timeout``, ``progress``, ``chunksize``) may be given as
                ``options={...}``, and a resume folder as ``checkpoint=FOLDER``
                (see ``Checkpoint``), so no grid parameter can be named
                ``options`` or ``checkpoint``.

        Returns:
            The running ``Execution``.

        Raises:
            ConfigError: no function, the function given twice, ``space`` not a
                space, or no parameters.
            ResumeMismatchError: ``checkpoint`` holds results for another grid.
        """
        if "func" in params:
            if space is not None:
                raise ConfigError("the function was given twice: positionally and as func=")
            # run(space, func=f): the one positional argument is the space.
            func, space = params.pop("func"), func
        if func is None:
            raise ConfigError("nothing to run: give the function, evaluator.run(func, **params)")
        overrides = params.pop("options", None) or {}
        checkpoint = params.pop("checkpoint", None)
        grid = grid_from_arguments(space, params, caller="evaluator.run()")
        self.space = grid
        self._execution = self.runner.run_batches(
            func, grid, call="kwargs", background=True, checkpoint=checkpoint, **overrides
        )
        return self._execution

    @property
    def execution(self) -> Execution:
        """The current run."""
        if self._execution is None:
            raise ConfigError("nothing has run yet; call evaluator.run(func, ...) first")
        return self._execution

    def results(self, ordered: bool = False) -> Iterator[Any]:
        """Stream the return values as tasks complete (or in grid order with
        ``ordered=True``), waiting for outstanding work. Callable repeatedly."""
        return self.execution.results(ordered)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (or ``timeout`` seconds); True if it ended."""
        return self.execution.wait(timeout)

    def statistics(self) -> Statistics:
        """A frozen snapshot of the run's statistics; ``print()`` it for a summary."""
        return self.execution.statistics()

    def plot(self, x: str | Sequence[str], y: str | Sequence[str], hue: str | None = None, **kw: Any) -> Figure:
        """Plot each output against each parameter, averaged over the other parameters.

        ``evaluator.plot(x=["depth"], y=["score"])`` is
        ``ps.plot(ps.metrics(evaluator.to_dataframe()), x, y, hue, **kw)`` with
        ``import parallelize.jobs as ps``: one panel per output in ``y`` and
        parameter in ``x``; a failed point's outputs are missing, so left out
        of the means. Waits for the run, as ``to_dataframe`` does.

        Args:
            x: the parameter column(s), one panel column each.
            y: the output column(s) (a dict result's keys, or ``result``), one
                panel row each.
            hue: a column to split by, one line per value; default ``None``.
            **kw: passed on to ``parallelize.jobs.plot.plot`` (``spread``).

        Returns:
            A ``matplotlib.figure.Figure``; ``fig.savefig("grid.png")`` saves it.

        Raises:
            ConfigError: an unknown column or option, or no run yet.
            BackendUnavailableError: matplotlib is not installed (``pip install "parallelize[plot]"``).
        """
        from .jobs.metrics import metrics
        from .jobs.plot import plot

        return plot(metrics(self.to_dataframe()), x, y, hue, **kw)

    def _table_source(self) -> TableSource:
        return self.execution._table_source()
