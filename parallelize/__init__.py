"""parallelize: run a function over many inputs and parameter grids in parallel.

On threads, processes or a Dask cluster, with parameter-space algebra, results
as DataFrames, resume after a crash, and timing statistics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batchify import Batchify
    from .checkpoint import Checkpoint
    from .decorator import ParallelFunction, parallel
    from .engine.async_stream import AsyncResultStream
    from .engine.execution import Execution
    from .engine.progress import PlainProgress
    from .engine.stream import ResultStream
    from .errors import (
        BackendUnavailableError,
        CheckpointError,
        ConfigError,
        JobCancelledError,
        ParallelizeError,
        PicklingError,
        ResumeMismatchError,
        RunnerClosedError,
        SchedulerUnreachableError,
        SubmissionError,
        TaskExitError,
        TaskLostError,
        TaskTimeoutError,
        WorkerCrashedError,
        WorkerInitError,
    )
    from .executor import Executor
    from .joblib_backend import register_joblib_backend
    from .model_evaluator import ModelEvaluator
    from .mplock import MpLockReport, is_completed, is_mp_lock_completed, mp_lock, mp_lock_value, mp_lock_values
    from .options import RunOptions
    from .results.memory import MemoryReport, reduce_mem_usage
    from .results.reading import read_results
    from .results.summary import WriteSummary
    from .runner import Parallelize
    from .space import Params, ParamSpace, Space, params_hash, zip_spaces
    from .statistics import DurationSummary, Statistics, WorkerStatistics
    from .worker.context import WorkerContext, worker_context
    from .worker.failure import TaskFailure

# Names are imported on first use (PEP 562): a worker process imports
# `parallelize.worker.batch` and so this package, and must not pay for the runner,
# spaces, checkpoints and writers it never uses (about 50 ms per worker).
_LAZY: dict[str, str] = {
    "Batchify": "batchify",
    "Checkpoint": "checkpoint",
    "ParallelFunction": "decorator",
    "parallel": "decorator",
    "BackendUnavailableError": "errors",
    "CheckpointError": "errors",
    "ConfigError": "errors",
    "RunnerClosedError": "errors",
    "ParallelizeError": "errors",
    "PicklingError": "errors",
    "ResumeMismatchError": "errors",
    "SchedulerUnreachableError": "errors",
    "SubmissionError": "errors",
    "TaskExitError": "errors",
    "TaskLostError": "errors",
    "JobCancelledError": "errors",
    "TaskTimeoutError": "errors",
    "WorkerCrashedError": "errors",
    "WorkerInitError": "errors",
    "Execution": "engine.execution",
    "Executor": "executor",
    "AsyncResultStream": "engine.async_stream",
    "PlainProgress": "engine.progress",
    "MemoryReport": "results.memory",
    "reduce_mem_usage": "results.memory",
    "ModelEvaluator": "model_evaluator",
    "register_joblib_backend": "joblib_backend",
    "MpLockReport": "mplock",
    "is_completed": "mplock",
    "is_mp_lock_completed": "mplock",
    "mp_lock": "mplock",
    "mp_lock_values": "mplock",
    "mp_lock_value": "mplock",
    "RunOptions": "options",
    "Parallelize": "runner",
    "Params": "space",
    "ParamSpace": "space",
    "Space": "space",
    "params_hash": "space",
    "zip_spaces": "space",
    "DurationSummary": "statistics",
    "Statistics": "statistics",
    "WorkerStatistics": "statistics",
    "ResultStream": "engine.stream",
    "TaskFailure": "worker.failure",
    "WorkerContext": "worker.context",
    "worker_context": "worker.context",
    "WriteSummary": "results.summary",
    "read_results": "results.reading",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'parallelize' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
    "AsyncResultStream",
    "PlainProgress",
    "RunOptions",
    "worker_context",
    "WorkerContext",
    "TaskFailure",
    "register_joblib_backend",
    "Executor",
    # resume, and multiprocessing_lib's API
    "Checkpoint",
    "mp_lock",
    "mp_lock_values",
    "mp_lock_value",
    "is_completed",
    "is_mp_lock_completed",
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
    "TaskExitError",
    "WorkerCrashedError",
    "TaskLostError",
    "JobCancelledError",
    "WorkerInitError",
    "PicklingError",
    "ResumeMismatchError",
    "CheckpointError",
    "RunnerClosedError",
    "SchedulerUnreachableError",
    "SubmissionError",
]
