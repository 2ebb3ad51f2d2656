"""reduce_mem_usage: smaller dtypes, never a changed value."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parallelize import MemoryReport, reduce_mem_usage

SIGNED = [np.int8, np.int16, np.int32, np.int64]
UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]


def smallest(values: list[int], types: list[type]) -> np.dtype:
    """The expected dtype, computed independently of the implementation."""
    if not values:
        return np.dtype(types[-1])
    for t in types:
        info = np.iinfo(t)
        if all(info.min <= v <= info.max for v in values):
            return np.dtype(t)
    raise AssertionError("no type holds the values")


def round_trips(values: list[float]) -> bool:
    for v in values:
        if math.isnan(v):
            continue
        w = float(np.float32(v)) if abs(v) <= float(np.finfo(np.float32).max) or math.isinf(v) else math.nan
        if not (w == v and math.copysign(1, w) == math.copysign(1, v)):
            return False
    return True


def assert_same_values(reduced: pd.DataFrame, original: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(reduced, original, check_dtype=False)
    assert reduced.index.equals(original.index)
    for i in range(original.shape[1]):
        old = original.iloc[:, i]
        new = reduced.iloc[:, i]
        back = new.astype(old.dtype)  # widening back is exact
        assert back.equals(old), original.columns[i]
        if old.dtype.kind == "f":
            assert np.array_equal(np.signbit(back.to_numpy()), np.signbit(old.to_numpy()))


# -- the property --------------------------------------------------------------------

special_floats = st.sampled_from(
    [math.nan, 0.1, 0.5, -0.0, 0.0, math.inf, -math.inf, 2.0**40, 1e300, 1e-45, 1 / 3, 3.25]
)
big_ints = st.sampled_from([2**40, -(2**63), 2**63 - 1, -1, 0, 127, 128, -129, 32767, 2**31])


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, list]]:
    n = draw(st.integers(min_value=0, max_value=12))

    def ints(lo: int, hi: int) -> list[int]:
        return draw(
            st.lists(st.one_of(st.integers(lo, hi), big_ints.filter(lambda v: lo <= v <= hi)), min_size=n, max_size=n)
        )

    small = draw(st.sampled_from([(-128, 127), (-(2**15), 2**15 - 1), (-(2**63), 2**63 - 1), (0, 300)]))
    raw: dict[str, list] = {
        "i": ints(*small),
        "i_wide": ints(-(2**63), 2**63 - 1),
        "u": draw(st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n)),
        "f": draw(st.lists(st.one_of(st.floats(), st.floats(width=32), special_floats), min_size=n, max_size=n)),
        "f_exact": draw(st.lists(st.one_of(st.floats(width=32), st.just(math.nan)), min_size=n, max_size=n)),
        "nullable": draw(
            st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), big_ints), min_size=n, max_size=n)
        ),
        "b": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "s": draw(st.lists(st.text(max_size=5), min_size=n, max_size=n)),
    }
    df = pd.DataFrame(
        {
            "i": np.array(raw["i"], dtype=np.int64),
            "i_wide": np.array(raw["i_wide"], dtype=np.int64),
            "u": np.array(raw["u"], dtype=np.uint64),
            "f": np.array(raw["f"], dtype=np.float64),
            "f_exact": np.array(raw["f_exact"], dtype=np.float64),
            "nullable": pd.array(raw["nullable"], dtype="Int64"),
            "b": np.array(raw["b"], dtype=bool),
            "s": pd.Series(raw["s"], dtype=object),
        }
    )
    return df, raw


@settings(max_examples=200, deadline=None)
@given(frames())
def test_no_value_ever_changes_and_dtypes_shrink_when_they_can(case: tuple[pd.DataFrame, dict[str, list]]) -> None:
    df, raw = case
    original = df.copy(deep=True)
    reduced, report = reduce_mem_usage(df)

    pd.testing.assert_frame_equal(df, original)  # the input is untouched
    assert_same_values(reduced, df)

    n = len(df)
    if n:
        assert reduced["i"].dtype == smallest(raw["i"], SIGNED)
        assert reduced["i_wide"].dtype == smallest(raw["i_wide"], SIGNED)
        assert reduced["u"].dtype == smallest(raw["u"], UNSIGNED)
        present = [v for v in raw["nullable"] if v is not None]
        if present:
            assert reduced["nullable"].dtype == pd.api.types.pandas_dtype(
                f"Int{smallest(present, SIGNED).itemsize * 8}"
            )
        else:
            assert reduced["nullable"].dtype == "Int64"
        assert reduced["nullable"].isna().tolist() == [v is None for v in raw["nullable"]]
        assert reduced["f"].dtype == (np.float32 if round_trips(raw["f"]) else np.float64)
        assert reduced["f_exact"].dtype == np.float32
    assert reduced["b"].dtype == bool
    assert reduced["s"].dtype == object

    assert report.before == int(df.memory_usage(deep=True).sum())
    assert report.after == int(reduced.memory_usage(deep=True).sum())
    assert report.saved == report.before - report.after >= 0
    assert {c for c, _, _ in report.columns} == {c for c in df.columns if reduced[c].dtype != df[c].dtype}


# -- the cases the old recipe got wrong -----------------------------------------------


def test_nan_stays_nan_and_is_never_filled() -> None:
    df = pd.DataFrame({"x": [1.0, math.nan, 3.0]})
    reduced, _ = reduce_mem_usage(df)
    assert reduced["x"].dtype == np.float32
    assert math.isnan(reduced["x"][1])
    assert reduced["x"].isna().tolist() == [False, True, False]


def test_large_ints_keep_a_type_that_holds_them() -> None:
    df = pd.DataFrame({"big": [2**40, 1], "low": [-(2**63), 0], "small": [-5, 100], "pos": [0, 255]})
    reduced, _ = reduce_mem_usage(df)
    assert reduced["big"].dtype == np.int64
    assert reduced["low"].dtype == np.int64
    assert reduced["small"].dtype == np.int8
    assert reduced["pos"].dtype == np.int16  # signed columns stay signed
    assert reduced["big"].tolist() == [2**40, 1]
    assert reduced["low"].tolist() == [-(2**63), 0]


def test_floats_only_go_to_float32_when_exact() -> None:
    df = pd.DataFrame({"tenth": [0.1, 0.5], "halves": [0.5, -2.25], "huge": [1e300, 1.0], "neg0": [-0.0, 1.0]})
    reduced, report = reduce_mem_usage(df)
    assert reduced["tenth"].dtype == np.float64  # 0.1 is not a float32
    assert reduced["halves"].dtype == np.float32
    assert reduced["huge"].dtype == np.float64
    assert reduced["neg0"].dtype == np.float32
    assert math.copysign(1.0, reduced["neg0"][0]) == -1.0
    assert [c for c, _, _ in report.columns] == ["halves", "neg0"]


def test_nullable_ints_stay_nullable_and_keep_na() -> None:
    df = pd.DataFrame({"n": pd.array([1, None, -3], dtype="Int64"), "u": pd.array([None, 7, 9], dtype="UInt64")})
    reduced, _ = reduce_mem_usage(df)
    assert reduced["n"].dtype == "Int8"
    assert reduced["u"].dtype == "UInt8"
    assert reduced["n"].isna().tolist() == [False, True, False]
    assert reduced["n"].tolist()[0] == 1 and reduced["n"].tolist()[2] == -3


def test_other_columns_are_left_alone() -> None:
    df = pd.DataFrame(
        {
            "b": [True, False],
            "s": ["a", "b"],
            "o": pd.Series([1, "x"], dtype=object),
            "c": pd.Categorical(["u", "v"]),
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "f32": np.array([0.5, 1.5], dtype=np.float32),
        }
    )
    reduced, report = reduce_mem_usage(df)
    assert reduced.dtypes.equals(df.dtypes)
    assert report.columns == ()
    assert report.saved == 0


def test_duplicate_column_names_are_handled_by_position() -> None:
    df = pd.DataFrame([[1, 0.1], [2, 0.2]], columns=["a", "a"])
    reduced, report = reduce_mem_usage(df)
    assert list(reduced.dtypes) == [np.dtype(np.int8), np.dtype(np.float64)]
    assert len(report.columns) == 1
    assert_same_values(reduced, df)


def test_report_records_the_bytes_saved() -> None:
    df = pd.DataFrame({"i": np.arange(10_000, dtype=np.int64) % 100, "f": np.arange(10_000, dtype=np.float64) / 4})
    reduced, report = reduce_mem_usage(df)
    assert isinstance(report, MemoryReport)
    assert report.before == int(df.memory_usage(deep=True).sum())
    assert report.after == int(reduced.memory_usage(deep=True).sum())
    # int64 -> int8 saves 7 bytes a row, float64 -> float32 saves 4.
    assert report.saved == 10_000 * (7 + 4)
    assert report.fraction_saved == pytest.approx(report.saved / report.before)
    assert (
        str(report)
        == f"memory usage {report.before / 1024:.1f} KB -> {report.after / 1024:.1f} KB: 107.4 KB saved (69%), 2 column(s) downcast"
    )
    with pytest.raises(AttributeError):
        report.before = 0  # type: ignore[misc]
