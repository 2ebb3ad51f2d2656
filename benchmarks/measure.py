"""Measuring tools: a clock for repeated runs and a memory sampler.

Memory is sampled from outside the measured code, in a thread, so no library
has to cooperate: the resident (RSS) and proportional (PSS) set sizes of this
process and all its descendants, every few milliseconds. PSS divides each
shared page among the processes that map it, so a memory-mapped array read by
three processes counts once, where RSS would count it three times.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

__all__ = ["MemorySampler", "timed"]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn()``; return (seconds it took, its value)."""
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


class MemorySampler:
    """Samples memory in a background thread and keeps the peak.

    Args:
        interval: seconds between samples.
        children: also count every descendant process (workers, their helpers).
        pss: also read PSS (slower: it reads ``/proc/PID/smaps_rollup``).
    """

    def __init__(self, interval: float = 0.01, *, children: bool = False, pss: bool = False) -> None:
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self.interval = interval
        self.children = children
        self.pss = pss
        self.peak_rss = 0
        self.peak_pss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> tuple[int, int]:
        """Current (RSS, PSS) in bytes, summed over the processes watched (PSS 0 if not read)."""
        procs = [self._me]
        if self.children:
            try:
                procs += self._me.children(recursive=True)
            except self._psutil.Error:
                pass
        rss = pss = 0
        for proc in procs:
            try:
                if self.pss:
                    info = proc.memory_full_info()
                    pss += info.pss
                    rss += info.rss
                else:
                    rss += proc.memory_info().rss
            except self._psutil.Error:  # a worker that just exited
                continue
        return rss, pss

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = self.sample()
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss, pss = self.sample()  # one last look, after the measured code returned
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
