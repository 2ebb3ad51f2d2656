"""Tests of ``@parallel`` / :class:`parallelize.ParallelFunction`."""

from __future__ import annotations

import inspect
from typing import Iterator

import pytest

from parallelize import ConfigError, ParallelFunction, ParamSpace, Statistics, parallel


@parallel
def scale(x: int, factor: int = 2) -> int:
    """Multiply ``x`` by ``factor``."""
    return x * factor


@parallel(backend="process", workers=2)
def fit(depth: int, impurity: str, tag: str = "none") -> tuple[int, str, str]:
    """Pretend to fit a model."""
    return (depth, impurity, tag)


@pytest.fixture(autouse=True)
def release_runners() -> Iterator[None]:
    """The decorated functions keep their runner between calls: release it after each test."""
    yield
    scale.shutdown()
    fit.shutdown()


def test_bare_and_called_forms() -> None:
    assert isinstance(scale, ParallelFunction) and isinstance(fit, ParallelFunction)
    assert scale.settings == {}
    assert fit.settings == {"backend": "process", "max_workers": 2}

    @parallel()
    def empty_call(x: int) -> int:
        return x

    assert isinstance(empty_call, ParallelFunction) and empty_call.settings == {}


def test_direct_call_runs_normally() -> None:
    assert scale(4) == 8
    assert scale(4, factor=10) == 40
    assert fit(3, "gini") == (3, "gini", "none")
    # A direct call starts no runner.
    assert scale._runner is None and fit._runner is None


def test_metadata_is_kept() -> None:
    assert scale.__name__ == "scale"
    assert scale.__qualname__ == "scale"
    assert scale.__doc__ == "Multiply ``x`` by ``factor``."
    assert scale.__module__ == __name__
    assert str(inspect.signature(scale)) == str(inspect.signature(scale.__wrapped__))
    assert list(inspect.signature(fit).parameters) == ["depth", "impurity", "tag"]
    assert "scale" in repr(scale)


def test_map() -> None:
    assert list(scale.map(range(10))) == [2 * x for x in range(10)]
    assert sorted(scale.map(range(10), ordered=False)) == [2 * x for x in range(10)]
    assert list(scale.starmap([(1, 3), (2, 5)])) == [3, 10]


def test_map_on_processes() -> None:
    # A space passes each point as keywords; a plain dict item is one positional argument.
    assert list(fit.map(ParamSpace(depth=[1, 2], impurity="x"))) == [(1, "x", "none"), (2, "x", "none")]
    (failure,) = list(fit.map([{"depth": 1, "impurity": "x"}], on_error="collect"))
    assert failure.error_type == "TypeError"
    assert list(fit.starmap([(1, "gini"), (2, "entropy")])) == [(1, "gini", "none"), (2, "entropy", "none")]


def test_grid_with_keyword_iterables_strings_are_scalars() -> None:
    out = list(fit.grid(depth=range(2, 5), impurity=["gini", "entropy"], tag="abc"))
    assert out == [(d, i, "abc") for d in range(2, 5) for i in ["gini", "entropy"]]
    assert len(out) == 6  # "abc" is one value, not three


def test_grid_with_a_space_and_extra_params() -> None:
    space = ParamSpace(depth=[1, 2], impurity="gini")
    assert list(fit.grid(space)) == [(1, "gini", "none"), (2, "gini", "none")]
    out = list(fit.grid(space, tag=["a", "b"]))
    assert out == [(1, "gini", "a"), (1, "gini", "b"), (2, "gini", "a"), (2, "gini", "b")]


def test_grid_options_and_order() -> None:
    out = list(scale.grid(x=range(5), factor=[1, -1], ordered=False, options={"chunksize": 2}))
    assert sorted(out) == sorted(x * f for x in range(5) for f in [1, -1])


def test_grid_needs_something() -> None:
    with pytest.raises(ConfigError, match=r"nothing to evaluate: scale\.grid\(\) needs a ParamSpace"):
        scale.grid()


def test_grid_space_must_be_a_space() -> None:
    with pytest.raises(ConfigError, match=r"scale\.grid\(\) must be a ParamSpace .*got list"):
        scale.grid([1, 2], factor=[1])


def test_statistics() -> None:
    assert list(scale.map(range(30))) == [2 * x for x in range(30)]
    stats = scale.statistics()
    assert isinstance(stats, Statistics)
    assert (stats.total, stats.completed, stats.durations.count) == (30, 30, 30)


def test_submit() -> None:
    assert scale.submit(5, factor=3).result(timeout=60) == 15


def test_with_options_is_a_copy() -> None:
    serial = scale.with_options(backend="serial", workers=1, on_error="skip")
    try:
        assert serial is not scale
        assert serial.settings == {"backend": "serial", "max_workers": 1, "on_error": "skip"}
        assert scale.settings == {}
        assert serial(3) == 6
        assert serial.__name__ == "scale" and serial.__doc__ == scale.__doc__
        assert list(serial.map([1, "x", 2])) == [2, "xx", 4]
        assert serial.runner.backend.name == "serial" and serial.runner.max_workers == 1
        assert serial.runner.options.on_error == "skip"
        assert scale.runner.backend.name == "thread"
    finally:
        serial.shutdown()


def test_runner_is_kept_then_renewed_after_shutdown() -> None:
    first = scale.runner
    assert scale.runner is first
    scale.shutdown()
    assert list(scale.map([1])) == [2]
    assert scale.runner is not first


def test_decorating_a_method() -> None:
    class Model:
        def __init__(self, k: int) -> None:
            self.k = k

        @parallel
        def predict(self, x: int) -> int:
            return self.k * x

    assert Model(3).predict(4) == 12


@pytest.mark.parametrize(
    ("settings", "bad"),
    [
        ({"workers": 0}, r"max_workers must be an integer >= 1 .*got 0"),
        ({"threads": 2.5}, r"max_workers must be an integer >= 1 .*got 2.5"),
        ({"backend": "proces"}, r"unknown backend 'proces'; expected one of \[.*'process'"),
        ({"backend": 3}, r"unknown backend 3"),
        ({"on_error": "bad"}, "'bad'"),
        ({"timeout": -1}, "timeout must be .*got -1"),
        ({"chunksize": 0}, "chunksize must be an integer >= 1 .*got 0"),
        ({"workers": 2, "max_workers": 3}, "workers"),
    ],
)
def test_bad_settings_fail_at_decoration(settings: dict, bad: str) -> None:
    with pytest.raises(ConfigError, match=bad):
        parallel(**settings)(lambda x: x)


def test_not_callable() -> None:
    with pytest.raises(ConfigError, match="callable"):
        parallel(42)  # type: ignore[call-overload]
