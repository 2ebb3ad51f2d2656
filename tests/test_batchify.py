"""Tests of parallelize.batchify.Batchify: sizes, contiguity, what is and is not cut."""

from __future__ import annotations

import pytest

from parallelize import Batchify as TopLevelBatchify
from parallelize.batchify import Batchify, is_scalar
from parallelize.errors import ConfigError


def sizes(data: dict, n: int, key: str = "x") -> list[int]:
    return [len(batch[key]) for batch in Batchify(data, n).results()]


@pytest.mark.parametrize(
    ("total", "n", "expected"),
    [
        (100, 4, [25, 25, 25, 25]),
        (105, 4, [27, 26, 26, 26]),
        (10, 4, [3, 3, 2, 2]),
        (7, 7, [1] * 7),
        (7, 1, [7]),
        (3, 5, [1, 1, 1]),  # n > len: len batches
    ],
)
def test_batch_sizes(total: int, n: int, expected: list[int]) -> None:
    assert sizes({"x": list(range(total))}, n) == expected
    assert len(Batchify({"x": list(range(total))}, n)) == len(expected)


@pytest.mark.parametrize("container", [list, tuple, range])
def test_slices_are_contiguous_and_cover_the_value(container: type) -> None:
    values = container(range(105)) if container is not range else range(105)
    batches = list(Batchify({"x": values, "y": "z"}, 4))
    joined: list[int] = []
    for batch in batches:
        joined.extend(batch["x"])
    assert joined == list(range(105))
    assert [b["x"][0] for b in batches] == [0, 27, 53, 79]
    if container is tuple:
        assert all(type(b["x"]) is tuple for b in batches)
    else:  # a range slice is shown as a list, as in the original README
        assert all(type(b["x"]) is list for b in batches)


def test_other_keys_are_passed_whole() -> None:
    variations = ["a", "b"]
    data = {"colors": range(100), "variations": variations, "alpha": 0.5, "name": "run"}
    batches = list(Batchify(data, 4).results())
    assert len(batches) == 4
    for batch in batches:
        assert list(batch) == ["colors", "variations", "alpha", "name"]
        assert batch["variations"] is variations
        assert batch["alpha"] == 0.5 and batch["name"] == "run"
    # The caller's dict is not changed.
    assert data["colors"] == range(100)


def test_longest_value_is_cut() -> None:
    batches = list(Batchify({"short": [1, 2, 3], "long": list(range(8))}, 2))
    assert [b["long"] for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert all(b["short"] == [1, 2, 3] for b in batches)


def test_strings_and_bytes_are_never_cut() -> None:
    text = "a much longer string than the list"
    raw = b"0123456789abcdef0123456789"
    batches = list(Batchify({"text": text, "raw": raw, "items": [1, 2, 3]}, 3))
    assert [b["items"] for b in batches] == [[1], [2], [3]]
    assert all(b["text"] == text and b["raw"] == raw for b in batches)


def test_is_scalar() -> None:
    assert is_scalar("abc") and is_scalar(b"abc") and is_scalar(bytearray(b"ab"))
    assert is_scalar(3) and is_scalar(None) and is_scalar(2.5)
    assert not is_scalar([1]) and not is_scalar(range(2)) and not is_scalar({"a": 1})


def test_numpy_arrays_are_sliced() -> None:
    np = pytest.importorskip("numpy")
    batches = list(Batchify({"x": np.arange(10)}, 3))
    assert [b["x"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_iterating_twice_gives_the_same_batches() -> None:
    b = Batchify({"x": range(10)}, 4)
    assert list(b) == list(b.results()) == list(b)
    assert "x" in repr(b)


def test_top_level_import_is_the_same_class() -> None:
    assert TopLevelBatchify is Batchify


@pytest.mark.parametrize(
    ("data", "n", "match"),
    [
        ({"x": []}, 2, "'x'.*empty"),
        ({"x": [], "y": "text"}, 2, "'x'.*empty"),
        ({"x": [1, 2]}, 0, "got 0"),
        ({"x": [1, 2]}, -3, "got -3"),
        ({"x": [1, 2]}, 2.0, "got 2.0"),
        ({"x": [1, 2]}, True, "got True"),
        ({"a": 1, "b": "text"}, 2, r"\['a', 'b'\]"),
        ({}, 2, r"\[\]"),
        ([1, 2, 3], 2, "list"),
    ],
)
def test_bad_arguments(data: object, n: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        Batchify(data, n)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
