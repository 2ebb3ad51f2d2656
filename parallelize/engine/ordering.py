"""Batch results put back into input order: each waits until every batch before it is out.

Used by the engine for ordered streams and by a background execution's
``results(ordered=True)``: one buffer, keyed by the batch's first position.
"""

from __future__ import annotations

from typing import Iterator

from ..worker.batch import BatchResult

__all__ = ["InOrder", "batch_length"]


def batch_length(result: BatchResult) -> int:
    """How many input positions ``result`` covers (its inputs; else its values)."""
    return len(result.items) if result.items is not None else len(result.values)


class InOrder:
    """Releases batch results in input order, holding those that arrive early."""

    __slots__ = ("_waiting", "next_first")

    def __init__(self) -> None:
        self._waiting: dict[int, BatchResult] = {}
        #: The first input position not released yet.
        self.next_first = 0

    def __len__(self) -> int:
        """Batches held, waiting for an earlier one."""
        return len(self._waiting)

    def held_values(self) -> int:
        """Results held in all waiting batches together (for the engine's memory cap)."""
        return sum(len(b.values) for b in self._waiting.values())

    def add(self, result: BatchResult) -> Iterator[BatchResult]:
        """Hold ``result``; yield every batch that may go out now, in order."""
        self._waiting[result.first] = result
        while self.next_first in self._waiting:
            out = self._waiting.pop(self.next_first)
            self.next_first += batch_length(out)
            yield out

    def rest(self) -> list[BatchResult]:
        """Every batch still held, in order (after an error left gaps), and none held after."""
        out = [self._waiting[first] for first in sorted(self._waiting)]
        self._waiting.clear()
        return out
