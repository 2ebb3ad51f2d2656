"""Shared fixtures: the backend matrix and the no-leftover-process check.

Every behaviour test takes the ``backend`` fixture and builds its runner with
``make_runner(**options)``, so one suite runs on every backend; a backend whose
library is missing is skipped with the reason.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Iterator

import psutil
import pytest

from parallelize import Parallelize

# Backends the shared suite runs on. "dask" needs a real scheduler: the
# `dask_address` fixture (tests/dask_cluster.py) starts one with two workers;
# "slurm" a real one-node Slurm (tests/cluster_daemons.py starts it).
BACKENDS = ["thread", "process", "serial", "dask", "slurm"]

# Child processes that may outlive a test: long-lived helpers started once per
# session (loky's resource tracker, the Dask cluster of the dask fixture).
_allowed_children: set[int] = set()


def allow_child_processes(pids: list[int]) -> None:
    """Let session-scoped fixtures declare processes that outlive single tests."""
    _allowed_children.update(pids)


def _is_long_lived_helper(proc: psutil.Process) -> bool:
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return True
    return "resource_tracker" in cmd or "semaphore_tracker" in cmd


def _stray_children() -> list[psutil.Process]:
    me = psutil.Process(os.getpid())
    out = []
    for child in me.children(recursive=True):
        if child.pid in _allowed_children:
            continue
        try:
            # A Dask nanny restarts a crashed worker under a new pid: still the
            # session cluster's.
            if any(p.pid in _allowed_children for p in child.parents()):
                continue
        except psutil.Error:
            continue
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.NoSuchProcess:
            continue
        if _is_long_lived_helper(child):
            continue
        out.append(child)
    return out


@pytest.fixture(autouse=True)
def no_leftover_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, every worker process the test started must be gone.

    Tests that deliberately keep a warm pool mark themselves
    ``@pytest.mark.keeps_workers``.
    """
    yield
    if request.node.get_closest_marker("keeps_workers"):
        return
    mplock = sys.modules.get("parallelize.mplock")
    if mplock is not None:
        mplock.end_workers()  # kept between mp_lock calls by design (tests/test_mp_lock.py checks them)
    deadline = time.monotonic() + 10
    stray = _stray_children()
    while stray and time.monotonic() < deadline:
        time.sleep(0.1)
        stray = _stray_children()
    if stray:
        desc = []
        for p in stray:
            try:
                desc.append(f"{p.pid}: {' '.join(p.cmdline())[:120]}")
            except psutil.Error:
                desc.append(str(p.pid))
            try:
                p.kill()
            except psutil.Error:
                pass
        pytest.fail(f"child processes left behind by the test: {desc}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "keeps_workers: the test may leave a warm worker pool")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each backend in turn (dask skipped when unavailable)."""
    name = request.param
    if name == "dask":
        pytest.importorskip("distributed", reason="dask backend needs `pip install parallelize[dask]`")
        request.getfixturevalue("dask_address")
    if name == "slurm":
        request.getfixturevalue("slurm_cluster")
    return name


@pytest.fixture
def make_runner(backend: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., Parallelize]]:
    """Build runners on the current backend; all are shut down after the test."""
    runners: list[Parallelize] = []
    extra: dict[str, Any] = {}
    if backend == "dask":
        extra["address"] = request.getfixturevalue("dask_address")
    if backend == "slurm":
        extra["folder"] = request.getfixturevalue("tmp_path") / "jobs"
        extra["poll_interval"] = 1.0

    def make(max_workers: int = 2, **options: Any) -> Parallelize:
        runner = Parallelize(max_workers, backend=backend, **extra, **options)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.shutdown(wait=True)


@pytest.fixture(scope="session")
def dask_address() -> Iterator[str]:
    """Address of a real Dask scheduler with two workers, started for the session."""
    pytest.importorskip("distributed", reason="dask backend needs `pip install parallelize[dask]`")
    try:
        from dask_cluster import start_cluster  # tests/dask_cluster.py
    except ImportError:
        pytest.skip("tests/dask_cluster.py is not there yet")
    with start_cluster() as (address, pids):
        allow_child_processes(pids)
        yield address


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """A real one-node Slurm, started for the session if it is installed (else the test skips)."""
    from cluster_daemons import ensure_slurm  # tests/cluster_daemons.py

    reason = ensure_slurm()
    if reason is not None:
        pytest.skip(reason)
