"""A batch that records itself: the checkpoint written where a cluster job runs.

A cluster job can outlive the process that submitted it (killed, logged out,
out of memory). So that its work is not lost then, a batch sent to a cluster
backend carries a ``JobRecord``: the job appends the batch's successes to
the checkpoint folder itself (a journal file of its own, fsync'd) before it
writes its result file. A rerun finds them there like any other record::

    Resume ──job_record(first, n)──> JobRecord (positions, input hashes, folder)
                                         │ shipped inside the Batch
    job on a node: run_batch ──> JobRecord(result) ──> checkpoint/journal-*.log
                                         │
    submitter, if still alive: BatchResult.recorded ──> not written twice

Only successes are recorded, exactly as ``Resume``
records them; failed tasks run again on a rerun.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..worker.batch import BatchResult
from .codec import encode_result
from .journal import JournalWriter

__all__ = ["JobRecord"]


@dataclass(frozen=True)
class JobRecord:
    """Where and how one batch's successes are recorded, by the job that runs it.

    Attributes:
        folder: the checkpoint folder (on a file system the nodes share).
        call: the run's call mode, for a manifest the job may have to create.
        store_values: keep each result (else only that the task finished).
        rows: ``(position in the whole input, input hash)`` of each task of the
            batch, in order.
    """

    folder: str
    call: str
    store_values: bool
    rows: tuple[tuple[int, str], ...]

    def __call__(self, result: BatchResult) -> None:
        """Append ``result``'s successes to the checkpoint as one fsync'd record."""
        failed = set(result.failures)
        tasks: list[list[Any]] = []
        for j, value in enumerate(result.values):
            if j in failed:
                continue
            pos, h = self.rows[j]
            kind, payload = encode_result(value, pos) if self.store_values else ("-", None)
            tasks.append([pos, h, kind, payload])
        if not tasks:
            return
        journal = JournalWriter(Path(self.folder), self.call)
        try:
            journal.append(tasks)
        finally:
            journal.close()
