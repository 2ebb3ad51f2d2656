"""How the engine reads its input: slices of sequences, and points of a space as value tuples."""

from __future__ import annotations

from typing import Any, Sequence

from ..space import Params

__all__ = ["KeyedItems", "sliceable"]


class KeyedItems(Sequence[Any]):
    """A batch's inputs sent as value tuples, seen as the points they stand for.

    Each point is built only when looked at (a DataFrame, a checkpoint, an
    error message), not for every task.
    """

    __slots__ = ("keys", "values")

    def __init__(self, keys: tuple[str, ...], values: Sequence[tuple[Any, ...]]) -> None:
        self.keys = keys
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return KeyedItems(self.keys, self.values[index])
        return Params(zip(self.keys, self.values[index], strict=True))


def sliceable(items: Any) -> bool:
    """Whether batches can be cut from ``items`` by slicing (see ``_Engine``)."""
    if isinstance(items, (range, list, tuple)):
        return True
    # NumPy arrays of one or more dimensions, recognised without importing NumPy.
    return type(items).__name__ == "ndarray" and getattr(items, "ndim", 0) >= 1
