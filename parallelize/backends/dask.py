"""The dask backend: tasks run on a Dask distributed cluster.

Three ways to get a cluster::

    Parallelize(backend="dask", address="tcp://scheduler:8786")  # a running scheduler
    Parallelize(backend="dask", client=client)                   # an existing Client
    Parallelize(backend="dask")                                  # a LocalCluster, started on
                                                                 # first use, closed at shutdown

The engine ships batches, not single tasks, so Dask's per-task cost (a few
milliseconds of scheduling) is paid once per batch. Each submission gets a unique
key (``pure=False``): two identical batches are two tasks, never one cached result.
Dask's futures are turned into ``concurrent.futures.Future`` objects, so the
runner sees the same interface as on every other backend; a task reports its start
through a Dask event topic, so ``running()`` (and with it ``timeout=``) means what
it means on a local pool.

A worker lost mid-run is Dask's business: the scheduler reruns its tasks on
other workers, up to ``distributed.scheduler.allowed-failures`` times (default 3)
per task; past that the batch fails with ``WorkerCrashedError``.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import CancelledError, Future
from typing import Any, Callable

from ..errors import BackendUnavailableError, ConfigError, SchedulerUnreachableError, WorkerCrashedError
from ..validate import check_seconds
from .base import Backend

try:
    import distributed
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError as exc:  # the optional extra is not installed
    raise BackendUnavailableError(
        'the dask backend needs Dask distributed, which is not installed: pip install "parallelize[dask]"'
    ) from exc

__all__ = ["DaskBackend", "CONNECT_TIMEOUT"]

#: Seconds to wait for a scheduler to answer before giving up.
CONNECT_TIMEOUT = 5.0

# Seconds allowed for closing a client or a LocalCluster at shutdown.
_CLOSE_TIMEOUT = 20.0

# Tasks announce their start on this Dask event topic. One topic for every
# runner: the scheduler keeps a bounded log per topic and never drops a topic,
# so a topic per runner would grow a long-lived scheduler's memory.
_TOPIC = "parallelize-task-started"


class _SetupPlugin(WorkerPlugin):
    """Carries the runner's per-worker setup to every worker, present and future.

    The scheduler keeps registered plugins and hands them to workers that join
    later (or replace a lost one), so ``shared_data`` travels once per worker, not
    once per batch. The setup itself runs in the task's thread (it keeps its state
    per thread), the first time a task of this runner runs there.
    """

    idempotent = False

    def __init__(self, setup: Callable[[], None]) -> None:
        self.setup_callable = setup


class _Call:
    """``fn(*args, **kwargs)`` as one opaque object, so Dask does not walk the arguments.

    Attributes:
        key: the task's Dask key, sent back on ``topic`` when the task starts.
        topic: the submitting backend's event topic.
        plugin: name of the backend's setup plugin, or ``None``.
    """

    __slots__ = ("fn", "args", "kwargs", "key", "topic", "plugin")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        key: str,
        topic: str,
        plugin: str | None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.key = key
        self.topic = topic
        self.plugin = plugin

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.fn, self.args, self.kwargs, self.key, self.topic, self.plugin)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.fn, self.args, self.kwargs, self.key, self.topic, self.plugin = state


def _run_call(call: _Call) -> Any:
    """Run in a Dask worker: say it started, run the runner's setup (once per worker thread), then the call."""
    worker = distributed.get_worker()
    # Non-blocking: queued on the worker's batched stream to the scheduler, which
    # forwards it to the subscribed client within a few milliseconds.
    worker.log_event(call.topic, call.key)
    if call.plugin is not None:
        plugin = worker.plugins.get(call.plugin)
        if plugin is None:
            raise RuntimeError(
                f"worker setup {call.plugin!r} is not registered on this Dask worker; "
                "the runner that submitted the task was probably shut down"
            )
        plugin.setup_callable()  # type: ignore[attr-defined]
    return call.fn(*call.args, **call.kwargs)


