"""The jobs table: one row per point of the space, its parameters first, then these columns."""

from __future__ import annotations

#: The columns a jobs table has after the parameters' own, in order.
JOB_COLUMNS = ("job_name", "job_id", "work_dir", "status", "exit_code", "stdout", "stderr")
