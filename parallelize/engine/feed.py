"""Ways into a running dispatch from other threads: a growing input, and an interrupt.

- ``Feed``: ``runner.submit`` puts calls here while the engine runs.
- ``Control``: a background run's waiting caller stops it as Ctrl-C would.

Both wake the engine by putting a marker on its done queue, so the engine
never polls them.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Protocol

from ..errors import RunnerClosedError

__all__ = ["INTERRUPT", "WAKE", "Control", "Feed"]


class _Wakeable(Protocol):
    """What Feed and Control need of an engine: its done queue."""

    done: Any


# Put on an engine's done queue by another thread to interrupt it (see Control).
INTERRUPT: Any = object()

# Put on an engine's done queue when a Feed has new items or was closed.
WAKE: Any = object()


class Feed:
    """An input that grows while the engine runs: ``runner.submit`` puts calls here.

    The engine takes what is waiting whenever a worker can use it (several
    calls submitted in a row travel as one batch) and never blocks on the feed:
    ``put`` and ``close`` wake it instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: deque[Any] = deque()
        self._closed = False
        self._engine: _Wakeable | None = None

    def attach(self, engine: _Wakeable) -> None:
        with self._lock:
            self._engine = engine
        engine.done.put(WAKE)

    def put(self, item: Any) -> None:
        """Add ``item``.

        Raises:
            RunnerClosedError: the feed was closed.
        """
        with self._lock:
            if self._closed:
                raise RunnerClosedError("cannot submit after shutdown; create a new runner")
            self._items.append(item)
            engine = self._engine
        if engine is not None:
            engine.done.put(WAKE)

    def waiting(self) -> int:
        """How many items wait to be taken."""
        with self._lock:
            return len(self._items)

    def take(self, n: int) -> tuple[list[Any], bool]:
        """Up to ``n`` waiting items, and whether the feed is closed and now empty."""
        with self._lock:
            chunk = [self._items.popleft() for _ in range(min(n, len(self._items)))]
            return chunk, self._closed and not self._items

    def discard(self, item: Any) -> bool:
        """Take ``item`` back if the engine has not taken it yet."""
        with self._lock:
            try:
                self._items.remove(item)
            except ValueError:
                return False
            return True

    def drain(self) -> list[Any]:
        """Remove and return every waiting item."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items

    def close(self) -> None:
        """No more items: the engine ends once those taken have finished."""
        with self._lock:
            self._closed = True
            engine = self._engine
        if engine is not None:
            engine.done.put(WAKE)


class Control:
    """Lets another thread stop a dispatch as Ctrl-C would: running tasks killed.

    A background run (``ModelEvaluator``, ``runner.run``) drives its engine in a
    thread of its own; when the user's Ctrl-C lands in the thread waiting on it,
    that thread calls ``interrupt`` and the engine stops at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: _Wakeable | None = None
        self._interrupted = False

    def attach(self, engine: _Wakeable) -> None:
        with self._lock:
            self._engine = engine
            if self._interrupted:
                engine.done.put(INTERRUPT)

    def interrupt(self) -> None:
        """Stop the dispatch: it raises KeyboardInterrupt in its own thread and kills its tasks."""
        with self._lock:
            self._interrupted = True
            if self._engine is not None:
                self._engine.done.put(INTERRUPT)
