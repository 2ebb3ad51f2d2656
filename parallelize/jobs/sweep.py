"""A sweep of shell jobs: submit every point of a space, then status, wait, cancel, load.

The folder of a sweep (``work_dir``, default the current directory)::

    work_dir/
      jobs.json               the sweep: its parameter names and its jobs, in order
      <job_name>/             one folder per point, created before anything is submitted
        job.sh                the filled template (+ a cd and the exit-status trap)
        job.json              the point's parameters and how its queue knows the job
        stdout, stderr        its output (unless the template names its own files)
        exit_status           written by the job script itself when it ends
        ...                   whatever the job writes: metrics files, models
      .arrays/, .local/       array scripts and their logs; the local queue's plans

Everything needed to follow a sweep is in these files, so ``load(work_dir)``
re-opens it after the submitting process is gone. The table every function
returns is a ``pandas.DataFrame``, one row per point: its parameters, then
``job_name``, ``job_id``, ``work_dir`` (the job's folder), ``status``,
``exit_code``, ``stdout`` and ``stderr``. A refresh asks each queue once for all
its jobs; a job that left the queue is known by its ``exit_status`` file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..checkpoint.codec import decode, encode
from ..durable import atomic_write
from ..errors import ConfigError, SubmissionError, TaskTimeoutError, add_note
from ..scheduler.base import ACTIVE, CANCELLED, COMPLETED, FAILED, NODE_FAIL, OUT_OF_MEMORY, TIMEOUT
from ..validate import check_bool, check_seconds
from .queues import JobRef, Queue, make_queue
from .table import JOB_COLUMNS
from .template import EXIT_STATUS, JobFiles, fill, with_exit_status

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["cancel", "load", "status", "submit", "wait"]

TABLE = "jobs.json"
JOB_FILE = "job.json"
FORMAT = "parallelize-jobs"
VERSION = 1
#: Status of a job that left the queue without writing its exit status.
LOST = "LOST"
#: Status of a job whose folder was written but that was never submitted (a refused submission).
NOT_SUBMITTED = "NOT_SUBMITTED"
# The most of a job's stdout / stderr the table holds (its end).
OUTPUT_TAIL_BYTES = 64 * 1024
# Files a resubmitted job's folder must not keep from before.
_STALE = (EXIT_STATUS, "local.pid", "local.returncode", "cancelled", "stdout", "stderr", JOB_FILE)
# States the queue's word beats the exit status for (the script's trap may have run as it was killed).
_QUEUE_WINS = {CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL}


def _params_json(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        try:
            out[key] = encode(value)
        except Exception:  # noqa: BLE001 - not plain data: kept as its text
            out[key] = encode(repr(value))
    return out


def _write_json(path: Path, doc: Any) -> None:
    atomic_write(path, lambda f: json.dump(doc, f, indent=1), binary=False)


def submit(
    template: str,
    name: str,
    space: Iterable[Mapping[str, Any]],
    use: str = "local",
    *,
    work_dir: str | os.PathLike[str] | None = None,
    array: bool = False,
    resources: Mapping[str, object] | None = None,
    max_running: int | None = None,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Fill ``template`` and ``name`` for every point of ``space`` and submit the jobs.

    Args:
        template: the job script, a format string (see ``parallelize.jobs.template``).
        name: the job name format, e.g. ``"job_{lr}_{layers}"`` or ``"run_{hash}"``.
        space: a ``ParamSpace``, or any iterable of dicts.
        use: ``"slurm"``, ``"sge"``, ``"pbs"``, or ``"local"`` (local processes).
        work_dir: the sweep's folder (default: the current directory); each job
            runs in ``work_dir/<job_name>/``.
        array: submit all points as one array job (split at the scheduler's
            limit) instead of one job each; the first template's directives
            apply to the whole array. Ignored by the local queue.
        resources: scheduler options added to every job, as for the cluster
            backends (``{"time": "0:10:00", "mem": "2G"}`` on Slurm, ``-l``
            resources on Grid Engine and PBS).
        max_running: jobs run at once on the local queue (default: the CPUs).
        overwrite: submit again points whose job names this folder already
            has (their folders' old outputs are removed first); otherwise that
            is an error and nothing is submitted.

    Returns:
        The jobs table, refreshed once after submitting.

    Raises:
        ConfigError: a placeholder a point does not define, a bad or repeated
            job name, an unknown queue, a name the folder already has.
        BackendUnavailableError: the queue's commands are not on the PATH.
        SubmissionError: the scheduler refused a job; the jobs submitted
            before it are in the folder (``load(work_dir)``).
    """
    check_bool("array", array)
    check_bool("overwrite", overwrite)
    if resources is not None and not (isinstance(resources, Mapping) and all(isinstance(k, str) for k in resources)):
        raise ConfigError(f"resources must be a dict of the scheduler's option names to values, got {resources!r}")
    if work_dir is not None and not isinstance(work_dir, (str, os.PathLike)):
        raise ConfigError(f"work_dir must be a folder path (str or os.PathLike), got {work_dir!r}")
    sweep_dir = Path(work_dir if work_dir is not None else Path.cwd()).resolve()
    jobs = fill(template, name, space, sweep_dir)  # every point checked before anything is written
    queue = make_queue(use, max_running)
    names, param_names = _read_table(sweep_dir)
    taken = [j.job_name for j in jobs if j.job_name in names]
    if taken and not overwrite:
        raise ConfigError(
            f"{str(sweep_dir)!r} already has job(s) named {taken[:5]}{' ...' if len(taken) > 5 else ''}; "
            "re-open them with ps.load(work_dir), or pass overwrite=True to submit them again, or give another "
            "work_dir. Nothing was submitted"
        )
    if taken:
        current = status(_table(sweep_dir, taken, param_names))
        busy = list(current.loc[current["status"].isin(ACTIVE), "job_name"])
        if busy:
            raise ConfigError(
                f"job(s) {busy[:5]} of {str(sweep_dir)!r} are still queued or running; ps.cancel them (or "
                "ps.wait for them) before submitting them again. Nothing was submitted"
            )
    for job in jobs:
        job.work_dir.mkdir(parents=True, exist_ok=True)
        for stale in _STALE:
            try:
                (job.work_dir / stale).unlink()
            except FileNotFoundError:
                pass
        script = job.work_dir / "job.sh"
        script.write_text(with_exit_status(job.script, job.work_dir))
        script.chmod(0o755)
    new_params = list(dict.fromkeys(k for j in jobs for k in j.params))
    order = [n for n in names if n not in {j.job_name for j in jobs}] + [j.job_name for j in jobs]
    all_params = list(dict.fromkeys([*param_names, *new_params]))
    _write_json(sweep_dir / TABLE, {"format": FORMAT, "version": VERSION, "params": all_params, "jobs": order})
    _submit_all(queue, jobs, array=array, resources=dict(resources or {}), sweep_dir=sweep_dir)
    return status(_table(sweep_dir, [j.job_name for j in jobs], new_params))


