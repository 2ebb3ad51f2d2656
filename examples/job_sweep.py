"""A sweep of shell jobs over a parameter space, param_search style, on the local queue.

Every point of ``term1 x term2`` becomes a job folder with a filled ``job.sh``;
the jobs run as local processes (two at a time), each writes a metrics file,
and the metrics are gathered into one DataFrame and plotted against the
parameters. On a cluster, change ``use="local"`` to ``"slurm"``, ``"sge"`` or
``"pbs"``.

Run::

    python examples/job_sweep.py [FOLDER]     # default: ./job-sweep

Needs matplotlib for the plot: ``pip install -e ".[plot]"``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import parallelize.jobs as ps

TEMPLATE = """\
#!/bin/bash
#SBATCH --job-name={job_name}
#SBATCH --time=0:05:00
product=`python3 -c "print({term1}*{term2})"`
quotient=`python3 -c "print({term1}/{term2})"`

echo "product quotient" > {job_name}.metrics
echo "$product $quotient" >> {job_name}.metrics
"""


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "job-sweep")
    space = ps.ParamSpace(term1=range(4), term2=range(4))
    jobs = ps.submit(
        TEMPLATE, "job_{term1}_{term2}", space, use="local", work_dir=folder, max_running=2, overwrite=True
    )
    jobs = ps.wait(jobs)
    print(jobs[["term1", "term2", "job_id", "status", "exit_code"]].to_string(index=False))
    failed = jobs[jobs["stderr"] != ""]
    print(f"\n{len(failed)} job(s) wrote to stderr (dividing by zero), and still exited 0:")
    print(failed.iloc[0]["stderr"].strip().splitlines()[-1])

    metrics = ps.metrics(jobs)
    print("\n" + metrics[["term1", "term2", "product", "quotient", "metrics_error"]].to_string(index=False))
    fig = ps.plot(metrics, x=["term1", "term2"], y=["product", "quotient"])
    fig.savefig(folder / "sweep.png", dpi=80)
    print(f"\nplot: {folder / 'sweep.png'}")


if __name__ == "__main__":
    main()