def _translate(exc: BaseException) -> BaseException:
    """A Dask-level failure as one of ours; the task's own exceptions pass through."""
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        err: BaseException = WorkerCrashedError(
            f"Dask gave up on a task after the workers running it died too many times: {str(exc).rstrip('.')}. "
            "A task that kills its worker (native crash, out of memory) is retried on other "
            "workers up to distributed.scheduler.allowed-failures times"
        )
    elif isinstance(exc, CancelledError):
        err = WorkerCrashedError(
            f"the Dask cluster dropped the task before it finished ({exc or 'cancelled'}); "
            "the scheduler was restarted or the connection to it was lost"
        )
    else:
        return exc
    err.__cause__ = exc
    return err


def _on_started(event: tuple[float, Any]) -> None:
    """Start-event handler (in the client's event loop): mark the task's future running."""
    future = _STARTED.get(event[1])
    if future is not None:
        future._started()


def _subscribe(client: Any) -> None:
    with _subscriptions_lock:
        count = _subscriptions.get(client.id, 0)
        if count == 0:
            client.subscribe_topic(_TOPIC, _on_started)
        _subscriptions[client.id] = count + 1


def _unsubscribe(client: Any) -> None:
    with _subscriptions_lock:
        count = _subscriptions.pop(client.id, 1) - 1
        if count > 0:
            _subscriptions[client.id] = count
            return
    try:
        client.unsubscribe_topic(_TOPIC)
    except Exception:  # closed client or scheduler gone: nothing to undo
        pass


class _DaskFuture(Future):  # type: ignore[type-arg]
    """A ``concurrent.futures.Future`` that follows a Dask future.

    Pending until the task's start event arrives, then running, then done with
    the task's value or exception. ``cancel()`` succeeds while pending: the Dask
    future is released, so the scheduler drops the task (were it to start in the
    meantime, its result is discarded).
    """

    def __init__(self) -> None:
        super().__init__()
        self._dask_future: Any = None
        self._guard = threading.Lock()

    def cancel(self) -> bool:
        with self._guard:
            if not super().cancel():
                return False
            self.set_running_or_notify_cancel()  # wake concurrent.futures.wait() now
            dask_future, self._dask_future = self._dask_future, None
        if dask_future is not None:
            dask_future.release()
        return True

    def _started(self) -> None:
        """The task's start event arrived (called in the client's event loop)."""
        with self._guard:
            if not self.running() and not self.done():
                self.set_running_or_notify_cancel()

    def _abandon(self) -> None:
        """Stop following the task: release it and wake anyone still waiting."""
        with self._guard:
            dask_future, self._dask_future = self._dask_future, None
            if not self.done():
                if not self.running():
                    self.set_running_or_notify_cancel()
                self.set_exception(CancelledError("the task was abandoned; its result is discarded"))
        if dask_future is not None:
            dask_future.release()

    def _follow(self, dask_future: Any) -> None:
        """Dask's done callback (runs in Dask's callback thread): copy the outcome."""
        try:
            value, error = dask_future.result(), None
        except BaseException as exc:  # the task's own exception, or Dask's
            value, error = None, _translate(exc)
        with self._guard:
            self._dask_future = None
            if self.done():  # cancelled or abandoned meanwhile
                return
            if not self.running():
                self.set_running_or_notify_cancel()
            if error is None:
                self.set_result(value)
            else:
                self.set_exception(error)


def _check_reachable(address: str, timeout: float) -> None:
    """Ask the scheduler at ``address`` who it is, giving up after ``timeout`` seconds.

    ``Client(address, timeout=...)`` can wait forever on a port that accepts the
    connection but never answers (a different service, a firewall), so the first
    exchange is bounded here. It runs in a short-lived thread with its own event
    loop, which also works when the caller is inside one (a notebook).
    """
    from distributed.comm.addressing import parse_address
    from distributed.core import rpc

    if parse_address(address)[0] != "tcp":
        return  # TLS and other transports need the Client's security settings: let it connect
    outcome: list[BaseException | None] = []

    async def ask() -> None:
        async with rpc(address, timeout=timeout) as scheduler:
            await asyncio.wait_for(scheduler.identity(), timeout)

    def probe() -> None:
        try:
            asyncio.run(asyncio.wait_for(ask(), timeout))
            outcome.append(None)
        except BaseException as exc:  # reported to the caller below
            outcome.append(exc)

    thread = threading.Thread(target=probe, name="parallelize-dask-probe", daemon=True)
    thread.start()
    thread.join(timeout + 2)
    error = outcome[0] if outcome else TimeoutError(f"no answer after {timeout} s")
    if error is not None:
        raise _unreachable(address, timeout, error) from error


