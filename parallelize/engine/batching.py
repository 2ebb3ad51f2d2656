"""Batch sizes: how many tasks go to a worker at once.

Shipping one tiny task at a time costs far more than running it; shipping huge
batches delays the first results and unbalances the end of a run. The sizer
starts at one task (so the first result comes back at once), then aims for
batches that each take about ``TARGET_BATCH_SECONDS`` inside a worker, as
measured, and never larger than a fair share of what remains, so the last
batches shrink and all workers finish together (guided scheduling).
"""

from __future__ import annotations

from ..worker.batch import timing_group_for

__all__ = ["BatchSizer", "MAX_OUTSTANDING_PER_WORKER", "TARGET_BATCH_SECONDS"]

# Aim of a batch's duration inside a worker. The process pool sends each
# worker its next batch while the current one runs, so a batch no longer costs
# an idle round trip; what it still costs is the parent's CPU (reading,
# accounting, sending), which on 2 cores is taken from the workers. On 400
# tasks of 10 ms (benchmarks/pairs.py, 5 pairs, same run, against Pool.map):
# 50 ms made 1.02x, 100 ms 1.03x, 200 ms 1.01x; before batches were sent
# ahead, 20 ms made 1.13x and 50 ms 1.04x. Longer batches also lose more work
# to a Ctrl-C or a crash (everything in flight: up to two batches a worker),
# so 50 ms it stays. The fair-share cap still shrinks the last batches so
# workers finish together.
TARGET_BATCH_SECONDS = 0.05

# A batch never grows by more than this factor at once, so one freak fast
# batch cannot produce an enormous next one.
MAX_GROWTH = 16

# The fair-share cap never cuts a batch below this much work: a smaller batch
# costs more in round trip (about 0.1-0.5 ms on the process backend) than it
# can gain in balance. Without this floor, tiny tasks ended a run with dozens
# of batches of a few tasks each (found with benchmarks/run.py, tiny tasks).
MIN_BATCH_SECONDS = 0.002

# Hard ceiling on tasks per batch: bounds the memory of one batch's inputs and
# results in flight, and how far a stream reads ahead of its consumer (at most
# a window of batches). At 10,000 even 0.1 us tasks make 1 ms batches, still
# several times the round trip.
MAX_BATCH = 10_000

# At most this many tasks per worker are outstanding (sent, running, or done
# and waiting to be consumed), whatever the batch sizes: it bounds the parent's
# memory for a stream of any length (benchmarks/run.py, streaming: flat from
# 10**5 to 10**7 tasks).
MAX_OUTSTANDING_PER_WORKER = 2 * MAX_BATCH


# Weight kept by earlier batches at each new one in the per-task estimate.
EST_DECAY = 0.8

# Batch target for backends that run tasks in this process (threads): a batch
# there costs tens of microseconds, so small batches keep I/O-bound tasks
# spread over every thread (benchmarks/run.py, io).
IN_PROCESS_TARGET_SECONDS = 0.002


class BatchSizer:
    """Chooses the size of the next batch from what earlier batches measured.

    Args:
        max_workers: workers sharing the input.
        total: number of tasks, if known (enables the fair-share cap).
        fixed: a fixed size (the user's ``chunksize``), or ``None`` to adapt.
        target_seconds: the work to aim for in one batch.
        min_seconds: the least work the fair-share cap leaves in a batch
            (default ``MIN_BATCH_SECONDS``; a cluster, where a batch is a
            job that costs about a second to start, wants far more).
        estimate: seconds per task measured by an earlier run of the same
            function on the same backend: the sizer starts calibrated, with
            no probe batch (a probe costs a round trip per worker).
    """

    def __init__(
        self,
        max_workers: int,
        total: int | None = None,
        fixed: int | None = None,
        target_seconds: float = TARGET_BATCH_SECONDS,
        min_seconds: float = MIN_BATCH_SECONDS,
        estimate: float | None = None,
    ) -> None:
        self.max_workers = max_workers
        self.total = total
        self.fixed = fixed
        self.target = target_seconds
        self.min_seconds = min_seconds
        self._size = 1
        self._per_task: float | None = None
        self._time = 0.0
        self._tasks = 0.0
        if estimate is not None and estimate > 0:
            self._per_task = estimate
            self._time, self._tasks = estimate, 1.0
            self._size = max(1, min(int(self.target / estimate), MAX_BATCH))

    @property
    def per_task(self) -> float | None:
        """The current estimate of one task's seconds (``None`` before any measurement)."""
        return self._per_task

    @property
    def timing_group(self) -> int:
        """How many tasks the worker should time together (1 = each on its own)."""
        # Tasks under 10 us are timed in groups: reading the clock costs about
        # 0.1 us, 1% of a 10 us task (see worker.batch.timing_group_for).
        return timing_group_for(self._per_task) if self._per_task is not None else 1

    @property
    def calibrated(self) -> bool:
        """Whether a batch has been measured yet (fixed sizes need no measurement)."""
        return self.fixed is not None or self._per_task is not None

    def next_size(self, remaining: int | None) -> int:
        """Size of the next batch, given how many tasks remain (if known)."""
        if self.fixed is not None:
            return self.fixed
        size = self._size
        if remaining is not None:
            # Fair share of what is left: ~4 batches per worker still to come,
            # but never less work than MIN_BATCH_SECONDS per batch.
            share = -(-remaining // (4 * self.max_workers))
            floor = int(self.min_seconds / self._per_task) if self._per_task else 1
            # ...nor so much that a run has fewer batches than workers: a short
            # run is split between all of them (a 6,090-point grid of 0.1 us
            # tasks went to one worker as one batch).
            if self.total is not None:
                floor = min(floor, -(-self.total // self.max_workers))
            size = min(size, max(share, floor, 1))
        return max(1, min(size, MAX_BATCH))

    @property
    def outstanding_cap(self) -> int:
        """The most tasks outstanding at once over all workers (see ``MAX_OUTSTANDING_PER_WORKER``).

        A user's ``chunksize`` above ``MAX_BATCH`` raises it, so that every
        worker still has a batch of that size at hand.
        """
        per_worker = max(MAX_OUTSTANDING_PER_WORKER, 2 * (self.fixed or 0))
        return per_worker * self.max_workers

    def observe(self, n_tasks: int, seconds: float) -> None:
        """Record that a batch of ``n_tasks`` took ``seconds`` inside a worker.

        With a fixed size only the per-task estimate is kept (it decides
        ``timing_group``); the size stays the user's.
        """
        if n_tasks <= 0:
            return
        if self.fixed is not None:
            self._time = EST_DECAY * self._time + seconds
            self._tasks = EST_DECAY * self._tasks + n_tasks
            self._per_task = max(self._time / self._tasks, 1e-8)
            return
        first = self._per_task is None
        # Per-task time as a decaying ratio of time to tasks, so a batch weighs
        # by its size: one long task in a small batch moves the estimate a
        # little, not to 'every task is long' (which made batches of 1-4 after
        # each slow task in the skewed benchmark).
        self._time = EST_DECAY * self._time + seconds
        self._tasks = EST_DECAY * self._tasks + n_tasks
        self._per_task = max(self._time / self._tasks, 1e-8)
        ideal = int(self.target / self._per_task)
        # After the first probe of a run of known length, jump straight to the
        # ideal size: the fair-share cap in next_size bounds the risk, and each
        # doubling step would cost a round trip per worker.
        growth = MAX_BATCH if first and self.total is not None else self._size * MAX_GROWTH
        self._size = max(1, min(ideal, growth, MAX_BATCH))
