"""The loop that runs inside each worker process of ``parallelize.backends.pool``.

A worker owns one end of a socket pair; the parent owns the other. Every message
but the last starts with a header (the job's id and, from the worker, the kind
of message), so a payload that cannot be unpickled still says whose it is::

    parent -> worker   [job_id] pickled (fn, args, kwargs)   run this
                       b""                                   exit now
    worker -> parent   [job_id STARTED]                      the job really started here
                       [job_id OK] pickled value             it returned
                       [job_id RAISED] pickled (exc, tb)     it raised (any BaseException)
                       [job_id UNPICKLABLE] utf-8 text       its arguments or result would not pickle

The worker never dies of a job's own exception: ``SystemExit``,
``KeyboardInterrupt`` and every other ``BaseException`` raised by a job are
reported like an ``Exception``. It exits when the parent says so, when its end
of the socket closes, or when the parent process is gone (a watchdog thread
checks ``os.getppid()``), so a SIGKILLed parent leaves no worker behind.

This module imports nothing of parallelize at load time but the worker-side
``task`` module, so a worker starts fast.
"""

from __future__ import annotations

import functools
import os
import pickle
import signal
import struct
import threading
import time
import traceback
from typing import Any, Callable

__all__ = ["JOB_ID", "OK", "RAISED", "REPLY", "STARTED", "UNPICKLABLE", "worker_main"]

#: The framing of a job message: its id, ahead of the pickle, so that a worker
#: that cannot unpickle a job can still say which one.
JOB_ID = struct.Struct("!q")

STARTED, OK, RAISED, UNPICKLABLE = 0, 1, 2, 3

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


def worker_main(conn: Any, parent_pid: int, env: dict[str, str] | None, initializer: Callable[[], None] | None) -> None:
    """Serve jobs from ``conn`` until told to stop or orphaned.

    Args:
        conn: this worker's end of the socket pair.
        parent_pid: the pool's process; the worker exits when it is gone.
        env: environment variables to set before anything runs.
        initializer: called once before the first job, or ``None``.
    """
    # Ctrl-C in a terminal reaches the whole process group; the parent decides
    # what happens to the workers, and no worker prints a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if env:
        os.environ.update(env)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parallelize-watchdog", daemon=True).start()
    if initializer is not None:
        try:
            initializer()
        except BaseException:  # noqa: BLE001 - the initializer's own error is its jobs' business
            pass
    from ..worker import batch
    from ..worker.failure import portable
    from ..worker.pickling import dumps_any

    send = conn.send_bytes
    recv = conn.recv_bytes
    while True:
        try:
            data = recv()
        except (EOFError, OSError):
            return
        if not data:
            return
        (job_id,) = JOB_ID.unpack_from(data)
        try:
            fn, args, kwargs = pickle.loads(memoryview(data)[JOB_ID.size :])
        except BaseException as exc:  # noqa: BLE001 - a job that cannot be rebuilt here
            text = f"its arguments could not be unpickled in the worker ({type(exc).__name__}: {exc})"
            send(REPLY.pack(job_id, UNPICKLABLE) + text.encode("utf-8", "replace"))
            continue
        del data
        started = REPLY.pack(job_id, STARTED)
        if getattr(fn, "reports_start", False):
            # The job says when its work starts (after unpickling its functions).
            batch.set_start_hook(functools.partial(send, started))
        else:
            send(started)
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
