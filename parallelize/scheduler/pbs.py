"""PBS's dialect, both flavours: PBS Professional / OpenPBS (``qsub -J``) and Torque (``qsub -t``).

``PBS()`` asks ``qstat --version`` which one answers (PBS Pro prints
``pbs_version = ...`` on stdout, Torque ``Version: ...`` on stderr) and falls
back to PBS Pro; ``PBS(flavour="torque")`` or ``PBS(flavour="pro")`` chooses,
and returns a ``Torque`` or a ``PBSPro``::

                   PBS Pro / OpenPBS                   Torque
    submit         qsub -J 0-N[%M] ...                 qsub -t 0-N[%M] ...
    prints         1234[].server                       1234[].server.domain
    index          $PBS_ARRAY_INDEX (0-based)          $PBS_ARRAYID (0-based)
    status         qstat -f -w -t -x ID...             qstat -f -1 -t ID...
    one element    qdel 1234[5].server                 qdel 1234[5].server.domain

The job id is the whole string ``qsub`` printed (``1234[].server``): that is what
``qstat`` and ``qdel`` take, and ``PBS.status`` reports elements under it.
PBS Pro refuses a range whose end is not above its start (``chk_Jrange``), so
a one-element array is ``-J 0-1:2`` (indices 0 only); Torque takes ``-t 0``.

Logs. Neither flavour can put the array's job id into a ``-o`` path (PBS Pro
expands only ``^array_index^``; Torque appends ``-INDEX`` to whatever path it
is given), so the job writes its own: ``PBS.script_header`` starts the
script by redirecting stdout and stderr to ``{log_dir}/{job id}_{index}.out``
and ``.err``, the log folder reaching the job as ``$PARALLELIZE_LOG_DIR``
(``-v``). What PBS itself writes, such as a walltime kill, goes to a file PBS
names in the same folder (``-j oe -o {log_dir}/``). The header also changes
to ``$PBS_O_WORKDIR``, so a job runs where it was submitted, as on Slurm and
Grid Engine (``-cwd``). ``-V`` exports the submitter's environment.

Resources (a dict) become flags:

============================  =======================================================
key                           flag
============================  =======================================================
``queue`` or ``q``            ``-q VALUE``
``account`` or ``A``          ``-A VALUE``
``project`` or ``P``          ``-P VALUE`` (PBS Pro; Torque's ``-P`` is a proxy user)
``priority`` or ``p``         ``-p VALUE``
a key starting with ``-``     as it is: ``{"-W": "group_list=g"}``; ``True`` -> the bare flag
anything else                 ``-l KEY=VALUE`` (``True`` -> ``KEY=true``): ``walltime``,
                              ``select``, ``ncpus``, ``mem``, ``nodes``, ``place``...
============================  =======================================================

Status is read from the long form (``-f``) as text, not PBS Pro's ``-F json``:
with ``-V`` a job carries the whole environment in ``Variable_List``, and values
with quotes, backslashes, commas or exported bash functions have made
``qstat -F json`` print invalid JSON (openpbs/openpbs#2541, #1255, PR #2049).
``-w`` (PBS Pro) and ``-1`` (Torque) keep each attribute on one line. States:

===================  =====================  =====================================
``job_state``        state                  note
===================  =====================  =====================================
Q, W, T              PENDING                W: a start time or dependency; T: moving
H                    PENDING                held
M                    PENDING                moved to another server (PBS Pro)
R, E, B              RUNNING                E: exiting
S, U                 SUSPENDED
F, X; C (Torque)     COMPLETED              ``Exit_status`` 0 (or none reported)
                     FAILED                 any other exit status ("exit status 3")
                     TIMEOUT                PBS Pro -29, Torque -11 (walltime)
                     OUT_OF_MEMORY          PBS Pro -27 / -26 (mem / vmem), Torque -10
                     CANCELLED              PBS Pro substate 91 ("terminated", qdel)
===================  =====================  =====================================

A finished PBS Pro subjob whose own record is gone is shown from its parent's,
with the comment ``Subjob finished`` (``stat_job.c``); the parent's
``Exit_status`` it then carries is the array's summary, so it is not read.

No PBS server is packaged for Debian, so this dialect is checked against
representative outputs written from the OpenPBS and Torque sources
(``tests/data/pbs``), not against a live server.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from typing import ClassVar, Iterator, Literal, Mapping, Sequence

from ..errors import ConfigError, SubmissionError
from ..validate import check_choice
from .base import CANCELLED, COMPLETED, FAILED, OUT_OF_MEMORY, PENDING, RUNNING, TIMEOUT, Element, Scheduler, run

__all__ = ["PBS", "PBSPro", "Torque", "detect_flavour"]

Flavour = Literal["pro", "torque"]

#: The environment variable that brings the log folder to the job (see the header).
LOG_DIR_VARIABLE = "PARALLELIZE_LOG_DIR"
# PBS Pro's default max_array_size (server_limits.h: PBS_MAX_ARRAY_JOB_DFL).
PRO_MAX_ARRAY_SIZE = 10000
# Torque checks max_job_array_size only when it is set: no limit otherwise.
UNLIMITED_ARRAY_SIZE = 1_000_000
# Seconds `qstat --version` may take before the flavour is guessed.
DETECT_TIMEOUT_SECONDS = 10.0

_OPTIONS = {"queue": "-q", "q": "-q", "account": "-A", "A": "-A", "priority": "-p", "p": "-p"}
_SUBJOB = re.compile(r"^(\d+)\[(\d+)\](.*)$")
_ARRAY_ID = re.compile(r"^\d+\[\](\.\S*)?$")
_SINGLE_ID = re.compile(r"^\d+(\.\S*)?$")
# Characters qsub -v would split or unquote in a value.
_UNSAFE_IN_V = set(",'\"")

_STATES = {
    "Q": (PENDING, ""),
    "W": (PENDING, "waiting for its start time or a dependency"),
    "T": (PENDING, "moving"),
    "H": (PENDING, "held"),
    "M": (PENDING, "moved to another server"),
    "R": (RUNNING, ""),
    "E": (RUNNING, "exiting"),
    "B": (RUNNING, "begun"),
    "S": ("SUSPENDED", "suspended"),
    "U": ("SUSPENDED", "suspended while its workstation is busy"),
}
_FINISHED = {"F", "X", "C"}


def detect_flavour(timeout: float = DETECT_TIMEOUT_SECONDS) -> Flavour:
    """``"torque"`` or ``"pro"``, from ``qstat --version``; ``"pro"`` when it cannot tell.

    Not through ``run``: Torque prints its
    version on stderr, which ``run`` does not return.
    """
    try:
        done = subprocess.run(
            ["qstat", "--version"], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return "pro"
    said = done.stdout + "\n" + done.stderr
    if "pbs_version" in said:
        return "pro"
    if re.search(r"^Version:", said, re.MULTILINE):
        return "torque"
    return "pro"


def _blocks(output: str, header: str = "Job Id:") -> Iterator[tuple[str, dict[str, str]]]:
    """(name, attributes) of each block of ``qstat -f`` (``-B -f``: ``header="Server:"``).

    Attributes are the lines ``    name = value``; continuation lines (a tab first) are skipped.
    """
    name: str | None = None
    attrs: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith(header):
            if name is not None:
                yield name, attrs
            name, attrs = line.split(":", 1)[1].strip(), {}
        elif name is not None and line.startswith("    ") and " = " in line:
            key, _, value = line.strip().partition(" = ")
            # The first wins: an attribute is printed once, before any text an
            # environment value could smuggle in on a line of its own.
            attrs.setdefault(key, value.strip())
    if name is not None:
        yield name, attrs


def _sequence(job_id: str) -> str:
    """``1234`` from ``1234[].server`` or ``1234[5].server``."""
    return re.split(r"[\[.]", job_id, maxsplit=1)[0]


class PBS(Scheduler):
    """PBS: ``qsub`` arrays with a ``%`` throttle, one ``qstat -f -t`` of the jobs' ids.

    Args:
        flavour: ``"pro"`` (PBS Professional, OpenPBS) or ``"torque"``; ``None``
            (the default) asks ``qstat --version`` and falls back to ``"pro"``.

    Raises:
        ConfigError: an unknown flavour, or one its class is not.
    """

    name = "pbs"
    submit_command = "qsub"
    directive_prefix: ClassVar[str] = "#PBS"
    index_variable: ClassVar[str] = "PBS_ARRAY_INDEX"
    index_base = 0
    flavour: ClassVar[Flavour] = "pro"
    # Exit statuses the server gives a job it killed, per flavour (job.h).
    timeout_exits: ClassVar[frozenset[int]] = frozenset({-29})
    memory_exits: ClassVar[frozenset[int]] = frozenset({-27, -26})

    def __new__(cls, flavour: str | None = None) -> PBS:
        if cls is PBS:
            chosen = detect_flavour() if flavour is None else check_choice("PBS flavour", flavour, _FLAVOURS)
            cls = _FLAVOURS[chosen]
        return super().__new__(cls)

    def __init__(self, flavour: str | None = None) -> None:
        if flavour is not None and flavour != self.flavour:
            check_choice("PBS flavour", flavour, _FLAVOURS)
            raise ConfigError(
                f"{type(self).__name__} is the {self.flavour!r} flavour, not {flavour!r}; use PBS(flavour=...)"
            )
        self._max_array: int | None = None

    # --- submitting -------------------------------------------------------------------------

    def array_flags(self, count: int, max_running: int | None) -> list[str]:
        """``-J 0-N[%M]``; a single element as ``0-1:2``, since PBS Pro needs end > start."""
        indices = f"0-{count - 1}" if count > 1 else "0-1:2"
        return ["-J", indices + (f"%{max_running}" if max_running else "")]

    def option_flag(self, key: str) -> str | None:
        """The qsub flag a non ``-l`` resource key stands for, or ``None``."""
        if key in ("project", "P"):
            return "-P"
        return _OPTIONS.get(key)

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
        bad = sorted(_UNSAFE_IN_V & set(log_dir))
        if bad:
            raise ConfigError(
                f"the log folder {log_dir!r} holds {''.join(bad)!r}, which qsub -v would split or unquote; "
                f"use a folder without commas or quotes"
            )
        argv = ["qsub", *self.array_flags(count, max_running), "-N", name, "-V"]
        argv += ["-v", f"{LOG_DIR_VARIABLE}={log_dir}", "-j", "oe", "-o", f"{log_dir.rstrip('/')}/"]
        return [*argv, *self._resource_flags(resources), *flags, script]

    def _resource_flags(self, resources: Mapping[str, object]) -> list[str]:
        argv: list[str] = []
        for key, value in resources.items():
            flag = self.option_flag(key)
            if flag is not None:
                argv += [flag, str(value)]
            elif key.startswith("-"):
                argv += [key] if value is True else [key, str(value)]
            else:
                argv += ["-l", f"{key}={'true' if value is True else value}"]
        return argv

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
        # PBS has no working-directory flag: the job script changes to it itself
        # (the jobs layer writes that line), and qsub reads its #PBS lines.
        argv = ["qsub", "-V"]
        argv += ["-N", name] if name is not None else []
        argv += ["-o", stdout] if stdout is not None else []
        argv += ["-e", stderr] if stderr is not None else []
        return [*argv, *self._resource_flags(resources), script]

    def parse_single_job_id(self, output: str) -> str:
        # "1234.server" (a site's notices may come first).
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        if not lines or not _SINGLE_ID.match(lines[-1]):
            raise SubmissionError(f"qsub printed no job id: {output.strip()[-200:]!r}", ["qsub"], output)
        return lines[-1]

    def parse_job_id(self, output: str) -> str:
        # The last line: "1234[].server"; anything before it is a site's notice.
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        if not lines or not _ARRAY_ID.match(lines[-1]):
            raise SubmissionError(f"qsub printed no array job id: {output.strip()[-200:]!r}", ["qsub"], output)
        return lines[-1]

    def script_header(self) -> str:
        """Run where submitted, and send stdout / stderr to ``$PARALLELIZE_LOG_DIR/{job id}_{index}``.

        The job id is rebuilt from ``$PBS_JOBID`` (``1234[5].server`` -> ``1234[].server``),
        the string ``qsub`` printed.
        """
        var = self.index_variable
        return "\n".join(
            [
                'cd "${PBS_O_WORKDIR:-.}" 2>/dev/null || true',
                f'_pz_log="${{{LOG_DIR_VARIABLE}:-.}}/${{PBS_JOBID%%\\[*}}[]${{PBS_JOBID#*\\]}}_${{{var}}}"',
                'exec >"$_pz_log.out" 2>"$_pz_log.err"',
            ]
        )

    # --- asking -----------------------------------------------------------------------------

    def max_array_size(self) -> int:
        """The server's ``max_array_size`` (PBS Pro, 10000 by default) or ``max_job_array_size`` (Torque)."""
        if self._max_array is None:
            size = PRO_MAX_ARRAY_SIZE if self.flavour == "pro" else UNLIMITED_ARRAY_SIZE
            try:
                for _, attrs in _blocks(run(["qstat", "-B", "-f"], what="query", check=False), header="Server:"):
                    value = attrs.get("max_array_size") or attrs.get("max_job_array_size")
                    if value:
                        size = int(value)
            except Exception:  # noqa: BLE001 - the documented default is a safe guess
                pass
            self._max_array = max(size, 1)
        return self._max_array

    def status_command_line(self, name: str, job_ids: Sequence[str]) -> list[str]:
        # By id: qstat has no filter by name in its long form. An id the server
        # has forgotten makes qstat exit non-zero but print the others.
        return ["qstat", "-f", "-w", "-t", "-x", *job_ids]

    def status(self, name: str, job_ids: Sequence[str]) -> dict[tuple[str, int], Element]:
        """As ``Scheduler.status``, matching ids by their number (``1234``), not the server's spelling."""
        if not job_ids:
            return {}
        out = run(self.status_command_line(name, job_ids), what="query", check=False)
        wanted = {_sequence(j): j for j in job_ids}
        found: dict[tuple[str, int], Element] = {}
        for element in self.parse_status(out):
            job_id = wanted.get(_sequence(element.job_id))
            if job_id is not None:
                found[(job_id, element.index)] = replace(element, job_id=job_id)
        return found

    def parse_status(self, output: str) -> list[Element]:
        out: list[Element] = []
        for name, attrs in _blocks(output):
            match = _SUBJOB.match(name)
            if match is None:
                if _SINGLE_ID.match(name):  # a job that is not an array: its own element 0
                    state, reason = self._state(attrs)
                    out.append(Element(name, 0, state, reason))
                continue  # else the array itself (1234[])
            sequence, index, server = match.groups()
            state, reason = self._state(attrs)
            out.append(Element(f"{sequence}[]{server}", int(index), state, reason))
        return out

    def _state(self, attrs: Mapping[str, str]) -> tuple[str, str]:
        code = attrs.get("job_state", "")
        if code not in _FINISHED:
            return _STATES.get(code, (PENDING, f"job_state {code}"))
        comment = attrs.get("comment", "")
        if comment.startswith("Subjob "):
            # Shown from the parent's record: its Exit_status is the array's, not this element's.
            if comment == "Subjob failed":
                return FAILED, "failed"
            if comment == "Subjob terminated":
                return CANCELLED, "terminated"
            return COMPLETED, ""
        if attrs.get("substate") == "91":
            return CANCELLED, "terminated"
        text = attrs.get("Exit_status", attrs.get("exit_status", ""))
        try:
            code_value = int(text)
        except ValueError:
            return COMPLETED, "exit status not reported"
        if code_value == 0:
            return COMPLETED, ""
        if code_value in self.timeout_exits:
            return TIMEOUT, f"exit status {code_value} (walltime)"
        if code_value in self.memory_exits:
            return OUT_OF_MEMORY, f"exit status {code_value} (memory limit)"
        if code_value > 256:
            return FAILED, f"exit status {code_value} (signal {code_value - 256})"
        return FAILED, f"exit status {code_value}"

    # --- cancelling -------------------------------------------------------------------------

    def element_id(self, job_id: str, index: int) -> str:
        """``1234[5].server`` for element 5 of ``1234[].server``."""
        return job_id.replace("[]", f"[{index}]", 1)

    def cancel_command_line(self, targets: Sequence[str]) -> list[str]:
        return ["qdel", *targets]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} flavour={self.flavour!r}>"


