"""Tests of parallelize.space (parameter spaces) and parallelize.distributions."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import parallelize.space as space_module
from parallelize.distributions import LogUniform, RandInt, Uniform, as_random, loguniform, randint, uniform
from parallelize.errors import ConfigError, ParallelizeError
from parallelize.space import (
    Params,
    ParamSpace,
    PointsSpace,
    ProductSpace,
    RepeatSpace,
    Space,
    SumSpace,
    ZipSpace,
    grid_from_arguments,
    params_hash,
    zip_spaces,
)

ROOT = str(Path(space_module.__file__).resolve().parents[1])

# --------------------------------------------------------------------------- strategies

scalars = st.one_of(
    st.integers(-5, 5), st.text(max_size=3), st.booleans(), st.none(), st.floats(allow_nan=False, width=16)
)


def grids(keys: str, min_len: int = 0, max_keys: int = 3) -> st.SearchStrategy[ParamSpace]:
    """ParamSpaces over a subset of ``keys``, each axis a list of 0-3 (or min_len-3) values."""
    axes = st.dictionaries(st.sampled_from(keys), st.lists(scalars, min_size=min_len, max_size=3), max_size=max_keys)
    return axes.map(lambda d: ParamSpace(**d))


@st.composite
def same_key_grids(draw: st.DrawFn, n: int = 2) -> list[ParamSpace]:
    keys = draw(st.lists(st.sampled_from("abc"), unique=True, max_size=3))
    out = []
    for _ in range(n):
        axes = {k: draw(st.lists(scalars, max_size=3)) for k in draw(st.permutations(keys))}
        out.append(ParamSpace(**axes))
    return out


@st.composite
def composite_spaces(draw: st.DrawFn) -> Space:
    """A random expression of the algebra over small grids."""
    a, b = draw(same_key_grids())
    c = draw(grids("xyz"))
    n = draw(st.integers(0, 3))
    zipped = ParamSpace.zip(p=list(range(len(c))), q="s") if len(c) else ParamSpace(p=[], q="s")
    options = [
        a,
        a + b,
        a * c,
        n * a,
        c * n,
        n * (a + b) * c,
        zip_spaces(c, zipped),
        cast(Space, sum([a, b, a])),
        (a + b) * (n * c),
    ]
    return draw(st.sampled_from(options))


SETTINGS = settings(deadline=None, max_examples=60)

# --------------------------------------------------------------------------- the original README


def test_seed_readme_grid() -> None:
    space = ParamSpace(a=range(10), b=1e-3, c="hello", d=[True, False])
    assert len(space) == 20
    assert space.keys == ("a", "b", "c", "d")
    sample = space.sample(5, replace=False)
    assert len(sample) == 5 and len(set(sample)) == 5
    assert all(p in list(space) for p in sample)


def test_seed_readme_algebra() -> None:
    a = ParamSpace(type="a", param=[1, 2, 3])
    b = ParamSpace(type="b", param=[4, 5, 6])
    c = ParamSpace(other_param=1.5)
    space = 10 * (a + b) * c
    assert len(space) == 60
    assert list(space)[:3] == [{"type": "a", "param": p, "other_param": 1.5} for p in (1, 2, 3)]
    assert list(space)[3] == {"type": "b", "param": 4, "other_param": 1.5}


def test_last_key_varies_fastest() -> None:
    space = ParamSpace(a=[1, 2], b=["x", "y", "z"])
    assert [(p["a"], p["b"]) for p in space] == list(itertools.product([1, 2], ["x", "y", "z"]))


def test_scalars_and_strings_are_one_value_axes() -> None:
    space = ParamSpace(s="hello", b=b"raw", n=3, f=0.5, m={"k": 1}, n_none=None)
    assert len(space) == 1
    assert space[0] == {"s": "hello", "b": b"raw", "n": 3, "f": 0.5, "m": {"k": 1}, "n_none": None}
    assert space["s"] == ("hello",)


def test_values_keep_their_own_types() -> None:
    # mproc coerced everything to one numpy dtype, turning 1 into '1'.
    space = ParamSpace(mixed=[1, "two", 3.0, None, True])
    assert [type(p["mixed"]) for p in space] == [int, str, float, type(None), bool]
    np = pytest.importorskip("numpy")
    arr = ParamSpace(a=np.array([1, 2, 3]), f=np.array([0.5]))
    assert [type(p["a"]) for p in arr] == [int, int, int] and type(arr[0]["f"]) is float


def test_axes_are_materialised_once_and_range_stays_lazy() -> None:
    gen = ParamSpace(a=(i * i for i in range(4)))
    assert list(gen) == list(gen) == [{"a": 0}, {"a": 1}, {"a": 4}, {"a": 9}]
    huge = ParamSpace(a=range(10**12), b=["x", "y"])
    assert huge["a"] == range(10**12)
    assert list(itertools.islice(huge, 3)) == [{"a": 0, "b": "x"}, {"a": 0, "b": "y"}, {"a": 1, "b": "x"}]
    assert huge[-1] == {"a": 10**12 - 1, "b": "y"}
    assert ParamSpace(s={"b", "a", "c"})["s"] == ("a", "b", "c")  # sets sorted: same order everywhere


def test_empty_axis_and_empty_space() -> None:
    empty = ParamSpace(a=[], b=[1, 2])
    assert len(empty) == 0 and list(empty) == [] and not empty
    assert empty.sample(0) == []
    with pytest.raises(ConfigError, match="k=1.*len 0"):
        empty.sample(1)
    with pytest.raises(ConfigError, match="empty space"):
        empty.sample(1, replace=True)
    assert list(ParamSpace()) == [{}] and len(ParamSpace()) == 1


def test_sizes_beyond_sys_maxsize() -> None:
    space = ParamSpace(a=range(10**10), b=range(10**10))
    assert space.size == 10**20
    with pytest.raises(OverflowError):
        len(space)
    assert space[10**20 - 1] == {"a": 10**10 - 1, "b": 10**10 - 1}
    sample = space.sample(10, seed=1)
    assert len(set(sample)) == 10 and sample == space.sample(10, seed=1)


# --------------------------------------------------------------------------- Params


def test_params_mapping_behaviour() -> None:
    p = Params(a=1, b="x")
    assert repr(p) == "Params(a=1, b='x')"
    assert p == {"b": "x", "a": 1} and {"a": 1, "b": "x"} == p and p != {"a": 1}
    assert p == Params({"b": "x"}, a=1) and hash(p) == hash(Params(b="x", a=1))
    assert dict(p) == {"a": 1, "b": "x"} and list(p) == ["a", "b"] and len(p) == 2
    assert p.hash == params_hash({"a": 1, "b": "x"})
    assert repr(Params({"not an identifier": 1})) == "Params({'not an identifier': 1})"
    assert pickle.loads(pickle.dumps(p)) == p
    with pytest.raises(TypeError):
        p["a"] = 2  # type: ignore[index]
    with pytest.raises(AttributeError):
        p.x = 1  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="keys must be strings"):
        Params({1: "a"})


def test_spaces_are_immutable_and_picklable() -> None:
    a = ParamSpace(a=[1, 2], b="x")
    for space in (
        a,
        a + a,
        a * ParamSpace(c=range(3)),
        2 * a,
        ParamSpace.zip(p=[1, 2], q=3),
        ParamSpace.from_points([{"a": 1}]),
    ):
        with pytest.raises(AttributeError, match="immutable"):
            space._n = 5  # type: ignore[misc]
        clone = pickle.loads(pickle.dumps(space))
        assert list(clone) == list(space) and repr(clone) == repr(space)


# --------------------------------------------------------------------------- algebra properties


@SETTINGS
@given(grids("abc"), grids("xyz"))
def test_product_length_and_order(a: ParamSpace, b: ParamSpace) -> None:
    prod = a * b
    assert len(prod) == len(a) * len(b)
    assert list(prod) == [{**p, **q} for p in a for q in b]  # a outermost


@SETTINGS
@given(same_key_grids())
def test_sum_concatenates(pair: list[ParamSpace]) -> None:
    a, b = pair
    assert list(a + b) == list(a) + list(b)
    assert list(sum(pair)) == list(a) + list(b)  # type: ignore[arg-type]
    assert len(a + b) == len(a) + len(b)


@SETTINGS
@given(grids("abc"), st.integers(0, 4))
def test_repeat(a: ParamSpace, n: int) -> None:
    assert list(n * a) == list(a) * n == list(a * n)


@SETTINGS
@given(composite_spaces())
def test_indexing_matches_iteration(space: Space) -> None:
    points = list(space)
    assert len(points) == len(space)
    for i in range(-len(points), len(points)):
        assert space[i] == points[i]
    assert space[1:4] == points[1:4]
    with pytest.raises(IndexError):
        space[len(points)]
    with pytest.raises(IndexError):
        space[-len(points) - 1]


@SETTINGS
@given(composite_spaces(), st.integers(0, 2**32), st.data())
def test_sampling_without_replacement(space: Space, seed: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(space)))
    sample = space.sample(k, seed=seed)
    assert len(sample) == k
    points = list(space)
    # Distinct *positions*: compare as multisets, since a space may repeat a point.
    remaining = list(points)
    for p in sample:
        remaining.remove(p)  # ValueError if drawn more often than it occurs
    assert space.sample(k, seed=seed) == sample


@SETTINGS
@given(composite_spaces(), st.integers(0, 2**32))
def test_sampling_with_replacement_stays_inside(space: Space, seed: int) -> None:
    if not len(space):
        return
    points = list(space)
    sample = space.sample(25, replace=True, seed=seed)
    assert len(sample) == 25 and all(p in points for p in sample)


def test_sample_of_sum_is_weighted_by_size() -> None:
    a = ParamSpace(type="a", param=[1, 2, 3])
    b = ParamSpace(type="b", param=[4, 5, 6])
    sample = (10 * a + b).sample(20_000, replace=True, seed=7)
    share = sum(p["type"] == "a" for p in sample) / len(sample)
    assert abs(share - 10 / 11) < 0.01


def test_huge_space_samples_without_building_it(monkeypatch: pytest.MonkeyPatch) -> None:
    space = ParamSpace(x=range(10**6), y=range(10**6))
    assert space.size == 10**12

    def no_iteration(self: object) -> None:
        raise AssertionError("sampling must not walk the space")

    # Speed belongs to the benchmarks; what is tested is that no point is built
    # by walking the space: 10**12 points could not be.
    monkeypatch.setattr(type(space), "__iter__", no_iteration)
    sample = space.sample(1000, seed=3)
    assert len(set(sample)) == 1000
    assert all(0 <= p["x"] < 10**6 and 0 <= p["y"] < 10**6 for p in sample)


def test_same_seed_same_sample_and_unseeded_varies() -> None:
    space = ParamSpace(a=range(1000), b=["x", "y"])
    assert space.sample(10, seed=5) == space.sample(10, seed=5)
    assert space.sample(10, seed=5) != space.sample(10, seed=6)
    assert random.Random(0).random() == random.Random(0).random()  # global state untouched below
    state = random.getstate()
    space.sample(10, seed=1)
    assert random.getstate() == state


_CHILD = """
from parallelize.space import ParamSpace, params_hash
from parallelize.distributions import loguniform
space = 3 * ParamSpace(name={"alpha", "beta", "gamma"}, n=range(100)) + ParamSpace(name="z", n=[1, 2])
print([dict(p) for p in space.sample(20, seed=42)])
print([dict(p) for p in ParamSpace(lr=loguniform(1e-4, 1.0), act=["a", "b"]).sample(5, seed=9)])
print(params_hash({"s": "text", "t": (1, 2.5, None), "d": {"k": [True, b"x"]}, "f": frozenset({"u", "v"})}))
"""


def test_seed_and_hash_are_stable_across_processes() -> None:
    outputs = []
    for hashseed in ("1", "2"):  # a different PYTHONHASHSEED salts str hashes differently
        env = {**os.environ, "PYTHONPATH": ROOT, "PYTHONHASHSEED": hashseed}
        run = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True)
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    space = 3 * ParamSpace(name={"alpha", "beta", "gamma"}, n=range(100)) + ParamSpace(name="z", n=[1, 2])
    here = [
        str([dict(p) for p in space.sample(20, seed=42)]),
        str([dict(p) for p in ParamSpace(lr=loguniform(1e-4, 1.0), act=["a", "b"]).sample(5, seed=9)]),
        params_hash({"s": "text", "t": (1, 2.5, None), "d": {"k": [True, b"x"]}, "f": frozenset({"u", "v"})}),
    ]
    assert outputs[0].splitlines() == here


# --------------------------------------------------------------------------- errors


def test_error_types() -> None:
    assert issubclass(ConfigError, ParallelizeError) and issubclass(ConfigError, ValueError)


def test_sum_needs_same_keys() -> None:
    with pytest.raises(ConfigError, match=r"only in left \['c'\], only in right \['d'\]"):
        ParamSpace(a=1, c=2) + ParamSpace(a=1, d=2)
    assert len(ParamSpace(a=1, b=2) + ParamSpace(b=3, a=4)) == 2  # key order does not matter
    with pytest.raises(TypeError):
        ParamSpace(a=1) + 1


def test_product_needs_disjoint_keys() -> None:
    with pytest.raises(ConfigError, match=r"share keys \['a'\]"):
        ParamSpace(a=1, b=2) * ParamSpace(a=3)


@pytest.mark.parametrize("n", [2.5, -1, True, 2.0])
def test_repeat_count_must_be_non_negative_int(n: object) -> None:
    with pytest.raises(ConfigError, match=f"got {n!r}"):
        n * ParamSpace(a=1)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=f"got {n!r}"):
        ParamSpace(a=1) * n  # type: ignore[operator]


def test_zip() -> None:
    space = ParamSpace.zip(a=[1, 2, 3], b=["x", "y", "z"], c="const")
    assert list(space) == [
        {"a": 1, "b": "x", "c": "const"},
        {"a": 2, "b": "y", "c": "const"},
        {"a": 3, "b": "z", "c": "const"},
    ]
    assert space["b"] == ("x", "y", "z") and space.keys == ("a", "b", "c")
    assert repr(space) == "ParamSpace.zip(a=[1, 2, 3], b=['x', 'y', 'z'], c='const')"
    assert list(zip_spaces(ParamSpace(a=[1, 2]), ParamSpace(b=[3, 4]))) == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]
    with pytest.raises(ConfigError, match="a=3, b=2"):
        ParamSpace.zip(a=[1, 2, 3], b=[1, 2])
    with pytest.raises(ConfigError, match=r"a, b=4, c=3"):
        zip_spaces(ParamSpace(a=[1, 2], b=[1, 2]), ParamSpace(c=[1, 2, 3]))
    with pytest.raises(ConfigError, match=r"share keys \['a'\]"):
        zip_spaces(ParamSpace(a=[1]), ParamSpace(a=[2]))
    with pytest.raises(ConfigError, match="distribution"):
        ParamSpace.zip(a=[1, 2], b=uniform(0, 1))


def test_indexing_errors() -> None:
    space = ParamSpace(a=[1, 2], b="x")
    with pytest.raises(KeyError, match=r"'z' is not a key.*available keys: \['a', 'b'\]"):
        space["z"]
    with pytest.raises(IndexError, match="index 2 out of range"):
        space[2]
    with pytest.raises(TypeError, match="float"):
        space[1.0]
    assert space["a"] == (1, 2) and (space * ParamSpace(c=[3]))["c"] == (3,) and (2 * space)["b"] == ("x",)
    with pytest.raises(TypeError, match="sum has no single axis"):
        (space + space)["a"]


def test_sample_errors() -> None:
    space = ParamSpace(a=[1, 2], b=[1, 2])
    with pytest.raises(ConfigError, match="k=5 points without replacement from a space of len 4"):
        space.sample(5)
    assert len(space.sample(5, replace=True, seed=0)) == 5
    for k in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="k must be an integer >= 0"):
            space.sample(k)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="seed must be an integer or None"):
        space.sample(1, seed="abc")  # type: ignore[arg-type]


def test_grid_from_arguments() -> None:
    space = ParamSpace(a=[1, 2])
    grid = grid_from_arguments(space, {"b": [3, 4], "tag": "xy"}, caller="f.grid()")
    assert list(grid) == list(space * ParamSpace(b=[3, 4], tag="xy"))
    assert grid_from_arguments(space, {}, caller="f.grid()") is space
    assert list(grid_from_arguments(None, {"b": range(2)}, caller="f.grid()")) == [{"b": 0}, {"b": 1}]
    with pytest.raises(ConfigError, match=r"nothing to evaluate: f\.grid\(\) needs a ParamSpace"):
        grid_from_arguments(None, {}, caller="f.grid()")
    with pytest.raises(ConfigError, match=r"space given to f\.grid\(\) must be a ParamSpace .*got list"):
        grid_from_arguments([1, 2], {"b": [1]}, caller="f.grid()")


def test_unsortable_set_axis() -> None:
    with pytest.raises(ConfigError, match="unsortable set"):
        ParamSpace(a={1, "x"})


# --------------------------------------------------------------------------- repr


def test_reprs() -> None:
    a, b = ParamSpace(a=range(3)), ParamSpace(b=[1, 2])
    assert repr(a * b) == "ParamSpace(a=range(0, 3)) * ParamSpace(b=[1, 2])"
    assert repr(3 * b) == repr(b * 3) == "3 * ParamSpace(b=[1, 2])"
    assert repr(2 * (b + b) * a) == "2 * (ParamSpace(b=[1, 2]) + ParamSpace(b=[1, 2])) * ParamSpace(a=range(0, 3))"
    assert repr(a * (2 * b)) == "ParamSpace(a=range(0, 3)) * (2 * ParamSpace(b=[1, 2]))"
    assert repr(2 * (a * b)) == "2 * (ParamSpace(a=range(0, 3)) * ParamSpace(b=[1, 2]))"
    assert repr(ParamSpace(x=list(range(100)))) == "ParamSpace(x=[0, 1, 2, 3, ..., 99])"
    assert (
        repr(ParamSpace(lr=loguniform(1e-5, 0.1), n=randint(1, 5)))
        == "ParamSpace(lr=loguniform(1e-05, 0.1), n=randint(1, 5))"
    )
    assert isinstance(2 * (b + b) * a, ProductSpace) and isinstance(b + b, SumSpace) and isinstance(3 * b, RepeatSpace)
    assert isinstance(ParamSpace.zip(x=[1]), ZipSpace)


# --------------------------------------------------------------------------- from_dict / from_points


def test_from_dict_modes() -> None:
    config = {"a": [1, 2, 3], "b": ["x", "y", "z"]}
    assert list(ParamSpace.from_dict(config, mode="uniform")) == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 3, "b": "z"},
    ]
    combo = ParamSpace.from_dict({"n": [1, 2], "s": ["1", "2"]}, mode="combinatorial")
    assert len(combo) == 4 and [type(p["n"]) for p in combo] == [int] * 4 and [type(p["s"]) for p in combo] == [str] * 4
    rand = ParamSpace.from_dict(config, mode="random", n_samples=500, seed=1)
    assert isinstance(rand, PointsSpace) and len(rand) == 500 and rand.keys == ("a", "b")
    assert rand[3] == list(rand)[3]
    # each key is drawn independently, so pairs outside the zip appear too
    assert {(p["a"], p["b"]) for p in rand} == set(itertools.product([1, 2, 3], "xyz"))
    assert list(ParamSpace.from_dict(config, mode="random", n_samples=20, seed=1)) == list(rand)[:20]
    assert len(ParamSpace.from_dict(config, mode="random", n_samples=0)) == 0


def test_from_dict_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"^unknown mode 'x'; expected one of \['combinatorial', 'random', 'uniform'\]$"
    ):
        ParamSpace.from_dict({"a": [1]}, mode="x")
    with pytest.raises(ConfigError, match="requires n_samples"):
        ParamSpace.from_dict({"a": [1]}, mode="random")
    with pytest.raises(ConfigError, match="only used with mode='random'"):
        ParamSpace.from_dict({"a": [1]}, mode="uniform", n_samples=3)
    with pytest.raises(ConfigError, match="a=2, b=1"):
        ParamSpace.from_dict({"a": [1, 2], "b": [1]}, mode="uniform")
    with pytest.raises(ConfigError, match="string keys"):
        ParamSpace.from_dict({1: [1]}, mode="combinatorial")  # type: ignore[dict-item]


def test_from_points() -> None:
    space = ParamSpace.from_points([{"a": 1, "b": 2}, {"b": 4, "a": 3}])
    assert list(space) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}] and space.keys == ("a", "b")
    assert space["a"] == (1, 3)
    assert list(space + ParamSpace(a=[5], b=6)) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}]
    with pytest.raises(ConfigError, match=r"point 1 has keys \['a'\], expected \['a', 'b'\]"):
        ParamSpace.from_points([{"a": 1, "b": 2}, {"a": 3}])


# --------------------------------------------------------------------------- distributions


class FakeDist:
    """The bare ``rvs(random_state=...)`` protocol."""

    def rvs(self, random_state: object = None) -> int:
        return int(random_state.randint(0, 1000))  # type: ignore[attr-defined]  # numpy or random


def test_distribution_space_can_only_be_sampled() -> None:
    space = ParamSpace(lr=loguniform(1e-5, 1e-1), units=randint(16, 64), act=["relu", "tanh"], f=FakeDist())
    for op in (len, list, lambda s: s[0], lambda s: s.size):
        with pytest.raises(TypeError, match=r"distribution axes \['lr', 'units', 'f'\].*can only be sampled"):
            op(space)
    assert space.is_finite is False and bool(space)
    assert space["lr"] == loguniform(1e-5, 1e-1)
    sample = space.sample(300, seed=4)
    assert len(sample) == 300 and sample == space.sample(300, seed=4)
    assert all(1e-5 <= p["lr"] < 1e-1 and 16 <= p["units"] < 64 and p["act"] in ("relu", "tanh") for p in sample)
    assert {type(p["units"]) for p in sample} == {int} and {type(p["f"]) for p in sample} == {int}
    assert {p["act"] for p in sample} == {"relu", "tanh"}


def test_distribution_space_in_the_algebra() -> None:
    dist = ParamSpace(lr=uniform(0, 1))
    grid = ParamSpace(model=["a", "b"])
    prod = grid * dist
    assert prod.keys == ("model", "lr") and not prod.is_finite
    assert len(prod.sample(10, seed=1)) == 10 and len((3 * dist).sample(3, seed=1)) == 3
    with pytest.raises(ConfigError, match="no size to weigh"):
        (dist + dist).sample(2)
    with pytest.raises(ConfigError, match="no size to weigh"):
        ((dist + dist) * grid).sample(2)


def test_helper_distributions() -> None:
    rng = random.Random(0)
    assert all(2.0 <= uniform(2, 3).rvs(random_state=rng) < 3.0 for _ in range(1000))
    assert {randint(1, 4).rvs(random_state=rng) for _ in range(1000)} == {1, 2, 3}  # high exclusive
    logs = loguniform(1e-3, 1e3).rvs(size=2000, random_state=1)
    assert all(1e-3 <= v < 1e3 for v in logs) and 0.4 < sum(v < 1 for v in logs) / 2000 < 0.6
    assert uniform(0, 1).rvs(random_state=3) == uniform(0, 1).rvs(random_state=3)
    assert isinstance(uniform(0, 1).rvs(), float)
    assert pickle.loads(pickle.dumps(randint(1, 4))) == randint(1, 4) and hash(uniform(0, 1)) == hash(Uniform(0.0, 1.0))
    assert isinstance(loguniform(1, 2), LogUniform) and isinstance(randint(1, 2), RandInt)
    with pytest.raises(AttributeError, match="immutable"):
        uniform(0, 1).low = 3  # type: ignore[misc]
    np = pytest.importorskip("numpy")
    for state in (np.random.default_rng(0), np.random.RandomState(0)):
        assert isinstance(as_random(state), random.Random)
        assert 0 <= uniform(0, 1).rvs(random_state=state) < 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: uniform(1, 1), "low < high"),
        (lambda: uniform(0, float("inf")), "finite number"),
        (lambda: loguniform(0, 1), "0 < low < high"),
        (lambda: randint(3, 3), "high is exclusive"),
        (lambda: randint(0.5, 3), "randint low must be an integer"),  # type: ignore[arg-type]
        (lambda: uniform(0, 1).rvs(random_state="seed"), "random_state must be"),
        (lambda: uniform(0, 1).rvs(size=-1), "size must be"),
    ],
)
def test_distribution_errors(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]


def test_scipy_distributions() -> None:
    stats = pytest.importorskip("scipy.stats")
    space = ParamSpace(x=stats.norm(0, 1), k=stats.randint(0, 5), tag=["p", "q"])
    sample = space.sample(200, seed=11)
    assert sample == space.sample(200, seed=11)
    assert {type(p["x"]) for p in sample} == {float} and {p["k"] for p in sample} == {0, 1, 2, 3, 4}
    assert space.sample(5, seed=12) != sample[:5]
    rand = ParamSpace.from_dict({"x": stats.uniform(10, 5)}, mode="random", n_samples=50, seed=2)
    assert all(10 <= p["x"] <= 15 for p in rand)


# --------------------------------------------------------------------------- params_hash


def f_named(x: int) -> int:
    return x


class Colour(enum.Enum):
    RED = 1


@dataclasses.dataclass(frozen=True)
class Config:
    depth: int
    name: str


def test_params_hash_canonical() -> None:
    h = params_hash({"a": 1, "b": "x"})
    assert len(h) == 16 and int(h, 16) >= 0
    assert h == params_hash({"b": "x", "a": 1}) == params_hash(Params(b="x", a=1))
    assert len(params_hash({"a": 1}, length=64)) == 64
    # type-tagged: equal-comparing values of different types hash differently
    assert len({params_hash({"a": v}) for v in (1, 1.0, True, "1", b"1", (1,), [1], None)}) == 8
    assert params_hash({"a": {"x": 1, "y": 2}}) == params_hash({"a": {"y": 2, "x": 1}})
    assert params_hash({"a": 0.1}) != params_hash({"a": 0.1 + 1e-17 * 2})
    assert params_hash({"f": f_named}) == params_hash({"f": f_named})
    assert params_hash({"c": Colour.RED}) != params_hash({"c": 1})
    assert (
        params_hash({"c": Config(2, "x")}) == params_hash({"c": Config(2, "x")}) != params_hash({"c": Config(3, "x")})
    )


def test_params_hash_is_pinned() -> None:
    # A change here changes every stored hash (checkpoints, file names): do not update lightly.
    assert params_hash({"a": 1, "b": "x", "c": [1.5, None, True], "d": (b"z",)}) == "d52b641ff798acd7"


def test_params_hash_numpy() -> None:
    np = pytest.importorskip("numpy")
    assert params_hash({"a": np.int64(3)}) == params_hash({"a": 3})
    assert params_hash({"a": np.float64(0.5)}) == params_hash({"a": 0.5})
    arr = np.arange(6, dtype=np.int64)
    assert params_hash({"a": arr}) == params_hash({"a": arr.copy()})
    assert params_hash({"a": arr}) != params_hash({"a": arr.reshape(2, 3)})
    assert params_hash({"a": arr}) != params_hash({"a": arr.astype(np.int32)})
    assert params_hash({"a": arr.reshape(2, 3).T}) == params_hash({"a": np.ascontiguousarray(arr.reshape(2, 3).T)})
    assert params_hash({"a": np.array(["x", 1], dtype=object)}) == params_hash({"a": np.array(["x", 1], dtype=object)})


def test_params_hash_errors() -> None:
    class Opaque:
        pass

    with pytest.raises(ConfigError, match="type Opaque.*memory address"):
        params_hash({"a": Opaque()})
    with pytest.raises(ConfigError, match="type function"):
        params_hash({"a": lambda x: x})
    with pytest.raises(ConfigError, match="needs a mapping"):
        params_hash([("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="length must be"):
        params_hash({"a": 1}, length=0)
