"""What ``mp_lock`` runs in a worker: ``process(item, shared_data, init_values)``.

Kept apart from ``parallelize.mplock`` (the parent's side), so that unpickling
the task in a worker imports only this package's worker modules: importing
``parallelize.mplock`` there (the runner, checkpoints, parameter spaces) cost
each worker about 170 ms at start.
"""

from __future__ import annotations

from typing import Any, Callable

from .context import worker_context

__all__ = ["ProcessItem", "no_init"]


class ProcessItem:
    """The task run in a worker: ``process(item, shared_data, init_values)``."""

    def __init__(self, process: Callable[..., Any]) -> None:
        self.process = process

    def __call__(self, item: Any) -> Any:
        ctx = worker_context()
        return self.process(item, ctx.shared_data, ctx.init_values)


def no_init(shared_data: Any) -> dict[str, Any]:
    """``init_values`` when there is no ``init_function``: an empty dict, as in the original."""
    return {}
