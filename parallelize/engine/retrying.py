"""Retries that wait: the timer they wait on, and batch results held until their retries are back.

The run's ``RetryPolicy`` decides; this module keeps
the waiting out of every worker::

    worker: task fails, policy wants a wait ──> BatchResult.retry_after[pos] = wait
    engine: Retries.settle ──> result held (Held) ──> Slot(one task) on the timer
            timer due ──> Slot sent again ──> outcome mended into the held result
            every retry back ──> the held result goes on to the error policy and ordering

A timeout or a crash of a one-task slot goes on the same timer
(``Retries.again``), with the same attempt count.
"""

from __future__ import annotations

import heapq
import itertools
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .. import logs
from ..retry import RetryPolicy
from ..worker.batch import BatchResult

__all__ = ["Held", "Retries", "Slot"]


@dataclass(eq=False)
class Held:
    """A batch's result waiting for the retries of some of its tasks."""

    result: BatchResult
    pending: int


@dataclass(eq=False)
class Slot:
    """A batch the engine is responsible for, from submission to delivery.

    ``attempt`` is the attempt number of the slot's next run (the one count the
    retry policy reads); ``retried`` counts the times the engine sent its tasks
    again. A slot that retries one task of a held result has ``owner`` set and
    ``offset``, the task's position in that result.
    """

    first: int
    items: Any  # a list, or a slice of the input (range, tuple, array)
    future: Future[BatchResult] | None = None
    started: float | None = None
    attempt: int = 1
    retried: int = 0
    quarantined: bool = False
    owner: Held | None = None
    offset: int = 0


class Retries:
    """Slots waiting out a retry's wait, in due order, and the results held for them.

    Args:
        policy: the run's retry policy.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        # (due time, sequence, slot, to quarantine): a heap, earliest first.
        self._heap: list[tuple[float, int, Slot, bool]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def next_due(self) -> float | None:
        """When the earliest waiting slot is due (``time.monotonic()``), or ``None``."""
        return self._heap[0][0] if self._heap else None

    def waiting(self) -> list[Slot]:
        """The slots still waiting."""
        return [slot for _, _, slot, _ in self._heap]

    def clear(self) -> None:
        self._heap.clear()

    def later(self, slot: Slot, wait: float, *, quarantine: bool = False) -> None:
        """Send ``slot`` again after ``wait`` seconds (to run alone if ``quarantine``)."""
        heapq.heappush(self._heap, (time.monotonic() + wait, next(self._sequence), slot, quarantine))

    def due(self) -> list[tuple[Slot, bool]]:
        """The slots whose wait is over, with whether each must run alone; removed from the timer."""
        now = time.monotonic()
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, _, slot, quarantine = heapq.heappop(self._heap)
            out.append((slot, quarantine))
        return out

    def again(self, slot: Slot, exc: BaseException, *, quarantine: bool = False) -> bool:
        """Put ``slot``'s next attempt on the timer if the policy wants one after ``exc``."""
        if not self.policy.should_retry(exc, slot.attempt):
            return False
        wait = self.policy.delay(slot.attempt)
        shown = logs.brief(slot.items[0] if len(slot.items) == 1 else slot.items)
        logs.retrying(slot.first, shown, slot.attempt, self.policy.retries + 1, exc, wait)
        slot.attempt += 1
        slot.retried += 1
        self.later(slot, wait, quarantine=quarantine)
        return True

    def settle(self, slot: Slot, result: BatchResult) -> list[BatchResult]:
        """Hold a result whose tasks await retries, or mend a held one; the results now complete."""
        result.retried += slot.retried
        pending, result.retry_after = result.retry_after, None
        if slot.owner is not None:  # the retry of one task of a held result
            if pending:
                failure = result.values[0]
                logs.retrying_failure(failure, self.policy.retries + 1, pending[0])
                slot.attempt = failure.attempts + 1
                slot.retried += 1
                self.later(slot, pending[0])
                return []
            return self.mend(slot, result)
        if not pending:
            return [result]
        held = Held(result, len(pending))
        for pos, wait in pending.items():
            logs.retrying_failure(result.values[pos], self.policy.retries + 1, wait)
            retry = Slot(
                first=result.first + pos,
                items=slot.items[pos : pos + 1],
                attempt=result.values[pos].attempts + 1,
                retried=1,
                owner=held,
                offset=pos,
            )
            self.later(retry, wait)
        return []

    def mend(self, slot: Slot, retried: BatchResult) -> list[BatchResult]:
        """Put a retried task's outcome in its place in the held result."""
        held = slot.owner
        assert held is not None
        result, k = held.result, slot.offset
        result.values[k] = retried.values[0]
        if retried.durations and k < len(result.durations):
            result.durations[k] = retried.durations[0]  # a grouped batch's runs are written out here
        if not retried.failures:
            result.failures.remove(k)
            # Durable where it ran only if the retry recorded its success too.
            result.recorded = result.recorded and retried.recorded
        result.retried += retried.retried
        if result.durations:
            result.summary = (sum(result.durations), min(result.durations), max(result.durations))
        held.pending -= 1
        return [result] if held.pending == 0 else []
