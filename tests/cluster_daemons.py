"""Real batch schedulers for the tests: a one-node Slurm (and Grid Engine), started once per session.

``tests/clusters/slurm.sh`` installs (with ``install``, as ``.ci/run`` does) and
starts the daemons; here the session only starts them when the commands are
installed and this process may (root), and otherwise says why the tests skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "clusters"


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_slurm() -> str | None:
    """Start the test Slurm if needed; ``None`` when it answers, else why it cannot."""
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        return "Slurm is not installed here (tests/clusters/slurm.sh install; .ci/run does it)"
    if _works(["sinfo", "-h"]) and _works(["scontrol", "ping"]):
        return None
    if os.geteuid() != 0:
        return "Slurm is installed but not running, and starting it needs root (tests/clusters/slurm.sh start)"
    done = subprocess.run([str(SCRIPTS / "slurm.sh"), "start"], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return f"tests/clusters/slurm.sh start failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return None


def sge_environment() -> dict[str, str]:
    """The variables a Grid Engine client needs (from ``tests/clusters/sge.sh env``)."""
    done = subprocess.run([str(SCRIPTS / "sge.sh"), "env"], capture_output=True, text=True, timeout=30)
    env: dict[str, str] = {}
    for line in done.stdout.splitlines():
        line = line.removeprefix("export ").strip()
        if "=" in line:
            key, value = line.split("=", 1)
            env[key] = value.strip("'\"")
    return env


def ensure_sge() -> str | None:
    """Start the test Grid Engine if needed (both daemons); ``None`` when it runs jobs, else why not."""
    if shutil.which("qsub") is None or not Path("/usr/sbin/sge_qmaster").exists():
        return "Grid Engine is not installed here (tests/clusters/sge.sh install; .ci/run does it)"
    os.environ.update(sge_environment())
    if os.geteuid() != 0:
        return None if _works(["qstat", "-g", "c"]) else "Grid Engine is not running, and starting it needs root"
    # Idempotent, and it restarts a daemon that died (about 1 s when both are up).
    done = subprocess.run([str(SCRIPTS / "sge.sh"), "start"], capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        return f"tests/clusters/sge.sh start failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return None