def _submit_all(
    queue: Queue, jobs: Sequence[JobFiles], *, array: bool, resources: dict[str, object], sweep_dir: Path
) -> None:
    """Submit, one job (or one array) at a time, recording each as soon as it is in the queue."""
    groups = [list(jobs)] if array or queue.submits_together else [[j] for j in jobs]
    done = 0
    for group in groups:
        try:
            refs = queue.submit(group, array=array, resources=resources, sweep_dir=sweep_dir)
        except SubmissionError as exc:
            if done:
                add_note(
                    exc,
                    f"{done} of {len(jobs)} job(s) were submitted before this one; ps.load({str(sweep_dir)!r}) "
                    "shows them, and a new submit with overwrite=True sends the rest",
                )
            raise
        for job, ref in zip(group, refs, strict=True):
            _write_json(
                job.work_dir / JOB_FILE,
                {"job_name": job.job_name, "params": _params_json(job.params), "ref": ref.to_json()},
            )
        done += len(group)


def _read_table(sweep_dir: Path) -> tuple[list[str], list[str]]:
    path = sweep_dir / TABLE
    if not path.exists():
        return [], []
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{str(path)!r} is not a sweep's table ({exc}); delete it or use another work_dir") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{str(path)!r} is not a parallelize sweep's table; delete it or use another work_dir")
    return list(doc.get("jobs", [])), list(doc.get("params", []))