def _unreachable(address: str, timeout: float, error: BaseException) -> SchedulerUnreachableError:
    reason = str(error) or type(error).__name__
    if isinstance(error, asyncio.TimeoutError):
        reason = f"no answer within {timeout} s"
    return SchedulerUnreachableError(
        f"could not reach the Dask scheduler at {address!r}: {reason}. Check that `dask scheduler` "
        "is running there and that this machine can reach its host and port, or pass "
        "connect_timeout= to wait longer"
    )


# Unfinished futures of every dask backend in this process, by Dask key (unique).
_STARTED: dict[str, _DaskFuture] = {}
_subscriptions: dict[str, int] = {}  # client id -> backends subscribed through it
_subscriptions_lock = threading.Lock()


class DaskBackend(Backend):
    """Runs tasks on a Dask distributed cluster.

    Args:
        max_workers: how many tasks the runner keeps in flight; it does not size a
            remote cluster. With neither ``address`` nor ``client``, the number of
            single-threaded worker processes of the ``distributed.LocalCluster``.
        initializer: run once in each worker thread before its first task; shipped
            to the workers once, including workers that join later.
        address: a scheduler address such as ``"tcp://10.0.0.5:8786"``.
        client: an existing ``distributed.Client``; it is left open at shutdown.
        connect_timeout: seconds to wait for the scheduler (default 5).
        cluster_options: keyword arguments for the ``distributed.LocalCluster``
            started when neither ``address`` nor ``client`` is given (e.g.
            ``{"memory_limit": "2GiB"}``).

    Raises:
        ConfigError: both ``address`` and ``client``, or an option of the wrong type.
        SchedulerUnreachableError: the scheduler at ``address`` did not answer in time.
    """

    name = "dask"
    can_kill = False
    in_process = False

    def __init__(
        self,
        max_workers: int | None,
        initializer: Callable[[], None] | None = None,
        *,
        address: str | None = None,
        client: Any = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        cluster_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        if options:
            raise ConfigError(
                f"unknown dask backend option(s) {sorted(options)}; expected 'address', 'client', "
                "'connect_timeout' or 'cluster_options'"
            )
        if address is not None and client is not None:
            raise ConfigError("give the dask backend an address or a client, not both")
        if address is not None and (not isinstance(address, str) or not address):
            raise ConfigError(f"address must be a scheduler address like 'tcp://host:8786', got {address!r}")
        if client is not None and not isinstance(client, distributed.Client):
            raise ConfigError(f"client must be a distributed.Client, got {type(client).__name__}")
        connect_timeout = check_seconds("connect_timeout", connect_timeout, allow_zero=False)
        if cluster_options is not None and (address is not None or client is not None):
            raise ConfigError("cluster_options only apply to the LocalCluster started without address or client")
        super().__init__(max_workers, initializer)
        self.address = address
        self._connect_timeout = connect_timeout
        self._cluster_options = dict(cluster_options or {})
        self._lock = threading.Lock()
        self._client: Any = None
        self._cluster: Any = None
        self._owns_client = client is None
        self._plugin: str | None = None
        # Unfinished futures by Dask key: start events find theirs here, and
        # shutdown(wait=True) waits for them.
        self._futures: dict[str, _DaskFuture] = {}
        self._closed = False
        if client is not None:
            self._attach(client)
        elif address is not None:
            # Connect now: a wrong address is reported where the runner is made.
            _check_reachable(address, self._connect_timeout)
            try:
                new = distributed.Client(address, timeout=self._connect_timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise _unreachable(address, self._connect_timeout, exc) from exc
            try:
                self._attach(new)
            except BaseException:
                new.close()
                raise
        # else: a LocalCluster is started by the first submit, so a runner that is
        # never used starts (and can leak) nothing.

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use (``None`` before a LocalCluster starts)."""
        return self._client

    def total_threads(self) -> int:
        """Threads of all workers currently connected to the scheduler (0 before a LocalCluster starts)."""
        if self._client is None:
            return 0
        return sum(self._client.nthreads().values())

    def suggested_workers(self) -> int | None:
        """Tasks worth keeping in flight when the user did not choose: the cluster's threads.

        ``None`` before a LocalCluster is started (it is sized by ``max_workers``).
        """
        threads = self.total_threads()
        return threads or None

    def _attach(self, client: Any) -> None:
        # Subscribed before any task is submitted: both travel on the same ordered
        # stream to the scheduler, so no start event can be missed.
        _subscribe(client)
        if self.initializer is not None:
            name = f"parallelize-setup-{uuid.uuid4().hex}"
            try:
                client.register_plugin(_SetupPlugin(self.initializer), name=name)
            except BaseException:
                _unsubscribe(client)
                raise
            self._plugin = name
        self._client = client

    def _get_client(self) -> Any:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a dask backend after shutdown")
            if self._client is None:
                options = {
                    "n_workers": self.max_workers,
                    "threads_per_worker": 1,
                    "processes": True,
                    "dashboard_address": ":0",  # a free port, not a clash on 8787
                    **self._cluster_options,
                }
                try:
                    self._cluster = distributed.LocalCluster(**options)
                except Exception as exc:
                    raise RuntimeError(
                        f"could not start a Dask LocalCluster with {options}: {str(exc).rstrip('.')}. Its workers are new "
                        "processes that import your script again: in a script, put the code that uses "
                        'the runner under `if __name__ == "__main__":`'
                    ) from exc
                try:
                    self._attach(distributed.Client(self._cluster, set_as_default=False))
                except BaseException:
                    self._cluster.close()
                    self._cluster = None
                    raise
            return self._client

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        client = self._get_client()
        key = f"{getattr(fn, '__name__', 'task')}-{uuid.uuid4().hex}"
        future = _DaskFuture()
        # Registered before submission: the start event may come back at once.
        self._futures[key] = _STARTED[key] = future
        future.add_done_callback(lambda _f: self._forget(key))
        call = _Call(fn, args, kwargs, key, _TOPIC, self._plugin)
        try:
            dask_future = client.submit(_run_call, call, key=key, pure=False)
        except BaseException:
            self._forget(key)
            raise
        with future._guard:
            cancelled = future.done()  # cancelled before Dask had the task
            if not cancelled:
                future._dask_future = dask_future
        if cancelled:
            dask_future.release()
        else:
            dask_future.add_done_callback(future._follow)
        return future

    def _forget(self, key: str) -> None:
        self._futures.pop(key, None)
        _STARTED.pop(key, None)

    def abandon(self, future: Future[Any]) -> None:
        """Stop waiting for a timed-out task: Dask forgets it; its worker thread runs on.

        Dask cannot interrupt a running task, so the thread stays busy until the
        task returns; its result is discarded.
        """
        if isinstance(future, _DaskFuture):
            future._abandon()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Release the cluster: close the client and the LocalCluster this backend started.

        Args:
            wait: wait for submitted tasks to finish first. With ``wait=False``
                unfinished tasks are cancelled, since their results could no longer
                be received once the connection is closed.
            cancel_futures: cancel unfinished tasks (Dask cannot tell started from
                queued ones; a started task runs on but its result is dropped).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            client, cluster = self._client, self._cluster
        if cancel_futures or not wait:
            for future in list(self._futures.values()):
                future.cancel()  # succeeds for those not started
        if wait:
            from concurrent.futures import wait as wait_all

            wait_all(list(self._futures.values()))
        for future in list(self._futures.values()):
            future._abandon()
        if client is not None:
            _unsubscribe(client)
        if client is not None and self._plugin is not None and not (self._owns_client and cluster is not None):
            # A scheduler that outlives this backend keeps no trace of it.
            try:
                client.unregister_worker_plugin(self._plugin)
            except Exception:  # the scheduler is gone: nothing left to unregister
                pass
        if client is not None and self._owns_client:
            try:
                client.close(timeout=_CLOSE_TIMEOUT)
            except Exception:  # already closed or the scheduler is gone
                pass
        if cluster is not None:
            cluster.close(timeout=_CLOSE_TIMEOUT)

    def __repr__(self) -> str:
        where = self.address or ("client" if not self._owns_client else "LocalCluster")
        return f"<DaskBackend {where} max_workers={self.max_workers}>"
