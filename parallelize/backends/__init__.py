"""Backends: where tasks run. A registry of names, each module loaded on first use.

========  ==============================================================
name      runs tasks on
========  ==============================================================
thread    a thread pool in this process (default; good for I/O and GIL-free code)
process   worker processes this runner owns, with cloudpickle (CPU-bound Python)
serial    the calling thread, one at a time (debugging, profiling)
dask      a Dask distributed cluster (``pip install "parallelize[dask]"``)
slurm     array jobs of a Slurm cluster, results through a shared folder
sge       array jobs of Grid Engine, the same way
pbs       array jobs of PBS Pro or Torque, the same way
========  ==============================================================
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Literal

from ..errors import ConfigError
from ..validate import check_choice
from .base import Backend

__all__ = ["Backend", "BackendName", "available_backends", "get_backend_class", "make_backend", "register_backend"]

#: The backends that ship with parallelize (others may be added with ``register_backend``).
BackendName = Literal["thread", "process", "serial", "dask", "slurm", "sge", "pbs"]

# name -> "module:Class", imported lazily so that `import parallelize` never pays
# for loky or dask until a runner actually uses them.
_REGISTRY: dict[str, str | Callable[..., Backend]] = {
    "thread": "parallelize.backends.thread:ThreadBackend",
    "process": "parallelize.backends.process:ProcessBackend",
    "serial": "parallelize.backends.serial:SerialBackend",
    "dask": "parallelize.backends.dask:DaskBackend",
    "slurm": "parallelize.backends.cluster:SlurmBackend",
    "sge": "parallelize.backends.cluster:GridEngineBackend",
    "pbs": "parallelize.backends.cluster:PBSBackend",
}


def register_backend(name: str, factory: str | Callable[..., Backend]) -> None:
    """Make a backend available as ``Parallelize(backend=name)``.

    Args:
        name: the name users pass.
        factory: a ``Backend`` subclass (or callable building one), or a
            ``"module:Class"`` string imported on first use.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"backend name must be a non-empty string, got {name!r}")
    _REGISTRY[name] = factory


def available_backends() -> list[str]:
    """The registered backend names, sorted."""
    return sorted(_REGISTRY)


def get_backend_class(name: str) -> Callable[..., Backend]:
    """The backend registered as ``name``, importing its module if needed.

    Raises:
        ConfigError: ``name`` is not registered (the message lists those that are).
        BackendUnavailableError: the backend's library is not installed.
    """
    check_choice("backend", name, _REGISTRY)
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        _REGISTRY[name] = factory
    return factory


def make_backend(name: str, max_workers: int | None, initializer: Callable[[], None] | None, **options: Any) -> Backend:
    """Build the backend registered as ``name``.

    Args:
        name: a registered name (see ``available_backends``).
        max_workers: tasks run at once, or ``None`` for the backend's own choice.
        initializer: called once in each worker, or ``None``.
        **options: the backend's own options.
    """
    if not isinstance(name, str):
        raise ConfigError(f"backend must be a name such as 'thread' or 'process', got {name!r}")
    return get_backend_class(name)(max_workers, initializer, **options)
