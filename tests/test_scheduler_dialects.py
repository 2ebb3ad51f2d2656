"""The scheduler dialects (Slurm, Grid Engine, PBS Pro / Torque): command lines, ids, status, cancel.

Outputs are parsed from files under ``tests/data``: Grid Engine's were recorded
from the real one-node Grid Engine of ``tests/clusters/sge.sh``; PBS's are
representative samples written from the OpenPBS and Torque sources (no PBS
server is packaged for Debian), each saying so on its first line. Against the
real Grid Engine and Slurm, when they answer here, arrays are submitted,
watched through ``status()`` and cancelled; otherwise those tests skip, saying
how to start them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

from parallelize.errors import BackendUnavailableError, ConfigError, SubmissionError
from parallelize.scheduler import base as base_module
from parallelize.scheduler import get_scheduler
from parallelize.scheduler import pbs as pbs_module
from parallelize.scheduler import sge as sge_module
from parallelize.scheduler.base import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
    FAILED,
    OUT_OF_MEMORY,
    PENDING,
    RUNNING,
    TERMINAL,
    TIMEOUT,
    Element,
    Scheduler,
    parse_indices,
    run,
)
from parallelize.scheduler.pbs import PBS, PBSPro, Torque, detect_flavour
from parallelize.scheduler.sge import GridEngine
from parallelize.scheduler.slurm import Slurm

DATA = Path(__file__).resolve().parent / "data"
CLUSTERS = Path(__file__).resolve().parent / "clusters"


def fixture_text(name: str) -> str:
    """A recorded output, without the leading ``#`` lines that say where it comes from."""
    lines = (DATA / name).read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines)


def states(elements: list[Element]) -> dict[tuple[str, int], tuple[str, str]]:
    return {(e.job_id, e.index): (e.state, e.reason) for e in elements}


# --- parse_indices ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", [3]),
        ("[2-9%2]", list(range(2, 10))),
        ("2-9%2", list(range(2, 10))),
        ("[2-9]", list(range(2, 10))),
        ("1,4-6", [1, 4, 5, 6]),
        ("1-7:2", [1, 3, 5, 7]),
        ("3-6:1", [3, 4, 5, 6]),  # Grid Engine's pending range
        ("1,2", [1, 2]),  # Grid Engine's pending list once some have started
        ("0", [0]),
        ("", []),
        ("  [5]  ", [5]),
    ],
)
def test_parse_indices(text: str, expected: list[int]) -> None:
    assert parse_indices(text) == expected


def test_registry_builds_each_dialect() -> None:
    assert isinstance(get_scheduler("slurm"), Slurm)
    assert isinstance(get_scheduler("sge"), GridEngine)
    assert isinstance(get_scheduler("pbs"), PBS)
    with pytest.raises(ConfigError, match="unknown scheduler 'lsf'"):
        get_scheduler("lsf")


@pytest.mark.parametrize("what", ["submit", "query", "cancel"])
def test_a_missing_command_says_what_cannot_be_done(what: str) -> None:
    with pytest.raises(
        BackendUnavailableError, match=f"'pz-no-such-qsub' is not on the PATH, so this machine cannot {what} jobs"
    ):
        run(["pz-no-such-qsub", "-t", "1-2"], what=what)


def test_log_index_is_the_element_index_by_default() -> None:
    assert Slurm().log_index(4) == 4
    assert PBS(flavour="torque").log_index(4) == 4
    assert GridEngine().log_index(4) == 5


# --- Slurm -----------------------------------------------------------------------------------


def test_slurm_submit_command_line() -> None:
    argv = Slurm().submit_command_line(
        "/s.sh", 4, name="pz-x", log_dir="/logs", resources={"time": "0:10:00", "mem_per_cpu": "1G"}, max_running=2
    )
    # Slurm's flags other than these (such as --no-requeue) are the Slurm dialect's own business.
    assert argv[:2] == ["sbatch", "--parsable"] and argv[-1] == "/s.sh"
    for flag in ("--array=0-3%2", "--job-name=pz-x", "--output=/logs/%A_%a.out", "--error=/logs/%A_%a.err"):
        assert flag in argv
    assert argv[-3:-1] == ["--time=0:10:00", "--mem-per-cpu=1G"]
    unthrottled = Slurm().submit_command_line(
        "/s.sh", 1, name="n", log_dir="/l", resources={"exclusive": True}, max_running=None
    )
    assert "--array=0-0" in unthrottled and "--exclusive" in unthrottled


