"""Batchify: cut the longest value of a dict of parameters into contiguous slices.

``Batchify({'colors': range(100), 'variations': ['a', 'b']}, 4)`` yields four dicts
whose ``colors`` are 25 consecutive values each and whose ``variations`` is the
whole list. With ``len % n`` left over, the first slices are one longer
(105 into 4: 27, 26, 26, 26).
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any, Iterator, Mapping

from .errors import ConfigError
from .validate import check_int

__all__ = ["Batchify", "is_scalar"]


def is_scalar(value: Any) -> bool:
    """Whether ``value`` counts as one value rather than a collection.

    Strings and bytes are scalars: ``foo='bar'`` is one value, not three.
    """
    return isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Sized)


class Batchify:
    """Split a dict of parameters into ``n`` batches along its longest value.

    Args:
        data: parameter name -> value. The value with the largest ``len()`` is cut;
            every other value is passed whole. Strings and bytes are never cut.
        n: the number of batches wanted (>= 1); fewer are made when the longest
            value is shorter than ``n``.

    Raises:
        ConfigError: ``n < 1``, no value has a length, or the longest is empty.
    """

    def __init__(self, data: Mapping[str, Any], n: int) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"Batchify needs a dict of parameters, got {type(data).__name__}")
        check_int("the number of batches", n, minimum=1)
        sized = {k: v for k, v in data.items() if not is_scalar(v)}
        if not sized:
            raise ConfigError(
                f"Batchify needs at least one value with a length (a list, range, array...) "
                f"to split; got only scalars for keys {sorted(data)}"
            )
        key = max(sized, key=lambda k: len(sized[k]))
        if len(sized[key]) == 0:
            raise ConfigError(f"the longest value, {key!r}, is empty: there is nothing to split")
        self.data = dict(data)
        self.n = n
        self.key = key

    def __len__(self) -> int:
        return min(self.n, len(self.data[self.key]))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.results()

    def results(self) -> Iterator[dict[str, Any]]:
        """Yield one dict per batch, in order. A generator: wrap it in ``list()``."""
        values = self.data[self.key]
        total = len(values)
        n = min(self.n, total)
        size, extra = divmod(total, n)
        start = 0
        for i in range(n):
            stop = start + size + (1 if i < extra else 0)
            chunk = values[start:stop]
            if isinstance(values, range):
                chunk = list(chunk)
            batch = dict(self.data)
            batch[self.key] = chunk
            yield batch
            start = stop

    def __repr__(self) -> str:
        return f"Batchify(key={self.key!r}, n={self.n}, batches={len(self)})"
