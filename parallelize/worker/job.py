"""What one array element of a cluster job runs: ``python -m parallelize.worker.job FOLDER ARRAY INDEX``.

The file protocol between the runner and its jobs, all in ``FOLDER`` (on a file
system the nodes share; no network connection back to the runner is needed)::

    arrays/ARRAY.json        {"keys": [...], "sys_path": [...], "cwd": ..., "owner": {host, pid, token}}:
                             element k runs keys[k]
    arrays/ARRAY.job         the scheduler's job id of the array, once submitted
    arrays/TOKEN.alive       touched every few seconds while the submitting run lives
    tasks/KEY.in             the call, cloudpickled: (fn, args, kwargs, initializer)
    tasks/KEY.started        created when the call really starts (after unpickling)
    tasks/KEY.out            the outcome, pickled: ("ok", value) | ("raised", (exc, traceback))
                             | ("unpicklable", text); written to a temporary name,
                             fsync'd, then renamed, so the runner never reads half of it
    exits/ARRAY.INDEX        the element's exit status, written by its job script

An element that dies (segfault, out of memory, killed by the scheduler) leaves
no ``.out``: the runner reads the scheduler's state, the exit file and the
element's stderr to say what happened.

With a checkpoint, the call's batch also appends its successes to the
checkpoint folder before the ``.out`` is written
(``JobRecord``), and a later run on the
same folder waits for the elements of a run that died (``owner`` no longer
alive) before it reads the checkpoint: that is reattaching.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any

from ..durable import atomic_write
from .pickling import dumps_any

__all__ = ["main", "run_element"]

OK = "ok"
RAISED = "raised"
UNPICKLABLE = "unpicklable"


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data), binary=True)


def run_element(folder: Path, array: str, index: int) -> int:
    """Run element ``index`` of ``array``: read its call, run it, write its outcome.

    Returns:
        The exit status: 0 when an outcome was written (the task's own error
        included), 2 when the element's files are missing.
    """
    manifest = json.loads((folder / "arrays" / f"{array}.json").read_text())
    for entry in reversed(manifest.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    cwd = manifest.get("cwd")
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    key = manifest["keys"][index]
    tasks = folder / "tasks"
    started = tasks / f"{key}.started"

    def report_started() -> None:
        started.touch()

    from . import batch
    from .failure import portable

    try:
        with open(tasks / f"{key}.in", "rb") as f:
            fn, args, kwargs, initializer = pickle.load(f)
    except BaseException as exc:  # noqa: BLE001 - a call that cannot be rebuilt here
        text = f"its call could not be unpickled on the node ({type(exc).__name__}: {exc})"
        _write_atomic(tasks / f"{key}.out", pickle.dumps((UNPICKLABLE, text)))
        return 0
    if initializer is not None:
        try:
            initializer()
        except BaseException:  # noqa: BLE001 - the initializer's own error is its batches' business
            pass
    if getattr(fn, "reports_start", False):
        batch.set_start_hook(report_started)
    else:
        report_started()
    try:
        outcome: tuple[str, Any] = (OK, fn(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - every exception is the call's failure
        outcome = (RAISED, (portable(exc), traceback.format_exc()))
    batch.set_start_hook(None)
    try:
        data = dumps_any(outcome)
    except BaseException as exc:  # noqa: BLE001
        data = pickle.dumps((UNPICKLABLE, f"its result could not be pickled on the node ({type(exc).__name__}: {exc})"))
    _write_atomic(tasks / f"{key}.out", data)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of a job script: ``FOLDER ARRAY INDEX`` (the 0-based element index)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m parallelize.worker.job FOLDER ARRAY INDEX", file=sys.stderr)
        return 2
    folder, array, index = Path(args[0]), args[1], int(args[2])
    try:
        return run_element(folder, array, index)
    except FileNotFoundError as exc:
        print(f"parallelize: this element's files are missing ({exc}); was the folder removed?", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
