"""A process pool owned by one runner at a time: each worker is known by name.

loky's reusable executor is one pool for the whole program: a kill or a
shutdown made by one runner reaches every runner's tasks, a task counts as
running while it still waits in a queue, and a worker whose grandchild holds its
pipes open is never noticed dead. This pool keeps what loky is good at (safe
with threads in the caller: no plain fork of it; cloudpickle for functions)
and owns its workers itself. It starts them itself too: one fresh
interpreter per pool, the zygote (``parallelize.backends.zygote``), forks
each worker in a few milliseconds. loky's launcher started an interpreter per
worker, two resource-tracker processes, and imported loky and the parent's
``__main__`` script in every worker, 55 ms and more of each worker's start-up::

    caller threads                 manager thread                     workers
    --------------                 --------------                     -------
    submit(fn, args) ──> pending ──> idle worker? send job ──socket──> worker_main
         Future <── set_result <── (job_id, OK, value) <──────socket── runs fn
         running() <── set_running <── (STARTED, job_id) <───socket── about to run
                                   each worker's exit, as the zygote reports it:
                                   a dead one fails its running job
                                   (WorkerCrashedError) and requeues the
                                   jobs it had not started

- A job is *running* only once its worker says it started it, so timeouts count
  from the real start.
- ``ProcessPool.kill`` stops exactly the worker running one job; the other
  workers and their jobs never notice. A replacement starts on demand.
- Death is noticed from the process itself (``waitpid``), not from its pipe, so a
  worker that dies while a process it forked lives on is still noticed.
- Workers exit by themselves when the parent dies (see
  ``pool_worker``).

Only the manager thread reads from or writes to the workers' sockets; callers
hand it work through ``pending`` and a wake-up pipe.

A worker holds at most ``JOBS_PER_WORKER`` jobs: the one it runs and the next,
sent ahead so that it never waits a round trip between jobs (on 400 tasks of
10 ms in batches of 50 ms, those waits cost 4% of the run). The worker's
reader thread queues what arrives, so a large job sent ahead never blocks on a
worker busy sending a large result. A job sent ahead is taken back (revoked)
when another worker falls idle with nothing pending, so no job waits behind a
long or hung task while a worker could run it; one that started before the
revocation arrived simply runs.
"""

from __future__ import annotations

import atexit
import io
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Callable

from ..errors import ConfigError, PicklingError, RunnerClosedError, TaskLostError, WorkerCrashedError
from ..logs import logger
from .pool_worker import JOB_ID, OK, RAISED, READY, REPLY, REVOKED, STARTED, UNPICKLABLE
from .preload import libraries_needed
from .zygote import ForkedProcess, Zygote

__all__ = ["ProcessPool", "PoolKilledError"]

# A job whose workers die this many times before it even starts fails with
# WorkerCrashedError instead of being handed to yet another worker.
MAX_DEATHS_BEFORE_START = 3

# Jobs a worker holds at once: the one it runs and the next, sent ahead.
JOBS_PER_WORKER = 2

# Seconds between liveness checks of busy workers: a dead worker is noticed
# within this long even when its socket stays open.
POLL_SECONDS = 0.1


# The job's worker was killed on purpose (a timeout, an interrupt): whoever
# asked for the kill decided the job's fate; anyone else sees a lost task.
PoolKilledError = TaskLostError


def _signal_name(code: int) -> str:
    try:
        return f"{signal.Signals(-code).name}({code})"
    except ValueError:
        return f"signal {-code}"


def describe_exit(code: int | None) -> str:
    """How a worker ended, with the likely cause, for error messages."""
    if code is None:
        return "it stopped answering"
    if code < 0:
        name = _signal_name(code)
        if code == -signal.SIGKILL:
            return f"it was killed by {name}; the likely cause is the out-of-memory killer (check memory use)"
        if code == -signal.SIGSEGV:
            return f"it was killed by {name}: a crash in native code"
        return f"it was killed by {name}"
    return f"it exited with status {code}, EXIT({code}) (os._exit(), sys.exit() outside a task, or native code)"


