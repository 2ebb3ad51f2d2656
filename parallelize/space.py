"""Parameter spaces: lazy, indexable, composable sets of keyword-argument points.

A *point* is a ``Params``, a read-only mapping meant for ``func(**point)``.
A *space* is an immutable, lazily evaluated sequence of points, built from axes::

    ParamSpace(a=range(10), b=1e-3, c="hello", d=[True, False])   # 10*1*1*2 = 20 points

A scalar (strings and bytes included) is a one-value axis; any other iterable is
an axis. Points are the Cartesian product of the axes, the LAST key varying
fastest. Spaces combine with an algebra whose results are spaces too:

============  =================================================================
``a + b``     points of ``a`` then of ``b``; same keys. ``sum([a, b])`` works.
``a * b``     Cartesian product, ``a`` outermost; keys must be disjoint.
``n * a``     ``a`` repeated ``n`` times (also ``a * n``), e.g. to weight a side
              of a sum when sampling: ``10 * a + b`` samples ``a`` ten times as often.
``zip``       ``ParamSpace.zip`` / ``zip_spaces``: i-th point of each
              space merged; lengths must be equal (never silently truncated).
============  =================================================================

So ``10 * (a + b) * c`` is ten copies of ``a``'s points then ``b``'s, each
combined with every point of ``c``. Nothing is materialised: ``len`` is
arithmetic, ``space[i]`` computes the i-th point by index arithmetic, iteration is
a generator, and ``Space.sample`` draws indices, so a space of 10**12 points
samples in milliseconds. An axis may also be a distribution (anything with
``rvs(random_state=...)``, see ``parallelize.distributions``); such a space has
no length and can only be sampled.

``params_hash`` gives a point a content hash that is stable across processes,
runs and machines (unlike the builtin, salted ``hash``).
"""

from __future__ import annotations

import bisect
import itertools
import keyword
import math
import numbers
import operator
import random
import sys
import types
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

from .distributions import Draw as _Draw
from .distributions import is_distribution
from .errors import ConfigError
from .hashing import params_hash
from .validate import check_choice, check_int

__all__ = [
    "ParamSpace",
    "Params",
    "PointsSpace",
    "ProductSpace",
    "RepeatSpace",
    "Space",
    "SumSpace",
    "ZipSpace",
    "grid_from_arguments",
    "params_hash",
    "zip_spaces",
]


def _frozen(self: object, name: str, value: Any = None) -> NoReturn:
    raise AttributeError(f"{type(self).__name__} is immutable")


# --------------------------------------------------------------------------- points


class Params(Mapping[str, Any]):
    """One point of a space: a read-only, hashable mapping of keyword arguments.

    Equal to any mapping with the same items (``Params(a=1) == {"a": 1}``); hashable
    when its values are. Build like a dict: ``Params({"a": 1}, b=2)``.

    Raises:
        ConfigError: if a key is not a string (points are used as ``**kwargs``).
    """

    __slots__ = ("_data", "_hash")
    _data: dict[str, Any]
    _hash: int

    def __init__(self, /, *args: Any, **kwargs: Any) -> None:
        data = dict(*args, **kwargs)
        bad = [k for k in data if not isinstance(k, str)]
        if bad:
            raise ConfigError(f"Params keys must be strings, got {bad!r}")
        object.__setattr__(self, "_data", data)

    @classmethod
    def _of(cls, data: dict[str, Any]) -> Params:
        # Fast path for points built here: keys already validated, dict not shared.
        self = cls.__new__(cls)
        object.__setattr__(self, "_data", data)
        return self

    __setattr__ = __delattr__ = _frozen  # type: ignore[assignment]

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            h = hash(frozenset(self._data.items()))
            object.__setattr__(self, "_hash", h)
            return h

    def __reduce__(self) -> tuple[Any, ...]:
        return (Params, (self._data,))

    def __repr__(self) -> str:
        if all(k.isidentifier() and not keyword.iskeyword(k) for k in self._data):
            return f"Params({', '.join(f'{k}={v!r}' for k, v in self._data.items())})"
        return f"Params({self._data!r})"

    @property
    def hash(self) -> str:
        """The stable content hash ``params_hash`` of this point."""
        return params_hash(self)


