"""Shell job templates over a parameter space (param_search): submit, status, metrics, plots.

``import parallelize.jobs as ps``::

    jobs = ps.submit(template, "job_{lr}", ps.ParamSpace(lr=[0.1, 0.01]), use="slurm")
    jobs = ps.wait(jobs)          # or ps.status(jobs), ps.cancel(jobs), ps.load(work_dir)
    table = ps.metrics(jobs)      # the jobs' metrics files, joined to their parameters
    fig = ps.plot(table, x=["lr"], y=["loss"])

=================  ==============================================================
``template.py``    filling templates and names; the exit-status trap
``queues.py``      Slurm / Grid Engine / PBS (over ``parallelize.scheduler``) and the local queue
``local.py``       the local queue's supervisor process
``sweep.py``       submit, status, wait, cancel, load; the sweep's folder
``table.py``       the jobs table's columns
``metrics.py``     metrics files (and results frames) gathered into one DataFrame
``plot.py``        metrics against parameters, as a matplotlib Figure
=================  ==============================================================
"""

from __future__ import annotations

from ..hashing import params_hash
from ..space import Params, ParamSpace

# The functions, bound after their modules of the same names were imported, are the package's attributes.
from .metrics import metrics
from .plot import plot
from .sweep import cancel, load, status, submit, wait

__all__ = ["ParamSpace", "Params", "cancel", "load", "metrics", "params_hash", "plot", "status", "submit", "wait"]
