"""Which of some processes are still running, for tests that check nothing outlives a pool."""

from __future__ import annotations

from typing import Iterable

import psutil


def alive(pids: Iterable[int]) -> list[int]:
    """The pids whose processes still run (a zombie has ended; one may exit while it is asked)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out