@pytest.mark.parametrize(("output", "job_id"), [("123\n", "123"), ("123;cluster2\n", "123"), ("\n77\n", "77")])
def test_slurm_parse_job_id(output: str, job_id: str) -> None:
    assert Slurm().parse_job_id(output) == job_id


def test_slurm_parse_status() -> None:
    output = "\n".join(
        [
            "5|0|FAILED|NonZeroExitCode",
            "5|1|COMPLETED|None",
            "7|2-9%2|PENDING|JobArrayTaskLimit",
            "7|0|RUNNING|None",
            "8|[2-9]|PENDING|None",
            "9|3|CANCELLED by 0|None",
            "10|N/A|RUNNING|None",  # not an array
            "",
        ]
    )
    found = states(Slurm().parse_status(output))
    assert found[("5", 0)] == (FAILED, "NonZeroExitCode")
    assert found[("5", 1)] == (COMPLETED, "None")
    assert all(found[("7", i)] == (PENDING, "JobArrayTaskLimit") for i in range(2, 10))
    assert found[("7", 0)] == (RUNNING, "None")
    assert all(found[("8", i)] == (PENDING, "None") for i in range(2, 10))
    assert found[("9", 3)][0] == CANCELLED
    assert found[("10", 0)] == (RUNNING, "None")  # a job that is not an array is its own element 0
    assert len(found) == 2 + 8 + 1 + 8 + 1 + 1


def test_slurm_status_and_cancel_command_lines() -> None:
    slurm = Slurm()
    assert slurm.status_command_line("pz-x", ["5"]) == [
        "squeue",
        "--states=all",
        "--noheader",
        "--name=pz-x",
        "--format=%F|%K|%T|%r",
    ]
    assert slurm.element_id("7", 3) == "7_3"
    assert slurm.cancel_command_line(["7_3", "8"]) == ["scancel", "7_3", "8"]


# --- Grid Engine -----------------------------------------------------------------------------


def test_sge_submit_command_line() -> None:
    argv = GridEngine().submit_command_line(
        "/s.sh", 3, name="pz-x", log_dir="/logs", resources={"h_rt": "0:10:00"}, max_running=2
    )
    assert argv == [
        "qsub",
        "-terse",
        "-t",
        "1-3",
        "-tc",
        "2",
        "-N",
        "pz-x",
        "-V",
        "-cwd",
        "-b",
        "y",
        "-shell",
        "no",
        "-o",
        "/logs/$JOB_ID_$TASK_ID.out",
        "-e",
        "/logs/$JOB_ID_$TASK_ID.err",
        "-l",
        "h_rt=0:10:00",
        "/bin/bash",
        "/s.sh",
    ]
    assert "-tc" not in GridEngine().submit_command_line(
        "/s.sh", 1, name="n", log_dir="/l", resources={}, max_running=None
    )


@pytest.mark.parametrize(
    ("resources", "flags"),
    [
        ({"queue": "all.q"}, ["-q", "all.q"]),
        ({"q": "long.q"}, ["-q", "long.q"]),
        ({"pe": "smp 4"}, ["-pe", "smp", "4"]),
        ({"pe": ("mpi", 16)}, ["-pe", "mpi", "16"]),
        ({"project": "p1", "A": "acct", "priority": -10}, ["-P", "p1", "-A", "acct", "-p", "-10"]),
        ({"h_vmem": "2G", "gpu": True}, ["-l", "h_vmem=2G", "-l", "gpu=true"]),
        ({"-js": 10, "-R": "y", "-notify": True}, ["-js", "10", "-R", "y", "-notify"]),
    ],
)
def test_sge_resources(resources: dict[str, object], flags: list[str]) -> None:
    argv = GridEngine().submit_command_line("/s.sh", 2, name="n", log_dir="/l", resources=resources, max_running=None)
    assert argv[-2 - len(flags) : -2] == flags and argv[-2:] == ["/bin/bash", "/s.sh"]


def test_sge_bad_pe_names_the_form() -> None:
    with pytest.raises(ConfigError, match=r'"smp 4" or \("smp", 4\)'):
        GridEngine().submit_command_line("/s.sh", 2, name="n", log_dir="/l", resources={"pe": 4}, max_running=None)


def test_sge_parse_job_id_recorded() -> None:
    assert GridEngine().parse_job_id(fixture_text("sge/qsub_terse.txt")) == "2"
    assert GridEngine().parse_job_id("6\n") == "6"
    with pytest.raises(SubmissionError, match="qsub -terse printed no job id"):
        GridEngine().parse_job_id("")


