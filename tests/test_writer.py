"""Writing results to files while running, and loading them back in order."""

from __future__ import annotations

import errno
import json
import os
import random
import string
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from parallelize import (
    BackendUnavailableError,
    ConfigError,
    ModelEvaluator,
    Parallelize,
    ParamSpace,
    WriteSummary,
    read_results,
)
from parallelize.durable import atomic_write
from parallelize.results.files import PartWriter, split_by_memory
from parallelize.results.folder import MANIFEST
from parallelize.results.summary import Conversion

BACKENDS = ["thread", "process"]
FORMATS = ["parquet", "csv"]


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def record(x: int) -> dict[str, Any]:
    return {"sq": x * x, "tenth": x / 10, "label": f"item-{x}"}


def fail_on_15(x: int) -> int:
    if x == 15:
        raise ValueError("stop at 15")
    return x


def fail_on_odd(x: int) -> int:
    if x % 2:
        raise KeyError(x)
    return x


def padded(x: int) -> dict[str, Any]:
    rng = random.Random(x)
    return {"x": x, "text": "".join(rng.choice(string.ascii_letters) for _ in range(2000))}


def part_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("part-"))


def assert_only_results(folder: Path) -> None:
    """No temporary or stray file: parts and the manifest only."""
    names = sorted(os.listdir(folder))
    assert all(n.startswith("part-") or n == MANIFEST for n in names), names


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_rows_splits_into_sorted_files_in_input_order(kind: str, fmt: str, tmp_path: Path) -> None:
    with Parallelize(2, backend=kind) as runner:
        summary = runner.map(record, range(25), chunksize=3).to_files(tmp_path, max_rows=10, format=fmt)
    assert isinstance(summary, WriteSummary)
    assert summary.rows == 25
    assert [p.name for p in summary.files] == [f"part-00000{i}.{fmt}" for i in range(3)]
    assert part_files(tmp_path) == [p.name for p in summary.files]
    assert summary.bytes == sum(p.stat().st_size for p in summary.files)
    assert_only_results(tmp_path)

    sizes = []
    for path in summary.files:
        one = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path, index_col=0)
        sizes.append(len(one))
    assert sizes == [10, 10, 5]

    df = read_results(tmp_path)
    assert df.index.name == "task"
    assert df.index.tolist() == list(range(25))
    assert df["sq"].tolist() == [x * x for x in range(25)]
    assert df["tenth"].tolist() == [x / 10 for x in range(25)]  # exact, CSV included
    assert df["label"].tolist() == [f"item-{x}" for x in range(25)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_matches_to_dataframe(fmt: str, tmp_path: Path) -> None:
    space = ParamSpace(a=[1, 2, 3], b=["x", "y"])

    def work(a: int, b: str) -> dict[str, Any]:
        if (a, b) == (2, "y"):
            raise RuntimeError("no (2, y)")
        return {"score": a * 0.1, "tag": f"{b}{a}"}

    with Parallelize(2, backend="thread", on_error="collect") as runner:
        expected = runner.map(work, space).to_dataframe()
        runner.map(work, space).to_files(tmp_path, max_rows=4, format=fmt)
    got = read_results(tmp_path)
    assert got.index.tolist() == expected.index.tolist()
    assert list(got.columns) == list(expected.columns)
    for column in ["a", "b", "score", "tag"]:
        pd.testing.assert_series_equal(got[column], expected[column], check_dtype=False)
    assert got["duration"].notna().all()
    assert got.loc[3, "error"] == "RuntimeError: no (2, y)"
    assert got["error"].drop(index=3).isna().all()


def test_max_mem_splits_a_batch_into_files_of_bounded_size(tmp_path: Path) -> None:
    max_mem = 0.1  # MB
    with Parallelize(2, backend="thread") as runner:
        expected = runner.map(padded, range(120)).to_dataframe()
        summary = runner.map(padded, range(120)).to_files(tmp_path, max_rows=1000, max_mem=max_mem)
    total = int(expected.memory_usage(deep=True).sum())
    limit = max_mem * 2**20
    assert total > 2 * limit  # the single batch of 120 rows had to be split
    assert len(summary.files) >= total / limit
    for path in summary.files:
        assert path.stat().st_size <= limit
        piece = expected.loc[pd.read_parquet(path).index]
        assert piece.memory_usage(deep=True).sum() <= limit
    df = read_results(tmp_path)
    assert df.index.tolist() == list(range(120))
    assert df["text"].tolist() == expected["text"].tolist()
    assert_only_results(tmp_path)


def test_split_by_memory_gives_consecutive_pieces_under_the_limit() -> None:
    sizes = [10, 5000, 10, 10, 3000, 10, 10, 10, 800, 10] * 5
    frame = pd.DataFrame({"s": ["x" * n for n in sizes]})
    limit = 8000
    pieces = split_by_memory(frame, limit)
    assert pd.concat(pieces).index.tolist() == list(range(len(sizes)))
    for piece in pieces:
        assert len(piece) == 1 or piece.memory_usage(deep=True).sum() <= limit
    # Not needlessly small: two neighbours together would not fit.
    for a, b in pairwise(pieces):
        assert pd.concat([a, b]).memory_usage(deep=True).sum() > limit / 2


def test_execution_and_model_evaluator_write_while_running(kind: str, tmp_path: Path) -> None:
    with Parallelize(2, backend=kind) as runner:
        evaluator = ModelEvaluator(runner)
        evaluator.run(record, x=range(30))
        summary = evaluator.to_files(tmp_path / "grid", max_rows=7, format="csv")
        expected = evaluator.to_dataframe()
    assert summary.rows == 30
    assert len(summary.files) == 5
    got = read_results(tmp_path / "grid")
    assert got.index.tolist() == list(range(30))
    assert got["x"].tolist() == expected["x"].tolist()
    assert got["sq"].tolist() == expected["sq"].tolist()


def test_rows_received_before_an_error_are_written_then_it_is_raised(tmp_path: Path) -> None:
    with Parallelize(2, backend="thread") as runner:
        with pytest.raises(ValueError, match="stop at 15"):
            runner.map(fail_on_15, range(40), chunksize=1).to_files(tmp_path, max_rows=10)
    df = read_results(tmp_path)
    assert df.index.tolist() == list(range(15))
    assert df["result"].tolist() == list(range(15))
    assert json.loads((tmp_path / MANIFEST).read_text())["complete"] is False
    assert_only_results(tmp_path)


def test_skip_leaves_failures_out_of_the_files(tmp_path: Path) -> None:
    with Parallelize(2, backend="process", on_error="skip") as runner:
        summary = runner.map(fail_on_odd, range(20)).to_files(tmp_path, max_rows=4, format="csv")
    assert summary.rows == 10
    assert read_results(tmp_path)["result"].tolist() == list(range(0, 20, 2))


def test_map_rows_to_csv_restores_a_multiindex(tmp_path: Path) -> None:
    index = pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]], names=["group", "n"])
    frame = pd.DataFrame({"v": range(6)}, index=index)
    with Parallelize(2, backend="thread") as runner:
        runner.map_rows(lambda v: {"w": v * 2}, frame, pass_as="kwargs").to_files(tmp_path, max_rows=4, format="csv")
    got = read_results(tmp_path)
    assert got.index.names == ["group", "n"]
    assert got.index.tolist() == frame.index.tolist()
    assert got["w"].tolist() == [0, 2, 4, 6, 8, 10]