def _merge(points: Iterable[Params]) -> Params:
    data: dict[str, Any] = {}
    for p in points:
        data.update(p._data)
    return Params._of(data)


# --------------------------------------------------------------------------- base


class Space(ABC):
    """Abstract base of every parameter space (use ``isinstance(x, Space)``).

    A space is an immutable sequence of ``Params``. Finite spaces support
    ``len``, iteration, ``space[i]`` (negative too; slices give a list) and
    ``space["key"]``; spaces with a distribution axis can only be sampled.
    """

    __slots__ = ("_n",)
    _n: int | None  # number of points; None when a distribution axis makes it unbounded

    __setattr__ = __delattr__ = _frozen  # type: ignore[assignment]

    # -- what subclasses provide
    @property
    @abstractmethod
    def keys(self) -> tuple[str, ...]:
        """The ordered tuple of parameter names of every point."""

    @abstractmethod
    def _point(self, i: int) -> Params:
        """The i-th point, 0 <= i < size."""

    @abstractmethod
    def _iter(self) -> Iterator[Params]:
        """Generate the points in order (finite spaces only)."""

    @abstractmethod
    def _axis(self, key: str) -> Any:
        """The values of axis ``key`` (known to be in ``keys``)."""

    def _draw(self, d: _Draw) -> Params:
        """One random point; each call independent (sampling with replacement)."""
        if not self.size:
            raise ConfigError(f"cannot sample from an empty space: {self!r}")
        return self._point(d.rng.randrange(self.size))

    def iter_values(self) -> Iterator[tuple[Any, ...]]:
        """The points as tuples of values in ``keys`` order, in iteration order.

        Cheaper than building a ``Params`` per point; the runner ships
        points to workers this way.

        Raises:
            TypeError: if the space has a distribution axis (at once, not at
                the first ``next``).
        """
        if self._n is None:
            raise TypeError(self._infinite_message())
        return self._iter_values()

    def _iter_values(self) -> Iterator[tuple[Any, ...]]:
        keys = self.keys
        return (tuple(p[k] for k in keys) for p in self._iter())

    def _infinite_message(self) -> str:
        return (
            f"{type(self).__name__} contains a distribution axis, so it has no length and "
            "cannot be iterated or indexed; it can only be sampled: space.sample(k, seed=...)"
        )

    # -- sequence protocol
    @property
    def is_finite(self) -> bool:
        """False when a distribution axis makes the space sample-only."""
        return self._n is not None

    @property
    def size(self) -> int:
        """The number of points as a Python int (``len`` overflows past ``sys.maxsize``).

        Raises:
            TypeError: if the space has a distribution axis.
        """
        if self._n is None:
            raise TypeError(self._infinite_message())
        return self._n

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self._n is None or self._n > 0

    def __iter__(self) -> Iterator[Params]:
        if self._n is None:  # raise now, not at the first next()
            raise TypeError(self._infinite_message())
        return self._iter()

    def __getitem__(self, index: Any) -> Any:
        """Index a space.

        Args:
            index: an int (negative counts from the end), a slice, or a key.

        Returns:
            The i-th ``Params``; a list of them for a slice; for a key, that
            axis's values (the distribution for a distribution axis).

        Raises:
            IndexError: if the int is out of range.
            KeyError: naming the available keys, if the key is unknown.
            TypeError: for other index types, or ints on a sample-only space.
        """
        if isinstance(index, str):
            if index not in self.keys:
                raise KeyError(f"{index!r} is not a key of this space; available keys: {list(self.keys)}")
            return self._axis(index)
        if isinstance(index, slice):
            return [self._point(i) for i in range(self.size)[index]]
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"space indices must be int, slice or str, not {type(index).__name__}") from None
        n = self.size
        if not -n <= i < n:
            raise IndexError(f"index {index} out of range for a space of {n} points")
        return self._point(i % n)

    # -- algebra
    def __add__(self, other: Any) -> Space:
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        if not isinstance(other, Space):
            return NotImplemented
        return SumSpace(self, other)

    def __radd__(self, other: Any) -> Space:
        # sum() starts from 0.
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, other: Any) -> Space:
        if isinstance(other, Space):
            return ProductSpace(self, other)
        if isinstance(other, numbers.Number):
            return RepeatSpace(other, self)  # type: ignore[arg-type]  # it rejects non-ints
        return NotImplemented

    def __rmul__(self, other: Any) -> Space:
        if isinstance(other, numbers.Number):
            return RepeatSpace(other, self)  # type: ignore[arg-type]
        return NotImplemented

    # Makes ``np.int64(3) * space`` defer to __rmul__ instead of numpy turning the
    # space into an object array point by point.
    __array_ufunc__ = None

    # -- sampling
    def sample(self, k: int, replace: bool = False, seed: int | None = None) -> list[Params]:
        """Draw ``k`` random points, reproducibly for a given seed in every process.

        A finite space draws point indices (never building the space), so a sum
        is sampled in proportion to each side's size. A space with a distribution
        axis draws every point independently: each distribution is drawn and each
        list axis picked uniformly, so ``replace`` has no effect (repeats are only
        likely from a discrete distribution or short list axes).

        Args:
            k: number of points.
            replace: draw with replacement (independent draws) instead of ``k``
                distinct indices.
            seed: an int for a reproducible sample, or ``None``.

        Returns:
            A list of ``k`` ``Params``.

        Raises:
            ConfigError: on a bad ``k`` or ``seed``; if ``k > len(space)`` without
                replacement; if ``k > 0`` and the space is empty; if a sum with a
                distribution side is sampled (its sides have no size to weigh).
        """
        k = check_int("k", k, minimum=0)
        check_int("seed", seed, allow_none=True)
        rng = random.Random(seed)
        if self._n is None:
            d = _Draw(rng)
            return [self._draw(d) for _ in range(k)]
        n = self._n
        if not replace:
            if k > n:
                raise ConfigError(f"cannot sample k={k} points without replacement from a space of len {n}")
            if n <= sys.maxsize:
                # random.sample on a range draws distinct indices without materialising it.
                indices = rng.sample(range(n), k)
            else:  # random.sample needs len(); with k << n, rejection rarely repeats
                chosen: dict[int, None] = {}
                while len(chosen) < k:
                    chosen.setdefault(rng.randrange(n))
                indices = list(chosen)
            return [self._point(i) for i in indices]
        if n == 0 and k:
            raise ConfigError(f"cannot sample k={k} points from an empty space")
        return [self._point(rng.randrange(n)) for _ in range(k)]

    # -- display
    _prec = 3  # repr precedence: 1 sum, 2 product/repeat, 3 atom

    def _wrap(self, prec: int) -> str:
        text = repr(self)
        return f"({text})" if self._prec < prec else text