def test_sge_parse_status_recorded() -> None:
    # Recorded: job 3 (1-6, -tc 3) with task 1 suspended (qmod -sj), 2 being deleted (qdel),
    # 3 running, 4-6 pending; job 4 held (-h) but for task 4 (qrls); job 5 in error state
    # (its -o folder does not exist); job 2 held; job 6 is not an array.
    found = states(GridEngine().parse_status(fixture_text("sge/qstat_mixed.xml")))
    assert found == {
        ("3", 0): ("SUSPENDED", "suspended"),
        ("3", 1): (CANCELLED, "being deleted"),
        ("3", 2): (RUNNING, ""),
        ("3", 3): (PENDING, ""),
        ("3", 4): (PENDING, ""),
        ("3", 5): (PENDING, ""),
        ("4", 3): (PENDING, ""),
        ("4", 0): (PENDING, "held"),
        ("4", 1): (PENDING, "held"),
        ("4", 2): (PENDING, "held"),
        ("5", 0): (FAILED, "error state"),
        ("5", 1): (FAILED, "error state"),
        ("2", 0): (PENDING, "held"),
        ("2", 1): (PENDING, "held"),
        ("2", 2): (PENDING, "held"),
        ("6", 0): (RUNNING, ""),  # not an array: its own element 0
    }


def test_sge_parse_status_recorded_transferring_and_empty() -> None:
    later = states(GridEngine().parse_status(fixture_text("sge/qstat_mixed_later.xml")))
    assert later[("4", 3)] == (RUNNING, "being transferred")  # state "t"
    assert ("3", 1) not in later  # the deleted task is gone
    assert GridEngine().parse_status(fixture_text("sge/qstat_empty.xml")) == []
    assert GridEngine().parse_status("") == []
    assert GridEngine().parse_status("error: commlib error: got select error (Connection refused)") == []


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("qw", PENDING),
        ("hqw", PENDING),
        ("hRwq", PENDING),
        ("r", RUNNING),
        ("t", RUNNING),
        ("Rr", RUNNING),
        ("s", "SUSPENDED"),
        ("S", "SUSPENDED"),
        ("T", "SUSPENDED"),
        ("dr", CANCELLED),
        ("dt", CANCELLED),
        ("dqw", CANCELLED),
        ("Eqw", FAILED),
        ("z", COMPLETED),
    ],
)
def test_sge_state_codes(code: str, state: str) -> None:
    assert sge_module._state(code)[0] == state
    assert state in ACTIVE | TERMINAL


def test_sge_status_cancel_and_log_names() -> None:
    sge = GridEngine()
    argv = sge.status_command_line("pz-x", ["3"])
    assert argv[:3] == ["qstat", "-xml", "-u"] and len(argv) == 4
    assert sge.index_variable == "SGE_TASK_ID" and sge.index_base == 1
    assert sge.element_id("3", 0) == "3.1"
    assert sge.log_index(0) == 1
    assert sge.cancel_command_line(["3.1", "4"]) == ["qdel", "3.1", "4"]
    assert sge.script_header() == ""


def test_sge_max_array_size(monkeypatch: pytest.MonkeyPatch) -> None:
    def answers(text: str) -> Callable[..., str]:
        return lambda *args, **kwargs: text

    monkeypatch.setattr(sge_module, "run", answers("max_aj_instances 2000\nmax_aj_tasks 500\n"))
    assert GridEngine().max_array_size() == 500
    monkeypatch.setattr(sge_module, "run", answers("max_aj_tasks 0\n"))
    assert GridEngine().max_array_size() == sge_module.UNLIMITED_ARRAY_TASKS

    def fails(*args: object, **kwargs: object) -> str:
        raise OSError("no qconf")

    monkeypatch.setattr(sge_module, "run", fails)
    assert GridEngine().max_array_size() == sge_module.DEFAULT_MAX_ARRAY_TASKS


# --- PBS -------------------------------------------------------------------------------------


def test_pbs_flavours() -> None:
    assert type(PBS(flavour="torque")) is Torque
    assert type(PBS(flavour="pro")) is PBSPro
    assert isinstance(PBS(flavour="torque"), PBS)
    assert PBS(flavour="torque").index_variable == "PBS_ARRAYID"
    assert PBS(flavour="pro").index_variable == "PBS_ARRAY_INDEX"
    assert PBS(flavour="pro").index_base == PBS(flavour="torque").index_base == 0
    assert repr(Torque()) == "<Torque flavour='torque'>"
    with pytest.raises(ConfigError, match=r"unknown PBS flavour 'lsf'; expected one of \['pro', 'torque'\]"):
        PBS(flavour="lsf")
    with pytest.raises(ConfigError, match="PBSPro is the 'pro' flavour, not 'torque'"):
        PBSPro(flavour="torque")