class PBSPro(PBS):
    """PBS Professional and OpenPBS: ``-J`` arrays, ``$PBS_ARRAY_INDEX``, history with ``qstat -x``."""

    flavour: ClassVar[Flavour] = "pro"


class Torque(PBS):
    """Torque: ``-t`` arrays, ``$PBS_ARRAYID``; finished jobs stay as ``C`` for ``keep_completed`` seconds."""

    index_variable: ClassVar[str] = "PBS_ARRAYID"
    flavour: ClassVar[Flavour] = "torque"
    timeout_exits: ClassVar[frozenset[int]] = frozenset({-11})  # JOB_EXEC_OVERLIMIT_WT
    memory_exits: ClassVar[frozenset[int]] = frozenset({-10})  # JOB_EXEC_OVERLIMIT_MEM

    def array_flags(self, count: int, max_running: int | None) -> list[str]:
        """``-t 0-N[%M]``; Torque allows a single task (``-t 0``)."""
        indices = f"0-{count - 1}" if count > 1 else "0"
        return ["-t", indices + (f"%{max_running}" if max_running else "")]

    def option_flag(self, key: str) -> str | None:
        if key in ("project", "P"):
            raise ConfigError(
                "Torque has no project option (its -P is a proxy user); charge an account with "
                "resources={'account': ...}, or pass a raw flag such as {'-W': 'group_list=...'}"
            )
        return _OPTIONS.get(key)

    def status_command_line(self, name: str, job_ids: Sequence[str]) -> list[str]:
        # Torque's -x is XML output, not history; -1 keeps attributes unfolded.
        return ["qstat", "-f", "-1", "-t", *job_ids]


_FLAVOURS: dict[str, type[PBS]] = {"pro": PBSPro, "torque": Torque}