def _check_disjoint(parts: Iterable[Space], verb: str, hint: str) -> None:
    seen: set[str] = set()
    for p in parts:
        shared = seen & set(p.keys)
        if shared:
            raise ConfigError(f"cannot {verb} spaces that share keys {sorted(shared)}{hint}")
        seen |= set(p.keys)


def _describe(space: Space) -> str:
    return f"{', '.join(space.keys) or '(no keys)'}={space.size}"


# --------------------------------------------------------------------------- grid


def _shorten(values: Sequence[Any]) -> str:
    items = [repr(v) for v in values[:4]] if len(values) > 6 else [repr(v) for v in values]
    if len(values) > 6:
        items += ["...", repr(values[-1])]
    return f"[{', '.join(items)}]"


def _as_axis(key: str, value: Any) -> tuple[Any, bool]:
    """Normalise one axis; returns (axis, was_scalar)."""
    if is_distribution(value):
        return value, False
    # Strings and mappings are iterable, but as parameters they are single values.
    if isinstance(value, (str, bytes, bytearray, memoryview, Mapping)):
        return (value,), True
    if isinstance(value, (range, tuple)):
        return value, False  # immutable already; a range stays lazy
    if type(value).__module__ == "numpy" and hasattr(value, "ndim"):
        if value.ndim == 0:
            return (value.item(),), True
        # 1-D: plain Python scalars of the same kind (int stays int), not one dtype.
        return (tuple(value.tolist()) if value.ndim == 1 else tuple(value)), False
    if isinstance(value, (set, frozenset)):
        try:
            return tuple(sorted(value)), False  # set order varies between processes
        except TypeError:
            raise ConfigError(f"axis {key!r} is an unsortable set; pass a list to fix its order") from None
    try:
        it = iter(value)
    except TypeError:
        return (value,), True
    return tuple(it), False  # generators and other one-shot iterables: read once


