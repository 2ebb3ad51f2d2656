"""The local queue's supervisor: ``python -m parallelize.jobs.local PLAN``.

``PLAN`` is a JSON file ``{"max_running": N, "jobs": [folder, ...]}`` written by
``LocalQueue``. The supervisor runs each folder's
``job.sh`` with ``/bin/bash``, in that folder, ``N`` at a time and in order,
its stdout and stderr going to ``stdout`` and ``stderr`` there. Each job runs
in a session of its own (so a cancel can stop its whole process group); the
supervisor writes its process id to ``local.pid`` when it starts and its
return code to ``local.returncode`` when it ends (negative: killed by that
signal). A folder with a ``cancelled`` file is skipped. The job script writes
its own ``exit_status``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main", "run_plan"]

POLL_SECONDS = 0.05


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_plan(plan: Path) -> int:
    """Run the plan's jobs to the end; return 0."""
    doc = json.loads(plan.read_text())
    limit = max(int(doc["max_running"]), 1)
    waiting = [Path(p) for p in doc["jobs"]]
    running: dict[Path, subprocess.Popen[bytes]] = {}
    while waiting or running:
        for folder, proc in list(running.items()):
            code = proc.poll()
            if code is not None:
                _write(folder / "local.returncode", str(code))
                del running[folder]
        while waiting and len(running) < limit:
            folder = waiting.pop(0)
            if (folder / "cancelled").exists():
                continue
            with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
                proc = subprocess.Popen(
                    ["/bin/bash", "job.sh"],
                    cwd=folder,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            running[folder] = proc
            _write(folder / "local.pid", str(proc.pid))
            if (folder / "cancelled").exists():  # cancelled while it was being started
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except OSError:
                    pass
        time.sleep(POLL_SECONDS)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m parallelize.jobs.local PLAN", file=sys.stderr)
        return 2
    return run_plan(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