class _Done:
    def __init__(self, stdout: str = "", stderr: str = "", returncode: int = 0) -> None:
        self.stdout, self.stderr, self.returncode = stdout, stderr, returncode


@pytest.mark.parametrize(
    ("answer", "flavour"),
    [
        (_Done(stdout=fixture_text("pbs/pro_version_stdout.txt")), "pro"),
        (_Done(stderr=fixture_text("pbs/torque_version_stderr.txt")), "torque"),
        # Grid Engine's qstat, also called qstat, does not know --version:
        (_Done(stderr='error: ERROR! invalid option argument "--version"\nSGE 8.1.9\n', returncode=1), "pro"),
        (FileNotFoundError("qstat"), "pro"),
        (subprocess.TimeoutExpired(["qstat"], 10), "pro"),
    ],
)
def test_pbs_detects_its_flavour(monkeypatch: pytest.MonkeyPatch, answer: object, flavour: str) -> None:
    def fake_run(*args: object, **kwargs: object) -> object:
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(pbs_module.subprocess, "run", fake_run)
    assert detect_flavour() == flavour
    assert PBS().flavour == flavour


def test_pbs_pro_submit_command_line() -> None:
    argv = PBS(flavour="pro").submit_command_line(
        "/s.sh", 10, name="pz-x", log_dir="/logs", resources={"walltime": "0:10:00"}, max_running=3
    )
    assert argv == [
        "qsub",
        "-J",
        "0-9%3",
        "-N",
        "pz-x",
        "-V",
        "-v",
        "PARALLELIZE_LOG_DIR=/logs",
        "-j",
        "oe",
        "-o",
        "/logs/",
        "-l",
        "walltime=0:10:00",
        "/s.sh",
    ]


def test_pbs_torque_submit_command_line() -> None:
    argv = PBS(flavour="torque").submit_command_line(
        "/s.sh", 10, name="pz-x", log_dir="/logs/", resources={"nodes": "1:ppn=2"}, max_running=3
    )
    assert argv[:3] == ["qsub", "-t", "0-9%3"]
    assert argv[3:13] == ["-N", "pz-x", "-V", "-v", "PARALLELIZE_LOG_DIR=/logs/", "-j", "oe", "-o", "/logs/", "-l"]
    assert argv[13:] == ["nodes=1:ppn=2", "/s.sh"]


def test_pbs_single_element_arrays() -> None:
    # PBS Pro refuses "0-0" (chk_Jrange wants end > start); "0-1:2" is index 0 alone.
    pro = PBS(flavour="pro").submit_command_line("/s.sh", 1, name="n", log_dir="/l", resources={}, max_running=None)
    assert pro[1:3] == ["-J", "0-1:2"]
    torque = PBS(flavour="torque").submit_command_line(
        "/s.sh", 1, name="n", log_dir="/l", resources={}, max_running=None
    )
    assert torque[1:3] == ["-t", "0"]
    assert parse_indices("0-1:2") == [0]


@pytest.mark.parametrize(
    ("resources", "flags"),
    [
        ({"queue": "workq"}, ["-q", "workq"]),
        ({"account": "a1", "p": 5}, ["-A", "a1", "-p", "5"]),
        (
            {"select": "2:ncpus=4:mem=8gb", "place": "scatter"},
            ["-l", "select=2:ncpus=4:mem=8gb", "-l", "place=scatter"],
        ),
        ({"-W": "group_list=g1", "-r": "y"}, ["-W", "group_list=g1", "-r", "y"]),
        ({"gpu_host": True}, ["-l", "gpu_host=true"]),
    ],
)
def test_pbs_resources(resources: dict[str, object], flags: list[str]) -> None:
    for flavour in ("pro", "torque"):
        argv = PBS(flavour=flavour).submit_command_line(
            "/s.sh", 2, name="n", log_dir="/l", resources=resources, max_running=None
        )
        assert argv[-1 - len(flags) : -1] == flags


def test_pbs_project_is_pro_only() -> None:
    argv = PBS(flavour="pro").submit_command_line(
        "/s", 2, name="n", log_dir="/l", resources={"project": "p"}, max_running=None
    )
    assert argv[-3:-1] == ["-P", "p"]
    with pytest.raises(ConfigError, match="Torque has no project option"):
        PBS(flavour="torque").submit_command_line(
            "/s", 2, name="n", log_dir="/l", resources={"project": "p"}, max_running=None
        )


