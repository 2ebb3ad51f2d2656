"""Metrics against parameters, one panel each: ``plot(metrics(jobs), x=[...], y=[...])``.

::

               x[0]            x[1]
    y[0]   mean ± spread   mean ± spread      one line per hue value,
    y[1]   mean ± spread   mean ± spread      averaged over every other parameter

The figure is a ``matplotlib.figure.Figure`` built without pyplot, so no
global state changes: it works headless, shows itself in a notebook, and
``fig.savefig("sweep.png")`` writes it. matplotlib is an optional extra,
imported on the first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Sequence

from ..errors import BackendUnavailableError, ConfigError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["SPREADS", "plot"]

#: What the band (numeric x) or the error bars (categorical x) show around the mean.
SPREADS = ("std", "minmax", None)

Spread = Literal["std", "minmax"] | None

_INSTALL = 'ps.plot needs matplotlib: pip install "parallelize[plot]"'

#: Inches per panel: wide enough for a few category labels, as seaborn's default 4:3.
_PANEL_SIZE = (4.0, 3.0)

#: Up to this many whole-number parameter values, each gets its own tick.
_FEW_TICKS = 10

#: Total width, in category slots, over which the lines of a categorical panel are
#: spread so that their error bars do not hide each other.
_DODGE = 0.3


def plot(
    df: pd.DataFrame,
    x: str | Sequence[str],
    y: str | Sequence[str],
    hue: str | None = None,
    *,
    spread: Spread = "std",
) -> Figure:
    """Plot each metric against each parameter, averaged over the other parameters.

    A grid of ``len(y)`` rows by ``len(x)`` columns: the panel in row ``i``,
    column ``j`` shows the mean of ``y[i]`` at each value of ``x[j]``, over all
    rows with that value (missing metric values are left out of the mean; a
    value with none left has no point). A numeric ``x`` is sorted and drawn as
    a line with a shaded band; any other ``x`` (text, bools) is a category, in
    order of first appearance, drawn as points joined by a line with error
    bars. Each panel's ``ax.lines`` holds exactly one line per hue value (one
    line without ``hue``); its x label is the parameter, its y label the
    metric.

    Args:
        df: a table of parameters and metrics, e.g. ``metrics``.
        x: the parameter column(s), one panel column each.
        y: the metric column(s), one panel row each; numbers (text that is not
            a number counts as missing).
        hue: a column to split by: one line per value (sorted if numeric, else
            in order of first appearance), with the same colour in every panel
            and a legend titled by the column; default ``None``, one line.
        spread: ``"std"`` (default: mean ± standard deviation), ``"minmax"``
            (from the minimum to the maximum) or ``None`` (the mean alone).

    Returns:
        The ``matplotlib.figure.Figure``; ``fig.axes`` lists the panels row by row.

    Raises:
        ConfigError: ``df`` is not a DataFrame; ``x``, ``y`` or ``hue`` is not
            a column name (the message lists the frame's columns) or a list of
            them; a ``y`` column holds no number at all; an unknown ``spread``.
        BackendUnavailableError: matplotlib is not installed.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"plot() needs a pandas DataFrame of parameters and metrics, got {type(df).__name__}")
    xs = _names("x", x, df)
    ys = _names("y", y, df)
    if hue is not None:
        _names("hue", hue, df, single=True)
    if spread not in SPREADS:
        raise ConfigError(f"unknown spread {spread!r}; expected one of ['minmax', 'std', None]")
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise BackendUnavailableError(_INSTALL) from exc

    metrics = {m: _numbers(df, m, pd) for m in ys}
    hues = _hue_levels(df, hue, pd)
    width, height = _PANEL_SIZE
    fig = Figure(figsize=(width * len(xs), height * len(ys)), layout="constrained")
    axes = fig.subplots(len(ys), len(xs), squeeze=False)
    for i, m in enumerate(ys):
        for j, p in enumerate(xs):
            _panel(axes[i][j], df, p, m, metrics[m], hue, hues, spread, pd)
    if hue is not None and hues:
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, title=str(hue), loc="outside right upper")
    return fig


def _names(what: str, value: Any, df: pd.DataFrame, single: bool = False) -> list[str]:
    """``value`` as a non-empty list of column names of ``df``."""
    allowed = "a column name" if single else "a column name or a list of them"
    if isinstance(value, str):
        names = [value]
    elif not single and isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)) and value:
        names = list(value)
    else:
        raise ConfigError(f"{what} must be {allowed}, got {value!r}; the frame has columns {list(df.columns)!r}")
    for name in names:
        if not isinstance(name, str) or name not in df.columns:
            raise ConfigError(f"no column {name!r} (given as {what}); the frame has columns {list(df.columns)!r}")
    return names


