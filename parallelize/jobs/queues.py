"""Where job scripts run: a batch scheduler (Slurm, Grid Engine, PBS) or local processes.

One interface, two kinds::

    SchedulerQueue("slurm" | "sge" | "pbs")   over parallelize.scheduler: one sbatch/qsub per job,
                                              or one array for all; ONE squeue/qstat per refresh
    LocalQueue(max_running)                   a detached supervisor process runs the scripts,
                                              max_running at a time; state read from files

A job is named by a ``JobRef``, kept in its folder's ``job.json``, so a
sweep can be re-opened after the submitting process is gone.
"""

from __future__ import annotations

import abc
import json
import os
import shlex
import signal
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..scheduler import SCHEDULERS, get_scheduler
from ..scheduler.base import Scheduler, directives
from ..validate import check_int
from .template import JobFiles

__all__ = ["QUEUES", "JobRef", "LocalQueue", "Queue", "SchedulerQueue", "make_queue"]

#: The queues ``use=`` takes.
QUEUES = ("slurm", "sge", "pbs", "local")

# Flags of each dialect that set a job's name, stdout and stderr (short, long).
_OPTION_FLAGS: dict[str, dict[str, tuple[str, ...]]] = {
    "slurm": {"name": ("-J", "--job-name"), "stdout": ("-o", "--output"), "stderr": ("-e", "--error")},
    "sge": {"name": ("-N",), "stdout": ("-o",), "stderr": ("-e",)},
    "pbs": {"name": ("-N",), "stdout": ("-o",), "stderr": ("-e",)},
}
# Flags an array job sets itself, dropped from the directives copied from a template.
_ARRAY_OWN = {
    "slurm": ("-J", "--job-name", "-o", "--output", "-e", "--error", "-a", "--array", "-D", "--chdir"),
    "sge": ("-N", "-o", "-e", "-t", "-cwd", "-wd", "-b", "-shell", "-S", "-j"),
    "pbs": ("-N", "-o", "-e", "-J", "-t", "-j"),
}
# Flags (of those above) that take no value.
_BARE = {"-cwd"}


@dataclass(frozen=True)
class JobRef:
    """How one job is known to its queue.

    Attributes:
        queue: ``"slurm"``, ``"sge"``, ``"pbs"`` or ``"local"``.
        job_id: the id shown in the table (``123``, ``123_4`` for an array element).
        scheduler_job: the scheduler's job id (the array's, for an element).
        index: the element's index (0 for a job that is not an array).
        stdout: the path of the job's stdout file, where known.
        stderr: the path of the job's stderr file, where known.
    """

    queue: str
    job_id: str
    scheduler_job: str
    index: int = 0
    stdout: str = ""
    stderr: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> JobRef:
        return cls(**{k: doc[k] for k in ("queue", "job_id", "scheduler_job", "index", "stdout", "stderr")})


class Queue(abc.ABC):
    """Submits filled job folders, reports their states with one query, cancels them.

    Attributes:
        name: the ``use=`` name.
        submits_together: ``submit`` takes all of a sweep's jobs at once
            (else one job per call, unless they go as one array).
    """

    name: str
    submits_together: bool = False

    @abc.abstractmethod
    def submit(
        self, jobs: Sequence[JobFiles], *, array: bool, resources: Mapping[str, object], sweep_dir: Path
    ) -> list[JobRef]:
        """Submit every job (its ``job.sh`` written already); one ref per job, in order."""

    @abc.abstractmethod
    def states(self, refs: Sequence[JobRef]) -> dict[int, str]:
        """The state of each job the queue still knows, by position in ``refs``, from one query."""

    @abc.abstractmethod
    def cancel(self, refs: Sequence[JobRef]) -> None:
        """Cancel the jobs (those that ended already are no error)."""


def _value(flags: list[str], names: tuple[str, ...]) -> str | None:
    """The value the last of ``names`` is given in ``flags`` (``-o X``, ``-oX``, ``--output=X``), or None."""
    found = None
    for i, flag in enumerate(flags):
        for name in names:
            if flag == name and i + 1 < len(flags):
                found = flags[i + 1]
            elif name.startswith("--") and flag.startswith(name + "="):
                found = flag[len(name) + 1 :]
            elif not name.startswith("--") and len(name) == 2 and flag.startswith(name) and len(flag) > 2:
                found = flag[2:]
    return found


