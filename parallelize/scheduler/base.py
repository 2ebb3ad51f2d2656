"""The one interface over batch schedulers: submit an array of job scripts, ask its state, cancel.

A *dialect* (``slurm``, ``sge``,
``pbs``) knows its commands' flags and how to read
their output; nothing else here knows which scheduler runs underneath::

    submit_array(script, count, ...) ──sbatch / qsub──> job id
    submit_job(script, ...)          ──sbatch / qsub──> job id    (one job script, its own options kept)
    status(job ids)                  ──one squeue / qstat for all──> {(job, index): Element}
    cancel(job ids or elements)      ──scancel / qdel──>

Every command runs through ``run``, which turns "not installed", "refused"
and "did not answer" into the library's errors, quoting what the scheduler said.
"""

from __future__ import annotations

import abc
import getpass
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

from ..errors import BackendUnavailableError, SchedulerUnreachableError, SubmissionError

__all__ = ["ACTIVE", "Element", "Scheduler", "TERMINAL", "current_user", "directives", "run"]

# States, as the dialects report them (Slurm's names; other dialects map onto them).
PENDING = "PENDING"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TIMEOUT = "TIMEOUT"
OUT_OF_MEMORY = "OUT_OF_MEMORY"
NODE_FAIL = "NODE_FAIL"
#: States of an element still queued or running (or requeued: it will run again).
ACTIVE = frozenset({PENDING, RUNNING, "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED", "STOPPED"})
#: States of an element that will not run again.
TERMINAL = frozenset(
    {COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, "BOOT_FAIL", "DEADLINE", "PREEMPTED", "REVOKED"}
)

# Seconds a scheduler command may take before the scheduler counts as not answering.
COMMAND_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Element:
    """One array element as the scheduler reports it.

    Attributes:
        job_id: the array job's id.
        index: the element's index in the array (0-based, whatever the scheduler counts from).
        state: one of the state names above (``PENDING``, ``RUNNING``, ``COMPLETED``...).
        reason: the scheduler's reason or extra state text, or ``""``.
    """

    job_id: str
    index: int
    state: str
    reason: str = ""


def run(argv: Sequence[str], *, what: str, timeout: float = COMMAND_TIMEOUT_SECONDS, check: bool = True) -> str:
    """Run a scheduler command and return its stdout.

    Args:
        argv: the command.
        what: what the command does, for messages (``"submit"``, ``"query"``...).
        timeout: seconds before the scheduler counts as not answering.
        check: raise on a non-zero exit (else return stdout anyway).

    Raises:
        BackendUnavailableError: the command is not on the PATH.
        SchedulerUnreachableError: it did not answer within ``timeout``.
        SubmissionError: it exited non-zero (its stderr is quoted).
    """
    argv = list(argv)
    if shutil.which(argv[0]) is None:
        raise BackendUnavailableError(
            f"{argv[0]!r} is not on the PATH, so this machine cannot {what} jobs; run on a machine where the "
            f"scheduler's commands work (a login node), or put them on the PATH"
        )
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SchedulerUnreachableError(
            f"{' '.join(argv[:3])} ... did not answer within {timeout:g} s; is the scheduler's controller up?"
        ) from None
    if check and done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()
        raise SubmissionError(
            f"the scheduler refused to {what}: {' '.join(argv[:1])} said: {' / '.join(said[-5:])}",
            argv,
            done.stderr + done.stdout,
        )
    return done.stdout


