"""The cluster backends: batches run as array jobs of Slurm, Grid Engine or PBS, results come back as files.

::

    engine ──submit(run_batch, Batch)──> tasks/KEY.in ──┐ one manager thread per backend:
                                                          │ pending calls go out together as
    future <── tasks/KEY.out (atomic) <── array element <─┘ ONE array job (sbatch / qsub)
       ^                                                     throttled to max_workers elements
       └── state from ONE squeue / qstat per poll, for all of this backend's jobs,
           plus the element's exit file and stderr when it ended without a result

The engine sizes batches by measured task time (about ``TARGET_BATCH_SECONDS``
of work each on a cluster, where a job costs about a second to start), so ten
thousand tiny tasks take a handful of array elements. The file protocol between
the runner and a job is in ``parallelize.worker.job``; no connection from the
nodes back to this machine is needed, only a folder both can see.

Outcomes, each named: a task's own exception comes back in its batch's result
(the error policy decides, as on processes); an element that ended without a
result fails its future with ``WorkerCrashedError``
saying what the scheduler reported (failed with an exit status, out of memory,
the scheduler's time limit, cancelled from outside, vanished from the queue) and
the last lines of its stderr; a node failure is a
``TaskLostError``, which the engine reruns at no cost; a
refused submission is a ``SubmissionError`` quoting the
scheduler. ``kill`` (a timeout) and Ctrl-C cancel the elements concerned.

Reattach: with a checkpoint, each job records its batch's successes in it
(``parallelize.checkpoint.job_record``); ``ClusterBackend.reattach``,
called before a checkpointed run reads its folder, waits for the elements an
earlier run on the same folder left queued or running when it died.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pickle
import shlex
import signal
import socket
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import cloudpickle

from ..durable import atomic_write, write_all
from ..errors import (
    ConfigError,
    JobCancelledError,
    PicklingError,
    RunnerClosedError,
    SchedulerUnreachableError,
    SubmissionError,
    TaskLostError,
    WorkerCrashedError,
)
from ..scheduler import get_scheduler
from ..scheduler.base import ACTIVE, CANCELLED, COMPLETED, NODE_FAIL, OUT_OF_MEMORY, TIMEOUT, Element, Scheduler
from ..validate import check_bool, check_seconds
from ..worker.failure import RemoteTraceback
from .base import Backend

__all__ = ["ClusterBackend", "GridEngineBackend", "PBSBackend", "SlurmBackend"]

#: Seconds of work the engine aims to put in one array element: a job costs
#: about a second to schedule and start on the one-node Slurm of the tests
#: (../shared/CLUSTERS.md: a 4-element array of Python in about 0.9 s).
TARGET_BATCH_SECONDS = 5.0

# The manager thread's file checks: how often finished elements are looked for.
FILE_POLL_SECONDS = 0.1
# The scheduler is asked at most this often at first, backing off to
# ``poll_interval`` while nothing changes: one call per poll, never one per job.
FIRST_STATUS_SECONDS = 0.5
# Pending calls arriving within this long go out in the same array.
GATHER_SECONDS = 0.02
# An element seen ended (or gone) without a result this many polls in a row has
# failed: one poll more gives a shared file system time to show its result.
POLLS_BEFORE_LOST = 2
# A run touches its heartbeat file this often while it has jobs out; one whose
# file is older than the stale age (seen from another machine) has died.
HEARTBEAT_SECONDS = 10.0
HEARTBEAT_STALE_SECONDS = 60.0
# How long status queries may fail in a row before the tasks waiting on them fail.
OUTAGE_SECONDS = 600.0
# Lines of an element's stderr quoted when it failed without a result.
STDERR_LINES = 5

_LOST_STATES = {NODE_FAIL, "BOOT_FAIL", "PREEMPTED"}


@dataclass(eq=False)
class _Task:
    """One call on its way through the scheduler."""

    key: str
    future: Future[Any]
    array: str = ""
    index: int = -1
    job_id: str = ""
    started: bool = False
    ended_polls: int = 0
    last: Element | None = field(default=None, repr=False)


def _default_folder() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / "parallelize-jobs" / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ClusterBackend(Backend):
    """Runs each batch as one element of an array job on a batch scheduler.

    Args:
        max_workers: array elements queued or running at once (default: the
            CPUs here; on a cluster, give the number of jobs you want in flight).
        initializer: run once in each element before its batch (``initializer=``
            and ``shared_data=`` of the runner).
        folder: a folder on a file system the nodes share, for the job scripts,
            their stdout/stderr (``logs/``) and the calls and results; default a
            new folder under ``./parallelize-jobs/``. Created before anything is
            submitted.
        resources: the scheduler's own options, e.g. ``{"time": "0:30:00",
            "mem": "4G", "partition": "debug"}`` for Slurm (each becomes
            ``--key=value``), or ``{"h_rt": "0:30:00", "mem_free": "4G"}`` for
            Grid Engine and PBS (``-l key=value``).
        setup: shell lines run in each job before Python starts, e.g.
            ``["module load python/3.11", "source ~/venv/bin/activate"]``.
        python: the interpreter the jobs run; default this one (``sys.executable``).
        poll_interval: the longest wait between two status queries, in seconds
            (default 5; the first ones come sooner).
        keep_jobs: leave submitted jobs running on shutdown and Ctrl-C instead
            of cancelling them (default False).

    Raises:
        BackendUnavailableError: the scheduler's submit command is not on the PATH.
        ConfigError: a bad option, named.
    """

    name = "cluster"
    can_kill = True
    in_process = False
    outlives_submitter = True
    target_batch_seconds: ClassVar[float | None] = TARGET_BATCH_SECONDS
    scheduler_name: ClassVar[str] = ""

    def __init__(
        self,
        max_workers: int | None,
        initializer: Callable[[], None] | None = None,
        *,
        folder: str | os.PathLike[str] | None = None,
        resources: Mapping[str, Any] | None = None,
        setup: Sequence[str] = (),
        python: str | None = None,
        poll_interval: float = 5.0,
        keep_jobs: bool = False,
        **options: Any,
    ) -> None:
        if options:
            raise ConfigError(
                f"unknown {self.name} backend option(s) {sorted(options)}; expected some of "
                "['folder', 'keep_jobs', 'poll_interval', 'python', 'resources', 'setup']"
            )
        super().__init__(max_workers, initializer)
        if resources is not None and not (
            isinstance(resources, Mapping) and all(isinstance(k, str) for k in resources)
        ):
            raise ConfigError(f"resources must be a dict of the scheduler's option names to values, got {resources!r}")
        if isinstance(setup, str) or not all(isinstance(line, str) for line in setup):
            raise ConfigError(f"setup must be a list of shell lines (strings), got {setup!r}")
        if folder is not None and not isinstance(folder, (str, os.PathLike)):
            raise ConfigError(f"folder must be a path (str or os.PathLike), got {folder!r}")
        if python is not None and not isinstance(python, str):
            raise ConfigError(f"python must be the path of an interpreter, got {python!r}")
        self.poll_interval = check_seconds("poll_interval", poll_interval, allow_zero=False)
        self.keep_jobs = check_bool("keep_jobs", keep_jobs)
        self.scheduler: Scheduler = get_scheduler(self.scheduler_name)
        self.scheduler.available()
        self.resources = dict(resources or {})
        self.setup = list(setup)
        self.python = python or sys.executable
        self.folder = Path(folder).resolve() if folder is not None else _default_folder()
        for sub in ("tasks", "arrays", "exits", "logs"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)  # before any job can need them
        # One job name per folder, so a later run on the same folder finds,
        # with its one status query, the jobs an earlier run left (reattach);
        # files carry a token of this backend's own, so runs never share one.
        self.job_name = "pz-" + hashlib.sha1(str(self.folder).encode()).hexdigest()[:10]
        self._token = uuid.uuid4().hex[:8]
        # Re-entrant: the SIGTERM handler may run in a thread that holds it.
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._pending: deque[_Task] = deque()
        self._tasks: dict[str, _Task] = {}
        self._by_future: dict[int, _Task] = {}
        self._sequence = itertools.count()
        self._arrays = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stop = False
        self._status_wait = FIRST_STATUS_SECONDS
        self._next_status = 0.0
        self._outage_since: float | None = None
        self._next_heartbeat = 0.0
        self.submitted_arrays = 0
        self.submitted_elements = 0
        _LIVE.add(self)
        _cancel_jobs_on_sigterm()

    # -- the Backend interface ---------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RunnerClosedError(f"cannot submit to a {self.name} backend after shutdown; create a new runner")
        try:
            payload = cloudpickle.dumps((fn, args, kwargs, self.initializer), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise PicklingError(f"the call could not be pickled for a {self.name} job: {exc}") from exc
        key = f"{self._token}-{next(self._sequence):08d}"
        path = self.folder / "tasks" / f"{key}.in"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, payload)
        finally:
            os.close(fd)
        future: Future[Any] = Future()
        task = _Task(key, future)
        with self._lock:
            self._pending.append(task)
            self._by_future[id(future)] = task
            self._start_manager()
        return future

    def _start_manager(self) -> None:
        """Start the manager thread if it is not running, and wake it (under the lock)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._manage, name=f"parallelize-{self.name}", daemon=True)
            self._thread.start()
        self._wake.notify()

    def kill(self, future: Future[Any]) -> bool:
        """Cancel the element running (or queued for) this call; the call fails as lost."""
        with self._lock:
            task = self._by_future.pop(id(future), None)
            if task is None:
                return False
            if task in self._pending:
                self._pending.remove(task)
            self._tasks.pop(task.key, None)
        if task.job_id:
            self._cancel([self.scheduler.element_id(task.job_id, task.index)])
        self._forget(task)
        _fail(future, TaskLostError(f"its {self.name} job element was cancelled on purpose"))
        return True

    def kill_workers(self) -> None:
        """Cancel every element of this backend's jobs (Ctrl-C), unless ``keep_jobs``."""
        with self._lock:
            tasks = list(self._tasks.values()) + list(self._pending)
            self._tasks.clear()
            self._pending.clear()
            self._by_future.clear()
        jobs = sorted({t.job_id for t in tasks if t.job_id})
        if jobs and not self.keep_jobs:
            self._cancel(jobs)
            print(
                f"parallelize: cancelled {len(jobs)} {self.name} job(s) ({len([t for t in tasks if t.job_id])} "
                f"array element(s) still queued or running); their files are in {self.folder}",
                file=sys.stderr,
            )
        for task in tasks:
            _fail(task.future, TaskLostError(f"its {self.name} job was cancelled (the run was interrupted)"))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed and self._thread is None:
                return
            self._closed = True
            if cancel_futures:
                for task in list(self._pending):
                    if task.future.cancel():
                        self._pending.remove(task)
                        self._by_future.pop(id(task.future), None)
            if not wait:
                self._stop = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._lock:
            self._thread = None
            left = list(self._tasks.values()) + list(self._pending)
            self._tasks.clear()
            self._pending.clear()
        jobs = sorted({t.job_id for t in left if t.job_id})
        if jobs and not self.keep_jobs:
            self._cancel(jobs)
        for task in left:
            _fail(task.future, TaskLostError(f"the {self.name} backend was shut down before its job finished"))

    def reattach(self) -> None:
        """Wait for the array elements an earlier run on this folder left queued or running.

        Such a run died (or left with ``keep_jobs``) before its jobs ended. Its
        jobs record their successes in the run's checkpoint themselves, so
        once they end a rerun finds their work there and submits only what is
        missing. Elements that ended are not waited for; their files are
        removed. Ctrl-C while waiting cancels them (unless ``keep_jobs``).
        """
        orphans = self._orphans()
        if not orphans:
            return
        try:
            states = self.scheduler.status(self.job_name, sorted({t.job_id for t in orphans}))
        except (SubmissionError, SchedulerUnreachableError):
            states = None  # unknown: wait for them all; the manager finds out
        if states is not None:
            alive = [t for t in orphans if (e := states.get((t.job_id, t.index))) is not None and e.state in ACTIVE]
            for task in orphans:
                if task not in alive:
                    self._forget(task)
            orphans = alive
        if not orphans:
            return
        print(
            f"parallelize: waiting for {len(orphans)} {self.name} array element(s) that an earlier run left "
            f"queued or running in {self.folder}; what they finish goes into the checkpoint, and only the "
            "rest is submitted again",
            file=sys.stderr,
        )
        with self._lock:
            for task in orphans:
                self._tasks[task.key] = task
            self._start_manager()
        wait_all([t.future for t in orphans])

    def _orphans(self) -> list[_Task]:
        """Elements of earlier runs on this folder with a call still waiting for its result."""
        found: list[_Task] = []
        arrays = self.folder / "arrays"
        for marker in sorted(arrays.glob("*.job")):
            array = marker.name[: -len(".job")]
            if self._token in array:
                continue
            try:
                job_id = marker.read_text().strip()
                manifest = json.loads((arrays / f"{array}.json").read_text())
                keys = manifest["keys"]
                owner = manifest.get("owner") or {}
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue  # not written by a cluster backend, or half removed
            if self._owner_alive(owner):
                continue  # another live run on this folder: its jobs are its own
            waiting = False
            for index, key in enumerate(keys):
                task = _Task(str(key), Future(), array, index, job_id)
                if not (self.folder / "tasks" / f"{key}.in").exists():
                    continue
                if (self.folder / "tasks" / f"{key}.out").exists():
                    self._forget(task)  # finished after its run died: recorded by the job
                    continue
                found.append(task)
                waiting = True
            if not waiting:
                try:
                    marker.unlink()
                except OSError:
                    pass
        return found

    def _owner_alive(self, owner: Any) -> bool:
        """Whether the run that submitted an array is still running.

        On this machine, by its process id; elsewhere (another login node), by
        the heartbeat file its manager thread touches while it runs.
        """
        if not isinstance(owner, dict):
            return False
        pid = owner.get("pid")
        if owner.get("host") == socket.gethostname() and isinstance(pid, int):
            if pid == os.getpid():  # another backend of this process, maybe shut down
                return any(b._token == owner.get("token") and not b._closed for b in list(_LIVE))
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except OSError:  # someone else's process: it exists
                return True
            return True
        try:
            age = time.time() - (self.folder / "arrays" / f"{owner.get('token')}.alive").stat().st_mtime
        except OSError:
            return False
        return age < HEARTBEAT_STALE_SECONDS

    def __repr__(self) -> str:
        return f"<{type(self).__name__} max_workers={self.max_workers} folder={str(self.folder)!r}>"

    # -- the manager thread ------------------------------------------------------------

    def _manage(self) -> None:
        while True:
            with self._lock:
                if self._stop or (self._closed and not self._pending and not self._tasks):
                    return
                if self._pending and len(self._tasks) < self.max_workers:
                    wait = GATHER_SECONDS
                else:
                    wait = FILE_POLL_SECONDS
                self._wake.wait(wait)
            try:
                self._heartbeat()
                self._submit_pending()
                self._poll()
            except Exception as exc:  # noqa: BLE001 - the scheduler failed: fail what waits on it, keep serving
                self._fail_all(exc)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + HEARTBEAT_SECONDS
        (self.folder / "arrays" / f"{self._token}.alive").touch()

    def _submit_pending(self) -> None:
        largest = self.scheduler.max_array_size()  # may ask the scheduler once: not under the lock
        with self._lock:
            free = self.max_workers - len(self._tasks)
            if free <= 0 or not self._pending:
                return
            take: list[_Task] = []
            limit = min(free, largest)
            while self._pending and len(take) < limit:
                task = self._pending.popleft()
                if task.future.cancelled():
                    self._by_future.pop(id(task.future), None)
                    self._forget(task)
                    continue
                take.append(task)
            if not take:
                return
            array = f"{self.job_name}-{self._token}-{next(self._arrays):05d}"
            for i, task in enumerate(take):
                task.array, task.index = array, i
                self._tasks[task.key] = task
        script = self._write_array(array, [t.key for t in take])
        try:
            job_id = self.scheduler.submit_array(
                str(script), len(take), name=self.job_name, log_dir=str(self.folder / "logs"), resources=self.resources
            )
        except (SubmissionError, OSError, ImportError) as exc:
            with self._lock:
                for task in take:
                    self._tasks.pop(task.key, None)
                    self._by_future.pop(id(task.future), None)
            for task in take:
                self._forget(task)
                _fail(task.future, exc)
            return
        # Which job runs this array, for a later run that reattaches.
        atomic_write(self.folder / "arrays" / f"{array}.job", lambda f: f.write(job_id), binary=False)
        self.submitted_arrays += 1
        self.submitted_elements += len(take)
        with self._lock:
            for task in take:
                task.job_id = job_id
        self._status_wait = FIRST_STATUS_SECONDS
        self._next_status = time.monotonic() + FIRST_STATUS_SECONDS

    def _write_array(self, array: str, keys: list[str]) -> Path:
        manifest = {
            "keys": keys,
            "sys_path": [p for p in sys.path if p and os.path.isdir(p)],
            "cwd": os.getcwd(),
            "owner": {"host": socket.gethostname(), "pid": os.getpid(), "token": self._token},
        }
        (self.folder / "arrays" / f"{array}.json").write_text(json.dumps(manifest))
        package_root = str(Path(__file__).resolve().parent.parent.parent)
        q = shlex.quote
        base = self.scheduler.index_base
        exit_file = f"{q(str(self.folder / 'exits' / array))}.$index"
        lines = [
            "#!/bin/bash",
            self.scheduler.script_header(),
            f"# parallelize: array {array}; the element runs the call named in arrays/{array}.json",
            *self.setup,
            # This interpreter finds this parallelize even when it runs from a source tree.
            f'export PYTHONPATH={q(package_root)}"${{PYTHONPATH:+:$PYTHONPATH}}"'
            if self.python == sys.executable
            else "",
            f"index=$(( ${{{self.scheduler.index_variable}}} - {base} ))",
            f'{q(self.python)} -m parallelize.worker.job {q(str(self.folder))} {q(array)} "$index"',
            "code=$?",
            f'printf "%s\\n" "$code" > {exit_file}.tmp && mv -f {exit_file}.tmp {exit_file}',
            'exit "$code"',
        ]
        script = self.folder / "arrays" / f"{array}.sh"
        script.write_text("\n".join(line for line in lines if line) + "\n")
        script.chmod(0o755)
        return script

    def _poll(self) -> None:
        with self._lock:
            tasks = [t for t in self._tasks.values() if t.job_id]
        if not tasks:
            return
        folder = self.folder / "tasks"
        unresolved: list[_Task] = []
        for task in tasks:
            if task.future.cancelled():
                self._drop(task)
                self._cancel([self.scheduler.element_id(task.job_id, task.index)])
                continue
            if (folder / f"{task.key}.out").exists():
                self._collect(task)
                continue
            if not task.started and (folder / f"{task.key}.started").exists():
                task.started = True
                task.future.set_running_or_notify_cancel()
            unresolved.append(task)
        now = time.monotonic()
        if not unresolved or now < self._next_status:
            return
        try:
            states = self.scheduler.status(self.job_name, sorted({t.job_id for t in unresolved}))
        except (SubmissionError, SchedulerUnreachableError) as exc:
            # The controller did not answer (restarting, overloaded): ask again
            # later; only a long outage fails the tasks waiting on it.
            if self._outage_since is None:
                self._outage_since = now
            elif now - self._outage_since > OUTAGE_SECONDS:
                raise SchedulerUnreachableError(
                    f"the {self.name} scheduler has not answered status queries for {OUTAGE_SECONDS:g} s: {exc}"
                ) from exc
            self._next_status = now + self.poll_interval
            return
        self._outage_since = None
        changed = False
        for task in unresolved:
            element = states.get((task.job_id, task.index))
            if element is not None and element != task.last:
                changed = True
                task.last = element
            elif element is None and task.last is not None and task.last.state not in ACTIVE:
                # Gone from the queue after it was seen ending (Grid Engine keeps a
                # deleted job for about a second): what it was seen doing is its end.
                element = task.last
            ended = element is None or element.state not in ACTIVE or self._exit_file(task).exists()
            if not ended:
                task.ended_polls = 0
                continue
            task.ended_polls += 1
            if task.ended_polls >= POLLS_BEFORE_LOST:
                if (folder / f"{task.key}.out").exists():
                    self._collect(task)
                else:
                    self._lost(task, element)
        self._status_wait = FIRST_STATUS_SECONDS if changed else min(self._status_wait * 1.5, self.poll_interval)
        self._next_status = now + self._status_wait

    def _collect(self, task: _Task) -> None:
        path = self.folder / "tasks" / f"{task.key}.out"
        try:
            kind, payload = pickle.loads(path.read_bytes())
        except Exception as exc:  # noqa: BLE001 - a result that cannot be rebuilt here
            kind, payload = "unpicklable", f"its result could not be unpickled in the calling process ({exc})"
        self._drop(task)
        if kind == "ok":
            _set(task.future, payload)
        elif kind == "raised":
            error, tb = payload
            if tb and error.__cause__ is None:
                error.__cause__ = RemoteTraceback(tb)
            _fail(task.future, error)
        else:
            _fail(task.future, PicklingError(str(payload)))

    def _lost(self, task: _Task, element: Element | None) -> None:
        self._drop(task)
        if element is not None and element.state not in (COMPLETED, CANCELLED):
            # Grid Engine keeps an element in error state (Eqw) queued until deleted.
            self._cancel([self.scheduler.element_id(task.job_id, task.index)])
        where = f"{self.name} job {task.job_id} element {task.index}"
        code = self._exit_code(task)
        state = element.state if element is not None else None
        if state in _LOST_STATES:
            _fail(task.future, TaskLostError(f"{where} was lost ({state}: its node failed); it runs again"))
            return
        tail = self._stderr_tail(task)
        if state == CANCELLED:
            _fail(
                task.future,
                JobCancelledError(
                    f"{where} was cancelled from outside (scancel / qdel) before it wrote a result; "
                    f"retries=N runs such tasks again (its files: {self.folder / 'logs'})"
                ),
            )
            return
        if state == OUT_OF_MEMORY:
            what = "ran out of memory (ask for more with resources, e.g. mem)"
        elif state == TIMEOUT:
            what = "reached the scheduler's time limit (ask for more with resources, e.g. time)"
        elif code is not None and code != 0:
            what = f"exited with status {code} before writing a result"
        elif state is None:
            what = "vanished from the queue without writing a result"
        else:
            what = f"ended ({state}) without writing a result"
        text = f"{where} {what}" + (f"; the last lines of its stderr:\n{tail}" if tail else "")
        text += f"\n(its files: {self.folder / 'logs'})"
        _fail(task.future, WorkerCrashedError(text))

    def _exit_file(self, task: _Task) -> Path:
        return self.folder / "exits" / f"{task.array}.{task.index}"

    def _exit_code(self, task: _Task) -> int | None:
        try:
            return int(self._exit_file(task).read_text().strip())
        except (OSError, ValueError):
            return None

    def _stderr_tail(self, task: _Task) -> str:
        log_index = getattr(self.scheduler, "log_index", lambda i: i)(task.index)
        path = self.folder / "logs" / f"{task.job_id}_{log_index}.err"
        try:
            lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return "\n".join("    " + line for line in lines[-STDERR_LINES:])

    def _drop(self, task: _Task) -> None:
        with self._lock:
            self._tasks.pop(task.key, None)
            self._by_future.pop(id(task.future), None)
            self._wake.notify()
        self._forget(task)

    def _forget(self, task: _Task) -> None:
        for suffix in (".in", ".out", ".started"):
            try:
                (self.folder / "tasks" / f"{task.key}{suffix}").unlink()
            except OSError:
                pass

    def _cancel(self, targets: list[str]) -> None:
        try:
            self.scheduler.cancel(targets)
        except Exception:  # noqa: BLE001 - best effort: the element may be gone already
            pass

    def _fail_all(self, exc: BaseException) -> None:
        with self._lock:
            tasks = list(self._tasks.values())
            self._tasks.clear()
        for task in tasks:
            self._forget(task)
            _fail(task.future, exc)


