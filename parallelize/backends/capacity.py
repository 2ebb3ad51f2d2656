"""How many worker processes this machine can start, checked before any is started.

A worker count beyond what the open-file limit, the process limit or the memory
allow would fail half way through starting the pool, or push the machine into
swap; the process backend refuses it up front with a message naming the limit.
"""

from __future__ import annotations

import os

from ..errors import ConfigError

__all__ = ["FDS_PER_WORKER", "WORKER_BYTES", "check_worker_count", "max_workers_here"]

# What one worker costs the parent and the machine, for the limit on workers:
# file descriptors (its socket, loky's sentinel pipe, and one spare), and memory
# (a fresh worker's own pages, measured here: about 14 MiB unique, 21 MiB resident).
FDS_PER_WORKER = 3
WORKER_BYTES = 14 * 2**20


def max_workers_here() -> tuple[int, str]:
    """How many worker processes this machine can start, and what sets the limit."""
    limits: list[tuple[int, str]] = []
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:
            limits.append((max((soft - 64) // FDS_PER_WORKER, 1), f"the open-file limit (ulimit -n = {soft})"))
        soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
        if soft != resource.RLIM_INFINITY:
            limits.append((soft, f"the process limit (ulimit -u = {soft})"))
    except (ImportError, ValueError, OSError):
        pass
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory = pages * size
        limits.append((max(memory // WORKER_BYTES, 1), f"memory ({memory / 2**30:.1f} GiB at ~14 MiB a worker)"))
    except (ValueError, OSError, AttributeError):
        pass
    return min(limits) if limits else (1 << 20, "no known limit")


def check_worker_count(max_workers: int) -> None:
    """Refuse a worker count this machine cannot start, before starting any.

    Raises:
        ConfigError: naming the limit and what sets it.
    """
    limit, why = max_workers_here()
    if max_workers > limit:
        raise ConfigError(
            f"max_workers={max_workers} worker processes cannot start on this machine: at most {limit}, "
            f"set by {why}; use fewer workers (the CPU count, {os.cpu_count()}, is usual for CPU-bound work)"
        )
