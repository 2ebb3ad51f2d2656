"""Slurm's dialect: ``sbatch --parsable --array``, one ``squeue --states=all`` for status, ``scancel``.

``sacct`` is never needed: ``squeue --states=all`` reports finished elements for
``MinJobAge`` seconds (300 by default), and the job script writes its own exit
status file for after that.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .base import Element, Scheduler, current_user, parse_indices, run

__all__ = ["Slurm"]

# squeue's fields: array job id, array index (or a range while pending), state, reason.
_FORMAT = "%F|%K|%T|%r"


def _flag(key: str, value: object) -> str:
    key = key.replace("_", "-")
    if value is True:
        return f"--{key}"
    return f"--{key}={value}"


class Slurm(Scheduler):
    """Slurm: ``sbatch`` arrays with a ``%`` throttle, ``squeue`` by job name."""

    name = "slurm"
    submit_command = "sbatch"
    index_variable = "SLURM_ARRAY_TASK_ID"
    index_base = 0
    directive_prefix = "#SBATCH"

    def __init__(self) -> None:
        self._max_array: int | None = None

    def max_array_size(self) -> int:
        """``MaxArraySize - 1`` elements (indices 0..MaxArraySize-1), read once from ``scontrol``."""
        if self._max_array is None:
            size = 1001
            try:
                for line in run(["scontrol", "show", "config"], what="query", check=False).splitlines():
                    key, _, value = line.partition("=")
                    if key.strip() == "MaxArraySize":
                        size = int(value.strip())
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
        array = f"0-{count - 1}" + (f"%{max_running}" if max_running else "")
        argv = [
            "sbatch",
            "--parsable",
            f"--array={array}",
            f"--job-name={name}",
            f"--output={log_dir}/%A_%a.out",
            f"--error={log_dir}/%A_%a.err",
        ]
        if "requeue" not in resources and "no_requeue" not in resources and "no-requeue" not in resources:
            # A lost node fails the element (NODE_FAIL) at once and the runner
            # reruns its tasks; a requeued job would sit PENDING for minutes
            # (Slurm holds it until a BeginTime) before running again.
            argv.append("--no-requeue")
        argv += [_flag(k, v) for k, v in resources.items()]
        return [*argv, *flags, script]

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
        argv = ["sbatch", "--parsable", f"--chdir={workdir}"]
        argv += [f"--job-name={name}"] if name is not None else []
        argv += [f"--output={stdout}"] if stdout is not None else []
        argv += [f"--error={stderr}"] if stderr is not None else []
        argv += [_flag(k, v) for k, v in resources.items()]
        return [*argv, script]  # sbatch reads the script's own #SBATCH lines

    def parse_job_id(self, output: str) -> str:
        # --parsable prints "id" or "id;cluster".
        return output.strip().splitlines()[-1].split(";", 1)[0].strip()

    def status_command_line(self, name: str, job_ids: Sequence[str]) -> list[str]:
        # By name (or all of the user's jobs when there is no one name), not by
        # id: a list of ids fails whole when one has been purged.
        who = f"--name={name}" if name else f"--user={current_user()}"
        return ["squeue", "--states=all", "--noheader", who, f"--format={_FORMAT}"]

    def parse_status(self, output: str) -> list[Element]:
        out: list[Element] = []
        for line in output.splitlines():
            parts = line.strip().split("|")
            if len(parts) < 3 or not parts[0]:
                continue
            job_id, indices, state = parts[0], parts[1], parts[2]
            if indices in ("", "N/A"):
                indices = "0"  # not an array: its own element 0
            reason = parts[3] if len(parts) > 3 else ""
            state = state.split()[0].rstrip("+") if state else state
            for index in parse_indices(indices):
                out.append(Element(job_id, index, state, reason))
        return out

    def cancel_command_line(self, targets: Sequence[str]) -> list[str]:
        return ["scancel", *targets]

    def script_header(self) -> str:
        return ""
