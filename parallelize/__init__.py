"""parallelize: run a function over many inputs and parameter grids in parallel.

On threads, processes or a Dask cluster, with parameter-space algebra, results
as DataFrames, resume after a crash, and timing statistics.
"""

from .batchify import Batchify
from .checkpoint import Checkpoint
from .decorator import ParallelFunction, parallel
from .errors import (
    BackendUnavailableError,
    ConfigError,
    ParallelizeError,
    PicklingError,
    ResumeMismatchError,
    SchedulerUnreachableError,
    TaskTimeoutError,
    WorkerCrashedError,
)
from .execution import Execution
from .memory import MemoryReport, reduce_mem_usage
from .model_evaluator import ModelEvaluator
from .mp_lock import MpLockReport, is_completed, mp_lock, mp_lock_values
from .options import RunOptions
from .runner import Parallelize
from .space import Params, ParamSpace, Space, params_hash, zip_spaces
from .statistics import DurationSummary, Statistics, WorkerStatistics
from .stream import ResultStream
from .task import TaskFailure, WorkerContext, worker_context
from .writer import WriteSummary, read_results

__version__ = "0.1.0"

__all__ = [
    # running
    "Parallelize",
    "ModelEvaluator",
    "Batchify",
    "parallel",
    "ParallelFunction",
    "Execution",
    "ResultStream",
    "RunOptions",
    "worker_context",
    "WorkerContext",
    "TaskFailure",
    # resume, and multiprocessing_lib's API
    "Checkpoint",
    "mp_lock",
    "mp_lock_values",
    "is_completed",
    "MpLockReport",
    # results as tables and files
    "read_results",
    "WriteSummary",
    "reduce_mem_usage",
    "MemoryReport",
    # parameter spaces
    "ParamSpace",
    "Params",
    "Space",
    "params_hash",
    "zip_spaces",
    # statistics
    "Statistics",
    "DurationSummary",
    "WorkerStatistics",
    # errors
    "ParallelizeError",
    "ConfigError",
    "BackendUnavailableError",
    "TaskTimeoutError",
    "WorkerCrashedError",
    "PicklingError",
    "ResumeMismatchError",
    "SchedulerUnreachableError",
]