def test_reduce_mem_usage_shrinks_files_without_changing_values(tmp_path: Path) -> None:
    with Parallelize(2, backend="thread") as runner:
        summary = runner.map(lambda x: {"small": x % 50, "half": x / 2}, range(500)).to_files(
            tmp_path, max_rows=200, reduce_mem_usage=True
        )
    assert summary.memory_saved > 0
    first = pd.read_parquet(summary.files[0])
    assert first["small"].dtype == "int8"
    assert first["half"].dtype == "float32"
    df = read_results(tmp_path)
    assert df["small"].tolist() == [x % 50 for x in range(500)]
    assert df["half"].tolist() == [x / 2 for x in range(500)]


def test_missing_pyarrow_is_reported_before_any_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A None entry makes `import pyarrow` raise ImportError, as if it were not installed.
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with Parallelize(2, backend="thread") as runner:
        stream = runner.map(record, range(10))
        with pytest.raises(BackendUnavailableError, match=r'pip install "parallelize\[parquet\]"') as info:
            stream.to_files(tmp_path)
        assert isinstance(info.value, ImportError)
        assert stream.statistics().submitted == 0
        assert 'format="csv"' in str(info.value)
        summary = stream.to_files(tmp_path, format="csv")  # the same stream still works
    assert summary.rows == 10


