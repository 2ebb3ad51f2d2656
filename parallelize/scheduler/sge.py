"""Grid Engine's dialect (SGE 6.2+, Son of Grid Engine 8): ``qsub -terse -t``, one ``qstat -xml``, ``qdel``.

Grid Engine counts array tasks from 1 (``qsub -t 0-3`` is refused: ``0 is an
invalid task id``), so ``GridEngine.index_base`` is 1. Everything this
module hands back is 0-based as elsewhere (element ``k``); the scheduler's own
number, ``k + 1``, is what the job sees in ``$SGE_TASK_ID``, what ``qdel ID.TASK``
takes, and what names the element's logs: ``-o`` can only name a file with the
pseudo-variables ``$JOB_ID`` and ``$TASK_ID``, so element ``k`` of job ``J``
writes ``{log_dir}/{J}_{k + 1}.out`` and ``.err`` (``GridEngine.log_index``)::

    qsub -terse -t 1-N [-tc M] -N NAME -V -cwd -b y -shell no
         -o '{log_dir}/$JOB_ID_$TASK_ID.out' -e '{log_dir}/$JOB_ID_$TASK_ID.err'
         [resources] /bin/bash SCRIPT             # prints "ID.1-N:1"
    qstat -xml -u USER                            # every queued, running, held or failed task
    qdel ID.TASK ...   or   qdel ID               # one element, or the whole array

``-V`` exports the submitter's environment; ``-cwd`` runs the job where it was
submitted (as Slurm does); ``-tc M`` keeps at most ``M`` tasks running.

The script runs as ``/bin/bash SCRIPT``, a command (``-b y -shell no``), not as a
job script: a queue's default ``shell_start_mode posix_compliant`` runs a job
script with the queue's ``shell`` (``/bin/sh``), ignoring its ``#!``, and ``-S
/bin/bash`` starts bash as a *login* shell (``bash`` is in the default
``login_shells``), which reads the user's profile before every task and may
change the exported ``PATH``. Measured here: the profile's ``pyenv init`` waited
60 s on a lock that a cancelled task had left, in every later task. Slurm runs
no login shell either. The script is therefore read where it lies (on the
shared file system), not copied into Grid Engine's spool.

Resources (a dict) become flags:

============================  ==================================================
key                           flag
============================  ==================================================
``queue`` or ``q``            ``-q VALUE``
``pe``                        ``-pe NAME SLOTS``, from ``"smp 4"`` or ``("smp", 4)``
``project`` or ``P``          ``-P VALUE``
``account`` or ``A``          ``-A VALUE``
``priority`` or ``p``         ``-p VALUE``
a key starting with ``-``     as it is: ``{"-js": 10}`` -> ``-js 10``, ``True`` -> the bare flag
anything else                 ``-l KEY=VALUE`` (``True`` -> ``KEY=true``): ``h_rt``, ``h_vmem``...
============================  ==================================================

Status: ``qstat -xml`` lists running tasks one by one and pending ones as
ranges (``4-6:1``) or lists (``3,4``). A task that ended leaves ``qstat`` within
about a second here, and its exit status reaches ``qacct`` only after a flush of
about 15 s, so an ended task is simply absent. State codes, by precedence:

=========================  ============  ========================================
``qstat`` state            state         note
=========================  ============  ========================================
``d...`` (dr, dt, dqw)     CANCELLED     being deleted (``qdel``)
``E...`` (Eqw)             FAILED        error state; stays queued until ``qdel``
``s``, ``S``, ``T``        SUSPENDED     by a user, its queue, or a load threshold
``r``, ``t``, ``Rr``       RUNNING       ``t``: being transferred to its host
``qw``, ``hqw``, ``Rq``    PENDING       ``h``: held
``z``                      COMPLETED     only with ``qstat -s z``, not asked here
=========================  ============  ========================================
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Mapping, Sequence

from ..errors import ConfigError, SubmissionError
from .base import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    Element,
    Scheduler,
    current_user,
    directives,
    parse_indices,
    run,
)

__all__ = ["GridEngine"]

# The default of the global configuration's max_aj_tasks (sge_conf(5)); 0 there means no limit.
DEFAULT_MAX_ARRAY_TASKS = 75000
# What "no limit" is taken as: far above any array this library submits at once.
UNLIMITED_ARRAY_TASKS = 1_000_000

# Resource keys that are qsub options of their own rather than -l requests.
_OPTIONS = {
    "queue": "-q",
    "q": "-q",
    "project": "-P",
    "P": "-P",
    "account": "-A",
    "A": "-A",
    "priority": "-p",
    "p": "-p",
}


def _resource_flags(resources: Mapping[str, object]) -> list[str]:
    argv: list[str] = []
    for key, value in resources.items():
        if key in _OPTIONS:
            argv += [_OPTIONS[key], str(value)]
        elif key == "pe":
            parts: list[object] = []
            if isinstance(value, str):
                parts = list(value.split())
            elif isinstance(value, (tuple, list)):
                parts = list(value)
            if len(parts) != 2:
                raise ConfigError(
                    f"resources['pe'] must name a parallel environment and a slot count, "
                    f'as "smp 4" or ("smp", 4); got {value!r}'
                )
            argv += ["-pe", str(parts[0]), str(parts[1])]
        elif key.startswith("-"):
            argv += [key] if value is True else [key, str(value)]
        else:
            argv += ["-l", f"{key}={'true' if value is True else value}"]
    return argv


def _state(code: str) -> tuple[str, str]:
    """(state, reason) for a qstat state code such as ``qw``, ``hqw``, ``r``, ``dr``, ``Eqw``."""
    if "d" in code:
        return CANCELLED, "being deleted"
    if "E" in code:
        return FAILED, "error state"
    if any(c in code for c in "sST"):
        return "SUSPENDED", "suspended"
    if "r" in code or "t" in code:
        return RUNNING, "being transferred" if "t" in code else ("restarted" if "R" in code else "")
    if "z" in code:
        return COMPLETED, "finished (zombie)"
    # qw, hqw, Rq, and anything unknown that is still in the queue: it may yet run.
    return PENDING, "held" if "h" in code else ("" if code in ("qw", "") else code)


class GridEngine(Scheduler):
    """Grid Engine: ``qsub -t 1-N`` arrays with a ``-tc`` throttle, ``qstat -xml`` of the user's jobs."""

    name = "sge"
    submit_command = "qsub"
    index_variable = "SGE_TASK_ID"
    index_base = 1
    directive_prefix = "#$"
    reads_directives = False  # the script runs as bash's argument (-b y): its #$ lines become flags

    def __init__(self) -> None:
        self._max_array: int | None = None

    def max_array_size(self) -> int:
        """The global configuration's ``max_aj_tasks`` (75000 by default), read once from ``qconf``."""
        if self._max_array is None:
            size = DEFAULT_MAX_ARRAY_TASKS
            try:
                for line in run(["qconf", "-sconf"], what="query", check=False).splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == "max_aj_tasks":
                        size = int(parts[1]) or UNLIMITED_ARRAY_TASKS
            except Exception:  # noqa: BLE001 - the documented default is a safe guess
                pass
            self._max_array = max(size, 1)
        return self._max_array

    def submit_command_line(
        self,
        script: str,
        count: int,
        *,
        name: str,
        log_dir: str,
        resources: Mapping[str, object],
        max_running: int | None,
        flags: Sequence[str] = (),
    ) -> list[str]:
        # $JOB_ID and $TASK_ID are qsub's pseudo-variables, expanded by Grid Engine
        # (no shell sees this argv); "$JOB_ID_" is not read as a variable of its own.
        argv = ["qsub", "-terse", "-t", f"1-{count}"]
        if max_running:
            argv += ["-tc", str(max_running)]
        argv += ["-N", name, "-V", "-cwd", "-b", "y", "-shell", "no"]
        argv += ["-o", f"{log_dir}/$JOB_ID_$TASK_ID.out", "-e", f"{log_dir}/$JOB_ID_$TASK_ID.err"]
        # The script as bash's argument, not as a job script: no login shell (see above).
        return [*argv, *_resource_flags(resources), *flags, "/bin/bash", script]

    def job_command_line(
        self,
        script: str,
        *,
        workdir: str,
        name: str | None,
        stdout: str | None,
        stderr: str | None,
        resources: Mapping[str, object],
    ) -> list[str]:
        argv = ["qsub", "-terse", "-V", "-wd", workdir, "-b", "y", "-shell", "no"]
        argv += ["-N", name] if name is not None else []
        argv += ["-o", stdout] if stdout is not None else []
        argv += ["-e", stderr] if stderr is not None else []
        with open(script, encoding="utf-8", errors="replace") as f:
            own = directives(f.read(), self.directive_prefix)  # as bash's argument, qsub would not read them
        return [*argv, *_resource_flags(resources), *own, "/bin/bash", script]

    def parse_job_id(self, output: str) -> str:
        # -terse prints "ID.1-N:1" for an array, "ID" for a single job.
        lines = output.split()
        if not lines or not lines[-1].split(".", 1)[0].isdigit():
            raise SubmissionError(f"qsub -terse printed no job id: {output.strip()[-200:]!r}", ["qsub"], output)
        return lines[-1].split(".", 1)[0]

    def status_command_line(self, name: str, job_ids: Sequence[str]) -> list[str]:
        # qstat has no filter by job name in its list form (-j is the long, per-job
        # form): all of the user's jobs, kept to job_ids by status().
        return ["qstat", "-xml", "-u", current_user()]

    def parse_status(self, output: str) -> list[Element]:
        if not output.strip():
            return []
        try:
            root = ET.fromstring(output)
        except ET.ParseError:
            return []
        out: list[Element] = []
        for job in root.iter("job_list"):
            job_id = (job.findtext("JB_job_number") or "").strip()
            tasks = (job.findtext("tasks") or "").strip()
            if not job_id:
                continue
            state, reason = _state((job.findtext("state") or "").strip())
            for task in parse_indices(tasks) if tasks else [self.index_base]:  # not an array: its element 0
                out.append(Element(job_id, task - self.index_base, state, reason))
        return out

    def element_id(self, job_id: str, index: int) -> str:
        """``ID.TASK``, the task being ``index + 1``; ``qdel`` takes several in one call."""
        return f"{job_id}.{index + self.index_base}"

    def log_index(self, index: int) -> int:
        """``index + 1``: logs are named by ``$TASK_ID``, Grid Engine's 1-based count."""
        return index + self.index_base

    def cancel_command_line(self, targets: Sequence[str]) -> list[str]:
        # One qdel for all: an unknown id makes it exit 1, and the others are deleted all the same.
        return ["qdel", *targets]

    def script_header(self) -> str:
        return ""
