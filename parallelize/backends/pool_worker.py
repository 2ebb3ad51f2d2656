"""The loop that runs inside each worker process of ``parallelize.backends.pool``.

A worker is forked by the pool's zygote (``zygote_main``), a fresh interpreter
started by fork+exec that runs ``BOOT``, imports this module and the worker
modules, and runs no thread of its own, so forking it is safe. Each fork
request brings the parent's ``sys.path``, ``sys.argv``, multiprocessing
authentication key (which ``multiprocessing`` managers' proxies need) and
environment, as they are then.
Besides the installed libraries the pool's first jobs need (NumPy, pandas:
see ``parallelize.backends.preload``), imported there once before the first
fork, nothing else is imported or run there: not the parent's ``__main__`` script
(functions from it travel by value with cloudpickle), not a resource tracker.

A worker owns one end of a socket pair; the parent owns the other. Every message
starts with a header (the job's id and, from the worker, the kind
of message), so a payload that cannot be unpickled still says whose it is::

    parent -> worker   [job_id] pickled (fn, args, kwargs)   run this (after the job before it)
                       [-1 - job_id]                         give that job back if not started
                       b""                                   exit now
    worker -> parent   [job_id STARTED]                      the job really started here
                       [job_id OK] pickled value             it returned
                       [job_id RAISED] pickled (exc, tb)     it raised (any BaseException)
                       [job_id UNPICKLABLE] utf-8 text       its arguments or result would not pickle
                       [job_id REVOKED]                      given back unstarted, as asked
                       [-1 READY]                            started up: send it jobs

A reader thread takes every message off the socket as it comes and queues the
jobs, so the parent can send a worker its next job while the current one runs
(no idle round trip between jobs), and a parent sending a large job never
waits on a worker that is itself sending a large result: the reader always
drains. The reader sends only the small ``REVOKED`` notice, and only when no
other send is under way (else the main thread sends it right after its own).

The worker never dies of a job's own exception: ``SystemExit``,
``KeyboardInterrupt`` and every other ``BaseException`` raised by a job are
reported like an ``Exception``. It exits when the parent says so, when its end
of the socket closes, or when the zygote that forked it is gone (a watchdog
thread checks ``os.getppid()``; the zygote itself kills its workers and exits
when the pool's process is gone), so a SIGKILLed parent leaves no worker
behind.

This module imports nothing of parallelize at load time; the zygote imports
the worker modules once, before it forks anything.
"""

from __future__ import annotations

import functools
import importlib
import os
import pickle
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any, NoReturn

__all__ = [
    "BOOT",
    "EXITED",
    "FORKED",
    "JOB_ID",
    "OK",
    "PID",
    "PID_EXIT",
    "RAISED",
    "READY",
    "REPLY",
    "REVOKED",
    "STARTED",
    "UNPICKLABLE",
    "worker_main",
    "zygote_main",
]

#: The program the pool's zygote runs (``python -c BOOT FD NAME``; see
#: ``parallelize.backends.zygote``): ignore Ctrl-C from the first line (the
#: parent decides the workers' fate, and the workers inherit this), take
#: ``sys.path``, ``sys.argv``, the authentication key and the libraries to
#: preload from the parent, then fork workers on request.
BOOT = """\
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
def _boot(fd):
    import multiprocessing, socket
    from pickle import loads
    sock = socket.socket(fileno=fd)
    sys.path[:], sys.argv[:], multiprocessing.current_process().authkey, _, preload = loads(sock.recv(1 << 20))
    from parallelize.backends.pool_worker import zygote_main
    zygote_main(sock, preload)
_boot(int(sys.argv[1]))
"""

#: The zygote's reports: ``FORKED`` + pid, ``EXITED`` + pid and exit code.
FORKED, EXITED = b"P", b"X"
PID = struct.Struct("!q")
PID_EXIT = struct.Struct("!qq")

#: The framing of a job message: its id, ahead of the pickle, so that a worker
#: that cannot unpickle a job can still say which one.
JOB_ID = struct.Struct("!q")

