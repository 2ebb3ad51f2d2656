"""Shell job sweeps (parallelize.jobs) on a real one-node Slurm and Grid Engine.

The daemons are started by tests/cluster_daemons.py (tests/clusters/*.sh); where
they cannot be, these tests skip and say why. The local queue is in tests/test_jobs.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import parallelize.jobs as ps
from parallelize import SubmissionError
from parallelize.jobs.queues import SchedulerQueue

sys.path.insert(0, str(Path(__file__).parent))
from test_jobs import check_seed_results, run_seed_example  # noqa: E402


@pytest.fixture(scope="module")
def sge() -> None:
    from cluster_daemons import ensure_sge

    reason = ensure_sge()
    if reason is not None:
        pytest.skip(reason)


def wait_for_state(jobs, state: str, limit: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    table = ps.status(jobs)
    while not (table["status"] == state).all() and time.monotonic() < deadline:
        time.sleep(0.3)
        table = ps.status(table)
    return table


# -- Slurm ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("slurm_cluster")
def test_the_seed_readme_example_runs_on_slurm(tmp_path: Path) -> None:
    done = run_seed_example(tmp_path, "slurm")
    assert done.returncode == 0, done.stderr
    check_seed_results(tmp_path)
    # The template's own "#SBATCH -o %J.stdout" was kept: the output is where it said.
    jobs = ps.load(tmp_path)
    first = jobs.iloc[0]
    assert (Path(first.work_dir) / f"{first.job_id}.stdout").exists()
    assert first.stdout.strip() == first.work_dir


@pytest.mark.usefixtures("slurm_cluster")
def test_an_array_on_slurm_runs_every_point_in_its_own_folder(tmp_path: Path) -> None:
    template = "#!/bin/bash\n#SBATCH --time=5\necho {x} > value.txt\necho out {x}\nexit {code}\n"
    space = ps.ParamSpace(x=[1, 2, 3]) * ps.ParamSpace(code=0) + ps.ParamSpace(x=4, code=5)
    jobs = ps.wait(ps.submit(template, "a_{x}", space, use="slurm", work_dir=tmp_path, array=True), timeout=90)
    ids = list(jobs["job_id"])
    array = ids[0].split("_")[0]
    assert ids == [f"{array}_{k}" for k in range(4)]  # one array job
    assert list(jobs["status"]) == ["COMPLETED"] * 3 + ["FAILED"]
    assert list(jobs["exit_code"]) == [0, 0, 0, 5]
    assert [s.strip() for s in jobs["stdout"]] == ["out 1", "out 2", "out 3", "out 4"]
    assert [(Path(w) / "value.txt").read_text().strip() for w in jobs["work_dir"]] == ["1", "2", "3", "4"]


@pytest.mark.usefixtures("slurm_cluster")
def test_finished_jobs_that_left_the_queue_are_known_by_their_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = "#!/bin/bash\necho oops >&2\nexit {code}\n"
    jobs = ps.wait(ps.submit(template, "e_{code}", ps.ParamSpace(code=[0, 2]), use="slurm", work_dir=tmp_path))
    assert list(jobs["status"]) == ["COMPLETED", "FAILED"]
    # squeue forgets jobs after MinJobAge (300 s here): as if it had.
    monkeypatch.setattr(SchedulerQueue, "states", lambda self, refs: {})
    later = ps.load(tmp_path)
    assert list(later["status"]) == ["COMPLETED", "FAILED"] and list(later["exit_code"]) == [0, 2]
    assert list(later["stderr"]) == ["oops\n", "oops\n"]  # stderr alone is not a failure


@pytest.mark.usefixtures("slurm_cluster")
def test_cancel_on_slurm(tmp_path: Path) -> None:
    jobs = ps.submit("#!/bin/bash\nsleep 60\n", "c_{x}", ps.ParamSpace(x=[1, 2]), use="slurm", work_dir=tmp_path)
    running = wait_for_state(jobs, "RUNNING")
    assert set(running["status"]) == {"RUNNING"}
    cancelled = wait_for_state(ps.cancel(running), "CANCELLED", limit=30)
    assert list(cancelled["status"]) == ["CANCELLED", "CANCELLED"]


@pytest.mark.usefixtures("slurm_cluster")
def test_a_refused_submission_quotes_slurm_and_loses_nothing(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="invalid partition"):
        ps.submit(
            "#!/bin/bash\necho {x}\n",
            "r_{x}",
            ps.ParamSpace(x=[1, 2]),
            use="slurm",
            work_dir=tmp_path,
            resources={"partition": "no-such-partition"},
        )
    jobs = ps.load(tmp_path)  # the folders were written; nothing was submitted
    assert list(jobs["job_name"]) == ["r_1", "r_2"] and set(jobs["status"]) == {"NOT_SUBMITTED"}


# -- Grid Engine ----------------------------------------------------------------------------


@pytest.mark.usefixtures("sge")
def test_grid_engine_submit_status_and_metrics(tmp_path: Path) -> None:
    template = (
        "#!/bin/bash\n#$ -l h_rt=0:05:00\necho 'loss acc' > run.metrics\n"
        "python3 -c 'print({lr} * 10, 1 - {lr})' >> run.metrics\nexit {code}\n"
    )
    space = ps.ParamSpace(lr=[0.1, 0.2], code=0) + ps.ParamSpace(lr=0.3, code=4)
    jobs = ps.wait(ps.submit(template, "g_{lr}", space, use="sge", work_dir=tmp_path), timeout=90)
    assert list(jobs["status"]) == ["COMPLETED", "COMPLETED", "FAILED"]
    assert list(jobs["exit_code"]) == [0, 0, 4]
    metrics = ps.metrics(jobs)
    assert list(metrics["loss"]) == pytest.approx([1.0, 2.0, 3.0])
    assert list(metrics["acc"]) == pytest.approx([0.9, 0.8, 0.7])
    arrays = ps.wait(ps.submit(template, "h_{lr}", space, use="sge", work_dir=tmp_path, array=True), timeout=90)
    assert list(arrays["exit_code"]) == [0, 0, 4]
    assert all(j.split(".")[0] == arrays["job_id"].iloc[0].split(".")[0] for j in arrays["job_id"])


@pytest.mark.usefixtures("sge")
def test_grid_engine_cancel(tmp_path: Path) -> None:
    jobs = ps.submit("#!/bin/bash\nsleep 60\n", "s_{x}", ps.ParamSpace(x=[1]), use="sge", work_dir=tmp_path)
    assert wait_for_state(jobs, "RUNNING")["status"].iloc[0] == "RUNNING"
    cancelled = ps.wait(ps.cancel(jobs), timeout=60)
    # Grid Engine forgets a deleted job at once: the job is CANCELLED while qstat
    # shows it being deleted, then LOST (no exit status), never COMPLETED.
    assert cancelled["status"].iloc[0] in ("CANCELLED", "LOST")
    assert cancelled["exit_code"].isna().iloc[0] or cancelled["exit_code"].iloc[0] != 0
