"""Batch sizes: how many tasks go to a worker at once.

Shipping one tiny task at a time costs far more than running it; shipping huge
batches delays the first results and unbalances the end of a run. The sizer
starts at one task (so the first result comes back at once), then aims for
batches that each take about :data:`TARGET_BATCH_SECONDS` inside a worker, as
measured, and never larger than a fair share of what remains, so the last
batches shrink and all workers finish together (guided scheduling).
"""

from __future__ import annotations

__all__ = ["BatchSizer", "TARGET_BATCH_SECONDS"]

# Aim of a batch's duration inside a worker. Against a round trip of about
# 0.1-1 ms per batch on the process backend, 20 ms keeps the overhead near 1%
# while the first results of a stream still arrive quickly.
TARGET_BATCH_SECONDS = 0.02

# A batch never grows by more than this factor at once, so one freak fast
# batch cannot produce an enormous next one.
MAX_GROWTH = 16

# Hard ceiling on tasks per batch: bounds the memory of one batch's inputs and
# results in flight.
MAX_BATCH = 100_000


class BatchSizer:
    """Chooses the size of the next batch from what earlier batches measured.

    Args:
        max_workers: workers sharing the input.
        total: number of tasks, if known (enables the fair-share cap).
        fixed: a fixed size (the user's ``chunksize``), or ``None`` to adapt.
    """

    def __init__(self, max_workers: int, total: int | None = None, fixed: int | None = None) -> None:
        self.max_workers = max_workers
        self.total = total
        self.fixed = fixed
        self._size = 1
        self._per_task: float | None = None

    def next_size(self, remaining: int | None) -> int:
        """Size of the next batch, given how many tasks remain (if known)."""
        if self.fixed is not None:
            return self.fixed
        size = self._size
        if remaining is not None:
            # Fair share of what is left: ~4 batches per worker still to come.
            share = -(-remaining // (4 * self.max_workers))
            size = min(size, max(share, 1))
        return max(1, min(size, MAX_BATCH))

    def observe(self, n_tasks: int, seconds: float) -> None:
        """Record that a batch of ``n_tasks`` took ``seconds`` inside a worker."""
        if self.fixed is not None or n_tasks <= 0:
            return
        per_task = max(seconds / n_tasks, 1e-8)
        # Smooth the per-task estimate so one outlier batch does not swing it.
        if self._per_task is None:
            self._per_task = per_task
        else:
            self._per_task = 0.5 * self._per_task + 0.5 * per_task
        ideal = int(TARGET_BATCH_SECONDS / self._per_task)
        self._size = max(1, min(ideal, self._size * MAX_GROWTH, MAX_BATCH))
