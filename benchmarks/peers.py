"""Each library's idiomatic way to map a function over inputs on a pool.

A :class:`Peer` opens its pool once (:meth:`Peer.open`), maps as many times as
asked (:meth:`Peer.map`, results in input order, as a list) and closes it. The
workloads that need a library-specific form (the notebook's chunking, grids,
streams, shared arrays) live in :mod:`cases`; what is common lives here.

Each peer uses its library's defaults where they are the idiomatic best, and
the documented tuning knob where the default is known to be poor for many
small tasks (``chunksize`` for ``concurrent.futures`` and loky executors, which
default to one task per message).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

__all__ = ["PEERS", "Peer", "make_peer"]


def pool_chunksize(n: int, workers: int) -> int:
    """``multiprocessing.Pool.map``'s default chunk size: about 4 chunks per worker."""
    return max(1, math.ceil(n / (4 * workers)))


class Peer:
    """A library's pool, opened once and reused.

    Args:
        workers: processes (or threads, for thread peers).
    """

    #: Label in the results table.
    label = ""
    #: ``"process"`` or ``"thread"``.
    kind = "process"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def open(self) -> None:
        """Start the pool (may start workers lazily)."""

    def map(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``[func(x) for x in items]`` on the pool, in input order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the pool and its workers."""


# -- process peers ----------------------------------------------------------------------


class ParallelizePeer(Peer):
    """``Parallelize(n, backend="process").map`` (threads: ``backend="thread"``)."""

    label = "parallelize"

    def __init__(self, workers: int, backend: str = "process") -> None:
        super().__init__(workers)
        self.backend = backend
        self.kind = "thread" if backend == "thread" else "process"

    def open(self) -> None:
        from parallelize import Parallelize

        self.runner = Parallelize(self.workers, backend=self.backend)

    def map(self, func: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return list(self.runner.map(func, items))

    def close(self) -> None:
        self.runner.shutdown()


class PoolPeer(Peer):
    """``multiprocessing.Pool(n).map`` with its default chunk size (fork on Linux)."""

    label = "multiprocessing.Pool"

    def open(self) -> None:
        import multiprocessing

        self.pool = multiprocessing.Pool(self.workers)

    def map(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return self.pool.map(func, items)

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


class ProcessPoolExecutorPeer(Peer):
    """``ProcessPoolExecutor(n).map`` with Pool's chunk size (its default of 1 is
    documented as slow for many small tasks)."""

    label = "ProcessPoolExecutor"

    def open(self) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(self.workers)

    def map(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return list(self.pool.map(func, items, chunksize=pool_chunksize(len(items), self.workers)))

    def close(self) -> None:
        self.pool.shutdown()


class LokyPeer(Peer):
    """loky's reusable executor, ``map`` with Pool's chunk size."""

    label = "loky"

    def open(self) -> None:
        from loky import get_reusable_executor

        self.pool = get_reusable_executor(max_workers=self.workers)

    def map(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return list(self.pool.map(func, items, chunksize=pool_chunksize(len(items), self.workers)))

    def close(self) -> None:
        self.pool.shutdown()


class JoblibPeer(Peer):
    """``Parallel(n_jobs=n)(delayed(f)(x) for x in items)``, automatic batching,
    the ``Parallel`` object kept open (``with``) so its workers are reused."""

    label = "joblib"

    def __init__(self, workers: int, prefer: str | None = None) -> None:
        super().__init__(workers)
        self.prefer = prefer
        self.kind = "thread" if prefer == "threads" else "process"

    def open(self) -> None:
        from joblib import Parallel

        self.parallel = Parallel(n_jobs=self.workers, prefer=self.prefer)
        self.parallel.__enter__()

    def map(self, func: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        from joblib import delayed

        task = delayed(func)
        return self.parallel(task(x) for x in items)

    def close(self) -> None:
        self.parallel.__exit__(None, None, None)


class MpirePeer(Peer):
    """``mpire.WorkerPool(n, keep_alive=True).map`` with its automatic chunk size."""

    label = "mpire"

    def __init__(self, workers: int, start_method: str = "fork") -> None:
        super().__init__(workers)
        self.start_method = start_method
        self.kind = "thread" if start_method == "threading" else "process"

    def open(self) -> None:
        from mpire import WorkerPool

        self.pool = WorkerPool(n_jobs=self.workers, start_method=self.start_method, keep_alive=True)

    def map(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        # mpire unpacks an item that is itself iterable into arguments; wrap those.
        args = [(x,) for x in items] if items and not isinstance(items[0], (int, float)) else items
        return self.pool.map(func, args, iterable_len=len(items), progress_bar=False)

    def close(self) -> None:
        self.pool.terminate()


class DaskPeer(Peer):
    """Dask distributed: a ``LocalCluster`` of n single-threaded worker processes;
    ``dask.bag.from_sequence(items, npartitions=8 * n).map(f).compute()``, Dask's
    idiom for mapping over a sequence. The partition count is set: the default
    (partitions of about 32 items) is several times slower on small tasks, as is
    one partition per worker."""

    label = "dask"

    def open(self) -> None:
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(
            n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        self.client = Client(self.cluster)

    def map(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        import dask.bag as db

        return db.from_sequence(items, npartitions=min(len(items), 8 * self.workers)).map(func).compute()

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


# -- thread peers ------------------------------------------------------------------------


class ThreadPoolExecutorPeer(Peer):
    """``ThreadPoolExecutor(n).map``."""

    label = "ThreadPoolExecutor"
    kind = "thread"

    def open(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(self.workers)

    def map(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return list(self.pool.map(func, items))

    def close(self) -> None:
        self.pool.shutdown()


class ThreadPoolPeer(Peer):
    """``multiprocessing.pool.ThreadPool(n).map`` (default chunk size)."""

    label = "multiprocessing.ThreadPool"
    kind = "thread"

    def open(self) -> None:
        from multiprocessing.pool import ThreadPool

        self.pool = ThreadPool(self.workers)

    def map(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return self.pool.map(func, items)

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


class DaskThreadsPeer(Peer):
    """``dask.compute(*[delayed(f)(x) ...], scheduler="threads", num_workers=n)``."""

    label = "dask (threads)"
    kind = "thread"

    def map(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        import dask

        jobs = [dask.delayed(func)(x) for x in items]
        return list(dask.compute(*jobs, scheduler="threads", num_workers=self.workers))


#: Peer factories by key; ``workers`` is the pool size.
PEERS: dict[str, Callable[[int], Peer]] = {
    "parallelize": ParallelizePeer,
    "pool": PoolPeer,
    "ppe": ProcessPoolExecutorPeer,
    "loky": LokyPeer,
    "joblib": JoblibPeer,
    "mpire": MpirePeer,
    "dask": DaskPeer,
    "parallelize-threads": lambda n: ParallelizePeer(n, backend="thread"),
    "tpe": ThreadPoolExecutorPeer,
    "threadpool": ThreadPoolPeer,
    "joblib-threads": lambda n: JoblibPeer(n, prefer="threads"),
    "mpire-threads": lambda n: MpirePeer(n, start_method="threading"),
    "dask-threads": DaskThreadsPeer,
}


def make_peer(key: str, workers: int) -> Peer:
    """The peer registered as ``key`` with a pool of ``workers``."""
    return PEERS[key](workers)