STARTED, OK, RAISED, UNPICKLABLE, REVOKED, READY = 0, 1, 2, 3, 4, 5

#: The header of a message from a worker: the job's id and the message's kind.
REPLY = struct.Struct("!qB")

# How often the watchdog checks that the parent still lives. A SIGKILLed parent
# cannot tell its workers; an orphan notices within this many seconds.
PARENT_CHECK_SECONDS = 0.5


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(1)  # orphaned: nobody will read our results


class _Inbox:
    """The jobs read off the socket, in order, and this worker's sends.

    The reader thread puts jobs in; the main thread takes them out. Sends go
    through ``send``, one at a time; the reader's ``REVOKED`` notices wait in
    an outbox when a send is under way, and whoever holds the send lock last
    flushes it, so no notice is stranded and the reader never blocks on a
    send of the main thread's (it must keep reading).
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.jobs: deque[tuple[int, bytes]] = deque()
        self.ready = threading.Condition(threading.Lock())
        self.closed = False
        self._send_lock = threading.Lock()
        self._outbox: deque[bytes] = deque()

    def send(self, payload: bytes) -> None:
        """Send from the main thread (blocks until sent)."""
        with self._send_lock:
            self.conn.send_bytes(payload)
            self._flush()
        self._try_flush()

    def notify(self, payload: bytes) -> None:
        """Send a small notice from the reader thread, now or right after the send under way."""
        self._outbox.append(payload)
        self._try_flush()

    def _try_flush(self) -> None:
        while self._outbox and self._send_lock.acquire(blocking=False):
            try:
                self._flush()
            finally:
                self._send_lock.release()

    def _flush(self) -> None:
        while self._outbox:
            self.conn.send_bytes(self._outbox.popleft())

    def read(self) -> None:
        """The reader thread: queue jobs, answer revocations, until the parent says stop."""
        try:
            while True:
                data = self.conn.recv_bytes()
                if not data:
                    break
                (job_id,) = JOB_ID.unpack_from(data)
                if job_id >= 0:
                    with self.ready:
                        self.jobs.append((job_id, data))
                        self.ready.notify()
                    continue
                wanted = -1 - job_id
                with self.ready:
                    found = next((job for job in self.jobs if job[0] == wanted), None)
                    if found is not None:
                        self.jobs.remove(found)
                if found is not None:
                    self.notify(REPLY.pack(wanted, REVOKED))
        except (EOFError, OSError):
            pass
        with self.ready:
            self.closed = True
            self.ready.notify()

    def next_job(self) -> tuple[int, bytes] | None:
        """The next job, waiting for one; ``None`` once the parent says stop (queued jobs are dropped)."""
        with self.ready:
            while not self.jobs and not self.closed:
                self.ready.wait()
            return None if self.closed else self.jobs.popleft()


def _on_child_exit(signum: int, frame: Any) -> None:
    """A Python-level SIGCHLD handler, so that the signal wakes the zygote's select."""


def zygote_main(sock: socket.socket, preload: tuple[str, ...] = ()) -> NoReturn:
    """The zygote's loop: fork a worker per request, report each fork and each exit.

    ``preload`` names installed libraries to import first, once, for every
    worker (see ``parallelize.backends.preload``); one that fails to import is
    left for the workers to import, and to report. A request is the worker's preparation (pickled ``sys.path``, ``sys.argv``,
    authentication key) with its socket's file descriptor attached. When the
    pool's end closes (it shut down, or its process died), the zygote kills
    the workers it still has and exits.
    """
    import select
    from multiprocessing import connection  # noqa: F401 - imported here once, for every worker

    from ..worker import batch, failure, pickling  # noqa: F401 - the same

    for name in preload:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001, S110 - the worker imports it again, and says why it fails
            pass

    children: set[int] = set()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, _on_child_exit)
    try:
        while True:
            ready = select.select([sock.fileno(), wake_r], [], [])[0]
            if wake_r in ready:
                os.read(wake_r, 4096)
            _report_exits(sock, children)
            if sock.fileno() not in ready:
                continue
            request, fds, _, _ = socket.recv_fds(sock, 1 << 20, 1)
            if not request:
                break
            pid = os.fork()
            if pid == 0:
                _forked_worker(sock, (wake_r, wake_w), fds[0], request)
            os.close(fds[0])
            children.add(pid)
            sock.send(FORKED + PID.pack(pid))
    except OSError:
        pass  # the pool's end is gone
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(0)