# itertools.product runs at C speed but copies every axis before yielding
# anything (fatal for a range(10**12) axis): it is used for the innermost axes
# as long as their combined length stays under this many values.
_PRODUCT_COPY_LIMIT = 1_000_000


def _product_iter(seqs: Sequence[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
    """The Cartesian product of ``seqs`` as value tuples, last varying fastest."""
    k = len(seqs)
    copied = 0
    while k > 0 and copied + len(seqs[k - 1]) <= _PRODUCT_COPY_LIMIT:
        copied += len(seqs[k - 1])
        k -= 1
    inner, outer = seqs[k:], seqs[:k]
    if not outer:
        return itertools.product(*inner)  # itself, at C speed: no generator frame per point
    return _outer_product(outer, inner)


def _outer_product(outer: Sequence[Sequence[Any]], inner: Sequence[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
    for prefix in _nested_product(outer):
        for rest in itertools.product(*inner):
            yield prefix + rest


def _nested_product(seqs: Sequence[Iterable[Any]], prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    # Nested loops: nothing copied, for axes too long for itertools.product.
    if not seqs:
        yield prefix
    elif len(seqs) == 1:
        for v in seqs[0]:
            yield (*prefix, v)
    else:
        for v in seqs[0]:
            yield from _nested_product(seqs[1:], (*prefix, v))


class ParamSpace(Space):
    """A grid: the Cartesian product of named axes, the last key varying fastest.

    ``ParamSpace(a=range(10), b=1e-3, c="hello", d=[True, False])`` has 20 points.

    Axes: a scalar (str, bytes, a mapping, or any non-iterable) is one value; a
    ``range`` or ``tuple`` is kept as is (a range stays lazy); a 1-D NumPy array
    becomes a tuple of Python scalars; a set is sorted; any other iterable
    (list, generator, ...) is read once into a tuple. Values keep their own types.
    An empty axis gives an empty space (length 0); ``ParamSpace()`` has one,
    empty, point. An axis that is a distribution (``rvs(random_state=...)``)
    makes the space sample-only.

    Args:
        **axes: parameter name to values.

    Raises:
        ConfigError: for a set whose items cannot be sorted.
    """

    __slots__ = ("_axes", "_keys", "_scalars")
    _axes: dict[str, Any]
    _keys: tuple[str, ...]
    _scalars: frozenset[str]

    def __init__(self, /, **axes: Any) -> None:
        normal = {k: _as_axis(k, v) for k, v in axes.items()}
        object.__setattr__(self, "_axes", {k: a for k, (a, _) in normal.items()})
        object.__setattr__(self, "_keys", tuple(axes))
        object.__setattr__(self, "_scalars", frozenset(k for k, (_, s) in normal.items() if s))
        finite = not any(is_distribution(a) for a in self._axes.values())
        object.__setattr__(self, "_n", math.prod(len(a) for a in self._axes.values()) if finite else None)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_grid, (self._axes, self._scalars))

    @property
    def keys(self) -> tuple[str, ...]:
        """The ordered tuple of axis names."""
        return self._keys

    @property
    def axes(self) -> Mapping[str, Any]:
        """A read-only view of axis name to its (normalised) values or distribution."""
        return types.MappingProxyType(self._axes)

    def _axis(self, key: str) -> Any:
        return self._axes[key]

    def _point(self, i: int) -> Params:
        values = []
        # Mixed-radix digits of i, least significant (last key) first.
        for axis in reversed(self._axes.values()):
            i, r = divmod(i, len(axis))
            values.append(axis[r])
        values.reverse()
        return Params._of(dict(zip(self._keys, values, strict=True)))

    def _iter(self) -> Iterator[Params]:
        keys = self._keys
        for values in _product_iter([self._axes[k] for k in keys]):
            yield Params._of(dict(zip(keys, values, strict=True)))

    def _iter_values(self) -> Iterator[tuple[Any, ...]]:
        return _product_iter([self._axes[k] for k in self._keys])

    def _draw(self, d: _Draw) -> Params:
        data = {}
        for key, axis in self._axes.items():
            if is_distribution(axis):
                data[key] = d.value(axis)
            else:
                if not len(axis):
                    raise ConfigError(f"cannot sample: axis {key!r} is empty")
                data[key] = axis[d.rng.randrange(len(axis))]
        return Params._of(data)

    def _infinite_message(self) -> str:
        dists = [k for k, a in self._axes.items() if is_distribution(a)]
        return (
            f"ParamSpace has distribution axes {dists}, so it has no length and cannot be "
            "iterated or indexed; it can only be sampled: space.sample(k, seed=...)"
        )

    def __repr__(self) -> str:
        parts = []
        for key, axis in self._axes.items():
            if key in self._scalars:
                text = repr(axis[0])
            elif isinstance(axis, tuple):
                text = _shorten(axis)
            else:
                text = repr(axis)  # range, distribution
            parts.append(f"{key}={text}")
        return f"ParamSpace({', '.join(parts)})"

    # -- alternative constructors
    @staticmethod
    def zip(**axes: Any) -> Space:
        """Pair axes element-wise (mproc's "uniform" mode): point i takes the i-th
        value of every axis.

        Scalars are broadcast to the common length; list axes must all have the
        same length.

        Args:
            **axes: parameter name to values.

        Returns:
            A ``ZipSpace`` (``ParamSpace()`` if there are no axes).

        Raises:
            ConfigError: naming each key's length if the lengths differ, or if an
                axis is a distribution.
        """
        if not axes:
            return ParamSpace()
        single = {k: ParamSpace(**{k: v}) for k, v in axes.items()}
        for k, s in single.items():
            if not s.is_finite:
                raise ConfigError(f"cannot zip axis {k!r}: it is a distribution, zip needs values")
        lists = {k: s for k, s in single.items() if k not in s._scalars}
        n = max((s.size for s in lists.values()), default=1)
        spaces = [s if k in lists else RepeatSpace(n, s) for k, s in single.items()]
        # Label the repr with the axes as given, i.e. each one-key repr minus "ParamSpace(...)".
        return ZipSpace(*spaces, _label=", ".join(repr(s)[len("ParamSpace(") : -1] for s in single.values()))

    @staticmethod
    def from_points(points: Iterable[Mapping[str, Any]], keys: Iterable[str] | None = None) -> PointsSpace:
        """A finite space of explicit points (see ``PointsSpace``).

        Args:
            points: mappings with the same keys.
            keys: the key order; required only to give an empty list keys.

        Returns:
            A ``PointsSpace``.

        Raises:
            ConfigError: if the points' keys differ.
        """
        return PointsSpace(points, keys=keys)

    @staticmethod
    def from_dict(
        config: Mapping[str, Any],
        mode: str = "uniform",
        n_samples: int | None = None,
        seed: int | None = None,
    ) -> Space:
        """Build a space from an mproc-style ``{name: values}`` config.

        Args:
            config: parameter name to values (or a scalar, or a distribution for
                "random").
            mode: "uniform" zips the values (equal lengths, scalars broadcast);
                "combinatorial" takes their Cartesian product; "random" draws
                ``n_samples`` points, each key's value picked independently at
                random (with replacement, so points may repeat).
            n_samples: number of points, for "random" only.
            seed: int seed for "random" only; the same seed gives the same points.

        Returns:
            A ``ZipSpace``, ``ParamSpace`` or ``PointsSpace``.

        Raises:
            ConfigError: on an unknown mode, non-string keys, unequal lengths in
                "uniform", a missing or stray ``n_samples``/``seed``.
        """
        check_choice("mode", mode, ["combinatorial", "random", "uniform"])
        if not isinstance(config, Mapping) or not all(isinstance(k, str) for k in config):
            raise ConfigError("config must be a mapping with string keys")
        if mode != "random":
            if n_samples is not None or seed is not None:
                raise ConfigError(f"n_samples and seed are only used with mode='random', not {mode!r}")
            return ParamSpace.zip(**config) if mode == "uniform" else ParamSpace(**config)
        if n_samples is None:
            raise ConfigError("mode='random' requires n_samples")
        n_samples = check_int("n_samples", n_samples, minimum=0)
        grid = ParamSpace(**config)
        check_int("seed", seed, allow_none=True)
        d = _Draw(random.Random(seed))
        return PointsSpace([grid._draw(d) for _ in range(n_samples)], keys=grid.keys)


def _rebuild_grid(axes: dict[str, Any], scalars: frozenset[str]) -> ParamSpace:
    space = ParamSpace(**axes)  # tuples/ranges/distributions pass through unchanged
    object.__setattr__(space, "_scalars", scalars)
    return space


def grid_from_arguments(space: Any, params: Mapping[str, Any], *, caller: str) -> Space:
    """The grid an entry point sweeps when called as ``caller(space, **params)``.

    The one place where ``fit.grid(...)`` and ``ModelEvaluator.run(...)`` turn
    their arguments into a space, so both read them the same way.

    Args:
        space: a ``Space`` (any kind), or ``None``.
        params: parameter name to values, as for ``ParamSpace``: an iterable
            (strings, bytes and mappings excepted) is an axis, anything else a
            fixed value.
        caller: the entry point, named in messages, e.g. ``"fit.grid()"``.

    Returns:
        ``space * ParamSpace(**params)``; just one of them when the other is
        missing (so ``space``'s own points, in its order, when ``params`` is empty).

    Raises:
        ConfigError: ``space`` is not a space, or neither is given.
    """
    if space is not None and not isinstance(space, Space):
        raise ConfigError(
            f"the space given to {caller} must be a ParamSpace (or any Space), got {type(space).__name__}; "
            "give lists of values as keyword parameters instead"
        )
    if not params:
        if space is None:
            raise ConfigError(f"nothing to evaluate: {caller} needs a ParamSpace or keyword parameters")
        return space
    grid = ParamSpace(**params)
    return grid if space is None else space * grid


# --------------------------------------------------------------------------- combinators


class SumSpace(Space):
    """Concatenation ``a + b + ...``: every point of each part in turn.

    Args:
        *parts: spaces with the same key set (in any order); nested sums are flattened.

    Raises:
        ConfigError: naming the keys not shared by all parts.
    """

    __slots__ = ("_offsets", "_parts")
    _parts: tuple[Space, ...]
    _offsets: list[int]
    _prec = 1

    def __init__(self, *parts: Space) -> None:
        flat = tuple(q for p in parts for q in (p._parts if isinstance(p, SumSpace) else (p,)))
        if not flat:
            raise ConfigError("a sum needs at least one space")
        first = set(flat[0].keys)
        for p in flat[1:]:
            if set(p.keys) != first:
                raise ConfigError(
                    "cannot add spaces with different keys: "
                    f"only in left {sorted(first - set(p.keys))}, only in right {sorted(set(p.keys) - first)}"
                )
        object.__setattr__(self, "_parts", flat)
        finite = all(p.is_finite for p in flat)
        offsets = list(itertools.accumulate((p.size for p in flat), initial=0)) if finite else []
        object.__setattr__(self, "_offsets", offsets)
        object.__setattr__(self, "_n", offsets[-1] if finite else None)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SumSpace, self._parts)

    @property
    def keys(self) -> tuple[str, ...]:
        """The first part's keys."""
        return self._parts[0].keys

    def _axis(self, key: str) -> NoReturn:
        raise TypeError(f"a sum has no single axis {key!r}; index its parts instead")

    def _point(self, i: int) -> Params:
        j = bisect.bisect_right(self._offsets, i) - 1
        return self._parts[j]._point(i - self._offsets[j])

    def _iter(self) -> Iterator[Params]:
        for p in self._parts:
            yield from p._iter()

    def _draw(self, d: _Draw) -> Params:
        if self._n is None:
            raise ConfigError("cannot sample a sum with a distribution part: its parts have no size to weigh")
        return super()._draw(d)

    def sample(self, k: int, replace: bool = False, seed: int | None = None) -> list[Params]:
        if self._n is None:
            raise ConfigError("cannot sample a sum with a distribution part: its parts have no size to weigh")
        return super().sample(k, replace=replace, seed=seed)

    sample.__doc__ = Space.sample.__doc__

    def __repr__(self) -> str:
        return " + ".join(p._wrap(2) for p in self._parts)


class _MergedSpace(Space):
    """Base of the spaces whose points merge one point of each part (parts with
    disjoint keys): ``ProductSpace`` and ``ZipSpace``."""

    __slots__ = ("_parts",)
    _parts: tuple[Space, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        """The parts' keys, in order."""
        return tuple(k for p in self._parts for k in p.keys)

    def _axis(self, key: str) -> Any:
        return next(p[key] for p in self._parts if key in p.keys)


class ProductSpace(_MergedSpace):
    """Cartesian product ``a * b * ...``: the first part outermost, the last fastest.

    Args:
        *parts: spaces with disjoint keys; nested products are flattened.

    Raises:
        ConfigError: naming the keys shared by two parts.
    """

    __slots__ = ()
    _prec = 2

    def __init__(self, *parts: Space) -> None:
        flat = tuple(q for p in parts for q in (p._parts if isinstance(p, ProductSpace) else (p,)))
        _check_disjoint(flat, "multiply", "; use + to concatenate")
        object.__setattr__(self, "_parts", flat)
        finite = all(p.is_finite for p in flat)
        object.__setattr__(self, "_n", math.prod(p.size for p in flat) if finite else None)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ProductSpace, self._parts)

    def _point(self, i: int) -> Params:
        points = []
        for p in reversed(self._parts):
            i, r = divmod(i, p.size)
            points.append(p._point(r))
        return _merge(reversed(points))

    def _iter(self) -> Iterator[Params]:
        # Spaces are re-iterable, so inner parts are re-walked lazily per outer point.
        for combo in _nested_product(self._parts):
            yield _merge(combo)

    def _draw(self, d: _Draw) -> Params:
        return _merge(p._draw(d) for p in self._parts)

    def __repr__(self) -> str:
        # A repeat after the first factor needs brackets: ``a * 2 * b`` means ``(a * 2) * b``.
        return " * ".join(p._wrap(2 if i == 0 else 3) for i, p in enumerate(self._parts))


class RepeatSpace(Space):
    """``n * space``: the points of ``space``, ``n`` times over.

    Args:
        n: a non-negative int (bool rejected).
        space: the space to repeat.

    Raises:
        ConfigError: naming ``n`` if it is not a non-negative int.
    """

    __slots__ = ("_count", "_space")
    _count: int
    _space: Space
    _prec = 2

    def __init__(self, n: int, space: Space) -> None:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ConfigError(f"a space can only be repeated a non-negative int number of times, got {n!r}")
        n = int(n)  # numpy ints too
        object.__setattr__(self, "_count", n)
        object.__setattr__(self, "_space", space)
        object.__setattr__(self, "_n", n * space.size if space.is_finite else None)

    def __reduce__(self) -> tuple[Any, ...]:
        return (RepeatSpace, (self._count, self._space))

    @property
    def keys(self) -> tuple[str, ...]:
        """The repeated space's keys."""
        return self._space.keys

    def _axis(self, key: str) -> Any:
        return self._space[key]

    def _point(self, i: int) -> Params:
        return self._space._point(i % self._space.size)

    def _iter(self) -> Iterator[Params]:
        for _ in range(self._count):
            yield from self._space._iter()

    def _draw(self, d: _Draw) -> Params:
        return self._space._draw(d)

    def __repr__(self) -> str:
        return f"{self._count} * {self._space._wrap(3)}"


class ZipSpace(_MergedSpace):
    """Element-wise pairing: point i merges the i-th point of every part.

    Build with ``zip_spaces`` or ``ParamSpace.zip``.

    Args:
        *spaces: finite spaces with disjoint keys and equal lengths.

    Raises:
        ConfigError: naming each part's keys and length if the lengths differ;
            naming shared keys; if a part is sample-only or none is given.
    """

    __slots__ = ("_label",)
    _label: str | None

    def __init__(self, *spaces: Space, _label: str | None = None) -> None:
        if not spaces:
            raise ConfigError("zip needs at least one space")
        _check_disjoint(spaces, "zip", "")
        if not all(s.is_finite for s in spaces):
            raise ConfigError("cannot zip a space with a distribution axis: zip needs values")
        if len({s.size for s in spaces}) > 1:
            lengths = ", ".join(_describe(s) for s in spaces)
            raise ConfigError(f"cannot zip axes of different lengths: {lengths}")
        object.__setattr__(self, "_parts", spaces)
        object.__setattr__(self, "_label", _label)
        object.__setattr__(self, "_n", spaces[0].size)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_zip, (self._parts, self._label))

    def _point(self, i: int) -> Params:
        return _merge(p._point(i) for p in self._parts)

    def _iter(self) -> Iterator[Params]:
        for combo in zip(*(p._iter() for p in self._parts), strict=True):
            yield _merge(combo)

    def __repr__(self) -> str:
        if self._label is not None:
            return f"ParamSpace.zip({self._label})"
        return f"zip_spaces({', '.join(map(repr, self._parts))})"


def _rebuild_zip(parts: tuple[Space, ...], label: str | None) -> ZipSpace:
    return ZipSpace(*parts, _label=label)


def zip_spaces(*spaces: Space) -> ZipSpace:
    """Pair spaces element-wise: point i merges the i-th point of each space.

    Args:
        *spaces: finite spaces with disjoint keys and equal lengths.

    Returns:
        A ``ZipSpace``.

    Raises:
        ConfigError: naming each space's keys and length if they differ (never
            truncates), or naming shared keys.
    """
    return ZipSpace(*spaces)


class PointsSpace(Space):
    """A finite space of explicit points, in the given order.

    Build with ``ParamSpace.from_points``; ``ParamSpace.from_dict`` with
    ``mode="random"`` returns one.

    Args:
        points: mappings with string keys, all with the same key set.
        keys: the key order; taken from the first point if omitted (needed
            only to give an empty space keys).

    Raises:
        ConfigError: naming the first point whose keys differ.
    """

    __slots__ = ("_keys", "_points")
    _points: tuple[Params, ...]
    _keys: tuple[str, ...]

    def __init__(self, points: Iterable[Mapping[str, Any]], keys: Iterable[str] | None = None) -> None:
        pts = tuple(p if isinstance(p, Params) else Params(p) for p in points)
        order = tuple(keys) if keys is not None else (tuple(pts[0]) if pts else ())
        for i, p in enumerate(pts):
            if set(p) != set(order):
                raise ConfigError(f"point {i} has keys {sorted(p)}, expected {sorted(order)}")
        object.__setattr__(self, "_points", pts)
        object.__setattr__(self, "_keys", order)
        object.__setattr__(self, "_n", len(pts))

    def __reduce__(self) -> tuple[Any, ...]:
        return (PointsSpace, (self._points, self._keys))

    @property
    def keys(self) -> tuple[str, ...]:
        """The key order."""
        return self._keys

    def _axis(self, key: str) -> tuple[Any, ...]:
        # The column: every point's value, in order.
        return tuple(p[key] for p in self._points)

    def _point(self, i: int) -> Params:
        return self._points[i]

    def _iter(self) -> Iterator[Params]:
        return iter(self._points)

    def __repr__(self) -> str:
        return f"ParamSpace.from_points({_shorten(self._points)})"
