"""The command line: sweep a config file's parameters and save the results (mproc).

A config file is a Python file that defines::

    CONFIG = {"lr": [0.1, 0.01], "depth": [2, 4, 8]}   # parameter name -> values
    def function(index_row): ...                        # or: function = my_function

and optionally ``MODE`` ("combinatorial", "uniform" or "random"), ``N_SAMPLES``,
``SEED`` and ``PASS_AS`` ("pair": ``function((index, row))`` as
``DataFrame.iterrows()`` gives it, the mproc way; "kwargs": ``function(**row)``).
Command-line options override the file. Results are written while the sweep
runs, every ``--max-rows`` rows, into files of at most about ``--max-mem`` MB,
each row keeping the index of its parameter row::

    parallelize sweep MPROC_CONFIG.py --out results/ --workers 4 --mode random --n-samples 100
    python -m parallelize sweep MPROC_CONFIG.py --out results/ --format csv
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from .errors import ConfigError, ParallelizeError

__all__ = ["load_config", "main"]


def load_config(path: str | Path) -> ModuleType:
    """Import a config file as a module.

    Args:
        path: the ``.py`` file defining ``CONFIG`` and ``function``.

    Raises:
        ConfigError: the file is missing, or lacks ``CONFIG`` or ``function``.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {str(file)!r} does not exist")
    # A unique module name: loading two configs in one process must not mix them.
    name = f"_parallelize_config_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {str(file)!r} as a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(file.resolve().parent)
    sys.modules[name] = module
    sys.path.insert(0, folder)  # let the config import its neighbours
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    # Worker processes cannot import the config, nor the modules next to it:
    # ship their functions by value rather than by module name.
    import cloudpickle

    for mod in list(sys.modules.values()):
        mod_file = getattr(mod, "__file__", None)
        if mod_file and str(Path(mod_file).resolve().parent) == folder:
            cloudpickle.register_pickle_by_value(mod)
    for required in ("CONFIG", "function"):
        if not hasattr(module, required):
            raise ConfigError(
                f"config file {str(file)!r} must define {required!r} "
                "(CONFIG = {name: [values]} and the function to run)"
            )
    if not isinstance(module.CONFIG, dict):
        raise ConfigError(
            f"CONFIG in {str(file)!r} must be a dict of name -> values, got {type(module.CONFIG).__name__}"
        )
    if not callable(module.function):
        raise ConfigError(f"'function' in {str(file)!r} must be callable, got {module.function!r}")
    return module


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parallelize", description="Parallel parameter sweeps.")
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="sweep the parameters of a config file and save the results")
    sweep.add_argument("config", help="Python file defining CONFIG and function")
    sweep.add_argument("--out", required=True, help="folder for the result files")
    sweep.add_argument("--mode", choices=["combinatorial", "uniform", "random"], help="how to sweep CONFIG")
    sweep.add_argument("--n-samples", type=int, help="points to draw in random mode")
    sweep.add_argument("--seed", type=int, help="seed of random mode")
    sweep.add_argument("--pass-as", choices=["pair", "kwargs"], help="how each row reaches the function")
    sweep.add_argument("--workers", type=int, default=None, help="worker processes (default: all CPUs)")
    sweep.add_argument("--backend", default="process", help="thread, process, serial or dask (default: process)")
    sweep.add_argument("--max-rows", type=int, default=10_000, help="rows per file written (default 10000)")
    sweep.add_argument("--max-mem", type=float, default=None, help="approximate MB per file")
    sweep.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="file format")
    sweep.add_argument("--reduce-mem-usage", action="store_true", help="downcast numbers without changing a value")
    sweep.add_argument(
        "--on-error",
        choices=["raise", "collect", "skip"],
        default="collect",
        help="what a failing row does (default collect: kept with its error)",
    )
    sweep.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from .runner import Parallelize
    from .space import ParamSpace

    config = load_config(args.config)
    mode = args.mode or getattr(config, "MODE", "combinatorial")
    n_samples = args.n_samples if args.n_samples is not None else getattr(config, "N_SAMPLES", None)
    seed = args.seed if args.seed is not None else getattr(config, "SEED", None)
    pass_as = args.pass_as or getattr(config, "PASS_AS", "pair")
    options: dict[str, Any] = {"n_samples": n_samples, "seed": seed} if mode == "random" else {}
    space = ParamSpace.from_dict(config.CONFIG, mode=mode, **options)
    # The parameter table: one row per point, its index the row number users
    # match results against (mproc's advice, kept automatically here).
    frame = pd.DataFrame.from_records([dict(p) for p in space], columns=list(space.keys))
    print(f"sweeping {len(frame)} points of {list(space.keys)} in {mode} mode", file=sys.stderr)
    with Parallelize(
        args.workers, backend=args.backend, progress=not args.no_progress, on_error=args.on_error
    ) as runner:
        stream = runner.map_rows(config.function, frame, pass_as=pass_as)
        summary = stream.to_files(
            args.out,
            max_rows=args.max_rows,
            max_mem=args.max_mem,
            format=args.format,
            reduce_mem_usage=args.reduce_mem_usage,
            overwrite=args.overwrite,
        )
        stats = stream.statistics()
    frame.to_csv(Path(args.out) / "_params.csv", index_label="index")
    print(stats, file=sys.stderr)
    print(f"wrote {summary.rows} rows to {len(summary.files)} file(s) in {args.out}; parameters in _params.csv")
    if stats.failed:
        print(
            f"parallelize: {stats.failed} of {len(frame)} rows failed; their 'error' column says why",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``parallelize`` command.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 when some rows failed (their results
        are saved with the error), 2 on a configuration error.
    """
    args = _parser().parse_args(argv)
    try:
        return _sweep(args)
    except ParallelizeError as exc:
        print(f"parallelize: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