def test_a_folder_with_results_needs_overwrite(tmp_path: Path) -> None:
    with Parallelize(2, backend="thread") as runner:
        runner.map(record, range(5)).to_files(tmp_path, max_rows=2, format="csv")
        (tmp_path / "notes.txt").write_text("keep me")
        with pytest.raises(ConfigError, match="overwrite=True"):
            runner.map(record, range(3)).to_files(tmp_path, format="csv")
        runner.map(record, range(3)).to_files(tmp_path, format="csv", overwrite=True)
    assert part_files(tmp_path) == ["part-000000.csv"]
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert read_results(tmp_path).index.tolist() == [0, 1, 2]


def test_bad_options_are_rejected_before_running(tmp_path: Path) -> None:
    with Parallelize(2, backend="thread") as runner:
        stream = runner.map(record, range(5))
        with pytest.raises(ConfigError, match="max_rows"):
            stream.to_files(tmp_path, max_rows=0)
        with pytest.raises(ConfigError, match="max_mem"):
            stream.to_files(tmp_path, max_mem=-1)
        with pytest.raises(ConfigError, match="format"):
            stream.to_files(tmp_path, format="xlsx")
        assert stream.statistics().submitted == 0
        stream.close()
    assert not any(tmp_path.iterdir())


def test_failed_write_leaves_neither_temp_nor_final_file(tmp_path: Path) -> None:
    target = tmp_path / "part-000000.csv"

    def broken(f: Any) -> None:
        f.write("half a row,")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken, binary=False)
    assert list(tmp_path.iterdir()) == []
    atomic_write(target, lambda f: f.write("a,b\n1,2\n"), binary=False)
    assert [p.name for p in tmp_path.iterdir()] == ["part-000000.csv"]
    assert target.read_text() == "a,b\n1,2\n"


def test_read_results_sorts_numerically_and_ignores_temp_files(tmp_path: Path) -> None:
    pd.DataFrame({"v": [2]}, index=pd.Index([1], name="task")).to_csv(tmp_path / "part-1000000.csv")
    pd.DataFrame({"v": [1]}, index=pd.Index([0], name="task")).to_csv(tmp_path / "part-999999.csv")
    (tmp_path / ".part-1000001.csv.0123abcd.tmp").write_text("task,v\n2,")
    got = read_results(tmp_path)
    assert got["v"].tolist() == [1, 2]
    assert got.index.tolist() == [0, 1]
    with pytest.raises(FileNotFoundError):
        read_results(tmp_path / "missing")


# -- values and names a format cannot keep as they are --------------------------------


class Opaque:
    """An object pyarrow cannot convert and whose repr cannot be read back."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Opaque({self.n})"


def na_among_ints(x: int) -> dict[str, Any]:
    return {"v": "n/a" if x == 7 else x}


def ints_then_strings(x: int) -> dict[str, Any]:
    return {"v": x if x < 10 else f"s{x}"}


#: (value, what read_results gives back): exact for literals, the repr for the rest.
ODD_VALUES = [
    ({"a": 1, "b": [2, 3]}, {"a": 1, "b": [2, 3]}),
    (Opaque(1), "Opaque(1)"),
    ({1, 2}, {1, 2}),
    (b"\x00bytes", b"\x00bytes"),
    ("text", "text"),
    (10**30, 10**30),
    (1 + 2j, 1 + 2j),
    ((1, "t"), (1, "t")),
    (None, None),
    ("", ""),
    (0.1, 0.1),
    (True, True),
]


def odd_value(x: int) -> dict[str, Any]:
    return {"v": ODD_VALUES[x % len(ODD_VALUES)][0], "n": x}


def int_names(x: int) -> dict[int, int]:
    return {0: x, 1: -x}


def tuple_names(x: int) -> dict[tuple[str, str], Any]:
    return {("a", "b"): x, ("a", "c"): f"t{x}"}


def clashing_names(task: int) -> dict[Any, Any]:
    return {1: task, "1": f"one-{task}", "": task * 2}


#: A name no format keeps: it comes back as its repr, and the summary says so.
ODD_NAME = Opaque(0)


def odd_name(x: int) -> dict[Any, int]:
    return {ODD_NAME: x}


def assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Every row, in order, with the same values, names and dtypes; duration and
    worker differ from one run to the next, so they are left out."""
    keep = [c for c in expected.columns if c not in ("duration", "worker")]
    assert got["duration"].notna().all()
    pd.testing.assert_frame_equal(got[keep], expected[keep])