def _without(flags: list[str], names: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for flag in flags:
        if skip:
            skip = False
            continue
        bare = flag.split("=", 1)[0]
        if flag in names:
            skip = flag not in _BARE
            continue
        if bare in names or any(len(n) == 2 and flag.startswith(n) and not flag.startswith("--") for n in names):
            continue
        out.append(flag)
    return out


def _resolve(pattern: str, work_dir: Path, job_id: str, job_name: str) -> str:
    """A stdout/stderr path from a script's own directive, its job id and name filled in."""
    text = pattern
    for token, value in (("%j", job_id), ("%J", job_id), ("%A", job_id), ("%x", job_name), ("%%", "%")):
        text = text.replace(token, value)
    for token, value in (("$JOB_ID", job_id), ("$JOB_NAME", job_name), ("${JOB_ID}", job_id)):
        text = text.replace(token, value)
    path = Path(text)
    return str(path if path.is_absolute() else work_dir / path)


class SchedulerQueue(Queue):
    """Slurm, Grid Engine or PBS, through ``parallelize.scheduler``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.scheduler: Scheduler = get_scheduler(name)
        self.scheduler.available()

    def submit(
        self, jobs: Sequence[JobFiles], *, array: bool, resources: Mapping[str, object], sweep_dir: Path
    ) -> list[JobRef]:
        if array:
            return self._submit_array(jobs, resources, sweep_dir)
        refs = []
        for job in jobs:
            own = directives(job.script, self.scheduler.directive_prefix)
            flags = _OPTION_FLAGS[self.name]
            user_out, user_err = _value(own, flags["stdout"]), _value(own, flags["stderr"])
            stdout = None if user_out else str(job.work_dir / "stdout")
            stderr = None if user_err else str(job.work_dir / "stderr")
            name = None if _value(own, flags["name"]) else job.job_name
            job_id = self.scheduler.submit_job(
                str(job.work_dir / "job.sh"),
                workdir=str(job.work_dir),
                name=name,
                stdout=stdout,
                stderr=stderr,
                resources=resources,
            )
            out_path = stdout or _resolve(user_out or "", job.work_dir, job_id, job.job_name)
            err_path = stderr or _resolve(user_err or "", job.work_dir, job_id, job.job_name)
            refs.append(JobRef(self.name, job_id, job_id, 0, out_path, err_path))
        return refs

    def _submit_array(self, jobs: Sequence[JobFiles], resources: Mapping[str, object], sweep_dir: Path) -> list[JobRef]:
        """All jobs as one array (split where the scheduler's limit is lower); element k runs job k."""
        largest = self.scheduler.max_array_size()
        refs: list[JobRef] = []
        arrays = sweep_dir / ".arrays"
        arrays.mkdir(exist_ok=True)
        own = _without(directives(jobs[0].script, self.scheduler.directive_prefix), _ARRAY_OWN[self.name])
        for start in range(0, len(jobs), largest):
            part = jobs[start : start + largest]
            tag = uuid.uuid4().hex[:8]
            q = shlex.quote
            folders = " ".join(q(str(j.work_dir)) for j in part)
            header = (
                [f"{self.scheduler.directive_prefix} {shlex.join(own)}"]
                if own and self.scheduler.reads_directives
                else []
            )
            lines = [
                "#!/bin/bash",
                *header,
                self.scheduler.script_header(),
                "# parallelize: element k runs job k of this list, in its own folder",
                f"_pz_dirs=({folders})",
                f"_pz_dir=${{_pz_dirs[$(( ${{{self.scheduler.index_variable}}} - {self.scheduler.index_base} ))]}}",
                'cd "$_pz_dir" && exec /bin/bash ./job.sh > stdout 2> stderr',
            ]
            script = arrays / f"array-{tag}.sh"
            script.write_text("\n".join(line for line in lines if line) + "\n")
            script.chmod(0o755)
            flags = [] if self.scheduler.reads_directives else own
            job_id = self.scheduler.submit_array(
                str(script),
                len(part),
                name=part[0].job_name,
                log_dir=str(arrays),
                resources=resources,
                flags=flags,
            )
            for k, job in enumerate(part):
                refs.append(
                    JobRef(
                        self.name,
                        self.scheduler.element_id(job_id, k),
                        job_id,
                        k,
                        str(job.work_dir / "stdout"),
                        str(job.work_dir / "stderr"),
                    )
                )
        return refs

    def states(self, refs: Sequence[JobRef]) -> dict[int, str]:
        if not refs:
            return {}
        found = self.scheduler.status("", sorted({r.scheduler_job for r in refs}))
        out: dict[int, str] = {}
        for i, ref in enumerate(refs):
            element = found.get((ref.scheduler_job, ref.index))
            if element is not None:
                out[i] = element.state
        return out

    def cancel(self, refs: Sequence[JobRef]) -> None:
        targets = [
            self.scheduler.element_id(r.scheduler_job, r.index) if r.job_id != r.scheduler_job else r.job_id
            for r in refs
        ]
        self.scheduler.cancel(targets)


class LocalQueue(Queue):
    """The job scripts as local processes, ``max_running`` at a time, for laptops and tests.

    A supervisor process (``python -m parallelize.jobs.local``), detached from
    this one, runs them: the jobs go on when the submitting process ends, and
    their state is read from files in their folders (``local.pid``,
    ``local.returncode``, ``exit_status``), so no query is needed at all.
    """

    name = "local"
    submits_together = True

    def __init__(self, max_running: int | None = None) -> None:
        check_int("max_running", max_running, minimum=1, allow_none=True, none_means="the CPUs here")
        self.max_running = max_running or os.cpu_count() or 1

    def submit(
        self, jobs: Sequence[JobFiles], *, array: bool, resources: Mapping[str, object], sweep_dir: Path
    ) -> list[JobRef]:
        if resources:
            raise ConfigError(
                f"the local queue takes no scheduler resources, got {dict(resources)!r}; "
                "use='slurm', 'sge' or 'pbs' to pass them"
            )
        queues = sweep_dir / ".local"
        queues.mkdir(exist_ok=True)
        tag = uuid.uuid4().hex[:8]
        refs = [
            JobRef(
                "local", f"local-{tag}-{k}", f"local-{tag}", k, str(j.work_dir / "stdout"), str(j.work_dir / "stderr")
            )
            for k, j in enumerate(jobs)
        ]
        plan = queues / f"{tag}.json"
        doc = {"max_running": self.max_running, "jobs": [str(j.work_dir) for j in jobs]}
        plan.write_text(json.dumps(doc))
        log = open(queues / f"{tag}.log", "ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "parallelize.jobs.local", str(plan)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # goes on after this process ends, and after its Ctrl-C
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            )
        finally:
            log.close()
        (queues / f"{tag}.pid").write_text(str(proc.pid))
        return refs

    def states(self, refs: Sequence[JobRef]) -> dict[int, str]:
        """From each job's files; jobs not started are ``PENDING`` while their supervisor lives."""
        out: dict[int, str] = {}
        alive: dict[str, bool] = {}
        for i, ref in enumerate(refs):
            folder = Path(ref.stdout).parent
            if (folder / "local.returncode").exists():
                code = _read_int(folder / "local.returncode")
                if (folder / "cancelled").exists():
                    out[i] = "CANCELLED"
                else:
                    out[i] = "COMPLETED" if code == 0 else "FAILED"
                continue
            if ref.scheduler_job not in alive:
                sup = _read_int(folder.parent / ".local" / f"{ref.scheduler_job[len('local-') :]}.pid")
                alive[ref.scheduler_job] = sup is not None and _running(sup)
            pid = _read_int(folder / "local.pid")
            if pid is not None and (alive[ref.scheduler_job] or _running(pid)):
                out[i] = "RUNNING"  # until its supervisor has written its return code
            elif (folder / "cancelled").exists():
                out[i] = "CANCELLED"
            elif pid is None and alive[ref.scheduler_job]:
                out[i] = "PENDING"
        return out

    def cancel(self, refs: Sequence[JobRef]) -> None:
        for ref in refs:
            folder = Path(ref.stdout).parent
            if (folder / "local.returncode").exists():
                continue
            (folder / "cancelled").touch()
            pid = _read_int(folder / "local.pid")
            if pid is not None:
                try:
                    os.killpg(pid, signal.SIGTERM)
                except OSError:
                    pass


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    # A zombie (ended, not yet reaped by its parent) has ended.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def make_queue(use: str, max_running: int | None = None) -> Queue:
    """The queue ``use`` names.

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
        BackendUnavailableError: the scheduler's commands are not on the PATH.
    """
    if use == "local":
        return LocalQueue(max_running)
    if use in SCHEDULERS:
        if max_running is not None:
            raise ConfigError(
                f"max_running is for use='local'; on {use}, limit running jobs with the scheduler's own options"
            )
        return SchedulerQueue(use)
    raise ConfigError(f"use={use!r} is not a queue; expected one of {list(QUEUES)}")
