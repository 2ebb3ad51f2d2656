"""The ``queue`` argument of the seed API: ``func(queue, ...)`` reporting with ``put``.

The original handed every thread one shared ``Queue``. Across processes and
machines a shared queue would need a server, so each call gets its own
``ResultQueue`` inside the worker; whatever the function ``put`` is sent
back with the task and streamed to ``results()`` in order of ``put``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

__all__ = ["QueueCall", "ResultQueue", "wants_queue"]


class ResultQueue:
    """Collects what a task reports with ``put``; ``task_done`` and ``join``
    are accepted for compatibility and never block."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Report ``item`` as a result."""
        self.items.append(item)

    put_nowait = put

    def task_done(self) -> None:
        """Accepted for compatibility with the original API; does nothing."""

    def join(self) -> None:
        """Accepted for compatibility; returns at once (nothing is outstanding)."""

    def qsize(self) -> int:
        """How many items were put."""
        return len(self.items)

    def empty(self) -> bool:
        """Whether nothing was put."""
        return not self.items


def wants_queue(func: Callable[..., Any]) -> bool:
    """Whether ``func`` declares a parameter named ``queue``."""
    try:
        return "queue" in inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


class QueueCall:
    """Calls ``func(queue=ResultQueue(), **kwargs)`` and returns what was put.

    Args:
        func: the user's function, which reports through ``queue.put``.
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def __call__(self, **kwargs: Any) -> list[Any]:
        q = ResultQueue()
        self.func(queue=q, **kwargs)
        return q.items