def text_conversions(summary: WriteSummary) -> list[Conversion]:
    return [c for c in summary.conversions if c.kind == "text"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_na_among_ints_is_stored_as_text_and_every_row_comes_back(fmt: str, tmp_path: Path) -> None:
    with Parallelize(2, backend="thread") as runner:
        expected = runner.map(na_among_ints, range(30)).to_dataframe()
        summary = runner.map(na_among_ints, range(30)).to_files(tmp_path, max_rows=10, format=fmt)
    assert summary.rows == 30 and len(summary.files) == 3
    converted = text_conversions(summary)
    assert converted[0].column == "v" and converted[0].file == tmp_path / f"part-000000.{fmt}"
    assert "int, str" in converted[0].reason
    assert "column 'v' stored as text in part-000000" in str(summary)
    got = read_results(tmp_path)
    assert got["v"].tolist() == [("n/a" if x == 7 else x) for x in range(30)]
    assert [type(v) for v in got["v"]] == [str if x == 7 else int for x in range(30)]
    assert_same_rows(got, expected)
    assert json.loads((tmp_path / MANIFEST).read_text())["complete"] is True
    assert_only_results(tmp_path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_column_changing_type_between_files_is_reported_and_read_back(fmt: str, tmp_path: Path) -> None:
    with Parallelize(2, backend="thread") as runner:
        summary = runner.map(ints_then_strings, range(20)).to_files(tmp_path, max_rows=10, format=fmt)
    changes = [c for c in summary.conversions if c.kind == "type"]
    assert [(c.column, c.file.name) for c in changes] == [("v", f"part-000001.{fmt}")]
    assert f"part-000000.{fmt}" in changes[0].reason
    assert "column 'v' changes type in part-000001" in str(summary)
    got = read_results(tmp_path)
    assert got.index.tolist() == list(range(20))
    assert got["v"].tolist() == [*range(10), *(f"s{x}" for x in range(10, 20))]


@pytest.mark.parametrize("fmt", FORMATS)
def test_objects_the_format_cannot_store_are_kept_as_text(fmt: str, tmp_path: Path) -> None:
    n = 2 * len(ODD_VALUES)
    with Parallelize(2, backend="thread") as runner:
        summary = runner.map(odd_value, range(n)).to_files(tmp_path, max_rows=5, format=fmt)
    assert summary.rows == n
    converted = text_conversions(summary)
    assert {c.column for c in converted} == {"v"}
    assert {c.file for c in converted} == set(summary.files)  # every file holds odd values
    assert any("Opaque" in c.reason and "dict" in c.reason for c in converted)
    assert "stored as text" in str(summary)
    got = read_results(tmp_path)
    assert got["n"].tolist() == list(range(n))
    back = [ODD_VALUES[x % len(ODD_VALUES)][1] for x in range(n)]
    assert got["v"].tolist() == back
    assert [type(v) for v in got["v"]] == [type(v) for v in back]


def huge_and_complex(x: int) -> dict[str, Any]:
    return {"big": 2**70 + x, "c": complex(x, 1)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_columns_pyarrow_refuses_whole_are_kept_as_text(fmt: str, tmp_path: Path) -> None:
    # One type per column, but more than 64 bits or complex: pyarrow refuses them.
    with Parallelize(2, backend="thread") as runner:
        expected = runner.map(huge_and_complex, range(8)).to_dataframe()
        summary = runner.map(huge_and_complex, range(8)).to_files(tmp_path, max_rows=3, format=fmt)
    if fmt == "parquet":
        reasons = {c.column: c.reason for c in text_conversions(summary)}
        assert set(reasons) == {"big", "c"}
        assert "pyarrow refused (OverflowError" in reasons["big"]
    got = read_results(tmp_path)
    assert got["big"].tolist() == [2**70 + x for x in range(8)]
    assert_same_rows(got, expected)


@pytest.mark.parametrize("fmt", FORMATS)
def test_integer_column_names_are_kept(fmt: str, tmp_path: Path) -> None:
    with Parallelize(2, backend="thread") as runner:
        expected = runner.map(int_names, range(12)).to_dataframe()
        summary = runner.map(int_names, range(12)).to_files(tmp_path, max_rows=5, format=fmt)
    assert summary.conversions == ()
    got = read_results(tmp_path)
    assert list(got.columns) == ["input", 0, 1, "duration", "worker", "error"]
    pd.testing.assert_index_equal(got.columns, expected.columns)  # object dtype, ints as ints
    assert got[1].tolist() == [-x for x in range(12)]
    assert_same_rows(got, expected)


@pytest.mark.parametrize("fmt", FORMATS)
def test_tuple_column_names_are_kept(fmt: str, tmp_path: Path) -> None:
    with Parallelize(2, backend="thread") as runner:
        expected = runner.map(tuple_names, range(12)).to_dataframe()
        runner.map(tuple_names, range(12)).to_files(tmp_path, max_rows=5, format=fmt)
    got = read_results(tmp_path)
    pd.testing.assert_index_equal(got.columns, expected.columns)
    assert got[("a", "c")].tolist() == [f"t{x}" for x in range(12)]
    assert_same_rows(got, expected)


@pytest.mark.parametrize("fmt", FORMATS)
def test_names_clashing_once_stored_as_text_are_kept(fmt: str, tmp_path: Path) -> None:
    # 1 and "1" are both "1" as text, "" is no CSV header, and the parameter
    # "task" has the name of the index.
    space = ParamSpace(task=[3, 1, 2])
    with Parallelize(2, backend="thread") as runner:
        expected = runner.map(clashing_names, space).to_dataframe()
        runner.map(clashing_names, space).to_files(tmp_path, max_rows=2, format=fmt)
    got = read_results(tmp_path)
    assert list(got.columns) == ["task", 1, "1", "", "duration", "worker", "error"]
    assert got.index.name == "task"
    assert_same_rows(got, expected)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_name_that_cannot_be_kept_comes_back_as_its_repr_and_is_reported(fmt: str, tmp_path: Path) -> None:
    with Parallelize(2, backend="thread") as runner:
        summary = runner.map(odd_name, range(6)).to_files(tmp_path, max_rows=4, format=fmt)
    [note] = summary.conversions
    assert (note.kind, note.column, note.file.name) == ("name", ODD_NAME, f"part-000000.{fmt}")
    assert "Opaque(0)" in str(summary)
    got = read_results(tmp_path)
    assert got["Opaque(0)"].tolist() == list(range(6))


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_column_names_are_kept(fmt: str, tmp_path: Path) -> None:
    frame = pd.DataFrame([[1, "x", 2.5], [2, "n/a", None]], columns=pd.Index(["a", "a", 0], dtype=object))
    frame.index = pd.Index([10, 11], name="task")
    writer = PartWriter(tmp_path, fmt, max_rows=1, max_mem=None, reduce=False)
    writer.add(frame)
    writer.close()
    pd.testing.assert_frame_equal(read_results(tmp_path), frame)


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_strings_come_back_as_strings(fmt: str, tmp_path: Path) -> None:
    words = ["n/a", "001", "NA", "null", "", "1e3", "True"]
    with Parallelize(2, backend="thread") as runner:
        runner.map(lambda x: {"s": words[x % len(words)]}, range(14)).to_files(tmp_path, max_rows=4, format=fmt)
    assert read_results(tmp_path)["s"].tolist() == [words[x % len(words)] for x in range(14)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_map_rows_labels_of_mixed_types_are_kept(fmt: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"v": range(4)}, index=pd.Index([0, "b", 2.5, "d"], dtype=object, name="label"))
    with Parallelize(2, backend="thread") as runner:
        summary = runner.map_rows(lambda v: {"w": v * 2}, frame, pass_as="kwargs").to_files(
            tmp_path, max_rows=2, format=fmt
        )
    assert any(c.index and c.column == "label" for c in text_conversions(summary))
    assert "index level 'label' stored as text" in str(summary)
    got = read_results(tmp_path)
    assert got.index.tolist() == [0, "b", 2.5, "d"]
    assert got.index.name == "label"
    assert got["w"].tolist() == [0, 2, 4, 6]


def test_a_disk_error_names_the_folder_and_the_part(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import parallelize.results.files as files_module

    real_write = files_module.atomic_write

    def disk_full_from_part_2(path: Path, write: Any, binary: bool) -> None:
        if path.name.startswith("part-") and path.name >= "part-000002":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, write, binary)

    monkeypatch.setattr(files_module, "atomic_write", disk_full_from_part_2)
    with Parallelize(2, backend="thread") as runner:
        with pytest.raises(OSError) as info:
            runner.map(record, range(50), chunksize=5).to_files(tmp_path, max_rows=10, format="csv")
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert "part-000002.csv" in message and str(tmp_path) in message
    assert "20 row(s) are safe" in message and "are not written" in message
    monkeypatch.undo()
    assert read_results(tmp_path).index.tolist() == list(range(20))
    assert json.loads((tmp_path / MANIFEST).read_text())["complete"] is False
    assert_only_results(tmp_path)