def _numbers(df: pd.DataFrame, metric: str, pd: Any) -> pd.Series:
    """The metric's values as floats; anything that is not a number is missing."""
    column = df[metric]
    if pd.api.types.is_bool_dtype(column):
        return column.astype(float)
    values = pd.to_numeric(column, errors="coerce")
    if bool(values.isna().all()) and bool(column.notna().any()):
        sample = column[column.notna()].iloc[0]
        raise ConfigError(
            f"the y column {metric!r} holds no numbers (e.g. {sample!r}); give metric columns such as "
            f"{[c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]!r}"
        )
    return values.astype(float)


def _is_numeric(column: pd.Series, pd: Any) -> bool:
    """Numbers (not bools): plotted on a numeric axis, sorted."""
    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_numeric_dtype(column):
        return True
    present = column.dropna()
    if present.empty or pd.api.types.infer_dtype(present, skipna=True) not in (
        "integer",
        "floating",
        "mixed-integer-float",
    ):
        return False
    return True


def _levels(column: pd.Series, pd: Any) -> list[Any]:
    """The distinct values, sorted if numeric, else in order of first appearance."""
    present = column.dropna()
    if _is_numeric(column, pd):
        return sorted(present.unique().tolist())
    return list(dict.fromkeys(present.tolist()))


def _hue_levels(df: pd.DataFrame, hue: str | None, pd: Any) -> list[Any]:
    return [None] if hue is None else _levels(df[hue], pd)


def _panel(
    ax: Any,
    df: pd.DataFrame,
    param: str,
    metric: str,
    values: pd.Series,
    hue: str | None,
    hues: list[Any],
    spread: Spread,
    pd: Any,
) -> None:
    """One metric against one parameter, one line per hue value."""
    numeric = _is_numeric(df[param], pd)
    keys = df[param]
    categories: list[Any] = []
    if numeric:
        keys = pd.to_numeric(keys, errors="coerce")
    else:
        categories = _levels(keys, pd)
        position = {c: k for k, c in enumerate(categories)}
        keys = pd.Series([position.get(v, float("nan")) for v in keys], index=df.index, dtype=float)
    for k, level in enumerate(hues):
        mask = values.notna() & keys.notna()
        if hue is not None:
            mask &= df[hue] == level
        stats = values[mask].groupby(keys[mask]).agg(["mean", "std", "min", "max"]).sort_index()
        at = stats.index.to_numpy(dtype=float)
        if not numeric and len(hues) > 1:
            at = at + (k / (len(hues) - 1) - 0.5) * _DODGE
        mean = stats["mean"].to_numpy()
        if spread == "std":
            std = stats["std"].fillna(0.0).to_numpy()  # one value: no spread
            low, high = mean - std, mean + std
        elif spread == "minmax":
            low, high = stats["min"].to_numpy(), stats["max"].to_numpy()
        color = f"C{k}"
        label = "_nolegend_" if hue is None else str(level)
        ax.plot(at, mean, marker="o", color=color, label=label)
        if spread is not None and len(at):
            if numeric:
                ax.fill_between(at, low, high, color=color, alpha=0.2, linewidth=0)
            else:
                ax.errorbar(at, mean, yerr=[mean - low, high - mean], fmt="none", ecolor=color, capsize=0)
    if not numeric:
        ax.set_xticks(range(len(categories)), [str(c) for c in categories])
        ax.set_xlim(-0.5, max(len(categories), 1) - 0.5)  # half a slot either side, as a bar chart
    else:
        _numeric_ticks(ax, keys.dropna())
    ax.set_xlabel(param)
    ax.set_ylabel(metric)


def _numeric_ticks(ax: Any, keys: pd.Series) -> None:
    """Whole-number parameters get whole-number ticks (``range(4)`` is 0 1 2 3,
    not steps of 0.5): each value when there are few, else a whole-number
    locator; a lone value gets its own tick."""
    values = sorted(set(keys.tolist()))
    whole = all(float(v).is_integer() for v in values)
    if len(values) == 1 or (whole and len(values) <= _FEW_TICKS):
        ax.set_xticks(values)
    elif whole:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