class Scheduler(abc.ABC):
    """A batch scheduler's commands, and how to read them.

    Attributes:
        name: the backend name (``"slurm"``, ``"sge"``, ``"pbs"``).
        submit_command: the command that submits (checked for on the PATH).
        index_variable: the environment variable holding an array element's index in a job.
        index_base: what the first element's index is in that variable (0 or 1).
        directive_prefix: how a job script's own option lines start (``#SBATCH``).
        reads_directives: whether the scheduler reads those lines itself when
            it is given the script (else ``submit_job`` passes them as flags).

    A job that is not an array is reported as element 0 of its own id.
    """

    name: ClassVar[str]
    submit_command: ClassVar[str]
    index_variable: ClassVar[str]
    index_base: ClassVar[int] = 0
    directive_prefix: ClassVar[str]
    reads_directives: ClassVar[bool] = True

    def available(self) -> None:
        """Raise ``BackendUnavailableError`` if the scheduler's commands are missing."""
        if shutil.which(self.submit_command) is None:
            raise BackendUnavailableError(
                f"the {self.name} backend needs {self.submit_command!r} on the PATH, and it is not there; "
                f"run on a machine where {self.name} jobs can be submitted (a login node)"
            )

    def max_array_size(self) -> int:
        """The most elements one array may have here."""
        return 1000

    @abc.abstractmethod
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
        """The command that submits ``script`` as an array of ``count`` elements (``flags`` added as they are)."""

    @abc.abstractmethod
    def parse_job_id(self, output: str) -> str:
        """The array job's id from what the submit command printed."""

    def submit_array(
        self,
        script: str,
        count: int,
        *,
        name: str,
        log_dir: str,
        resources: Mapping[str, object],
        max_running: int | None = None,
        flags: Sequence[str] = (),
    ) -> str:
        """Submit ``script`` as an array of ``count`` elements; return the job id.

        Raises:
            SubmissionError: the scheduler refused (its message is quoted).
        """
        argv = self.submit_command_line(
            script, count, name=name, log_dir=log_dir, resources=resources, max_running=max_running, flags=flags
        )
        return self.parse_job_id(run(argv, what="submit"))

    @abc.abstractmethod
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
        """The command that submits one job script, run in ``workdir``.

        ``name``, ``stdout`` and ``stderr`` are left to the script's own
        directives when ``None``.
        """

    def parse_single_job_id(self, output: str) -> str:
        """A single job's id from what the submit command printed."""
        return self.parse_job_id(output)

    def submit_job(
        self,
        script: str,
        *,
        workdir: str,
        name: str | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        resources: Mapping[str, object] | None = None,
    ) -> str:
        """Submit one job script (its own directives kept); return its id.

        Raises:
            SubmissionError: the scheduler refused (its message is quoted).
        """
        argv = self.job_command_line(
            script, workdir=workdir, name=name, stdout=stdout, stderr=stderr, resources=resources or {}
        )
        return self.parse_single_job_id(run(argv, what="submit"))

    @abc.abstractmethod
    def status_command_line(self, name: str, job_ids: Sequence[str]) -> list[str]:
        """One command that reports every element of the named jobs."""

    @abc.abstractmethod
    def parse_status(self, output: str) -> list[Element]:
        """The elements in the status command's output."""

    def status(self, name: str, job_ids: Sequence[str]) -> dict[tuple[str, int], Element]:
        """Every element of the jobs named ``name`` that the scheduler still knows, by (job id, index)."""
        if not job_ids:
            return {}
        # A failed query raises: an outage must never read as "every job vanished".
        out = run(self.status_command_line(name, job_ids), what="query")
        wanted = set(job_ids)
        return {(e.job_id, e.index): e for e in self.parse_status(out) if e.job_id in wanted}

    @abc.abstractmethod
    def cancel_command_line(self, targets: Sequence[str]) -> list[str]:
        """The command that cancels jobs or elements given as ``element_id`` or job ids."""

    def element_id(self, job_id: str, index: int) -> str:
        """How the cancel command names one element."""
        return f"{job_id}_{index}"

    def log_index(self, index: int) -> int:
        """The number in element ``index``'s log names, ``{log_dir}/{job_id}_{n}.out`` and ``.err``.

        The element's own (0-based) index, unless the scheduler can only name
        files by its own count (Grid Engine's 1-based ``$TASK_ID``).
        """
        return index

    def cancel(self, targets: Sequence[str]) -> None:
        """Cancel jobs or elements; ones already finished are no error."""
        if targets:
            run(self.cancel_command_line(targets), what="cancel", check=False)

    @abc.abstractmethod
    def script_header(self) -> str:
        """Lines after ``#!/bin/bash`` that the scheduler reads from a script (may be empty)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def current_user() -> str:
    """The name of the user this process runs as, for the schedulers' ``-u`` filters."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return getpass.getuser()


def directives(text: str, prefix: str) -> list[str]:
    """The option flags of a job script's directive lines (``#SBATCH --time=10``), in order.

    Directives are read as schedulers read them: from the lines at the top of
    the script (blank lines and comments allowed) up to the first command.
    """
    flags: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(prefix) and (len(stripped) == len(prefix) or stripped[len(prefix)].isspace()):
            flags += shlex.split(stripped[len(prefix) :], comments=True)
        elif not stripped.startswith("#"):
            break
    return flags


def parse_indices(text: str) -> list[int]:
    """Array indices from a scheduler's range text: ``"3"``, ``"[2-9%2]"``, ``"1,4-6"``, ``"1-7:2"``."""
    text = text.strip().strip("[]")
    text = text.split("%", 1)[0]
    out: list[int] = []
    for part in filter(None, text.split(",")):
        step = 1
        if ":" in part:
            part, step_text = part.split(":", 1)
            step = int(step_text)
        if "-" in part:
            low, high = part.split("-", 1)
            out.extend(range(int(low), int(high) + 1, step))
        else:
            out.append(int(part))
    return out
