"""The Slurm backend against a real one-node Slurm: the failures a cluster adds, each named.

The shared behaviour suite (tests/test_behaviour.py) runs on ``backend="slurm"``
too; this file covers what only a scheduler can do to a job: exit without a
result, be cancelled from outside, outlive a timeout, be refused, lose its node,
and the submitting process being interrupted or killed.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from parallelize import (
    BackendUnavailableError,
    Checkpoint,
    JobCancelledError,
    Parallelize,
    SubmissionError,
    TaskFailure,
    TaskTimeoutError,
    WorkerCrashedError,
)

pytestmark = pytest.mark.usefixtures("slurm_cluster")

# Longest a test waits for a job to reach a state: a guard against hanging.
LIMIT = 90.0


def wait_until(check: Callable[[], Any], what: str, limit: float = LIMIT) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def squeue(name: str) -> list[tuple[str, str]]:
    out = subprocess.run(
        ["squeue", "--states=all", "-h", f"--name={name}", "-o", "%i|%T"], capture_output=True, text=True, check=True
    ).stdout
    return [tuple(line.split("|", 1)) for line in out.split()]  # type: ignore[misc]


def node_up(host: str) -> bool:
    state = subprocess.run(["sinfo", "-h", "-n", host, "-o", "%T"], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.endswith("*") and state.split("+")[0] in {"idle", "mixed", "allocated"}


def runner(tmp_path: Path, workers: int = 2, **options: Any) -> Parallelize:
    return Parallelize(workers, backend="slurm", folder=tmp_path / "jobs", poll_interval=1.0, **options)


# -- task functions (module level: the jobs import this module by name) ---------------


def square(x: int) -> int:
    return x * x


def exits_for_three(x: int) -> int:
    if x == 3:
        os._exit(3)
    return x


def sleeps_for_one(x: int, seconds: float = 60.0) -> int:
    if x == 1:
        time.sleep(seconds)
    return x


def tiny(x: int) -> int:
    time.sleep(0.001)
    return x + 1


# -- tests ----------------------------------------------------------------------------


def test_many_tiny_tasks_take_a_handful_of_array_elements(tmp_path: Path) -> None:
    with runner(tmp_path, 4) as r:
        out = list(r.map(tiny, range(10_000)))
        backend: Any = r.backend
        stats = r.statistics()
    assert out == [x + 1 for x in range(10_000)]
    assert stats.completed == 10_000
    # Batches are sized by measured task time, not one job per task.
    assert backend.submitted_elements <= 40, backend.submitted_elements
    assert backend.submitted_arrays <= backend.submitted_elements


def test_a_job_that_exits_without_a_result_is_a_named_crash(tmp_path: Path) -> None:
    with runner(tmp_path, on_error="collect") as r:
        out = list(r.map(exits_for_three, range(6)))
    assert [v for i, v in enumerate(out) if i != 3] == [0, 1, 2, 4, 5]
    failure = out[3]
    assert isinstance(failure, TaskFailure) and isinstance(failure.exception, WorkerCrashedError)
    assert "exited with status 3" in str(failure.exception)
    assert "slurm job" in str(failure.exception)


def test_a_job_cancelled_from_outside_fails_its_tasks_and_says_so(tmp_path: Path) -> None:
    with runner(tmp_path, on_error="collect", chunksize=1) as r:
        backend: Any = r.backend
        stream = r.map(sleeps_for_one, range(3), ordered=False)
        done = {next(stream), next(stream)}  # the quick ones; task 1 sleeps in its job

        def the_sleeper() -> str | None:
            rows = [job for job, state in squeue(backend.job_name) if state == "RUNNING"]
            return rows[0] if len(rows) == 1 else None

        subprocess.run(["scancel", wait_until(the_sleeper, "the sleeping element alone to run")], check=True)
        rest = list(stream)
    assert done == {0, 2} and len(rest) == 1
    failure = rest[0]
    assert isinstance(failure, TaskFailure) and isinstance(failure.exception, JobCancelledError)
    assert isinstance(failure.exception, WorkerCrashedError)
    assert "cancelled from outside" in str(failure.exception)


def test_a_timeout_cancels_the_one_job_and_the_others_go_on(tmp_path: Path) -> None:
    with runner(tmp_path, 3, on_error="collect", timeout=3) as r:
        backend: Any = r.backend
        out = list(r.map(sleeps_for_one, range(4)))
    assert [out[0], out[2], out[3]] == [0, 2, 3]
    assert isinstance(out[1], TaskFailure) and isinstance(out[1].exception, TaskTimeoutError)
    # Its element was cancelled, not left sleeping on the node.
    wait_until(lambda: all(state != "RUNNING" for _, state in squeue(backend.job_name)), "the element to end")


def test_a_refused_submission_quotes_the_scheduler(tmp_path: Path) -> None:
    with runner(tmp_path, resources={"partition": "no-such-partition"}) as r:
        with pytest.raises(SubmissionError, match="(?i)invalid partition"):
            list(r.map(square, range(3)))


def test_no_sbatch_on_the_path_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailableError, match="sbatch"):
        Parallelize(2, backend="slurm", folder=tmp_path / "jobs")


def test_the_job_runs_setup_lines_and_the_logs_folder_exists_first(tmp_path: Path) -> None:
    marker = tmp_path / "setup-ran"
    with runner(tmp_path, setup=[f"touch {marker}"]) as r:
        assert list(r.map(square, range(4))) == [0, 1, 4, 9]
        backend: Any = r.backend
    assert marker.exists()
    assert (backend.folder / "logs").is_dir() and any((backend.folder / "logs").iterdir())


def test_a_node_that_goes_down_mid_run_loses_nothing(tmp_path: Path) -> None:
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    with runner(tmp_path, 2, chunksize=1) as r:
        backend: Any = r.backend
        stream = r.starmap(sleeps_for_one, [(0, 5.0), (1, 5.0), (2, 5.0)])
        first = next(stream)  # the run is going; task 1 sleeps 5 s in its job
        wait_until(lambda: any(s == "RUNNING" for _, s in squeue(backend.job_name)), "an element to run")
        try:
            subprocess.run(["scontrol", "update", f"NodeName={host}", "State=DOWN", "Reason=test"], check=True)
            time.sleep(1.0)
        finally:
            # Back in service (the node may have come back by itself: ReturnToService=2).
            subprocess.run(["scontrol", "update", f"NodeName={host}", "State=RESUME"], capture_output=True)
            wait_until(lambda: node_up(host), "the node to be back in service")
        rest = list(stream)
    assert [first, *rest] == [0, 1, 2]


INTERRUPTED = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from parallelize import Parallelize
    from test_cluster import sleeps_for_one
    with Parallelize(2, backend="slurm", folder={folder!r}, poll_interval=1.0, chunksize=1) as r:
        print(r.backend.job_name, flush=True)
        list(r.map(sleeps_for_one, range(4)))
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_submitter_cancels_its_jobs_and_says_how_many(tmp_path: Path, sig: int) -> None:
    script = tmp_path / "run.py"
    script.write_text(INTERRUPTED.format(tests=str(Path(__file__).parent), folder=str(tmp_path / "jobs")))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        name = proc.stdout.readline().strip()
        wait_until(lambda: any(s == "RUNNING" for _, s in squeue(name)), "an element to run")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in err
    else:
        assert proc.returncode == -signal.SIGTERM  # it still ends by SIGTERM, after cancelling
    assert "cancelled" in err and "slurm job" in err
    wait_until(lambda: all(s not in ("RUNNING", "PENDING") for _, s in squeue(name)), "the jobs to be cancelled")


KILLED = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from parallelize import Parallelize
    from test_cluster import marked_square
    with Parallelize(2, backend="slurm", folder={folder!r}, poll_interval=1.0, chunksize=2) as r:
        for _ in r.map(marked_square, [({marks!r}, x) for x in range(16)], checkpoint={checkpoint!r}):
            pass
    """
)


