"""Rows of a pandas DataFrame as tasks: what ``Parallelize.map_rows`` runs.

Each task's input is ``(label, row)``: the row's index label and either the
``Series`` that ``DataFrame.iterrows()`` gives (``pass_as="pair"``, the mproc
style: ``func((label, row))``) or a dict of the row's values
(``pass_as="kwargs"``: ``func(**fields)``). Rows are produced lazily, one at a
time, as the engine pulls inputs; the label travels with the row so that the
results frame is indexed like the input frame.

Nothing here imports pandas at module level: a worker process that only runs
``kwargs`` rows never needs it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import Any, Callable, Iterator

from ..errors import ConfigError
from ..validate import check_callable, check_choice
from .frame import FrameLayout

__all__ = ["PASS_AS", "RowCall", "RowTasks", "row_tasks"]

#: How a row is handed to the function.
PASS_AS = ("pair", "kwargs")


class RowCall:
    """Calls ``func(**fields)`` for an input ``(label, fields)``.

    Args:
        func: the user's function.
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def __call__(self, item: tuple[Hashable, dict[str, Any]]) -> Any:
        return self.func(**item[1])

    def __reduce__(self) -> tuple[Any, ...]:
        return (RowCall, (self.func,))

    def __repr__(self) -> str:
        return f"RowCall({self.func!r})"


class RowTasks:
    """The rows of a frame as a lazy, sized iterable of ``(label, row)`` inputs.

    Args:
        frame: the DataFrame.
        pass_as: ``"pair"`` (``iterrows`` Series) or ``"kwargs"`` (dicts).
    """

    def __init__(self, frame: Any, pass_as: str) -> None:
        self.frame = frame
        self.pass_as = pass_as

    def __len__(self) -> int:
        return len(self.frame)

    def __iter__(self) -> Iterator[tuple[Hashable, Any]]:
        if self.pass_as == "pair":
            return self.frame.iterrows()
        columns = list(self.frame.columns)
        # itertuples reads each column's values once and keeps their own types
        # (iterrows would cast a row of ints and floats to floats).
        return ((t[0], dict(zip(columns, t[1:], strict=True))) for t in self.frame.itertuples(index=True, name=None))


def row_tasks(func: Callable[..., Any], frame: Any, pass_as: str) -> tuple[Callable[..., Any], RowTasks, FrameLayout]:
    """Check the arguments of ``map_rows`` and build its function, inputs and layout.

    Args:
        func: the user's function.
        frame: the input DataFrame.
        pass_as: ``"pair"`` or ``"kwargs"``.

    Returns:
        ``(callable, inputs, layout)`` for the runner's engine.

    Raises:
        ConfigError: ``frame`` is not a DataFrame, ``func`` is not callable, an
            unknown ``pass_as``, or (``"kwargs"``) column names that are not
            unique strings.
    """
    check_choice("pass_as", pass_as, PASS_AS)
    check_callable("func", func)
    if not (hasattr(frame, "iterrows") and hasattr(frame, "itertuples") and hasattr(frame, "columns")):
        raise ConfigError(f"map_rows needs a pandas DataFrame, got {type(frame).__name__}")
    if pass_as == "kwargs":
        columns = list(frame.columns)
        bad = [c for c in columns if not isinstance(c, str)]
        if bad:
            raise ConfigError(
                f"pass_as='kwargs' needs string column names to use as keyword arguments, got {bad[:5]!r}; "
                "rename the columns or use pass_as='pair'"
            )
        dupes = sorted(c for c, n in Counter(columns).items() if n > 1)
        if dupes:
            raise ConfigError(f"pass_as='kwargs' needs unique column names, got duplicates {dupes!r}")
    target: Callable[..., Any] = RowCall(func) if pass_as == "kwargs" else func
    layout = FrameLayout("rows", index_names=tuple(frame.index.names))
    return target, RowTasks(frame, pass_as), layout
