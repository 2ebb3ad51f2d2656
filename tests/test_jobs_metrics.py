"""metrics(): a jobs table's metrics files, and a runner's or evaluator's results, as one table."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from parallelize import ConfigError, ModelEvaluator, Parallelize
from parallelize.jobs.metrics import metrics
from parallelize.jobs.table import JOB_COLUMNS

# -- a jobs table built by hand, with job folders written here ---------------------------


def job_row(root: Path, name: str, **params: Any) -> dict[str, Any]:
    folder = root / name
    folder.mkdir()
    return {
        **params,
        "job_name": name,
        "job_id": f"id-{name}",
        "work_dir": str(folder),
        "status": "done",
        "exit_code": 0,
        "stdout": "",
        "stderr": "",
    }


def jobs_table(rows: list[dict[str, Any]], params: list[str] | None) -> pd.DataFrame:
    jobs = pd.DataFrame(rows)
    if params is not None:
        jobs.attrs["params"] = params
    return jobs


def seed_jobs(root: Path) -> pd.DataFrame:
    """The seed's example: term1 x term2 in range(2), each job writing ``product quotient``
    (the quotient left empty where its python raised ZeroDivisionError)."""
    rows = []
    for t1 in range(2):
        for t2 in range(2):
            name = f"job_{t1}_{t2}"
            row = job_row(root, name, term1=t1, term2=t2)
            quotient = "" if t2 == 0 else repr(t1 / t2)
            Path(row["work_dir"], f"{name}.metrics").write_text(f"product quotient\n{t1 * t2} {quotient}\n")
            rows.append(row)
    return jobs_table(rows, ["term1", "term2"])


def test_seed_example_one_row_per_job_with_params_and_metrics(tmp_path: Path) -> None:
    m = metrics(seed_jobs(tmp_path))
    assert list(m.columns) == ["term1", "term2", "job_name", "product", "quotient", "metrics_file", "metrics_error"]
    assert m["job_name"].tolist() == ["job_0_0", "job_0_1", "job_1_0", "job_1_1"]
    assert m["product"].tolist() == [0, 0, 0, 1]
    assert pd.api.types.is_numeric_dtype(m["product"]) and pd.api.types.is_numeric_dtype(m["quotient"])
    # job_0_0 and job_1_0 divided by zero: an empty quotient is missing, not an error.
    assert math.isnan(m["quotient"][0]) and math.isnan(m["quotient"][2])
    assert m["quotient"][1] == 0.0 and m["quotient"][3] == 1.0
    assert m["metrics_error"].tolist() == [None] * 4
    assert m["metrics_file"][3] == str(tmp_path / "job_1_1" / "job_1_1.metrics")
    assert m.attrs["params"] == ["term1", "term2"]


def test_params_default_to_every_column_that_is_not_a_job_column(tmp_path: Path) -> None:
    row = job_row(tmp_path, "j", lr=0.1, model="cnn")
    Path(row["work_dir"], "out.metrics").write_text("loss\n0.5\n")
    m = metrics(jobs_table([row], params=None))
    assert list(m.columns) == ["lr", "model", "job_name", "loss", "metrics_file", "metrics_error"]
    assert not set(JOB_COLUMNS) - {"job_name"} & set(m.columns)


def test_attrs_params_keep_their_order_and_skip_dropped_columns(tmp_path: Path) -> None:
    row = job_row(tmp_path, "j", a=1, b=2)
    Path(row["work_dir"], "out.metrics").write_text("loss\n0.5\n")
    jobs = jobs_table([row], params=["b", "gone", "a"])
    assert list(metrics(jobs).columns[:2]) == ["b", "a"]


def test_csv_and_whitespace_files_several_rows_and_files(tmp_path: Path) -> None:
    row = job_row(tmp_path, "j", a=1)
    folder = Path(row["work_dir"])
    (folder / "a.csv").write_text('epoch,loss,note\n1,0.5,"x, y"\n2,0.25,ok\n')
    (folder / "b.metrics").write_text("acc   loss\n\n0.9\t0.1\n")
    (folder / "ignored.txt").write_text("loss\n99\n")
    m = metrics(jobs_table([row], ["a"]))
    assert list(m.columns) == ["a", "job_name", "epoch", "loss", "note", "acc", "metrics_file", "metrics_error"]
    assert m["loss"].tolist() == [0.5, 0.25, 0.1]
    assert m["note"].tolist()[:2] == ["x, y", "ok"]
    assert m["metrics_file"].map(lambda p: Path(p).name).tolist() == ["a.csv", "a.csv", "b.metrics"]
    assert m["a"].tolist() == [1, 1, 1]


def test_pattern_is_a_string_or_a_list_and_matches_names_only(tmp_path: Path) -> None:
    row = job_row(tmp_path, "j", a=1)
    folder = Path(row["work_dir"])
    (folder / "scores.tsv").write_text("s\n3\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.tsv").write_text("s\n4\n")
    jobs = jobs_table([row], ["a"])
    assert metrics(jobs, "*.tsv")["s"].tolist() == [3]
    assert metrics(jobs, ["*.nothing", "scores.*"])["s"].tolist() == [3]


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "is empty"),
        (b"\n  \n", "is empty"),
        (b"a b\n1 2 3\n", "line 2 has 3 values for the 2 header names"),
        (b"a,b\n1,2\n3,4,5\n", "line 3 has 3 values for the 2 header names"),
        (b"a b\n\xff\xfe 1\n", "is not UTF-8 text"),
        (b"a b\n", "has a header row .* but no values"),
    ],
)
def test_a_bad_file_keeps_one_row_with_the_reason(tmp_path: Path, content: bytes, match: str) -> None:
    good = job_row(tmp_path, "good", a=1)
    Path(good["work_dir"], "m.metrics").write_text("a_metric\n7\n")
    bad = job_row(tmp_path, "bad", a=2)
    Path(bad["work_dir"], "m.metrics").write_bytes(content)
    m = metrics(jobs_table([good, bad], ["a"]))
    assert m["job_name"].tolist() == ["good", "bad"]
    assert m["a_metric"][0] == 7 and math.isnan(m["a_metric"][1])
    assert m["metrics_error"][0] is None
    error = m["metrics_error"][1]
    assert re.search(match, error), error
    assert str(Path(bad["work_dir"], "m.metrics")) in error and "'*.metrics'" in error
    assert m["a"].tolist() == [1, 2]


def test_a_job_without_files_or_folder_keeps_one_row(tmp_path: Path) -> None:
    empty = job_row(tmp_path, "empty", a=1)
    gone = {**job_row(tmp_path, "gone", a=2), "work_dir": str(tmp_path / "never")}
    unset = {**job_row(tmp_path, "unset", a=3), "work_dir": None}
    m = metrics(jobs_table([empty, gone, unset], ["a"]))
    assert list(m.columns) == ["a", "job_name", "metrics_file", "metrics_error"]
    assert m["job_name"].tolist() == ["empty", "gone", "unset"]
    assert m["metrics_file"].tolist() == [None, None, None]
    assert "no file matching ['*.metrics', '*.csv'] in" in m["metrics_error"][0]
    assert empty["work_dir"] in m["metrics_error"][0]
    assert "cannot list the job's folder" in m["metrics_error"][1] and "never" in m["metrics_error"][1]
    assert "no work_dir" in m["metrics_error"][2]


def test_metric_names_taken_by_params_get_a_prefix(tmp_path: Path) -> None:
    row = job_row(tmp_path, "j", a=1)
    Path(row["work_dir"], "m.metrics").write_text("a job_name loss loss\n5 x 1 2\n")
    m = metrics(jobs_table([row], ["a"]))
    assert list(m.columns) == ["a", "job_name", "metric_a", "metric_job_name", "loss", "loss.1", "metrics_file"] + [
        "metrics_error"
    ]
    assert (m["a"][0], m["metric_a"][0], m["metric_job_name"][0], m["loss.1"][0]) == (1, 5, "x", 2)


def test_text_stays_text_and_missing_markers_are_missing(tmp_path: Path) -> None:
    row = job_row(tmp_path, "j", a=1)
    Path(row["work_dir"], "m.metrics").write_text("n label\n1 x\nNA None\n3 z\n")
    m = metrics(jobs_table([row], ["a"]))
    assert m["n"].tolist()[::2] == [1.0, 3.0] and math.isnan(m["n"][1])
    assert m["label"][0] == "x" and pd.isna(m["label"][1]) and m["label"][2] == "z"


def test_an_empty_jobs_table(tmp_path: Path) -> None:
    jobs = pd.DataFrame({c: [] for c in ["a", *JOB_COLUMNS]})
    jobs.attrs["params"] = ["a"]
    m = metrics(jobs)
    assert len(m) == 0 and list(m.columns) == ["a", "job_name", "metrics_file", "metrics_error"]


# -- results of a runner or an evaluator -------------------------------------------------


def score(depth: int, criterion: str, tag: str) -> dict[str, float]:
    if depth == 0:
        raise ZeroDivisionError("depth 0")
    return {"score": 1 / depth, "size": depth * 2.0}


def evaluated() -> ModelEvaluator:
    with Parallelize(2, backend="thread", on_error="collect") as runner:
        evaluator = ModelEvaluator(runner)
        evaluator.run(score, depth=[0, 1, 2], criterion=["gini", "entropy"], tag="t")
        evaluator.to_dataframe()  # waits: the run is over before the runner shuts down
    return evaluator


def check_evaluated(m: pd.DataFrame) -> None:
    assert list(m.columns) == ["depth", "criterion", "tag", "score", "size", "metrics_error"]
    assert len(m) == 6
    failed = m["depth"] == 0
    assert m.loc[failed, "metrics_error"].tolist() == ["ZeroDivisionError: depth 0"] * 2
    assert m.loc[failed, "score"].isna().all()
    assert m.loc[~failed, "metrics_error"].tolist() == [None] * 4
    assert m.loc[~failed, "score"].tolist() == [1.0, 1.0, 0.5, 0.5]


def test_evaluator_frame_gives_params_outputs_and_errors() -> None:
    check_evaluated(metrics(evaluated().to_dataframe()))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_results_folder_is_read_back(tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    evaluated().to_files(tmp_path / "out", format=fmt)
    check_evaluated(metrics(tmp_path / "out"))
    check_evaluated(metrics(str(tmp_path / "out")))


def inverse(x: int) -> float:
    return 1 / x


def test_map_frame_with_a_plain_result_column() -> None:
    with Parallelize(2, backend="thread", on_error="collect") as runner:
        m = metrics(runner.map(inverse, range(3)).to_dataframe())
    assert list(m.columns) == ["input", "result", "metrics_error"]
    assert math.isnan(m["result"][0]) and m["result"].tolist()[1:] == [1.0, 0.5]
    assert m["metrics_error"].tolist() == ["ZeroDivisionError: division by zero", None, None]


def test_a_result_column_of_dicts_is_spread() -> None:
    frame = pd.DataFrame(
        {
            "a": [1, 2, 3],
            "result": [{"x": 1, "a": 9}, None, {"y": 2}],
            "duration": [0.1, 0.1, 0.1],
            "worker": ["w", "w", "w"],
            "error": [None, "ValueError: no", None],
        }
    )
    m = metrics(frame)
    assert list(m.columns) == ["a", "x", "result_a", "y", "metrics_error"]
    assert m["result_a"][0] == 9 and math.isnan(m["x"][1]) and m["y"][2] == 2
    assert m["metrics_error"].tolist() == [None, "ValueError: no", None]


def test_rows_of_a_list_of_dicts_keep_their_shared_index() -> None:
    def folds(a: int) -> list[dict[str, int]]:
        return [{"fold": i, "score": a + i} for i in range(2)]

    with Parallelize(2, backend="thread") as runner:
        frame = runner.map(folds, [10, 20]).to_dataframe()
    m = metrics(frame)
    assert m.index.tolist() == [0, 0, 1, 1]
    assert m["score"].tolist() == [10, 11, 20, 21] and m["metrics_error"].tolist() == [None] * 4


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, match",
    [
        (42, "got int 42"),
        ([1, 2], "got list"),
        (pd.DataFrame({"a": [1]}), r"cannot read a DataFrame with columns \['a'\]"),
    ],
)
def test_bad_source(source: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        metrics(source)


def test_a_path_that_is_not_a_results_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no folder at .*nowhere"):
        metrics(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.csv").write_text("a\n1\n")
    with pytest.raises(ConfigError, match="is not a results folder: it has no _results.json"):
        metrics(tmp_path / "plain")


@pytest.mark.parametrize(
    "pattern, match",
    [
        (3, "got int 3"),
        ([], "got an empty list"),
        (["*.csv", 4], "4 in"),
        ([""], "'' in"),
        (b"*.csv", "got bytes"),
        ("sub/*.csv", "holds a path separator"),
    ],
)
def test_bad_pattern(tmp_path: Path, pattern: Any, match: str) -> None:
    jobs = jobs_table([job_row(tmp_path, "j", a=1)], ["a"])
    with pytest.raises(ConfigError, match=match):
        metrics(jobs, pattern)


def test_params_keep_their_dtypes(tmp_path: Path) -> None:
    rows = [job_row(tmp_path, f"j{i}", n=i, lr=0.5 * i, opt=o) for i, o in enumerate(["sgd", "adam"])]
    for row in rows:
        Path(row["work_dir"], "m.metrics").write_text("loss\n1\n2\n")
    jobs = jobs_table(rows, ["n", "lr", "opt"])
    jobs["opt"] = jobs["opt"].astype("category")
    jobs["n"] = jobs["n"].astype("int32")
    m = metrics(jobs)
    assert m["n"].dtype == "int32" and m["lr"].dtype == "float64" and isinstance(m["opt"].dtype, pd.CategoricalDtype)
    assert m["n"].tolist() == [0, 0, 1, 1] and m["opt"].tolist() == ["sgd", "sgd", "adam", "adam"]
