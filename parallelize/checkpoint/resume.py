"""Resume: the missing items to the engine, recorded and stored results merged in input order.

See the package docstring (``parallelize.checkpoint``) for the data flow.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from array import array
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Callable, Iterable, Iterator

from ..durations import per_task
from ..errors import CheckpointError, ResumeMismatchError
from ..logs import logger
from ..worker.batch import BatchResult
from ..worker.failure import TaskFailure
from .codec import decode, encode_result, input_hash, unb64
from .job_record import JobRecord
from .journal import Checkpoint, Entry, JournalWriter, damaged_error, mismatch_error

__all__ = ["STORED_WORKER", "Resume"]

# Stored results at the start of the input are handed out in runs of this many,
# so a long finished prefix never sits in memory twice.
_PREFIX_RUN = 1024
#: The ``worker`` of batch results read back from a checkpoint rather than computed.
STORED_WORKER = "checkpoint"


# --------------------------------------------------------------------------- resume


@dataclass(slots=True)
class _Slot:
    """One position on its way out: the input, the value (or failure), its origin."""

    pos: int
    item: Any
    value: Any
    failed: bool = False
    duration: float = math.nan
    worker: str = STORED_WORKER


def _runs(slots: list[_Slot], elapsed: float = 0.0) -> Iterator[BatchResult]:
    """Group slots into BatchResults of consecutive positions from one origin."""
    i = 0
    while i < len(slots):
        j = i + 1
        while j < len(slots) and slots[j].pos == slots[j - 1].pos + 1 and slots[j].worker == slots[i].worker:
            j += 1
        part = slots[i:j]
        yield BatchResult(
            first=part[0].pos,
            values=[s.value for s in part],
            durations=array("d", [s.duration for s in part]),
            failures=[k for k, s in enumerate(part) if s.failed],
            worker=part[0].worker,
            elapsed=elapsed if i == 0 else 0.0,
            items=[s.item for s in part],
        )
        i = j


class Resume:
    """A checkpoint as a filter on the engine's stream of batches: opened and checked at once, run lazily.

    It never runs anything itself. ``batches`` takes the engine as a
    function, hands it only the items not yet recorded, records each computed
    batch, and merges stored and computed results back into input order::

        input ──> recorded here? ──yes──> stored result ───────────────┐
                      │ no                                              v
                      └──> compute(missing items) ──> journal (fsync) ──> merge ──> batches out

    Args:
        checkpoint: the ``Checkpoint``.
        iterable: all inputs, in order.
        call: ``"arg"``, ``"star"`` or ``"kwargs"``, as recorded in the manifest.
        ordered: yield in input order (else stored results first, then as completed).

    Attributes:
        missing: how many items are still to compute, when the input is a
            list, range or finite space (else ``None``).
        ignored_records: torn journal records skipped (their tasks run again).

    Raises:
        CheckpointError: a file of the folder is damaged or crafted, or it holds
            pickled results and ``allow_pickle`` is False.
        ResumeMismatchError: the folder was written with another call mode, or a
            sized input differs from the recorded inputs.
    """

    def __init__(self, checkpoint: Checkpoint, iterable: Iterable[Any], *, call: str, ordered: bool) -> None:
        self.checkpoint = checkpoint
        self._iterable = iterable
        self._call = call
        self._ordered = ordered
        self._store = checkpoint.store_values
        self._commit = checkpoint.before_record
        self._every = checkpoint.record_every
        # Successes computed but not yet handed to before_record and recorded
        # (record_every): journal rows, and (positions, items, values).
        self._pending_rows: list[list[Any]] = []
        self._pending: tuple[list[int], list[Any], list[Any]] = ([], [], [])
        manifest, self._entries, self.ignored_records = self.checkpoint.load()
        folder = self.checkpoint.folder
        if manifest is not None and manifest.get("call") != call:
            raise ResumeMismatchError(
                f"checkpoint {str(folder)!r} was written by a run calling func with call mode "
                f"{manifest.get('call')!r}; this run uses {call!r} (map: 'arg', starmap: 'star', "
                "parameter spaces: 'kwargs'). Use a new folder"
            )
        pickled = [e for e in self._entries.values() if e.kind == "p"]
        if pickled and not self.checkpoint.allow_pickle:
            raise CheckpointError(
                f"checkpoint {str(folder)!r} holds {len(pickled)} pickled result(s) (the first in journal "
                f"{pickled[0].source}); loading a pickle can run arbitrary code, so it is refused by default. "
                "If you wrote this folder yourself, pass checkpoint=Checkpoint(folder, allow_pickle=True); "
                "otherwise delete the folder to start over"
            )
        self._check_stored()
        self._verified = False
        self.missing: int | None = None
        self._prescan()
        if self._entries or self.ignored_records:
            missing = "an unknown number" if self.missing is None else f"{self.missing:,}"
            logger.info(
                "resuming from checkpoint %s: %d recorded result(s) found, %s left to compute, %d torn record(s) "
                "skipped",
                folder,
                len(self._entries),
                missing,
                self.ignored_records,
            )
        self._meta: dict[int, tuple[int, str]] = {}
        self._stored_seen: deque[_Slot] = deque()

    def _usable(self, entry: Entry | None) -> bool:
        return entry is not None and (entry.kind != "-" or not self._store)

    def _prescan(self) -> None:
        """Check the recorded positions of an indexable input before anything runs."""
        from ..space import Space

        data = self._iterable
        if isinstance(data, Space):
            if not data.is_finite:
                return
        elif not isinstance(data, (Sequence, range)) or isinstance(data, (str, bytes)):
            return
        n = len(data)
        found = [(pos, data[pos]) for pos in sorted(self._entries) if pos < n]
        bad = [(pos, item) for pos, item in found if input_hash(item) != self._entries[pos].hash]
        if bad:
            raise mismatch_error(self.checkpoint.folder, self._entries, bad, None)
        self._verified = True
        self.missing = n - sum(1 for pos, _ in found if self._usable(self._entries[pos]))

    def _check(self, pos: int, item: Any, entry: Entry, rest: Iterator[tuple[int, Any]]) -> None:
        if not self._verified and input_hash(item) != entry.hash:
            raise mismatch_error(self.checkpoint.folder, self._entries, [(pos, item)], rest)

    def _feed(self, it: Iterator[tuple[int, Any]]) -> Iterator[Any]:
        """The missing items, for the runner; stored ones are set aside for the merge."""
        index = 0
        for pos, item in it:
            entry = self._entries.get(pos)
            if entry is not None:
                self._check(pos, item, entry, it)
                if self._usable(entry):
                    self._stored_seen.append(self._stored_slot(pos, item, entry))
                    continue
            self._meta[index] = (pos, input_hash(item))
            index += 1
            yield item

    def _stored_batch(self, first: int, items: list[Any], entries: list[Entry]) -> BatchResult:
        """Consecutive stored results from ``first`` on, as one BatchResult."""
        return BatchResult(
            first=first,
            values=[self._value(first + k, e) for k, e in enumerate(entries)],
            durations=array("d", [math.nan]) * len(entries),
            failures=[],
            worker=STORED_WORKER,
            elapsed=0.0,
            items=items,
        )

    def _stored_slot(self, pos: int, item: Any, entry: Entry) -> _Slot:
        return _Slot(pos, item, entry)  # unpickled (if a pickle) when handed out

    def _decoded(self, slots: list[_Slot]) -> list[_Slot]:
        for s in slots:
            if isinstance(s.value, Entry):
                s.value = self._value(s.pos, s.value)
        return slots

    def _check_stored(self) -> None:
        """Decode every stored JSON result (and a pickle's base64) now, before anything runs.

        A damaged or crafted result raises here rather than after work was done;
        decoded values replace their JSON, so they are not held twice.
        """
        for pos, entry in self._entries.items():
            if entry.kind == "j":
                self._entries[pos] = entry._replace(kind="v", payload=self._value(pos, entry))
            elif entry.kind == "p" and type(entry.payload) is str:
                try:
                    self._entries[pos] = entry._replace(payload=unb64(entry.payload))
                except ValueError as exc:
                    raise self._damaged_result(pos, entry, exc) from None

    def _damaged_result(self, pos: int, entry: Entry, exc: BaseException) -> CheckpointError:
        return damaged_error(
            entry.source, self.checkpoint.folder, f"the stored result of task {pos} cannot be read ({exc})"
        )

    def _value(self, pos: int, entry: Entry) -> Any:
        if entry.kind == "v":
            return entry.payload
        if entry.kind == "-":
            return None
        if entry.kind == "j":
            try:
                return decode(entry.payload)
            except Exception as exc:  # whatever a crafted document trips, it is damage
                raise self._damaged_result(pos, entry, exc) from None
        # Only pickles are left. __init__ refuses them without allow_pickle; checked
        # again here, since this is the one line of the module that can run code.
        if entry.kind != "p" or not self.checkpoint.allow_pickle or type(entry.payload) is not bytes:
            raise self._damaged_result(pos, entry, ValueError(f"kind {entry.kind!r} may not be loaded"))
        try:
            return pickle.loads(entry.payload)
        except Exception as exc:
            raise CheckpointError(
                f"the pickled result of task {pos} in checkpoint journal {entry.source} cannot be loaded "
                f"({type(exc).__name__}: {exc}); delete the folder {str(self.checkpoint.folder)!r} to "
                "recompute everything"
            ) from exc

    def _record(self, journal: JournalWriter, result: BatchResult) -> list[_Slot]:
        """Map a computed batch back to input positions, commit and record its successes."""
        failed = set(result.failures)
        items = result.items if result.items is not None else [None] * len(result.values)
        slots: list[_Slot] = []
        rows: list[list[Any]] = []
        done: tuple[list[int], list[Any], list[Any]] = ([], [], [])
        durations = per_task(result.durations)
        for j, value in enumerate(result.values):
            pos, h = self._meta.pop(result.first + j)
            duration = durations[j] if j < len(durations) else math.nan
            if j in failed:
                if isinstance(value, TaskFailure):
                    value = dataclasses.replace(value, index=pos)
                slots.append(_Slot(pos, items[j], value, True, duration, result.worker))
                continue
            slots.append(_Slot(pos, items[j], value, False, duration, result.worker))
            if self._store:
                kind, payload = encode_result(value, pos)
            else:
                kind, payload = "-", None
            rows.append([pos, h, kind, payload])
            done[0].append(pos)
            done[1].append(items[j])
            done[2].append(value)
        for j in range(len(result.values), len(items)):  # tasks a stopped batch never ran
            self._meta.pop(result.first + j, None)
        if not rows:
            return slots
        if self._every is None:
            if self._commit is not None:
                self._commit(*done)
            if not result.recorded:  # else the job that ran it recorded it (JobRecord)
                journal.append(rows)
            return slots
        self._pending_rows += rows
        for pending, new in zip(self._pending, done, strict=True):
            pending += new
        while len(self._pending_rows) >= self._every:
            self._flush(journal, self._every)
        return slots

    def _flush(self, journal: JournalWriter, count: int | None = None) -> None:
        """Hand the first ``count`` pending successes (all: ``None``) to
        ``before_record``, then record them; they count as done only after both."""
        n = len(self._pending_rows) if count is None else count
        if n == 0:
            return
        group = tuple(part[:n] for part in self._pending)
        if self._commit is not None:
            self._commit(*group)  # type: ignore[call-arg]
        journal.append(self._pending_rows[:n])
        del self._pending_rows[:n]
        for part in self._pending:
            del part[:n]

    def job_record(self, first: int, count: int) -> JobRecord | None:
        """The ``JobRecord`` for the batch of ``count`` missing items from ``first`` on.

        For backends whose jobs may outlive this process: the job records its
        own successes. ``None`` when a ``before_record`` callback must run
        first (it runs here, so recording stays here too).
        """
        if self._commit is not None:
            return None
        rows = tuple(self._meta[first + j] for j in range(count))
        return JobRecord(str(self.checkpoint.folder.resolve()), self._call, self._store, rows)

    def _drain(self, before: int | None) -> list[_Slot]:
        out: list[_Slot] = []
        seen = self._stored_seen
        while seen and (before is None or seen[0].pos < before):
            out.append(seen.popleft())
        return self._decoded(out)

    def batches(self, compute: Callable[[Iterable[Any]], Iterator[BatchResult]]) -> Iterator[BatchResult]:
        """Yield stored and computed results as BatchResults, computing only what is missing.

        Args:
            compute: the engine: given the missing items (a lazy iterable),
                yields their BatchResults with positions counted among those
                items. Called once, and only if something is missing.

        Yields:
            Batch results whose ``first`` and ``items`` refer to positions of the
            whole input; stored ones have ``worker`` ``STORED_WORKER``.

        Raises:
            ResumeMismatchError: an input from a generator differs from the recorded one.
        """
        journal = JournalWriter(self.checkpoint.folder, self._call)
        computed: Iterator[BatchResult] | None = None
        try:
            # The finished prefix of the input goes out directly, in runs.
            it: Iterator[tuple[int, Any]] | None = enumerate(self._iterable)
            assert it is not None
            first = 0
            items: list[Any] = []
            stored: list[Entry] = []
            for pos, item in it:
                entry = self._entries.get(pos)
                if entry is not None:
                    self._check(pos, item, entry, it)
                if entry is None or not self._usable(entry):
                    it = chain([(pos, item)], it)
                    break
                items.append(item)
                stored.append(entry)
                if len(items) >= _PREFIX_RUN:
                    yield self._stored_batch(first, items, stored)
                    first, items, stored = pos + 1, [], []
            else:
                it = None
            if items:
                yield self._stored_batch(first, items, stored)
            if it is None:  # everything was stored: no worker is started
                return
            computed = compute(self._feed(it))
            try:
                for result in computed:
                    slots = self._record(journal, result)
                    if not self._ordered:
                        yield from _runs(self._drain(None))
                        yield from _runs(slots, result.elapsed)
                        continue
                    merged: list[_Slot] = []
                    for slot in slots:
                        merged += self._drain(slot.pos)
                        merged.append(slot)
                    # Stored positions before the next missing one can go out now.
                    nxt = next(iter(self._meta.values()), None)
                    merged += self._drain(nxt[0] if nxt is not None else None)
                    yield from _runs(merged, result.elapsed)
                self._flush(journal)  # the last, smaller group (record_every)
            except KeyboardInterrupt:
                # Ctrl-C while recording or handing out: let the engine see it
                # too, so that it stops the running tasks instead of waiting.
                throw = getattr(computed, "throw", None)
                if throw is not None:
                    try:
                        throw(KeyboardInterrupt())
                    except (KeyboardInterrupt, StopIteration):
                        pass
                raise
            yield from _runs(self._drain(None))
        finally:
            journal.close()
            close = getattr(computed, "close", None)
            if close is not None:
                close()