def _table(sweep_dir: Path, names: Sequence[str], params: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    rows = [{**{p: None for p in params}, "job_name": n, "work_dir": str(sweep_dir / n)} for n in names]
    frame = pd.DataFrame(rows, columns=[*params, *JOB_COLUMNS])
    frame.attrs["params"] = list(params)
    frame.attrs["sweep_dir"] = str(sweep_dir)
    return frame


def load(work_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Re-open a sweep from its folder (after the submitting process is gone) and refresh it.

    Raises:
        ConfigError: the folder holds no sweep.
    """
    sweep_dir = Path(work_dir).resolve()
    if not (sweep_dir / TABLE).exists():
        raise ConfigError(f"{str(sweep_dir)!r} holds no sweep (no {TABLE}); give the work_dir that submit used")
    names, params = _read_table(sweep_dir)
    return status(_table(sweep_dir, names, params))


def _tail(path: str) -> str:
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - OUTPUT_TAIL_BYTES))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _exit_code(folder: Path) -> int | None:
    try:
        return int((folder / EXIT_STATUS).read_text().strip())
    except (OSError, ValueError):
        return None


def _check_table(jobs: Any) -> None:
    import pandas as pd

    if not isinstance(jobs, pd.DataFrame) or "work_dir" not in jobs.columns:
        raise ConfigError(
            f"expected the jobs table that ps.submit or ps.load returned (a DataFrame with a work_dir column), "
            f"got {type(jobs).__name__}"
        )


def status(jobs: pd.DataFrame) -> pd.DataFrame:
    """The table with every job's status, exit code and output read now (one query per queue).

    ``status`` is the queue's state while the job is queued or running
    (``PENDING``, ``RUNNING``...), then ``COMPLETED`` (exit status 0),
    ``FAILED`` (``exit_code`` says which), ``CANCELLED``, ``TIMEOUT``,
    ``OUT_OF_MEMORY``, ``NODE_FAIL``, or ``LOST`` (it left the queue without
    writing its exit status). Output on stderr is not a failure by itself.
    """
    import pandas as pd

    _check_table(jobs)
    out = jobs.copy()
    folders = [Path(w) if isinstance(w, (str, os.PathLike)) else None for w in out["work_dir"]]
    records: list[dict[str, Any] | None] = []
    for folder in folders:
        try:
            records.append(json.loads((folder / JOB_FILE).read_text()) if folder is not None else None)
        except (OSError, ValueError):
            records.append(None)
    refs: list[JobRef | None] = [JobRef.from_json(r["ref"]) if r else None for r in records]
    states: dict[int, str] = {}
    by_queue: dict[str, list[int]] = {}
    for i, ref in enumerate(refs):
        if ref is not None:
            by_queue.setdefault(ref.queue, []).append(i)
    for use, positions in by_queue.items():
        answered = make_queue(use).states([refs[i] for i in positions])  # type: ignore[misc]
        states.update({positions[k]: state for k, state in answered.items()})
    params = list(out.attrs.get("params") or [c for c in out.columns if c not in JOB_COLUMNS])
    column: dict[str, list[Any]] = {c: [] for c in ("job_id", "status", "exit_code", "stdout", "stderr")}
    for i, (folder, record, ref) in enumerate(zip(folders, records, refs, strict=True)):
        if folder is None or ref is None:
            if folder is not None and (folder / "job.sh").exists():  # written, never submitted
                for key, value in (("job_id", None), ("status", NOT_SUBMITTED), ("exit_code", None)):
                    column[key].append(value)
                column["stdout"].append("")
                column["stderr"].append("")
                continue
            for key in column:  # not a job of a sweep folder: its row stays as it is
                column[key].append(out[key].iloc[i] if key in out.columns else None)
            continue
        if record is not None:
            for key, value in record.get("params", {}).items():
                if key in out.columns:
                    out.at[out.index[i], key] = decode(value)
        code = _exit_code(folder)
        column["job_id"].append(ref.job_id)
        column["status"].append(_status(states.get(i), code))
        column["exit_code"].append(code if code is not None else pd.NA)
        column["stdout"].append(_tail(ref.stdout))
        column["stderr"].append(_tail(ref.stderr))
    for key, values in column.items():
        if key == "exit_code":
            out[key] = pd.array([pd.NA if _missing(v) else int(v) for v in values], dtype="Int64")
        else:
            out[key] = values
    out.attrs["params"] = params
    return out


def _missing(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))  # None, NaN, pd.NA
    except (TypeError, ValueError):  # not a scalar
        return False


def _status(state: str | None, code: int | None) -> str:
    if state in _QUEUE_WINS or state in ACTIVE:
        return state  # type: ignore[return-value]  # its script ended, but the queue is not done with it yet
    if code is not None:
        return COMPLETED if code == 0 else FAILED
    if state is not None:
        return state
    return LOST


def _active(table: pd.DataFrame) -> int:
    return int(table["status"].isin(ACTIVE).sum())


def wait(jobs: pd.DataFrame, timeout: float | None = None, poll_interval: float = 5.0) -> pd.DataFrame:
    """Refresh the table until no job is queued or running; return it.

    Polls start at 0.2 s apart and back off to ``poll_interval``.

    Raises:
        TaskTimeoutError: some jobs still run after ``timeout`` seconds (the
            message says how many; the jobs go on).
    """
    if timeout is not None:
        check_seconds("timeout", timeout, allow_zero=True)
    check_seconds("poll_interval", poll_interval, allow_zero=False)
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.2
    table = status(jobs)
    while _active(table):
        if deadline is not None and time.monotonic() >= deadline:
            raise TaskTimeoutError(
                f"{_active(table)} of {len(table)} job(s) still queued or running after {timeout:g} s; "
                "they go on: call ps.wait again, or ps.cancel"
            )
        time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
        pause = min(pause * 1.5, poll_interval)
        table = status(table)
    return table


def cancel(jobs: pd.DataFrame) -> pd.DataFrame:
    """Cancel every job of the table still queued or running; return the table refreshed."""
    table = status(jobs)
    by_queue: dict[str, list[JobRef]] = {}
    for work_dir, state in zip(table["work_dir"], table["status"], strict=True):
        if state not in ACTIVE or not isinstance(work_dir, (str, os.PathLike)):
            continue
        folder = Path(work_dir)
        try:
            ref = JobRef.from_json(json.loads((folder / JOB_FILE).read_text())["ref"])
        except (OSError, ValueError, KeyError):
            continue
        by_queue.setdefault(ref.queue, []).append(ref)
    for use, refs in by_queue.items():
        make_queue(use).cancel(refs)
    return status(table)