def _report_exits(sock: socket.socket, children: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        sock.send(EXITED + PID_EXIT.pack(pid, os.waitstatus_to_exitcode(status)))


def _forked_worker(sock: socket.socket, wake: tuple[int, int], fd: int, request: bytes) -> NoReturn:
    """The child side of a fork: become a worker on ``fd``, then exit without returning to the zygote."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for end in wake:
            os.close(end)
        sock.close()
        import multiprocessing
        from multiprocessing.connection import Connection

        sys.path[:], sys.argv[:], multiprocessing.current_process().authkey, environ = pickle.loads(request)
        if environ != os.environ:
            os.environ.clear()
            os.environ.update(environ)
        _fresh_random_state()
        worker_main(Connection(fd), os.getppid())
        code = 0
    except BaseException:  # noqa: BLE001 - the worker's own failure, on its stderr
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)


def _fresh_random_state() -> None:
    """Reseed the global random state a library got when the zygote imported it, as a fresh interpreter would.

    Forked from one zygote, every worker would otherwise draw the same numbers
    from ``numpy.random.rand``. (Python's ``random`` reseeds itself at fork.)
    """
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def worker_main(conn: Any, parent_pid: int) -> None:
    """Serve jobs from ``conn`` until told to stop or orphaned.

    The pool's initializer comes as a job of its own, ahead of the first job
    (its errors are its jobs' business: see ``WorkerSetup``).

    Args:
        conn: this worker's end of the socket pair.
        parent_pid: the zygote that forked it; the worker exits when it is gone.
    """
    # Ctrl-C in a terminal reaches the whole process group; the parent decides
    # what happens to the workers, and no worker prints a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parallelize-watchdog", daemon=True).start()
    from ..worker import batch
    from ..worker.failure import portable
    from ..worker.pickling import dumps_any

    inbox = _Inbox(conn)
    send = inbox.send
    threading.Thread(target=inbox.read, name="parallelize-reader", daemon=True).start()
    try:
        send(REPLY.pack(-1, READY))
    except (EOFError, OSError):
        return
    while True:
        got = inbox.next_job()
        if got is None:
            return
        job_id, data = got
        got = None
        try:
            fn, args, kwargs = pickle.loads(memoryview(data)[JOB_ID.size :])
        except BaseException as exc:  # noqa: BLE001 - a job that cannot be rebuilt here
            text = f"its arguments could not be unpickled in the worker ({type(exc).__name__}: {exc})"
            try:
                send(REPLY.pack(job_id, UNPICKLABLE) + text.encode("utf-8", "replace"))
            except (EOFError, OSError):
                return
            continue
        del data
        started = REPLY.pack(job_id, STARTED)
        if getattr(fn, "reports_start", False):
            # The job says when its work starts (after unpickling its functions).
            batch.set_start_hook(functools.partial(send, started))
        else:
            try:
                send(started)
            except (EOFError, OSError):
                return
        try:
            kind, out = OK, fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - every exception is the job's failure
            kind, out = RAISED, (portable(exc), traceback.format_exc())
        batch.set_start_hook(None)
        del fn, args, kwargs
        try:
            payload = REPLY.pack(job_id, kind) + dumps_any(out)
        except BaseException as exc:  # noqa: BLE001
            text = f"its result could not be pickled in the worker ({type(exc).__name__}: {exc})"
            payload = REPLY.pack(job_id, UNPICKLABLE) + text.encode("utf-8", "replace")
        del out
        try:
            send(payload)
        except (EOFError, OSError):
            return