def test_pbs_log_folder_that_qsub_v_would_split_is_refused() -> None:
    with pytest.raises(ConfigError, match="without commas or quotes"):
        PBS(flavour="pro").submit_command_line("/s", 2, name="n", log_dir="/a,b", resources={}, max_running=None)


def test_pbs_parse_job_id() -> None:
    assert PBS(flavour="pro").parse_job_id(fixture_text("pbs/pro_qsub.txt")) == "1234[].pbs01"
    assert PBS(flavour="torque").parse_job_id(fixture_text("pbs/torque_qsub.txt")) == "567[].torque01.cluster.local"
    assert PBS(flavour="pro").parse_job_id("Notice: maintenance on Friday\n1234[].pbs01\n") == "1234[].pbs01"
    assert PBS(flavour="pro").parse_job_id("1234[]\n") == "1234[]"
    with pytest.raises(SubmissionError, match="qsub printed no array job id: '1235.pbs01'"):
        PBS(flavour="pro").parse_job_id("1235.pbs01\n")  # not an array


def test_pbs_pro_parse_status_sample() -> None:
    found = states(PBS(flavour="pro").parse_status(fixture_text("pbs/pro_qstat_f.txt")))
    job = "1234[].pbs01"
    assert found == {
        (job, 0): (COMPLETED, ""),
        (job, 1): (FAILED, "exit status 3"),
        (job, 2): (COMPLETED, ""),  # shown from the parent: "Subjob finished"
        (job, 3): (RUNNING, ""),
        (job, 4): (CANCELLED, "terminated"),  # substate 91, though Exit_status is 271
        (job, 5): (TIMEOUT, "exit status -29 (walltime)"),
        (job, 6): (OUT_OF_MEMORY, "exit status -27 (memory limit)"),
        (job, 7): (RUNNING, "exiting"),
        (job, 8): (PENDING, ""),
        (job, 9): (PENDING, ""),
        # The parent's Exit_status 1 is the array's summary, not element 0's:
        ("1238[].pbs01", 0): (COMPLETED, ""),
        ("1238[].pbs01", 1): (FAILED, "exit status 2"),
        ("1240[].pbs01", 0): (PENDING, ""),
        ("1240[].pbs01", 1): (PENDING, ""),
        ("1250.pbs01", 0): (RUNNING, ""),  # not an array: its own element 0
    }


def test_pbs_torque_parse_status_sample() -> None:
    found = states(PBS(flavour="torque").parse_status(fixture_text("pbs/torque_qstat_f.txt")))
    job = "567[].torque01.cluster.local"
    assert found == {
        (job, 0): (COMPLETED, ""),
        (job, 1): (FAILED, "exit status 2"),
        (job, 2): (TIMEOUT, "exit status -11 (walltime)"),
        (job, 3): (RUNNING, ""),
        (job, 4): (PENDING, ""),
        (job, 5): (PENDING, "held"),
        (job, 6): (RUNNING, "exiting"),
        (job, 7): (FAILED, "exit status 271 (signal 15)"),
        (job, 8): (OUT_OF_MEMORY, "exit status -10 (memory limit)"),
    }


def test_pbs_status_matches_ids_by_number(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: object) -> str:
        seen.append(list(argv))
        return fixture_text("pbs/pro_qstat_f.txt")

    monkeypatch.setattr(pbs_module, "run", fake_run)
    pro = PBS(flavour="pro")
    # Asked under a longer spelling of the server than qstat prints: still found, under the asked id.
    found = pro.status("pz-0a1b2c3d4e", ["1234[].pbs01.example.org", "1240[].pbs01"])
    assert seen == [["qstat", "-f", "-w", "-t", "-x", "1234[].pbs01.example.org", "1240[].pbs01"]]
    assert found[("1234[].pbs01.example.org", 5)].state == TIMEOUT
    assert found[("1234[].pbs01.example.org", 5)].job_id == "1234[].pbs01.example.org"
    assert {job for job, _ in found} == {"1234[].pbs01.example.org", "1240[].pbs01"}
    assert pro.status("pz", []) == {}


def test_pbs_status_and_cancel_command_lines() -> None:
    torque = PBS(flavour="torque")
    assert torque.status_command_line("n", ["567[].t"]) == ["qstat", "-f", "-1", "-t", "567[].t"]
    assert PBS(flavour="pro").element_id("1234[].pbs01", 5) == "1234[5].pbs01"
    assert torque.element_id("567[].torque01.cluster.local", 0) == "567[0].torque01.cluster.local"
    assert torque.cancel_command_line(["567[0].t", "568[].t"]) == ["qdel", "567[0].t", "568[].t"]