# Cluster backends of this process, for the SIGTERM handler.
_LIVE: weakref.WeakSet[ClusterBackend] = weakref.WeakSet()
_SIGTERM_INSTALLED = False


def _cancel_jobs_on_sigterm() -> None:
    """Once per process: a SIGTERM first cancels the jobs of every cluster backend, then ends the process.

    Installed only from the main thread and only where nobody handles SIGTERM
    already (its default action ends the process without running any cleanup,
    which would leave the jobs running on the cluster).
    """
    global _SIGTERM_INSTALLED
    if _SIGTERM_INSTALLED or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    _SIGTERM_INSTALLED = True


def _on_sigterm(signum: int, frame: Any) -> None:
    for backend in list(_LIVE):
        if not backend.keep_jobs:
            backend.kill_workers()
    # Then the default action: the process ends by SIGTERM, as it would have.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _set(future: Future[Any], value: Any) -> None:
    if not future.done():
        try:
            future.set_result(value)
        except Exception:  # noqa: BLE001 - cancelled meanwhile
            pass


def _fail(future: Future[Any], exc: BaseException) -> None:
    if not future.done():
        try:
            future.set_exception(exc)
        except Exception:  # noqa: BLE001 - cancelled meanwhile
            pass


class SlurmBackend(ClusterBackend):
    """``backend="slurm"``: batches as ``sbatch --array`` elements."""

    name = "slurm"
    scheduler_name = "slurm"


class GridEngineBackend(ClusterBackend):
    """``backend="sge"``: batches as ``qsub -t`` elements of Grid Engine."""

    name = "sge"
    scheduler_name = "sge"


class PBSBackend(ClusterBackend):
    """``backend="pbs"``: batches as ``qsub -J`` (PBS Pro) or ``-t`` (Torque) elements."""

    name = "pbs"
    scheduler_name = "pbs"