def marked_square(arg: tuple[str, int]) -> int:
    """x * x, leaving a file behind for every run of the task; tasks 4 and up take 3 s."""
    marks, x = arg
    time.sleep(3.0 if x >= 4 else 0.1)
    Path(marks, f"{x}-{os.getpid()}-{time.monotonic_ns()}").touch()
    return x * x


def slow_element_started(folder: Path) -> bool:
    """Whether a slow element has been running for a second, with its result still to come.

    (The journal alone does not say the submitter moved on: a job records its
    batch in the checkpoint before it writes its result file.)
    """
    tasks = folder / "tasks"
    if not tasks.exists():
        return False
    now = time.time()
    for p in tasks.glob("*.started"):
        try:
            started = p.stat().st_mtime
        except FileNotFoundError:
            continue
        if now - started > 1.0 and not p.with_suffix(".out").exists():
            return True
    return False


def runs_of(marks: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for p in marks.iterdir():
        x = int(p.name.split("-")[0])
        counts[x] = counts.get(x, 0) + 1
    return counts


def test_a_killed_submitter_is_reattached_every_task_runs_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL the submitting process while jobs run; a rerun on the same folder and
    checkpoint collects what they finish, waits for them, and submits only the rest."""
    checkpoint, marks = tmp_path / "ck", tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "run.py"
    script.write_text(
        KILLED.format(
            tests=str(Path(__file__).parent),
            folder=str(tmp_path / "jobs"),
            checkpoint=str(checkpoint),
            marks=str(marks),
        )
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(Checkpoint(checkpoint).completed_positions()) >= 4, "the first run to record tasks")
        wait_until(lambda: slow_element_started(tmp_path / "jobs"), "a slow element to start")
        proc.kill()  # SIGKILL: no cleanup at all; its running jobs are orphans now
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    recorded_at_kill = len(Checkpoint(checkpoint).completed_positions())
    assert 4 <= recorded_at_kill < 16
    with runner(tmp_path, 2, chunksize=2) as r:
        out = list(r.map(marked_square, [(str(marks), x) for x in range(16)], checkpoint=checkpoint))
        stats = r.statistics()
    assert out == [x * x for x in range(16)]  # every result once, in input order
    assert "waiting for" in capsys.readouterr().err  # the orphans were waited for, not resubmitted
    assert runs_of(marks) == {x: 1 for x in range(16)}  # every task ran exactly once, in either run
    assert stats.completed < 16 - recorded_at_kill  # what the orphans finished was not computed again


def test_ctrl_c_with_keep_jobs_leaves_the_jobs_and_a_rerun_reattaches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint, marks = tmp_path / "ck", tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "run.py"
    script.write_text(
        KILLED.format(
            tests=str(Path(__file__).parent),
            folder=str(tmp_path / "jobs"),
            checkpoint=str(checkpoint),
            marks=str(marks),
        ).replace("chunksize=2)", "chunksize=2, keep_jobs=True)")
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(Checkpoint(checkpoint).completed_positions()) >= 4, "the first run to record tasks")
        wait_until(lambda: slow_element_started(tmp_path / "jobs"), "a slow element to start")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "KeyboardInterrupt" in err and "cancelled" not in err
    items = [(str(marks), x) for x in range(16)]
    with runner(tmp_path, 2, chunksize=2) as r:
        out = list(r.map(marked_square, items, checkpoint=checkpoint))
    assert out == [x * x for x in range(16)]
    assert "waiting for" in capsys.readouterr().err
    assert runs_of(marks) == {x: 1 for x in range(16)}


@pytest.mark.parametrize("first,then", [("process", "slurm"), ("slurm", "process")])
def test_a_sweep_stopped_on_one_backend_resumes_on_the_other(tmp_path: Path, first: str, then: str) -> None:
    checkpoint = tmp_path / "ck"

    def make(backend: str) -> Parallelize:
        return runner(tmp_path, 2, chunksize=2) if backend == "slurm" else Parallelize(2, backend=backend, chunksize=2)

    with make(first) as r:
        stream = r.map(square, range(20), checkpoint=checkpoint)
        head = list(itertools.islice(stream, 6))
        stream.close()
    assert head == [x * x for x in range(6)]
    recorded = len(Checkpoint(checkpoint).completed_positions())
    assert 6 <= recorded < 20
    with make(then) as r:
        out = list(r.map(square, range(20), checkpoint=checkpoint))
        stats = r.statistics()
    assert out == [x * x for x in range(20)]
    assert stats.completed == 20 - recorded
