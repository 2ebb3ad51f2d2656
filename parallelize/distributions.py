"""Small random distributions for random search over a ``ParamSpace``.

A parameter space axis may be a *distribution* instead of a list of values: any
object with an ``rvs(random_state=...)`` method, which is the protocol of
``scipy.stats`` frozen distributions. This module provides three dependency-free
ones, so random search needs nothing beyond the standard library::

    uniform(0.0, 1.0)      # float in [low, high)
    loguniform(1e-5, 1e-1) # float in [low, high), uniform in log space
    randint(1, 10)         # int in [low, high): high is EXCLUSIVE, like numpy

Their ``rvs`` accepts a ``random.Random``, an int seed, ``None``, or a NumPy
``Generator``/``RandomState`` (a seed is drawn from it), and returns a plain
Python ``float``/``int``.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from typing import Any, NoReturn

from .errors import ConfigError
from .validate import check_int

__all__ = [
    "Distribution",
    "LogUniform",
    "RandInt",
    "Uniform",
    "as_random",
    "is_distribution",
    "loguniform",
    "randint",
    "uniform",
]


def is_distribution(obj: Any) -> bool:
    """Tell whether ``obj`` follows the ``rvs(random_state=...)`` protocol.

    Args:
        obj: any object.

    Returns:
        True for instances with a callable ``rvs`` (scipy.stats frozen or unfrozen
        distributions, the helpers of this module); False otherwise, including for
        classes, whose ``rvs`` would need an instance.
    """
    return not isinstance(obj, type) and callable(getattr(obj, "rvs", None))


def as_random(random_state: Any = None) -> random.Random:
    """Turn any accepted random state into a ``random.Random``.

    Args:
        random_state: ``None`` (fresh OS entropy), an int seed, a
            ``random.Random`` (returned as is, so draws advance it), or a NumPy
            ``Generator``/``RandomState`` (a 63-bit seed is drawn from it).

    Returns:
        A ``random.Random``.

    Raises:
        ConfigError: for any other type, naming it.
    """
    if isinstance(random_state, random.Random):
        return random_state
    if random_state is None or (isinstance(random_state, int) and not isinstance(random_state, bool)):
        return random.Random(random_state)
    # Duck-typed so numpy is never imported here.
    if callable(getattr(random_state, "integers", None)):  # numpy Generator
        return random.Random(int(random_state.integers(0, 2**63)))
    if callable(getattr(random_state, "randint", None)) and callable(
        getattr(random_state, "random_sample", None)
    ):  # numpy RandomState; its randint bound is platform long, so keep it 31-bit
        return random.Random(int(random_state.randint(0, 2**31 - 1)))
    raise ConfigError(
        "random_state must be None, an int, a random.Random or a numpy Generator/RandomState, "
        f"got {type(random_state).__name__}"
    )


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return value


class Distribution(ABC):
    """Base of the distributions provided here: immutable, picklable, comparable.

    Subclasses implement ``_draw`` from a ``random.Random``.
    """

    __slots__ = ("high", "low")
    low: Any
    high: Any

    def __init__(self, low: Any, high: Any) -> None:
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.low, self.high))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Distribution)
        return (self.low, self.high) == (other.low, other.high)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.low, self.high))

    def __repr__(self) -> str:
        return f"{type(self).__name__.lower()}({self.low!r}, {self.high!r})"

    @abstractmethod
    def _draw(self, rng: random.Random) -> Any:
        """Draw one value from ``rng``."""

    def rvs(self, size: int | None = None, random_state: Any = None) -> Any:
        """Draw random values (the scipy.stats protocol).

        Args:
            size: ``None`` for one value, or an int for a list of that many.
            random_state: see ``as_random``. A ``random.Random`` is advanced.

        Returns:
            One value, or a list of ``size`` values.

        Raises:
            ConfigError: on a bad ``random_state`` or ``size``.
        """
        rng = as_random(random_state)
        count: int | None = check_int("size", size, minimum=0, allow_none=True, none_means="one value")
        if count is None:
            return self._draw(rng)
        return [self._draw(rng) for _ in range(count)]


class Uniform(Distribution):
    """Floats uniform in ``[low, high)``. Build with ``uniform``.

    Args:
        low: inclusive lower bound.
        high: exclusive upper bound, greater than ``low``.

    Raises:
        ConfigError: if a bound is not a finite number or ``low >= high``.
    """

    __slots__ = ()

    def __init__(self, low: float, high: float) -> None:
        lo, hi = _check_real("low", low), _check_real("high", high)
        if not lo < hi:
            raise ConfigError(f"uniform needs low < high, got low={low!r}, high={high!r}")
        super().__init__(float(lo), float(hi))

    def _draw(self, rng: random.Random) -> float:
        # random() is in [0, 1), so the draw never reaches high.
        return float(self.low + (self.high - self.low) * rng.random())


class LogUniform(Distribution):
    """Floats in ``[low, high)`` whose logarithm is uniform (learning rates, ...).

    Build with ``loguniform``.

    Args:
        low: inclusive lower bound, > 0.
        high: exclusive upper bound, greater than ``low``.

    Raises:
        ConfigError: if a bound is not a finite number, ``low <= 0`` or ``low >= high``.
    """

    __slots__ = ()

    def __init__(self, low: float, high: float) -> None:
        lo, hi = _check_real("low", low), _check_real("high", high)
        if not 0 < lo < hi:
            raise ConfigError(f"loguniform needs 0 < low < high, got low={low!r}, high={high!r}")
        super().__init__(float(lo), float(hi))

    def _draw(self, rng: random.Random) -> float:
        lo, hi = math.log(self.low), math.log(self.high)
        # exp() can round up to exactly high; clamp to keep the interval half-open.
        return min(math.exp(lo + (hi - lo) * rng.random()), math.nextafter(self.high, 0.0))


class RandInt(Distribution):
    """Integers uniform in ``[low, high)``: ``high`` is exclusive, like ``numpy`` and
    ``scipy.stats.randint``. Build with ``randint``.

    Args:
        low: inclusive lower bound.
        high: exclusive upper bound, greater than ``low``.

    Raises:
        ConfigError: if a bound is not an int or ``low >= high``.
    """

    __slots__ = ()

    def __init__(self, low: int, high: int) -> None:
        check_int("randint low", low)
        check_int("randint high", high)
        if not low < high:
            raise ConfigError(f"randint needs low < high (high is exclusive), got low={low!r}, high={high!r}")
        super().__init__(low, high)

    def _draw(self, rng: random.Random) -> int:
        return rng.randrange(self.low, self.high)


def uniform(low: float, high: float) -> Uniform:
    """A float distribution uniform in ``[low, high)``.

    Args:
        low: inclusive lower bound.
        high: exclusive upper bound.

    Returns:
        A ``Uniform``.

    Raises:
        ConfigError: if ``low >= high`` or a bound is not a finite number.
    """
    return Uniform(low, high)


def loguniform(low: float, high: float) -> LogUniform:
    """A float distribution in ``[low, high)``, uniform in log space.

    Args:
        low: inclusive lower bound, > 0.
        high: exclusive upper bound.

    Returns:
        A ``LogUniform``.

    Raises:
        ConfigError: if not ``0 < low < high``.
    """
    return LogUniform(low, high)


def randint(low: int, high: int) -> RandInt:
    """An int distribution uniform in ``[low, high)`` (``high`` exclusive).

    Args:
        low: inclusive lower bound.
        high: exclusive upper bound.

    Returns:
        A ``RandInt``.

    Raises:
        ConfigError: if a bound is not an int or ``low >= high``.
    """
    return RandInt(low, high)


class Draw:
    """One sampling session (internal to ``Space.sample``): a seeded
    ``random.Random`` plus, made on first need, a NumPy ``RandomState`` seeded
    from it for foreign (scipy) distributions, so one seed fixes every draw.

    Args:
        rng: the session's random generator; draws advance it.
    """

    __slots__ = ("_np_state", "rng")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._np_state: Any = None

    def value(self, dist: Any) -> Any:
        """Draw one value from ``dist``.

        Args:
            dist: a ``Distribution`` (drawn from ``rng`` directly) or any object
                with ``rvs(random_state=...)``.

        Returns:
            The value; a NumPy scalar result is converted to the Python scalar.
        """
        if isinstance(dist, Distribution):
            return dist.rvs(random_state=self.rng)
        if self._np_state is None:
            try:
                import numpy as np
            except ImportError:  # no numpy: give each draw its own int seed instead
                return _to_python(dist.rvs(random_state=self.rng.getrandbits(32)))
            # RandomState rather than Generator: every rvs implementation accepts it.
            self._np_state = np.random.RandomState(self.rng.getrandbits(32))
        return _to_python(dist.rvs(random_state=self._np_state))


def _to_python(value: Any) -> Any:
    # scipy returns numpy scalars; plain Python values print, compare and hash better.
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        return value.item()
    return value
