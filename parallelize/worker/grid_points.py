"""Consecutive points of a grid (a Cartesian product of axes), as value tuples, without building them.

A ``ParamSpace`` batch is a range of point numbers, so the engine sends
``GridPoints(axes, start, stop)``: the axes once and two numbers, where a list
of the points' value tuples pickled point by point (81 KB and 1 ms to unpickle
for the 6,090-point grid of the benchmarks, against about 1 KB). It unpickles
in the worker as the list of those tuples, built at C speed by
``itertools.product``, so the worker's loops see a plain list.

Point ``i`` is the mixed-radix number ``i`` in the axes' lengths, the last axis
varying fastest, as ``itertools.product`` and ``ParamSpace`` order them.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence
from typing import Any, Iterator

__all__ = ["GridPoints"]


class GridPoints(Sequence[tuple[Any, ...]]):
    """Points ``start`` to ``stop`` (excluded) of the product of ``axes``, each a tuple of values.

    Args:
        axes: the grid's axes, each a sequence of values (a ``range``, a tuple).
        start, stop: point numbers, ``0 <= start <= stop <= product of the lengths``.
    """

    __slots__ = ("axes", "start", "stop")

    def __init__(self, axes: tuple[Sequence[Any], ...], start: int = 0, stop: int | None = None) -> None:
        size = math.prod(len(a) for a in axes)
        self.axes = axes
        self.start = start
        self.stop = size if stop is None else stop
        if not 0 <= self.start <= self.stop <= size:
            raise ValueError(f"points {start} to {stop} are not within a grid of {size} points")

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: Any) -> Any:
        n = self.stop - self.start  # not len(): a grid may have more than sys.maxsize points
        if isinstance(index, slice):
            lo, hi, step = index.indices(n)
            if step != 1:
                return [self[i] for i in range(lo, hi, step)]
            return GridPoints(self.axes, self.start + lo, self.start + max(lo, hi))
        i = operator.index(index)
        if not -n <= i < n:
            raise IndexError(f"index {index} out of range for {n} grid points")
        i = self.start + i % n
        values = []
        for axis in reversed(self.axes):
            i, r = divmod(i, len(axis))
            values.append(axis[r])
        values.reverse()
        return tuple(values)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return itertools.chain.from_iterable(_blocks(self.axes, self.start, self.stop))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GridPoints):
            return list(self) == list(other)
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking sequences are unhashable, as list is

    def __repr__(self) -> str:
        return f"<grid points {self.start} to {self.stop - 1} of {math.prod(len(a) for a in self.axes)}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # The axes and two numbers travel; the receiver gets the list of tuples.
        return (_points, (self.axes, self.start, self.stop))


def _points(axes: tuple[Sequence[Any], ...], start: int, stop: int) -> list[tuple[Any, ...]]:
    return list(GridPoints(axes, start, stop))


def _blocks(axes: tuple[Sequence[Any], ...], start: int, stop: int) -> Iterator[Iterator[tuple[Any, ...]]]:
    """``itertools.product`` iterators that together give points ``start`` to ``stop``, in order.

    The range splits into at most two blocks per axis: within the leading
    digits that ``start`` and ``stop`` share, a partial block of the next axis
    up to an aligned boundary, whole blocks in the middle (one product), and a
    partial block at the end. Each block is one C-speed product.
    """
    if start >= stop:
        return
    if not axes:
        yield iter([()])
        return
    head, rest = axes[0], axes[1:]
    block = math.prod(len(a) for a in rest)
    first, offset = divmod(start, block)
    last, end = divmod(stop, block)  # point `stop` is digit `last`, offset `end`
    if first == last:
        # Within one value of the first axis: that value, then the rest's range.
        prefix = (head[first],)
        for inner in _blocks(rest, offset, end):
            yield map(prefix.__add__, inner)
        return
    if offset:
        prefix = (head[first],)
        for inner in _blocks(rest, offset, block):
            yield map(prefix.__add__, inner)
        first += 1
    if first < last:
        yield itertools.product(head[first:last], *rest)
    if end:
        prefix = (head[last],)
        for inner in _blocks(rest, 0, end):
            yield map(prefix.__add__, inner)