class _Poller:
    """``multiprocessing.connection.wait`` for the manager's loop, without its set-up on every call.

    ``wait`` builds a selector and registers each connection on every call
    (13 us for three); the manager waits several times a batch. This keeps one
    ``select.poll`` and registers again only when the set of descriptors changes.
    """

    def __init__(self) -> None:
        self._poll = select.poll()
        self._fds: tuple[int, ...] = ()

    def wait(self, fds: dict[int, Any], timeout: float) -> list[int]:
        """The descriptors of ``fds`` ready to read (or closed), waiting up to ``timeout`` seconds."""
        key = tuple(fds)
        if key != self._fds:
            self._poll = select.poll()
            for fd in key:
                self._poll.register(fd, select.POLLIN)
            self._fds = key
        return [fd for fd, _ in self._poll.poll(timeout * 1000)]


def _readable(fd: int) -> bool:
    """Whether a read on ``fd`` would not block (data, or the other end closed)."""
    poll = select.poll()  # not select.select: it refuses descriptors above 1023
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


def _encode(job_id: int, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """A job message: its id, then ``(fn, args, kwargs)`` pickled with cloudpickle.

    Large NumPy arrays go by memory-mapped file (see ``parallelize.worker.shared_array``).
    """
    from ..worker.pickling import ArrayCloudPickler

    buffer = io.BytesIO()
    buffer.write(JOB_ID.pack(job_id))
    ArrayCloudPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump((fn, args, kwargs))
    return buffer.getvalue()


# A new worker's ``setup``: it has not been sent the pool's initializer yet.
_NO_SETUP = object()


def _setup_body(initializer: Callable[[], None] | None) -> bytes | None:
    """The initializer's job message without its id, pickled once (each worker's copy gets an id in _assign)."""
    if initializer is None:
        return None
    try:
        return _encode(0, initializer, (), {})[JOB_ID.size :]
    except Exception as exc:
        raise PicklingError(
            f"the pool's initializer {initializer!r} could not be pickled: {type(exc).__name__}: {exc}"
        ) from exc


@dataclass(eq=False)
class _Job:
    id: int
    future: Future[Any]
    payload: bytes
    worker: _Worker | None = None
    started: bool = False
    deaths: int = 0  # workers that died holding it before it started
    revoking: bool = False  # asked back from its worker before it started


@dataclass(eq=False)
class _Worker:
    process: ForkedProcess
    conn: Connection
    jobs: deque[_Job] = field(default_factory=deque)
    ready: bool = False  # it said it started up; jobs go only to ready workers
    killed: bool = False  # SIGKILLed on purpose: its running job was not at fault
    leaving: bool = False  # asked to exit (idle too long)
    closed: bool = False  # its socket reached end of file: it is exiting
    idle_since: float = field(default_factory=time.monotonic)
    setup: Any = _NO_SETUP  # the initializer this worker was sent (see _assign)

    @property
    def pid(self) -> int | None:
        """``None`` until the zygote has forked it."""
        return self.process.pid


class ProcessPool:
    """Worker processes owned by whoever holds this object.

    Args:
        max_workers: worker processes at most.
        initializer: called once in each new worker, before its first job.
        env: environment variables set in each worker.
        idle_timeout: seconds an idle worker lives before it exits (``None``:
            until shutdown); a new one starts when work comes.
    """

    def __init__(
        self,
        max_workers: int,
        initializer: Callable[[], None] | None = None,
        env: dict[str, str] | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        self.max_workers = max_workers
        self.initializer = initializer
        self.env = dict(env) if env else None
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._pending: deque[_Job] = deque()
        self._revokes: list[_Job] = []  # jobs to ask back from their workers
        self._setup_body = _setup_body(initializer)  # sent to each worker ahead of its first job
        self._jobs: dict[int, _Job] = {}
        self._workers: list[_Worker] = []
        self._next_id = 0
        self._closed = False
        self._stop = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._thread: threading.Thread | None = None
        self._fds_closed = False
        self._lost = 0  # workers that died or were killed and are not replaced yet (for the log)
        self._boot_deaths = 0  # workers in a row that died before they were ready
        self._zygote: Zygote | None = None  # forks the workers; started with the first
        self._old_zygotes: list[Zygote] = []  # ended or replaced ones (read until their workers are gone)
        _ALL.add(self)

    # -- the callers' side -------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` in a worker.

        Raises:
            RunnerClosedError: the pool was shut down.
            PicklingError: ``fn`` or its arguments cannot be pickled.
        """
        if self._closed:
            raise RunnerClosedError("cannot submit to a process pool after shutdown; create a new runner")
        with self._lock:
            job_id = self._next_id
            self._next_id += 1
        try:
            payload = _encode(job_id, fn, args, kwargs)
        except Exception as exc:
            raise PicklingError(f"could not pickle it: {type(exc).__name__}: {exc}") from exc
        future: Future[Any] = Future()
        job = _Job(job_id, future, payload)
        with self._lock:
            if self._closed:
                raise RunnerClosedError("cannot submit to a process pool after shutdown; create a new runner")
            self._jobs[job_id] = job
            self._pending.append(job)
            self._ensure_thread()
        self._wake()
        return future

    def reset(self, max_workers: int, initializer: Callable[[], None] | None) -> None:
        """Lend the idle pool to a new user: its width and initializer.

        Workers beyond ``max_workers`` are told to exit; each remaining one runs
        ``initializer`` before its next job (new workers run it as they start),
        so a pool kept across runs (``mp_lock``'s) need not start its processes
        again. Nothing else of the previous user's is undone in the workers
        (modules they imported stay imported).

        Raises:
            ConfigError: jobs are still queued or running.
        """
        body = _setup_body(initializer)
        with self._lock:
            if self._jobs:
                raise ConfigError(
                    f"the process pool still has {len(self._jobs)} task(s) queued or running; lend it to a new "
                    "runner only once they are done (ProcessPool.idle() says when)"
                )
            self.max_workers = max_workers
            self.initializer = initializer
            self._setup_body = body
            live = [w for w in self._workers if not (w.killed or w.leaving or w.closed)]
            for worker in live[max_workers:]:
                self._retire(worker)
        self._wake()

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [w.pid for w in self._workers if w.pid is not None]

    def kill(self, future: Future[Any]) -> bool:
        """Stop the job behind ``future`` now: kill its worker if it runs, drop it if queued.

        Only that worker dies; jobs it had not started go to other workers.

        Returns:
            Whether the job was still there to stop.
        """
        with self._lock:
            job = next((j for j in self._jobs.values() if j.future is future), None)
            if job is None:
                return False
            if job.started and job.worker is not None:
                self._kill_worker(job.worker)
            elif job.worker is not None:
                # Sent ahead to a worker: fail it now, and ask for it back so
                # that the worker does not run it (its result would be dropped).
                self._jobs.pop(job.id, None)
                _fail(job.future, PoolKilledError("the task was stopped before it started"))
                if not job.revoking:
                    job.revoking = True
                    self._revokes.append(job)
            else:
                self._drop(job, PoolKilledError("the task was stopped before it started"))
        self._wake()
        return True

    def kill_all(self) -> None:
        """Kill every worker now; every job not finished fails with ``PoolKilledError``."""
        with self._lock:
            for worker in list(self._workers):
                self._kill_worker(worker)
            for job in list(self._pending):
                self._drop(job, PoolKilledError("the pool's workers were stopped before the task started"))
        self._wake()

    def idle(self) -> bool:
        """Whether no job is queued or running."""
        with self._lock:
            return not self._jobs

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; end the workers.

        Args:
            wait: let queued and running jobs finish, then wait for the workers to exit.
                With ``wait=False`` the workers are killed at once.
            cancel_futures: cancel the jobs that have not started.
        """
        with self._lock:
            already = self._closed
            self._closed = True
            if cancel_futures:
                for job in list(self._pending):
                    self._pending.remove(job)
                    self._jobs.pop(job.id, None)
                    job.future.cancel()
            if not wait:
                for worker in list(self._workers):
                    self._kill_worker(worker)
                for job in list(self._pending):
                    self._drop(job, RunnerClosedError("the runner was shut down before the task started"))
            self._stop = True
            thread = self._thread
        self._wake()
        if thread is not None and thread is not threading.current_thread():
            if wait:
                thread.join()
            else:
                thread.join(timeout=5.0)
        elif thread is None and not already:
            self._close_fds()

    # -- internals, under the lock -------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._manage, name="parallelize-pool", daemon=True)
            self._thread.start()

    def _wake(self) -> None:
        if self._fds_closed:
            return  # its number may belong to another file by now
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # already awake (pipe full)

    def _drop(self, job: _Job, exc: BaseException) -> None:
        if job in self._pending:
            self._pending.remove(job)
        if job.worker is not None and job in job.worker.jobs:
            job.worker.jobs.remove(job)
        self._jobs.pop(job.id, None)
        _fail(job.future, exc)

    def _kill_worker(self, worker: _Worker) -> None:
        if worker.killed:
            return
        worker.killed = True
        worker.process.kill()

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            process = self._fork(theirs.fileno())
        finally:
            theirs.close()
        worker = _Worker(process, Connection(ours.detach()))
        self._workers.append(worker)
        if self._lost:
            self._lost -= 1
            logger.info("process pool starts a worker to replace one that ended")
        return worker

    def _fork(self, fd: int) -> ForkedProcess:
        """A worker on socket ``fd``, forked by the zygote (a new zygote if it is gone)."""
        if self._zygote is not None and not self._zygote.gone and not self._zygote.stale():
            try:
                return self._zygote.fork(fd)
            except OSError:
                pass  # it died meanwhile: its workers are reaped as dead
        if self._zygote is not None:
            self._old_zygotes.append(self._zygote)  # read until its workers are gone, then closed
        first = self._pending[0].payload if self._pending else None
        self._zygote = Zygote(self.env, libraries_needed(self._setup_body, first))
        try:
            return self._zygote.fork(fd)
        except OSError:
            # It died at once (its stderr says why): this worker counts as dead while starting.
            child = ForkedProcess(self._zygote)
            child.pid = self._zygote.process.pid
            child.returncode = self._zygote.end()
            return child

    def _assign(self) -> list[tuple[_Worker, bytes]]:
        """Match pending jobs with workers, and revoke jobs waiting behind others; returns the sends."""
        sends: list[tuple[_Worker, bytes]] = []
        while self._pending and self._pending[0].future.cancelled():
            job = self._pending.popleft()
            self._jobs.pop(job.id, None)
        live = [w for w in self._workers if not (w.killed or w.leaving or w.closed)]
        # Start workers for what the ready ones cannot take at once. Jobs go
        # only to ready workers, so a job never waits for a worker to start
        # while another could run it, and a new worker joins when it is up.
        booting = sum(1 for w in live if not w.ready)
        idle = sum(1 for w in live if w.ready and not w.jobs)
        while len(live) < self.max_workers and len(self._pending) > idle + booting:
            live.append(self._spawn())
            booting += 1
        ready = [w for w in live if w.ready]
        while self._pending:
            idle_workers = [w for w in ready if not w.jobs]
            if idle_workers:
                worker = idle_workers[0]
            else:
                # A job sent ahead, to the least loaded worker with room; none
                # to a worker with a revocation outstanding (it must first answer).
                ahead = [w for w in ready if len(w.jobs) < JOBS_PER_WORKER and not any(j.revoking for j in w.jobs)]
                if not ahead:
                    break
                worker = min(ahead, key=lambda w: len(w.jobs))
            job = self._pending.popleft()
            if job.future.cancelled():
                self._jobs.pop(job.id, None)
                continue
            if worker.setup is not self.initializer:
                # A new worker, or one lent anew since (reset): the initializer
                # first, as a job of its own whose replies nobody waits for.
                worker.setup = self.initializer
                if self._setup_body is not None:
                    sends.append((worker, JOB_ID.pack(self._next_id) + self._setup_body))
                    self._next_id += 1
            job.worker = worker
            worker.jobs.append(job)
            sends.append((worker, job.payload))
        if not self._pending:
            # Workers idle with nothing to give them: take back jobs queued
            # behind running ones, one per idle worker.
            free = sum(1 for w in ready if not w.jobs)
            for worker in ready:
                if free <= 0:
                    break
                waiting = worker.jobs[-1] if len(worker.jobs) > 1 else None
                if waiting is not None and not waiting.started and not waiting.revoking:
                    waiting.revoking = True
                    self._revokes.append(waiting)
                    free -= 1
        for job in self._revokes:
            if job.worker is not None and not job.started:
                sends.append((job.worker, JOB_ID.pack(-1 - job.id)))
        self._revokes.clear()
        return sends

    # -- the manager thread ---------------------------------------------------------------

    def _manage(self) -> None:
        poller = _Poller()
        try:
            while True:
                with self._lock:
                    sends = self._assign()
                    conns = {w.conn: w for w in self._workers if not w.closed}
                    zygotes = {z.sock: z for z in (self._zygote, *self._old_zygotes) if z is not None and not z.gone}
                    spent = [z for z in self._old_zygotes if not z.gone and z.idle()]
                    busy = bool(self._jobs)
                    stop = self._stop and not self._jobs
                for worker, payload in sends:
                    try:
                        worker.conn.send_bytes(payload)
                    except OSError:
                        pass  # the worker died: _reap notices and requeues the job
                # Kept while waiting, they would keep the last job's payload and
                # worker alive after they are gone.
                sends = []
                worker = payload = None  # type: ignore[assignment]
                if stop:
                    return
                for zygote in spent:
                    zygote.close()  # replaced (see Zygote.stale), and its last worker is gone
                watched: dict[int, Any] = {self._wake_r: None}
                watched.update((conn.fileno(), worker) for conn, worker in conns.items())
                watched.update((sock.fileno(), z) for sock, z in zygotes.items() if z not in spent)
                ready = poller.wait(watched, POLL_SECONDS if busy else 1.0)
                for fd in ready:
                    source = watched[fd]
                    if source is None:
                        try:
                            os.read(self._wake_r, 4096)
                        except OSError:
                            pass
                    elif isinstance(source, Zygote):
                        source.read()
                    else:
                        self._read(source)
                self._reap()
                if self.idle_timeout is not None and not busy:
                    now = time.monotonic()
                    with self._lock:
                        for worker in self._workers:
                            if not worker.jobs and not worker.leaving and now - worker.idle_since > self.idle_timeout:
                                self._retire(worker)
        finally:
            self._finish()

    def _read(self, worker: _Worker) -> None:
        """Handle every message waiting on ``worker``'s socket."""
        fd = worker.conn.fileno()
        while True:
            try:
                if not _readable(fd):
                    return
                data = worker.conn.recv_bytes()
            except (EOFError, OSError):
                # Its socket closed: the worker is exiting. _reap sees it go.
                worker.closed = True
                return
            job_id, kind = REPLY.unpack_from(data)
            self._handle(worker, job_id, kind, memoryview(data)[REPLY.size :])

    def _handle(self, worker: _Worker, job_id: int, kind: int, payload: memoryview) -> None:
        with self._lock:
            if kind == READY:
                worker.ready = True
                self._boot_deaths = 0
                return
            job = self._jobs.get(job_id)
            if job is None:
                # Dropped or killed meanwhile; if it was sent ahead to this
                # worker, the worker no longer holds it once it answers.
                if kind != STARTED:
                    gone = next((j for j in worker.jobs if j.id == job_id), None)
                    if gone is not None:
                        self._finish_job(worker, gone)
                return
            if kind == REVOKED:
                self._release(worker, job)
                job.worker = None
                job.revoking = False
                self._pending.appendleft(job)
                return
            if kind == STARTED:
                job.started = True
                job.payload = b""  # never resent once started
            else:
                self._finish_job(worker, job)
        future = job.future
        if kind == STARTED:
            future.set_running_or_notify_cancel()  # False if cancelled meanwhile: its result is dropped
            return
        if future.cancelled():
            return
        if kind == UNPICKLABLE:
            _fail(future, PicklingError(bytes(payload).decode("utf-8", "replace")))
            return
        try:
            value = pickle.loads(payload)
        except BaseException as exc:  # noqa: BLE001 - a SystemExit from a result's __reduce__ too
            # The worker pickled a result this process cannot rebuild (a class
            # that only exists over there, or one whose rebuilding raises):
            # that call fails, the manager thread goes on.
            err = PicklingError(
                f"its result could not be unpickled in the calling process ({type(exc).__name__}: {exc})"
            )
            err.__cause__ = exc
            _fail(future, err)
            return
        if kind == OK:
            _set(future, value)
        elif kind == RAISED:
            raised, tb = value
            from ..worker.failure import RemoteTraceback

            if tb and not isinstance(raised.__cause__, RemoteTraceback):
                raised.__cause__ = RemoteTraceback(tb)
            _fail(future, raised)

    def _finish_job(self, worker: _Worker, job: _Job) -> None:
        self._jobs.pop(job.id, None)
        self._release(worker, job)

    def _release(self, worker: _Worker, job: _Job) -> None:
        """``worker`` no longer holds ``job`` (it finished, or was given back)."""
        if job in worker.jobs:
            worker.jobs.remove(job)
        if not worker.jobs:
            worker.idle_since = time.monotonic()

    def _reap(self) -> None:
        """Notice dead workers: fail the job each was running, requeue the rest."""
        with self._lock:
            dead = [w for w in self._workers if w.process.poll() is not None]
            failures: list[tuple[_Job, BaseException]] = []
            for worker in dead:
                self._workers.remove(worker)
                code = worker.process.returncode
                worker.conn.close()
                requeue = []
                for job in worker.jobs:
                    if job.id not in self._jobs:
                        continue  # stopped while sent ahead: its future has failed already
                    if job.started:
                        self._jobs.pop(job.id, None)
                        if worker.killed:
                            err: BaseException = PoolKilledError(
                                f"the task's worker (pid {worker.pid}) was killed on purpose"
                            )
                        else:
                            err = WorkerCrashedError(f"its worker (pid {worker.pid}) died: {describe_exit(code)}")
                        failures.append((job, err))
                    elif job.deaths + 1 >= MAX_DEATHS_BEFORE_START and not worker.killed:
                        # Its workers keep dying before it starts (an initializer
                        # calling os._exit, arguments that crash on unpickling).
                        self._jobs.pop(job.id, None)
                        failures.append(
                            (
                                job,
                                WorkerCrashedError(
                                    f"{job.deaths + 1} workers died before the task could start; the last "
                                    f"(pid {worker.pid}): {describe_exit(code)}. The runner's initializer or "
                                    "the unpickling of the task's arguments kills its worker"
                                ),
                            )
                        )
                    else:
                        job.deaths += 0 if worker.killed else 1
                        job.worker = None
                        job.revoking = False
                        requeue.append(job)
                worker.jobs.clear()
                self._pending.extendleft(reversed(requeue))
                if not (worker.ready or worker.killed or worker.leaving or self._stop):
                    self._boot_deaths += 1
                    if self._boot_deaths >= MAX_DEATHS_BEFORE_START:
                        # Workers die while starting up, before any job reaches
                        # them: nothing queued can run, so fail it all at once.
                        self._boot_deaths = 0
                        err = WorkerCrashedError(
                            f"{MAX_DEATHS_BEFORE_START} worker processes in a row died while starting, before "
                            f"running anything; the last (pid {worker.pid}): {describe_exit(code)}. Their error "
                            f"output (stderr) says why; often parallelize is not importable by {sys.executable} "
                            "with this program's sys.path"
                        )
                        for job in self._pending:
                            self._jobs.pop(job.id, None)
                            failures.append((job, err))
                        self._pending.clear()
                if not worker.leaving and not self._stop:
                    self._lost += 1
                    if worker.killed:
                        logger.info("worker pid %d was killed on purpose (a timeout or an interrupt)", worker.pid)
                    else:
                        logger.warning("worker pid %d died: %s", worker.pid, describe_exit(code))
        for job, err in failures:
            _fail(job.future, err)

    def _retire(self, worker: _Worker) -> None:
        try:
            worker.conn.send_bytes(b"")
        except OSError:
            pass
        worker.leaving = True

    def _finish(self) -> None:
        """The manager thread's end: every worker told to go, then made to."""
        with self._lock:
            workers = list(self._workers)
            leftovers = list(self._jobs.values())
            self._jobs.clear()
            self._pending.clear()
        for worker in workers:
            try:
                worker.conn.send_bytes(b"")
            except OSError:
                pass
        for worker in workers:
            if not _wait(worker.process, 2.0):
                self._kill_worker(worker)
                _wait(worker.process, 2.0)
            worker.conn.close()
        with self._lock:
            self._workers.clear()
            zygotes = [z for z in (self._zygote, *self._old_zygotes) if z is not None]
            self._zygote, self._old_zygotes = None, []
        for zygote in zygotes:
            zygote.close()
        for job in leftovers:
            _fail(job.future, RunnerClosedError("the runner was shut down before the task finished"))
        self._close_fds()

    def _close_fds(self) -> None:
        if self._fds_closed:
            return
        self._fds_closed = True
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


def _wait(process: ForkedProcess, seconds: float) -> bool:
    """Whether ``process`` ended (and was reaped) within ``seconds``."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _set(future: Future[Any], value: Any) -> None:
    if not future.done():
        try:
            future.set_result(value)
        except Exception:  # InvalidStateError: cancelled meanwhile
            pass


def _fail(future: Future[Any], exc: BaseException) -> None:
    if not future.done():
        try:
            future.set_exception(exc)
        except Exception:
            pass


# Every pool alive, so that the program's exit ends their workers at once.
_ALL: weakref.WeakSet[ProcessPool] = weakref.WeakSet()


@atexit.register
def _end_all() -> None:
    for pool in list(_ALL):
        pool.shutdown(wait=False)
