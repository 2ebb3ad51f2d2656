"""The Grid Engine backend against a real one-node Grid Engine: a sweep, a failing task, a cancel.

The Slurm backend runs the whole shared suite (tests/test_behaviour.py); both
are the same backend over another dialect (parallelize/scheduler/sge.py), so
here Grid Engine gets what its dialect changes: submission, status and cancel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from parallelize import JobCancelledError, ModelEvaluator, Parallelize, TaskFailure, WorkerCrashedError

sys.path.insert(0, str(Path(__file__).parent))
from test_cluster import LIMIT, sleeps_for_one, wait_until  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def sge_cluster() -> None:
    from cluster_daemons import ensure_sge  # tests/cluster_daemons.py

    reason = ensure_sge()
    if reason is not None:
        pytest.skip(reason)


def runner(tmp_path: Path, workers: int = 2, **options: Any) -> Parallelize:
    options.setdefault("poll_interval", 1.0)
    return Parallelize(workers, backend="sge", folder=tmp_path / "jobs", **options)


def score(depth: int, impurity: str) -> dict[str, Any]:
    return {"depth": depth, "impurity": impurity, "score": depth * (2 if impurity == "gini" else 3)}


def raises_or_dies(x: int) -> int:
    if x == 1:
        raise ValueError("bad input 1")
    if x == 2:
        os._exit(4)
    return x


def qstat_tasks(name: str) -> list[tuple[str, str]]:
    out = subprocess.run(["qstat", "-u", "*"], capture_output=True, text=True).stdout.splitlines()[2:]
    rows = []
    for line in out:
        parts = line.split()
        if len(parts) >= 5 and parts[2].startswith(name[:10]):
            rows.append((parts[0], parts[4]))
    return rows


def test_a_grid_sweep_runs_on_grid_engine(tmp_path: Path) -> None:
    with runner(tmp_path, 3) as r:
        evaluator = ModelEvaluator(r)
        evaluator.run(score, depth=range(1, 7), impurity=["gini", "entropy"]).wait()
        frame = evaluator.to_dataframe()
        backend: Any = r.backend
    assert len(frame) == 12
    assert sorted(frame["score"]) == sorted(d * m for d in range(1, 7) for m in (2, 3))
    assert backend.submitted_elements >= 1


def test_a_task_that_raises_and_one_that_dies_on_grid_engine(tmp_path: Path) -> None:
    with runner(tmp_path, on_error="collect") as r:
        out = list(r.map(raises_or_dies, range(4)))
    assert out[0] == 0 and out[3] == 3
    assert isinstance(out[1], TaskFailure) and isinstance(out[1].exception, ValueError)
    assert isinstance(out[2], TaskFailure) and isinstance(out[2].exception, WorkerCrashedError)
    assert "exited with status 4" in str(out[2].exception)


def test_a_job_deleted_from_outside_on_grid_engine(tmp_path: Path) -> None:
    # Grid Engine shows a deleted element for about a second before it leaves
    # qstat: the runner must ask at least that often to tell a deletion (its
    # tasks fail) from a job that vanished (its tasks are isolated and rerun).
    with runner(tmp_path, on_error="collect", chunksize=1, poll_interval=0.25) as r:
        backend: Any = r.backend
        stream = r.map(sleeps_for_one, range(3), ordered=False)
        done = {next(stream), next(stream)}

        def the_sleeper() -> str | None:
            with backend._lock:  # the one element still running: the sleeping task's
                left = [t for t in backend._tasks.values() if t.job_id]
            return f"{left[0].job_id}.{left[0].index + 1}" if len(left) == 1 else None

        element = wait_until(the_sleeper, "the sleeping element alone to remain", LIMIT)
        time.sleep(1.0)
        subprocess.run(["qdel", element], check=True, capture_output=True)
        rest = list(stream)
    assert done == {0, 2} and len(rest) == 1
    assert isinstance(rest[0], TaskFailure) and isinstance(rest[0].exception, JobCancelledError)