def test_pbs_max_array_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pbs_module, "run", lambda *a, **k: fixture_text("pbs/pro_qstat_Bf.txt"))
    assert PBS(flavour="pro").max_array_size() == 5000

    def fails(*args: object, **kwargs: object) -> str:
        raise OSError("no qstat")

    monkeypatch.setattr(pbs_module, "run", fails)
    assert PBS(flavour="pro").max_array_size() == pbs_module.PRO_MAX_ARRAY_SIZE
    assert PBS(flavour="torque").max_array_size() == pbs_module.UNLIMITED_ARRAY_SIZE


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize(
    ("flavour", "job_id", "env"),
    [
        ("pro", "1234[].pbs01", {"PBS_JOBID": "1234[5].pbs01", "PBS_ARRAY_INDEX": "5"}),
        ("torque", "567[].torque01.cluster.local", {"PBS_JOBID": "567[5].torque01.cluster.local", "PBS_ARRAYID": "5"}),
    ],
)
def test_pbs_header_runs_where_submitted_and_writes_the_logs(
    tmp_path: Path, flavour: str, job_id: str, env: dict[str, str]
) -> None:
    # The header is run by bash as a job would run it, with the variables PBS sets.
    pbs = PBS(flavour=flavour)
    logs, workdir = tmp_path / "logs", tmp_path / "submitted here"
    logs.mkdir()
    workdir.mkdir()
    script = tmp_path / "job.sh"
    script.write_text(f'#!/bin/bash\n{pbs.script_header()}\necho "out $PWD"\necho err >&2\n')
    environ = {"PATH": os.environ["PATH"], "PBS_O_WORKDIR": str(workdir), "PARALLELIZE_LOG_DIR": str(logs), **env}
    done = subprocess.run(["bash", str(script)], env=environ, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""
    index = pbs.log_index(5)
    assert (logs / f"{job_id}_{index}.out").read_text() == f"out {workdir}\n"
    assert (logs / f"{job_id}_{index}.err").read_text() == "err\n"


# --- the real schedulers ---------------------------------------------------------------------


def _answers(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None


@pytest.fixture(scope="module")
def grid_engine() -> GridEngine:
    from cluster_daemons import ensure_sge  # tests/cluster_daemons.py

    reason = ensure_sge()
    if reason is not None:
        pytest.skip(reason)
    sge = GridEngine()
    done = _answers(sge.status_command_line("", []))
    if done is None or done.returncode != 0 or not done.stdout.lstrip().startswith("<?xml"):
        pytest.skip(f"Grid Engine does not answer qstat here: {done.stderr[-300:] if done else 'timed out'}")
    return sge


@pytest.fixture(scope="module")
def slurm() -> Slurm:
    if shutil.which("sbatch") is None:
        pytest.skip("Slurm is not installed here: tests/clusters/slurm.sh install, then start")
    done = _answers(["sinfo", "-h"])
    if done is None or done.returncode != 0:
        if os.geteuid() != 0:
            pytest.skip("Slurm is not running here, and starting it needs root: tests/clusters/slurm.sh start")
        started = _answers([str(CLUSTERS / "slurm.sh"), "start"])
        if started is None or started.returncode != 0:
            pytest.skip(f"tests/clusters/slurm.sh start failed: {started.stderr[-300:] if started else 'timed out'}")
    return Slurm()


def _element_script(tmp_path: Path, scheduler: Scheduler, body: str) -> str:
    script = tmp_path / "element.sh"
    index = f"$(( ${{{scheduler.index_variable}}} - {scheduler.index_base} ))"
    script.write_text(f"#!/bin/bash\n{scheduler.script_header()}\nindex={index}\n{body}\n")
    script.chmod(0o755)
    return str(script)


def _wait(what: str, seconds: float, done: Callable[[], bool]) -> float:
    """Poll ``done`` until it holds; the seconds it took. Fails (never hangs) after ``seconds``."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > seconds:
            pytest.fail(f"{what}: not within {seconds:g} s")
        time.sleep(0.25)
    return time.monotonic() - start


def _three_elements_run(scheduler: Scheduler, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Submit a 3-element array that writes its index, wait for it through status() and the files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PZ_DIALECT_TEST", "exported")
    logs = tmp_path / "logs"
    logs.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    # What the element saw: its index, the exported variable, where it ran, its shell, and
    # whether that was a login shell (one reads the user's profile before the script).
    body = (
        "login=$(shopt -q login_shell && echo login || echo no-login)\n"
        f'printf "%s %s %s %s %s\\n" "${scheduler.index_variable}" "$PZ_DIALECT_TEST" "$PWD" "${{BASH_VERSION:+bash}}"'
        f' "$login" > {out}/$index.tmp && mv {out}/$index.tmp {out}/$index\n'
        'echo "element $index says hello"\necho "element $index to stderr" >&2'
    )
    name = f"pz-dialect-{os.getpid()}"
    job_id = scheduler.submit_array(
        _element_script(tmp_path, scheduler, body), 3, name=name, log_dir=str(logs), resources={}, max_running=None
    )
    seen: dict[int, set[str]] = {0: set(), 1: set(), 2: set()}

    def finished() -> bool:
        active = False
        for (job, index), element in scheduler.status(name, [job_id]).items():
            assert job == job_id and index in seen, (job, index)
            seen[index].add(element.state)
            active = active or element.state in ACTIVE
        return all((out / str(i)).exists() for i in range(3)) and not active

    try:
        _wait(f"{scheduler.name} array {job_id}", 60, finished)
    finally:
        scheduler.cancel([job_id])
    for i in range(3):
        task, env, cwd, shell, login = (out / str(i)).read_text().split()
        assert int(task) - scheduler.index_base == i
        assert (env, cwd, shell, login) == ("exported", str(tmp_path), "bash", "no-login")
        stem = logs / f"{job_id}_{scheduler.log_index(i)}"
        assert Path(f"{stem}.out").read_text() == f"element {i} says hello\n"
        assert Path(f"{stem}.err").read_text() == f"element {i} to stderr\n"
        assert not seen[i] - (ACTIVE | {COMPLETED}), seen


def _cancel_run(scheduler: Scheduler, tmp_path: Path) -> None:
    """An array of sleeps: one element cancelled leaves the others; the job cancelled leaves nothing."""
    logs = tmp_path / "logs"
    logs.mkdir()
    name = f"pz-dialect-cancel-{os.getpid()}"
    script = _element_script(tmp_path, scheduler, "sleep 60")
    job_id = scheduler.submit_array(script, 3, name=name, log_dir=str(logs), resources={}, max_running=None)
    try:

        def now() -> dict[int, str]:
            return {index: e.state for (_, index), e in scheduler.status(name, [job_id]).items()}

        _wait("element 0 to start", 30, lambda: now().get(0) == RUNNING)
        scheduler.cancel([scheduler.element_id(job_id, 1)])
        _wait("element 1 to go", 30, lambda: now().get(1) in (None, CANCELLED))
        assert now().get(0) in ACTIVE and now().get(2) in ACTIVE
        scheduler.cancel([job_id])
        _wait("the array to go", 30, lambda: all(s not in ACTIVE for s in now().values()))
    finally:
        scheduler.cancel([job_id])


@pytest.mark.timeout(120)
def test_grid_engine_runs_an_array(grid_engine: GridEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _three_elements_run(grid_engine, tmp_path, monkeypatch)


@pytest.mark.timeout(120)
def test_grid_engine_cancels_an_element_then_the_array(grid_engine: GridEngine, tmp_path: Path) -> None:
    _cancel_run(grid_engine, tmp_path)


@pytest.mark.timeout(120)
def test_grid_engine_refusal_is_quoted(grid_engine: GridEngine, tmp_path: Path) -> None:
    script = _element_script(tmp_path, grid_engine, "true")
    with pytest.raises(SubmissionError, match="the scheduler refused to submit: qsub said: .*no-such-queue"):
        grid_engine.submit_array(
            script, 2, name="pz-refused", log_dir=str(tmp_path), resources={"queue": "no-such-queue"}
        )


@pytest.mark.timeout(120)
def test_slurm_runs_an_array(slurm: Slurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _three_elements_run(slurm, tmp_path, monkeypatch)


@pytest.mark.timeout(120)
def test_slurm_cancels_an_element_then_the_array(slurm: Slurm, tmp_path: Path) -> None:
    _cancel_run(slurm, tmp_path)


# -- single job scripts (parallelize.jobs): their own directives kept -------------------------


def test_directives_are_read_from_the_top_of_a_script_only() -> None:
    from parallelize.scheduler.base import directives

    script = "#!/bin/bash\n#SBATCH --time=10 -J x  # a comment\n\n# note\n#SBATCH --mem=1G\necho hi\n#SBATCH --late\n"
    assert directives(script, "#SBATCH") == ["--time=10", "-J", "x", "--mem=1G"]
    assert directives("#!/bin/bash\n#$ -l h_rt=1:00 -q all.q\nrun\n", "#$") == ["-l", "h_rt=1:00", "-q", "all.q"]
    assert directives("#!/bin/bash\n#SBATCHX --no\n", "#SBATCH") == []


def test_slurm_job_command_line_leaves_the_scripts_own_options_to_it() -> None:
    argv = Slurm().job_command_line(
        "/w/job.sh", workdir="/w", name="j1", stdout="/w/stdout", stderr=None, resources={"time": "1:00"}
    )
    assert argv == [
        "sbatch",
        "--parsable",
        "--chdir=/w",
        "--job-name=j1",
        "--output=/w/stdout",
        "--time=1:00",
        "/w/job.sh",
    ]


def test_sge_job_command_line_passes_the_scripts_directives_as_flags(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#$ -l h_rt=0:05:00\n#$ -pe smp 2\necho\n")
    argv = GridEngine().job_command_line(
        str(script), workdir="/w", name="j1", stdout="/w/stdout", stderr="/w/stderr", resources={"mem_free": "1G"}
    )
    assert argv[:9] == ["qsub", "-terse", "-V", "-wd", "/w", "-b", "y", "-shell", "no"]
    assert argv[9:] == [
        "-N",
        "j1",
        "-o",
        "/w/stdout",
        "-e",
        "/w/stderr",
        "-l",
        "mem_free=1G",
        "-l",
        "h_rt=0:05:00",
        "-pe",
        "smp",
        "2",
        "/bin/bash",
        str(script),
    ]


def test_pbs_single_job_command_line_and_id() -> None:
    argv = PBS(flavour="pro").job_command_line(
        "/w/job.sh", workdir="/w", name="j1", stdout=None, stderr="/w/stderr", resources={"walltime": "1:00:00"}
    )
    assert argv == ["qsub", "-V", "-N", "j1", "-e", "/w/stderr", "-l", "walltime=1:00:00", "/w/job.sh"]
    assert PBS(flavour="pro").parse_single_job_id("Notice: maintenance\n1250.pbs01\n") == "1250.pbs01"
    assert PBS(flavour="torque").parse_single_job_id("568.torque01.cluster.local\n") == "568.torque01.cluster.local"
    with pytest.raises(SubmissionError, match="qsub printed no job id"):
        PBS(flavour="pro").parse_single_job_id("qsub: Unknown queue\n")


def test_a_pbs_sweep_of_job_scripts_against_recorded_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """parallelize.jobs on PBS, the server's answers replayed (NOT a live server: none is packaged here)."""
    import parallelize.jobs as ps
    from parallelize.jobs import queues

    calls: list[list[str]] = []
    answers = iter(["1250.pbs01\n", "1251.pbs01\n"])

    def fake_run(argv: list[str], *, what: str, timeout: float = 60.0, check: bool = True) -> str:
        calls.append(list(argv))
        if argv[0] == "qsub":
            return next(answers)
        if argv[0] == "qstat":
            return fixture_text("pbs/pro_qstat_f.txt")  # 1250.pbs01 RUNNING; 1251 unknown: gone
        return ""

    monkeypatch.setattr(pbs_module, "run", fake_run)
    monkeypatch.setattr(base_module, "run", fake_run)
    monkeypatch.setattr(pbs_module, "detect_flavour", lambda timeout=10.0: "pro")
    monkeypatch.setattr(queues.SchedulerQueue, "__init__", _pbs_queue_init)
    jobs = ps.submit(
        "#!/bin/bash\n#PBS -l walltime=0:10:00\necho {x}\n",
        "p_{x}",
        ps.ParamSpace(x=[1, 2]),
        use="pbs",
        work_dir=tmp_path,
    )
    submits = [c for c in calls if c[0] == "qsub"]
    assert [c[-1] for c in submits] == [str(tmp_path / "p_1" / "job.sh"), str(tmp_path / "p_2" / "job.sh")]
    assert ["-N", "p_1", "-o", str(tmp_path / "p_1" / "stdout")] == submits[0][2:6]
    assert list(jobs["job_id"]) == ["1250.pbs01", "1251.pbs01"]
    assert len([c for c in calls if c[0] == "qstat"]) == 1  # one query for the whole sweep
    (tmp_path / "p_2" / "exit_status").write_text("0\n")  # as the job's trap writes it
    assert list(jobs["status"]) == ["RUNNING", "LOST"]
    assert list(ps.status(jobs)["status"]) == ["RUNNING", "COMPLETED"]


def _pbs_queue_init(self: object, name: str) -> None:
    self.name = name  # type: ignore[attr-defined]
    self.scheduler = PBS(flavour="pro")  # type: ignore[attr-defined]
