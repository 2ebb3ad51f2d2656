"""A real Dask cluster for the tests: one scheduler and N workers, each its own process.

The processes are the ones a user starts by hand (``dask scheduler``,
``dask worker``), so the dask backend is tested over real TCP connections, real
pickling and real worker processes that can be killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

import psutil

__all__ = ["start_cluster"]

# The tests directory: on the workers' path so that functions defined in test
# modules (pickled by reference) can be imported there.
_TESTS_DIR = str(Path(__file__).resolve().parent)

# Seconds a process gets to exit after SIGTERM before it is killed.
_GRACE = 5.0


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it if the test process dies first."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:  # not Linux: cleanup relies on the context manager alone
        pass


def _spawn(args: list[str], log: IO[bytes], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _read_address(scheduler_file: Path, scheduler: subprocess.Popen[bytes], deadline: float, log: Path) -> str:
    while time.monotonic() < deadline:
        if scheduler.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with code {scheduler.returncode}:\n{_tail(log)}")
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    raise TimeoutError(f"dask scheduler did not write {scheduler_file} in time:\n{_tail(log)}")


def _wait_for_workers(address: str, n: int, procs: list[subprocess.Popen[bytes]], deadline: float, log: Path) -> None:
    from distributed import Client

    with Client(address, timeout=max(deadline - time.monotonic(), 1), set_as_default=False) as client:
        while len(client.scheduler_info(n_workers=-1)["workers"]) < n:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a dask process exited with code {proc.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {n} dask workers connected to {address} in time:\n{_tail(log)}")
            time.sleep(0.1)


def _tree(procs: list[subprocess.Popen[bytes]]) -> list[psutil.Process]:
    """The processes and all their descendants that are still alive."""
    out: list[psutil.Process] = []
    for proc in procs:
        try:
            top = psutil.Process(proc.pid)
            out.append(top)
            out.extend(top.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    return out


def _terminate(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process (workers first), then SIGKILL what survives the grace period."""
    # Collect descendants first: a worker process restarted by its nanny is not
    # in `procs`, and once its nanny exits it would no longer be found.
    tree = _tree(procs)
    # Workers first: a worker whose scheduler is already gone spends its grace
    # period trying to reconnect instead of exiting.
    workers, scheduler = procs[1:], procs[:1]
    for group in (workers, scheduler):
        for proc in group:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        psutil.wait_procs([p for p in tree if p.pid in {q.pid for q in group}], timeout=_GRACE)
    _gone, alive = psutil.wait_procs(tree, timeout=1)
    for p in alive + _tree(procs):
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(tree, timeout=_GRACE)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_GRACE)


@contextlib.contextmanager
def start_cluster(n_workers: int = 2, *, threads: int = 1, timeout: float = 60.0) -> Iterator[tuple[str, list[int]]]:
    """Start ``dask scheduler`` and ``n_workers`` ``dask worker`` processes on localhost.

    Args:
        n_workers: worker processes (each behind its nanny, which restarts it if killed).
        threads: threads per worker.
        timeout: seconds to wait for the scheduler and every worker to be up.

    Yields:
        ``(address, pids)``: the scheduler's ``tcp://127.0.0.1:port`` address and the
        process ids of the scheduler, the nannies and the workers.

    Raises:
        RuntimeError: a process exited during start-up (its log is in the message).
        TimeoutError: the cluster was not up within ``timeout`` seconds.
    """
    tmp = Path(tempfile.mkdtemp(prefix="parallelize-dask-"))
    scheduler_file = tmp / "scheduler.json"
    log_path = tmp / "cluster.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_TESTS_DIR, env.get("PYTHONPATH", "")) if p)
    env.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    deadline = time.monotonic() + timeout
    procs: list[subprocess.Popen[bytes]] = []
    with open(log_path, "wb") as log:
        try:
            procs.append(
                _spawn(
                    [
                        "distributed.cli.dask_scheduler",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        "0",
                        "--no-dashboard",
                        "--dashboard-address",
                        "127.0.0.1:0",
                        "--scheduler-file",
                        str(scheduler_file),
                    ],
                    log,
                    env,
                )
            )
            address = _read_address(scheduler_file, procs[0], deadline, log_path)
            for i in range(n_workers):
                procs.append(
                    _spawn(
                        [
                            "distributed.cli.dask_worker",
                            address,
                            "--nworkers",
                            "1",
                            "--nthreads",
                            str(threads),
                            "--no-dashboard",
                            "--host",
                            "127.0.0.1",
                            "--name",
                            f"worker-{i}",
                            "--death-timeout",
                            "60",
                            "--local-directory",
                            str(tmp),
                        ],
                        log,
                        env,
                    )
                )
            _wait_for_workers(address, n_workers, procs, deadline, log_path)
            yield address, [p.pid for p in _tree(procs)]
        finally:
            _terminate(procs)
            shutil.rmtree(tmp, ignore_errors=True)
