"""The process pool's fork server: one fresh interpreter that forks the pool's workers.

Starting a worker as a fresh interpreter (fork+exec) costs about 80 ms of CPU:
the interpreter, then parallelize's worker modules and multiprocessing's. A
pool that starts many workers (a wide machine, ``mp_lock`` widening call after
call, a worker replaced after every timeout) pays that each time. The pool
starts one such interpreter instead, the *zygote*, which imports the worker
modules once and then forks a worker per request, in a few milliseconds. It
runs no thread of its own, so forking it is safe where forking the caller (a
program with threads) is not; it has the pool's ``env`` from its start, so
the workers have it before anything is imported.

::

    pool (manager thread)                          zygote                 worker
    ---------------------                          ------                 ------
    fork(fd, preparation) ──seqpacket + fd──────>  os.fork() ───────────> worker_main(fd)
        handle.pid <───────────────────── [P pid]
        handle.returncode <────────────── [X pid code]   (SIGCHLD: waitpid)
    closes its end ─────────────────────────────>  EOF: kills its workers, exits

Workers are the zygote's children, so only it can collect their exit status:
it reports each one. A worker exits by itself if the zygote goes (see the
worker's watchdog), and the zygote exits, killing its workers, when its
socket to the pool closes, so nothing outlives the program.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from select import select

from ..logs import logger
from .pool_worker import BOOT, EXITED, FORKED, PID, PID_EXIT

__all__ = ["ForkedProcess", "Zygote", "preparation"]


def environment(env: dict[str, str] | None) -> dict[str, str]:
    """A worker's environment: ``os.environ`` as it is now, with the pool's ``env`` over it."""
    return {**os.environ, **env} if env else dict(os.environ)


#: Variables that change while a program runs and that no library reads as it
#: is imported: a change to them alone does not replace a zygote (pytest sets
#: the first at every phase of every test).
VOLATILE = frozenset({"PYTEST_CURRENT_TEST"})


def _settled(environ: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in environ.items() if key not in VOLATILE}


def preparation(env: dict[str, str] | None) -> bytes:
    """What a worker takes from this process: where to import from, ``sys.argv``, the authentication key,
    and the environment (``os.environ`` and the pool's ``env``).

    Sent with every fork, so a worker started later sees a ``sys.path`` or an
    ``os.environ`` changed since the zygote started. (A zygote that preloaded
    libraries, which may have read the environment as they loaded, such as
    NumPy's BLAS, is replaced once the environment changes: see ``Zygote.stale``.)
    """
    key = bytes(multiprocessing.current_process().authkey)
    return pickle.dumps((sys.path, sys.argv, key, environment(env)), protocol=pickle.HIGHEST_PROTOCOL)


class ForkedProcess:
    """A worker forked by the zygote, with as much of ``subprocess.Popen`` as the pool uses.

    Its ``pid`` is ``None`` until the zygote says it forked it; a kill asked
    before then is done then.
    """

    def __init__(self, zygote: Zygote) -> None:
        self.zygote = zygote
        self.pid: int | None = None
        self.returncode: int | None = None
        self._kill_asked = False

    def poll(self) -> int | None:
        return self.returncode

    def kill(self) -> None:
        if self.returncode is not None:
            return
        if self.pid is None:
            self._kill_asked = True
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self, timeout: float) -> int:
        """Its exit code, reading the zygote's reports for up to ``timeout`` seconds.

        Raises:
            subprocess.TimeoutExpired: it has not ended by then.
        """
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"parallelize worker {self.pid}", timeout)
            self.zygote.pump(left)
        return self.returncode


class Zygote:
    """One pool's fork server (see the module docstring); only the pool's manager thread uses it.

    Args:
        env: environment variables for the zygote, and so for every worker.
        preload: installed libraries it imports before its first fork (see
            ``parallelize.backends.preload``).
    """

    def __init__(self, env: dict[str, str] | None, preload: tuple[str, ...] = ()) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOOT, str(theirs.fileno()), "parallelize-worker-zygote"],
                pass_fds=(theirs.fileno(),),
                env={**os.environ, **env} if env else None,
            )
        finally:
            theirs.close()
        self.sock = ours
        self.env = env
        self.preload = preload
        self.environ = environment(env)  # what the preloaded libraries saw
        self.gone = False
        self._forking: deque[ForkedProcess] = deque()  # asked for, pid not known yet, in order
        self._children: dict[int, ForkedProcess] = {}
        key = bytes(multiprocessing.current_process().authkey)
        try:
            self.sock.send(pickle.dumps((sys.path, sys.argv, key, self.environ, preload), pickle.HIGHEST_PROTOCOL))
        except OSError:
            self._lost()

    def stale(self) -> bool:
        """Whether its preloaded libraries saw an environment other than a new worker's.

        A worker gets ``os.environ`` as it is when it starts, and a library
        such as NumPy reads its thread settings once, when imported: a worker
        forked after the environment changed must come from a zygote that
        imported them under the new one (a change to ``VOLATILE`` variables
        alone does not count).
        """
        if not self.preload:
            return False
        now = environment(self.env)
        return now != self.environ and _settled(now) != _settled(self.environ)

    def idle(self) -> bool:
        """Whether it has no worker alive nor asked for."""
        return not self._children and not self._forking

    def fileno(self) -> int:
        return self.sock.fileno()

    def fork(self, fd: int) -> ForkedProcess:
        """Ask for a worker serving socket ``fd`` (sent to the zygote, which forks it).

        Raises:
            OSError: the zygote is gone (``gone`` is then set).
        """
        try:
            socket.send_fds(self.sock, [preparation(self.env)], [fd])
        except OSError:
            self._lost()
            raise
        child = ForkedProcess(self)
        self._forking.append(child)
        return child

    def pump(self, timeout: float = 0.0) -> None:
        """Wait up to ``timeout`` seconds for the zygote's reports, and read them."""
        if not self.gone and select([self.sock], [], [], timeout)[0]:
            self.read()

    def read(self) -> None:
        """Take every report waiting: forked pids and exit codes."""
        while not self.gone:
            try:
                message = self.sock.recv(64, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                message = b""
            if not message:
                self._lost()
                return
            kind = message[:1]
            if kind == FORKED:
                (pid,) = PID.unpack_from(message, 1)
                child = self._forking.popleft()
                child.pid = pid
                self._children[pid] = child
                if child._kill_asked:
                    child.kill()
            elif kind == EXITED:
                pid, code = PID_EXIT.unpack_from(message, 1)
                done = self._children.pop(pid, None)
                if done is not None:
                    done.returncode = code

    def close(self) -> None:
        """End the zygote (it kills the workers it still has) and collect it."""
        if not self.gone:
            self.gone = True
            self.sock.close()
        self.end()

    def end(self) -> int:
        """The zygote's exit code, once it has ended (killed if it has not within 5 s)."""
        try:
            return self.process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def _lost(self) -> None:
        # The zygote ended on its own (killed, crashed, or it never started):
        # its workers end with it, those it never forked with its exit code.
        self.gone = True
        self.sock.close()
        code = self.end()
        for child in self._children.values():
            child.kill()
            child.returncode = -signal.SIGKILL
        for child in self._forking:
            child.pid = self.process.pid
            child.returncode = code
        if self._children:
            logger.warning(
                "the process pool's fork server (pid %d) ended (exit code %d); its %d worker(s) were stopped",
                self.process.pid,
                code,
                len(self._children),
            )
        self._children.clear()
        self._forking.clear()
