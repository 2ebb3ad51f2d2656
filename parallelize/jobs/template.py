"""Job templates and name formats: Python format strings filled with each point's parameters.

Placeholders available to both: every parameter of the point, and ``hash``
(also spelled ``params_hash``), the point's stable content hash
(``parallelize.params_hash``: the same in every run and on every machine).
The template also gets ``job_name`` (the filled name) and ``work_dir`` (the
job's own folder, where it runs). Every point is filled and checked before
anything is written or submitted: a placeholder a point does not define, a
name with characters a file or job name cannot hold, or two points with one
name are errors that say which.

Each job script also gets, after its ``#!`` line and directives, two lines of
this library's own: ``cd`` into its folder, and an ``EXIT`` trap that writes
the script's exit status to ``exit_status`` there, which is how a finished job
that left the queue is still known to have succeeded (0) or failed.
"""

from __future__ import annotations

import re
import shlex
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ConfigError
from ..hashing import params_hash
from ..worker.failure import short_repr

__all__ = ["EXIT_STATUS", "JobFiles", "fill", "with_exit_status"]

#: The file a job script writes its exit status to, in its folder.
EXIT_STATUS = "exit_status"
# What a job name may hold: it names a folder and a scheduler job.
_NAME_CHARS = re.compile(r"[A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class JobFiles:
    """One point's job, filled: its name, folder, script text and parameters."""

    params: dict[str, Any]
    job_name: str
    work_dir: Path
    script: str


def _fields(text: str, what: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ConfigError(
            f"the {what} is not a valid format string ({exc}); write a literal brace as {{{{ or }}}}"
        ) from None
    roots = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        if not root or root.isdigit():
            raise ConfigError(
                f"the {what} has a positional placeholder {{{field}}}; name a parameter, e.g. {{lr}} "
                "(a literal brace is {{ or }})"
            )
        roots.append(root)
    return roots


def _format(text: str, values: Mapping[str, Any], what: str, point: Mapping[str, Any]) -> str:
    for root in _fields(text, what):
        if root not in values:
            raise ConfigError(
                f"the {what}'s placeholder {{{root}}} is not defined for the point {short_repr(dict(point))}: "
                f"the placeholders it can use are {sorted(values)}; nothing was submitted"
            )
    try:
        return text.format(**values)
    except (KeyError, IndexError, AttributeError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"the {what} could not be filled for the point {short_repr(dict(point))}: {type(exc).__name__}: {exc}"
        ) from None


def fill(template: str, name: str, space: Iterable[Mapping[str, Any]], sweep_dir: Path) -> list[JobFiles]:
    """Every point's job, filled and checked; nothing is written.

    Raises:
        ConfigError: a template or name that is not a string, a placeholder a
            point does not define, a job name with characters other than
            letters, digits and ``._+-``, or two points with the same name.
    """
    if not isinstance(template, str):
        raise ConfigError(f"the job template must be a string (a format string of a shell script), got {template!r}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"the job name format must be a non-empty string such as 'job_{{lr}}', got {name!r}")
    _fields(template, "template")
    _fields(name, "job name format")
    jobs: list[JobFiles] = []
    seen: dict[str, dict[str, Any]] = {}
    for point in space:
        if not isinstance(point, Mapping):
            raise ConfigError(f"each point of the space must be a mapping of parameter names to values, got {point!r}")
        params = dict(point)
        h = params_hash(params)
        job_name = _format(name, {**params, "hash": h, "params_hash": h}, "job name format", params)
        if not _NAME_CHARS.fullmatch(job_name):
            raise ConfigError(
                f"job name {job_name!r} (from the point {short_repr(params)}) may hold only letters, digits and "
                "'._+-': it names a folder and a scheduler job"
            )
        if job_name in seen:
            raise ConfigError(
                f"the points {short_repr(seen[job_name])} and {short_repr(params)} both give the job name "
                f"{job_name!r}; put more parameters (or {{hash}}) in the name format. Nothing was submitted"
            )
        seen[job_name] = params
        work_dir = sweep_dir / job_name
        values = {**params, "hash": h, "params_hash": h, "job_name": job_name, "work_dir": str(work_dir)}
        jobs.append(JobFiles(params, job_name, work_dir, _format(template, values, "template", params)))
    if not jobs:
        raise ConfigError("the parameter space is empty: there is no job to submit")
    return jobs


def with_exit_status(script: str, work_dir: Path) -> str:
    """``script`` with, after its ``#!`` line and its directives, a ``cd`` to its folder and the exit-status trap."""
    lines = script.splitlines()
    head: list[str] = []
    if lines and lines[0].startswith("#!"):
        head, lines = lines[:1], lines[1:]
    else:
        head = ["#!/bin/bash"]
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
        i += 1  # directives (#SBATCH, #$, #PBS) must come before any command
    d = shlex.quote(str(work_dir))
    ours = [
        "# parallelize: run in the job's folder; write its exit status there (0: succeeded), for ps.status",
        f"_pz_exit() {{ _pz_code=$?; printf '%s\\n' \"$_pz_code\" > {d}/.{EXIT_STATUS}.tmp && "
        f"mv -f {d}/.{EXIT_STATUS}.tmp {d}/{EXIT_STATUS}; }}",
        "trap _pz_exit EXIT",
        f"cd {d} || exit 1",
    ]
    return "\n".join([*head, *lines[:i], *ours, *lines[i:]]) + "\n"
