"""plot(): one panel per metric and parameter, means with their spread, drawn without pyplot."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from parallelize import BackendUnavailableError, ConfigError, ModelEvaluator, Parallelize
from parallelize.jobs.metrics import metrics
from parallelize.jobs.plot import plot

pytest.importorskip("matplotlib")


def sweep() -> pd.DataFrame:
    """3 x 2 x 2 settings, 2 repeats each; ``loss`` missing wherever lr is 0.3."""
    rows = []
    for lr in [0.3, 0.1, 0.2]:  # not in order: the panel sorts numeric x
        for model in ["cnn", "mlp"]:
            for seed in [1, 2]:
                for rep in range(2):
                    rows.append(
                        {
                            "lr": lr,
                            "model": model,
                            "seed": seed,
                            "acc": lr * 10 + (model == "mlp") + rep,
                            "loss": float("nan") if lr == 0.3 else -lr,
                        }
                    )
    return pd.DataFrame(rows)


def line_points(ax: Any) -> list[int]:
    return [len(line.get_xdata()) for line in ax.lines]


def test_grid_labels_points_and_png(tmp_path: Path) -> None:
    fig = plot(sweep(), x=["lr", "model"], y=["acc", "loss"])
    assert len(fig.axes) == 4
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
    assert labels == [("lr", "acc"), ("model", "acc"), ("lr", "loss"), ("model", "loss")]
    acc_lr, acc_model, loss_lr, loss_model = fig.axes
    assert line_points(acc_lr) == [3] and line_points(acc_model) == [2]
    assert line_points(loss_lr) == [2]  # lr 0.3 has no loss at all: no point
    assert acc_lr.lines[0].get_xdata().tolist() == [0.1, 0.2, 0.3]
    # The mean over every other parameter: model, seed and repeats.
    assert acc_lr.lines[0].get_ydata().tolist() == pytest.approx([2.0, 3.0, 4.0])
    assert [t.get_text() for t in acc_model.get_xticklabels()] == ["cnn", "mlp"]
    assert not fig.legends
    out = tmp_path / "sweep.png"
    fig.savefig(out)
    assert out.stat().st_size > 1000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hue_gives_one_line_per_value_and_a_legend(tmp_path: Path) -> None:
    fig = plot(sweep(), x=["lr", "seed"], y="acc", hue="model")
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert line_points(ax) == [3, 3] if ax.get_xlabel() == "lr" else [2, 2]
    acc_lr = fig.axes[0]
    assert acc_lr.lines[0].get_ydata().tolist() == pytest.approx([1.5, 2.5, 3.5])  # cnn
    assert acc_lr.lines[1].get_ydata().tolist() == pytest.approx([2.5, 3.5, 4.5])  # mlp
    # The same colour for a hue value in every panel.
    assert [line.get_color() for line in fig.axes[1].lines] == [line.get_color() for line in acc_lr.lines]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["cnn", "mlp"]
    assert legend.get_title().get_text() == "model"
    fig.savefig(tmp_path / "hue.png")


def test_spread_is_a_band_for_numbers_and_error_bars_for_categories() -> None:
    from matplotlib.collections import LineCollection, PolyCollection

    fig = plot(sweep(), x=["lr", "model"], y="acc")
    band, bars = fig.axes
    (poly,) = [c for c in band.collections if isinstance(c, PolyCollection)]
    assert [c for c in bars.collections if isinstance(c, LineCollection)]
    low, high = poly.get_paths()[0].vertices[:, 1].min(), poly.get_paths()[0].vertices[:, 1].max()
    std = sweep().groupby("lr")["acc"].std()
    assert low == pytest.approx(2.0 - std[0.1]) and high == pytest.approx(4.0 + std[0.3])

    minmax = plot(sweep(), x="lr", y="acc", spread="minmax").axes[0]
    (poly,) = minmax.collections
    ys = poly.get_paths()[0].vertices[:, 1]
    assert (ys.min(), ys.max()) == pytest.approx((1.0, 5.0))

    bare = plot(sweep(), x=["lr", "model"], y="acc", spread=None)
    assert all(not ax.collections for ax in bare.axes)


def test_categories_keep_their_order_of_first_appearance() -> None:
    df = pd.DataFrame({"opt": ["sgd", "adam", "sgd", "rms", True], "v": [1, 2, 3, 4, 5]})
    ax = plot(df.iloc[:4], x="opt", y="v").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sgd", "adam", "rms"]
    assert ax.lines[0].get_ydata().tolist() == [2.0, 2.0, 4.0]
    flags = plot(pd.DataFrame({"flag": [True, False, True], "v": [1, 2, 3]}), x="flag", y="v").axes[0]
    assert [t.get_text() for t in flags.get_xticklabels()] == ["True", "False"]


def test_text_in_a_metric_is_missing_but_a_text_column_is_refused() -> None:
    df = pd.DataFrame({"a": [1, 1, 2], "m": [1.0, "oops", 3.0], "s": ["x", "y", "z"]})
    ax = plot(df, x="a", y="m").axes[0]
    assert ax.lines[0].get_ydata().tolist() == [1.0, 3.0]
    with pytest.raises(ConfigError, match=r"the y column 's' holds no numbers \(e.g. 'x'\)"):
        plot(df, x="a", y="s")


def evaluate(depth: int, criterion: str) -> dict[str, float]:
    if depth == 3:
        raise ValueError("too deep")
    return {"score": depth + (criterion == "gini")}


def test_metrics_of_jobs_and_evaluator_plot(tmp_path: Path) -> None:
    with Parallelize(2, backend="thread", on_error="collect") as runner:
        evaluator = ModelEvaluator(runner)
        evaluator.run(evaluate, depth=[1, 2, 3], criterion=["gini", "entropy"])
        fig = evaluator.plot(x=["depth"], y=["score"], hue="criterion", spread=None)
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("depth", "score")
    assert line_points(ax) == [2, 2]  # depth 3 failed: no point
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["gini", "entropy"]
    fig.savefig(tmp_path / "evaluator.png")

    # The seed's flow: metrics of a jobs table, then plot.
    rows = []
    for t1 in range(3):
        for t2 in range(2):
            folder = tmp_path / f"job_{t1}_{t2}"
            folder.mkdir()
            quotient = "" if t2 == 0 else repr(t1 / t2)
            (folder / "job.metrics").write_text(f"product quotient\n{t1 * t2} {quotient}\n")
            rows.append({"term1": t1, "term2": t2, "job_name": folder.name, "work_dir": str(folder)})
    fig = plot(metrics(pd.DataFrame(rows)), x=["term1", "term2"], y=["product", "quotient"])
    assert len(fig.axes) == 4
    assert line_points(fig.axes[3]) == [1]  # quotient against term2: only term2 = 1 has one
    fig.savefig(tmp_path / "seed.png")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"x": "nope", "y": "acc"}, r"no column 'nope' \(given as x\); the frame has columns \['lr', 'model'"),
        ({"x": "lr", "y": ["acc", "nope"]}, r"no column 'nope' \(given as y\)"),
        ({"x": "lr", "y": "acc", "hue": "nope"}, r"no column 'nope' \(given as hue\)"),
        ({"x": "lr", "y": "acc", "hue": ["model"]}, "hue must be a column name, got"),
        ({"x": [], "y": "acc"}, r"x must be a column name or a list of them, got \[\]"),
        ({"x": 3, "y": "acc"}, "x must be a column name or a list of them, got 3"),
        ({"x": "lr", "y": "acc", "spread": "sem"}, "unknown spread 'sem'; expected one of"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        plot(sweep(), **kwargs)


def test_not_a_frame() -> None:
    with pytest.raises(ConfigError, match="needs a pandas DataFrame.*got dict"):
        plot({"a": [1]}, x="a", y="a")  # type: ignore[arg-type]


def test_without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailableError, match=r'ps.plot needs matplotlib: pip install "parallelize\[plot\]"'):
        plot(sweep(), x="lr", y="acc")
    with pytest.raises(ImportError):  # also the builtin it is
        plot(sweep(), x="lr", y="acc")


def test_an_empty_frame_draws_empty_panels() -> None:
    fig = plot(pd.DataFrame({"a": pd.Series([], dtype=float), "m": pd.Series([], dtype=float)}), x="a", y="m")
    assert line_points(fig.axes[0]) == [0]
    assert np.isfinite(fig.get_size_inches()).all()
