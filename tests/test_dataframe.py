"""Results as DataFrames: one row per task, parameters beside outputs, and rows as tasks."""

from __future__ import annotations

import math
import os
from typing import Any

import pandas as pd
import pytest

from parallelize import ConfigError, ModelEvaluator, Parallelize, ParamSpace

BACKENDS = ["thread", "process"]


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


# Module-level functions: the process backend pickles them by reference.


def square_dict(x: int) -> dict[str, Any]:
    return {"sq": x * x, "half": x / 2}


def square(x: int) -> int:
    return x * x


def fail_on_3(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad input {x}")
    return x * 10


def folds(a: int, b: str) -> list[dict[str, Any]]:
    return [{"fold": i, "score": a * 10 + i} for i in range(3)]


def model(depth: int, criterion: str, seed: int) -> dict[str, Any]:
    return {"accuracy": depth / 10, "name": f"{criterion}-{depth}-{seed}"}


def add(a: int, b: int) -> int:
    return a + b


def check_meta(df: pd.DataFrame, kind: str) -> None:
    assert list(df.columns[-3:]) == ["duration", "worker", "error"]
    assert df["duration"].dtype == "float64"
    assert (df["duration"] >= 0).all()
    assert df["worker"].map(lambda w: isinstance(w, str) and w != "").all()
    pids = {int(w.split(":")[1]) for w in df["worker"]}
    if kind == "process":
        assert os.getpid() not in pids
    else:
        assert pids == {os.getpid()}


# -- shapes --------------------------------------------------------------------------


def test_dict_outputs_become_columns(kind: str) -> None:
    with Parallelize(2, backend=kind) as runner:
        df = runner.map(square_dict, range(5)).to_dataframe()
    assert list(df.columns) == ["input", "sq", "half", "duration", "worker", "error"]
    assert df.index.name == "task"
    assert df.index.tolist() == [0, 1, 2, 3, 4]
    assert df["input"].tolist() == [0, 1, 2, 3, 4]
    assert df["sq"].tolist() == [0, 1, 4, 9, 16]
    assert df["half"].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert df["error"].isna().all()
    check_meta(df, kind)


def test_scalar_outputs_give_a_result_column(kind: str) -> None:
    with Parallelize(2, backend=kind) as runner:
        df = runner.map(square, range(1, 8)).to_dataframe()
    assert list(df.columns) == ["input", "result", "duration", "worker", "error"]
    assert df["result"].tolist() == [x * x for x in range(1, 8)]
    assert df.index.tolist() == list(range(7))
    check_meta(df, kind)


def test_list_of_dicts_gives_rows_sharing_the_parameters(kind: str) -> None:
    space = ParamSpace(a=[1, 2], b=["x", "y"])
    with Parallelize(2, backend=kind) as runner:
        df = runner.map(folds, space).to_dataframe()
    assert list(df.columns) == ["a", "b", "fold", "score", "duration", "worker", "error"]
    assert len(df) == 4 * 3
    assert df.index.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert df["a"].tolist() == [1] * 6 + [2] * 6
    assert df["b"].tolist() == ["x"] * 3 + ["y"] * 3 + ["x"] * 3 + ["y"] * 3
    assert df["fold"].tolist() == [0, 1, 2] * 4
    assert df["score"].tolist() == [10, 11, 12] * 2 + [20, 21, 22] * 2
    # The rows of one task share its duration and worker.
    assert df.groupby(level="task")["duration"].nunique().eq(1).all()


def test_starmap_tuples_give_arg_columns(kind: str) -> None:
    with Parallelize(2, backend=kind) as runner:
        df = runner.starmap(add, [(1, 2), (3, 4), (5, 6)]).to_dataframe()
    assert list(df.columns) == ["arg0", "arg1", "result", "duration", "worker", "error"]
    assert df[["arg0", "arg1", "result"]].values.tolist() == [[1, 2, 3], [3, 4, 7], [5, 6, 11]]


def test_dict_inputs_to_map_give_their_keys_as_columns() -> None:
    with Parallelize(2, backend="thread") as runner:
        df = runner.map(lambda d: d["a"] + d["b"], [{"a": 1, "b": 2}, {"a": 5, "b": 5}]).to_dataframe()
    assert list(df.columns) == ["a", "b", "result", "duration", "worker", "error"]
    assert df["result"].tolist() == [3, 10]


def test_empty_input_gives_an_empty_frame_with_the_meta_columns() -> None:
    with Parallelize(2, backend="thread") as runner:
        df = runner.map(square, []).to_dataframe()
    assert len(df) == 0
    assert list(df.columns) == ["duration", "worker", "error"]
    assert df.index.name == "task"


# -- failures ------------------------------------------------------------------------


def test_failures_fill_the_error_column_under_collect(kind: str) -> None:
    with Parallelize(2, backend=kind, on_error="collect") as runner:
        df = runner.map(fail_on_3, range(6)).to_dataframe()
    assert df.index.tolist() == list(range(6))
    assert df.loc[3, "error"] == "ValueError: bad input 3"
    assert math.isnan(df.loc[3, "result"])
    assert not math.isnan(df.loc[3, "duration"])
    ok = df.drop(index=3)
    assert ok["error"].isna().all()
    assert ok["result"].tolist() == [0, 10, 20, 40, 50]


def test_failures_are_absent_under_skip(kind: str) -> None:
    with Parallelize(2, backend=kind, on_error="skip") as runner:
        df = runner.map(fail_on_3, range(6)).to_dataframe()
    assert df.index.tolist() == [0, 1, 2, 4, 5]
    assert df["error"].isna().all()
    assert df["result"].tolist() == [0, 10, 20, 40, 50]


def test_on_error_raise_raises_the_users_error() -> None:
    with Parallelize(2, backend="thread") as runner:
        with pytest.raises(ValueError, match="bad input 3"):
            runner.map(fail_on_3, range(6)).to_dataframe()


# -- ModelEvaluator and Execution ----------------------------------------------------------


def test_model_evaluator_grid_gives_parameter_columns(kind: str) -> None:
    space = ParamSpace(depth=[2, 4, 8], criterion=["gini", "entropy"])
    with Parallelize(2, backend=kind) as runner:
        evaluator = ModelEvaluator(runner)
        evaluator.run(model, space, seed=7)
        df = evaluator.to_dataframe()
        again = evaluator.to_dataframe()
    points = list(space * ParamSpace(seed=7))
    assert len(df) == len(points) == 6
    assert list(df.columns) == ["depth", "criterion", "seed", "accuracy", "name", "duration", "worker", "error"]
    assert df.index.tolist() == list(range(6))
    assert df[["depth", "criterion", "seed"]].to_dict("records") == [dict(p) for p in points]
    assert df["name"].tolist() == [f"{p['criterion']}-{p['depth']}-7" for p in points]
    pd.testing.assert_frame_equal(df, again)
    check_meta(df, kind)


def test_execution_to_dataframe_raises_the_runs_error() -> None:
    with Parallelize(2, backend="thread") as runner:
        evaluator = ModelEvaluator(runner)
        evaluator.run(lambda x: fail_on_3(x), x=range(6))
        with pytest.raises(ValueError, match="bad input 3"):
            evaluator.to_dataframe()


def test_run_queue_style_gives_one_row_per_put() -> None:
    def work(queue: Any, n: int) -> None:
        for i in range(n):
            queue.put({"i": i})
            queue.task_done()

    with Parallelize(2, backend="thread") as runner:
        df = runner.run(work, n=3).to_dataframe()
    assert list(df.columns) == ["n", "i", "duration", "worker", "error"]
    assert df.index.tolist() == [0, 0, 0, 1, 1, 1]
    assert df["i"].tolist() == [0, 1, 2, 0, 1, 2]
    assert (df["n"] == 3).all()


# -- names, order, partial consumption -------------------------------------------------------


def test_name_clashes_are_prefixed_never_overwritten() -> None:
    def echo(x: int, worker: str) -> dict[str, Any]:
        return {"x": x + 100, "error": 0.25, "duration": -1, "worker": "mine", "y": 1}

    space = ParamSpace(x=[1, 2], worker=["w"])
    with Parallelize(2, backend="thread") as runner:
        df = runner.map(echo, space).to_dataframe()
    assert list(df.columns) == [
        "x",
        "param_worker",
        "result_x",
        "result_error",
        "result_duration",
        "result_worker",
        "y",
        "duration",
        "worker",
        "error",
    ]
    assert df["x"].tolist() == [1, 2]
    assert df["result_x"].tolist() == [101, 102]
    assert df["param_worker"].tolist() == ["w", "w"]
    assert df["result_worker"].tolist() == ["mine", "mine"]
    assert df["result_error"].tolist() == [0.25, 0.25]
    assert df["error"].isna().all()
    assert (df["duration"] >= 0).all()


def test_unordered_stream_frame_is_in_input_order(kind: str) -> None:
    with Parallelize(2, backend=kind) as runner:
        df = runner.map(square, range(50), ordered=False, chunksize=3).to_dataframe()
    assert df.index.tolist() == list(range(50))
    assert df["result"].tolist() == [x * x for x in range(50)]


def test_partly_consumed_stream_gives_only_the_rest(kind: str) -> None:
    with Parallelize(2, backend=kind) as runner:
        stream = runner.map(square, range(10), chunksize=4)
        assert [next(stream), next(stream)] == [0, 1]  # half of the first batch
        df = stream.to_dataframe()
        assert list(stream) == []
    assert df.index.tolist() == list(range(2, 10))
    assert df["result"].tolist() == [x * x for x in range(2, 10)]


def test_partly_consumed_stream_with_skipped_failures() -> None:
    with Parallelize(2, backend="thread", on_error="skip") as runner:
        stream = runner.map(fail_on_3, range(10), chunksize=5)
        assert [next(stream), next(stream), next(stream)] == [0, 10, 20]
        df = stream.to_dataframe()
    assert df.index.tolist() == [4, 5, 6, 7, 8, 9]
    assert df["result"].tolist() == [40, 50, 60, 70, 80, 90]


def test_fully_consumed_stream_gives_an_empty_frame() -> None:
    with Parallelize(2, backend="thread") as runner:
        stream = runner.map(square, range(5))
        assert list(stream) == [0, 1, 4, 9, 16]
        df = stream.to_dataframe()
    assert len(df) == 0


# -- rows of a DataFrame as tasks -------------------------------------------------------------


def people() -> pd.DataFrame:
    return pd.DataFrame(
        {"age": [31, 45, 27, 60], "height": [1.80, 1.65, 1.72, 1.58], "name": ["ann", "bob", "cy", "dee"]},
        index=pd.Index(["p1", "p2", "p3", "p4"], name="person"),
    )


def describe_pair(pair: tuple[Any, pd.Series]) -> dict[str, Any]:
    label, row = pair
    assert isinstance(row, pd.Series)
    return {"label_seen": label, "row_name": row.name, "tag": f"{row['name']}:{row['age']}"}


def describe_kwargs(age: int, height: float, name: str) -> dict[str, Any]:
    return {"age_type": type(age).__name__, "tag": f"{name}:{age}", "bmi_ish": round(age / height, 3)}


def test_map_rows_passes_the_iterrows_pair_and_keeps_the_index(kind: str) -> None:
    frame = people()
    with Parallelize(2, backend=kind) as runner:
        out = runner.map_rows(describe_pair, frame).to_dataframe()
    assert out.index.equals(frame.index)
    assert out.index.name == "person"
    assert list(out.columns) == ["label_seen", "row_name", "tag", "duration", "worker", "error"]
    assert out["label_seen"].tolist() == ["p1", "p2", "p3", "p4"]
    assert out["row_name"].tolist() == ["p1", "p2", "p3", "p4"]
    assert out["tag"].tolist() == ["ann:31", "bob:45", "cy:27", "dee:60"]
    joined = frame.join(out[["tag"]])
    assert joined.loc["p3", "tag"] == "cy:27"


def test_map_rows_passes_fields_as_keyword_arguments(kind: str) -> None:
    frame = people()
    with Parallelize(2, backend=kind) as runner:
        stream = runner.map_rows(describe_kwargs, frame, pass_as="kwargs")
        out = stream.to_dataframe()
    assert out.index.equals(frame.index)
    assert out["age_type"].tolist() == ["int"] * 4  # each column keeps its own type
    assert out["tag"].tolist() == ["ann:31", "bob:45", "cy:27", "dee:60"]
    assert out["bmi_ish"].tolist() == [round(a / h, 3) for a, h in zip(frame["age"], frame["height"], strict=True)]


def test_map_rows_values_and_failures_keep_their_labels() -> None:
    frame = pd.DataFrame({"x": [1, 0, 4]}, index=[10, 20, 30])

    def inverse(x: int) -> float:
        return 1 / x

    with Parallelize(2, backend="thread", on_error="collect") as runner:
        assert list(runner.map_rows(lambda p: p[1]["x"] * 2, frame)) == [2, 0, 8]
        out = runner.map_rows(inverse, frame, pass_as="kwargs").to_dataframe()
    assert out.index.tolist() == [10, 20, 30]
    assert out.index.name is None
    assert out.loc[20, "error"] == "ZeroDivisionError: division by zero"
    assert out.loc[30, "result"] == 0.25


def test_map_rows_keeps_a_multiindex() -> None:
    index = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["group", "n"])
    frame = pd.DataFrame({"v": [1.5, 2.5, 3.5]}, index=index)
    with Parallelize(2, backend="thread") as runner:
        out = runner.map_rows(lambda v: [{"k": 0, "w": v}, {"k": 1, "w": -v}], frame, pass_as="kwargs").to_dataframe()
    assert out.index.names == ["group", "n"]
    assert out.index.tolist() == [("a", 1), ("a", 1), ("a", 2), ("a", 2), ("b", 1), ("b", 1)]
    assert out["w"].tolist() == [1.5, -1.5, 2.5, -2.5, 3.5, -3.5]


def test_map_rows_streams_lazily() -> None:
    frame = pd.DataFrame({"x": range(20_000)})
    with Parallelize(2, backend="thread") as runner:
        stream = runner.map_rows(lambda x: x, frame, pass_as="kwargs", chunksize=10)
        assert next(stream) == 0
        stats = stream.statistics()
        stream.close()
    assert stats.total == 20_000
    assert stats.submitted < 1_000  # only a bounded window of rows was pulled


def test_map_rows_rejects_bad_arguments() -> None:
    with Parallelize(2, backend="thread") as runner:
        with pytest.raises(ConfigError, match="pass_as"):
            runner.map_rows(square, people(), pass_as="tuple")
        with pytest.raises(ConfigError, match="DataFrame"):
            runner.map_rows(square, [1, 2, 3])
        with pytest.raises(ConfigError, match="string column names"):
            runner.map_rows(square, pd.DataFrame({0: [1], 1: [2]}), pass_as="kwargs")
        with pytest.raises(ConfigError, match="unique"):
            runner.map_rows(square, pd.DataFrame([[1, 2]], columns=["a", "a"]), pass_as="kwargs")
