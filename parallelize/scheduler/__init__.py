"""Batch schedulers (Slurm, Grid Engine, PBS/Torque): submit job-script arrays, read their state, cancel.

The layer that the cluster backends (``parallelize.backends.cluster``) and
shell-template sweeps stand on; it imports nothing of parallelize but the core.

========================  ==========================================================
``base.py``               ``Scheduler``: the interface; ``run``: one command, errors named
``slurm.py``              ``sbatch --parsable --array``, ``squeue --states=all``, ``scancel``
``sge.py``                Grid Engine: ``qsub -terse -t``, ``qstat``, ``qdel``
``pbs.py``                PBS Pro / Torque: ``qsub -J`` / ``-t``, ``qstat``, ``qdel``
========================  ==========================================================
"""

from __future__ import annotations

import importlib

from ..validate import check_choice
from .base import Scheduler

__all__ = ["SCHEDULERS", "Scheduler", "get_scheduler"]

#: name -> "module:Class", imported on first use.
SCHEDULERS = {
    "slurm": "parallelize.scheduler.slurm:Slurm",
    "sge": "parallelize.scheduler.sge:GridEngine",
    "pbs": "parallelize.scheduler.pbs:PBS",
}


def get_scheduler(name: str) -> Scheduler:
    """A new dialect object for the scheduler ``name``.

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    check_choice("scheduler", name, SCHEDULERS)
    module, _, attr = SCHEDULERS[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    scheduler: Scheduler = cls()
    return scheduler
