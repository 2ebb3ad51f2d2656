"""The command line: sweep a config file's parameters and save the results (mproc).

A config file is a Python file that defines:

    CONFIG = {"lr": [0.1, 0.01], "depth": [2, 4, 8]}   # parameter name -> values
    def function(index_row): ...                        # or: function = my_function

and optionally ``MODE`` ("combinatorial", "uniform" or "random"), ``N_SAMPLES``,
``SEED`` and ``PASS_AS`` ("pair": ``function((index, row))`` as
``DataFrame.iterrows()`` gives it, the mproc way; "kwargs": ``function(**row)``).
Command-line options override the file. Results are written while the sweep
runs, every ``--max-rows`` rows, into files of at most about ``--max-mem`` MB,
each row keeping the index of its parameter row:

    parallelize sweep MPROC_CONFIG.py --out results/ --workers 4 --mode random --n-samples 100
    python -m parallelize sweep MPROC_CONFIG.py --out results/ --format csv
    parallelize sweep MPROC_CONFIG.py --out results/ --resume     # after a Ctrl-C or a crash

The output folder holds ``part-*.parquet`` (or ``.csv``) files in row order,
``_results.json``, ``_params.csv`` (the parameter table) and ``.checkpoint/``,
where each finished row is recorded before it is written. ``--resume`` reads
that checkpoint, computes only the rows not yet done (and rows that failed),
and rewrites the result files so that each row appears once, in order. It
fails if the config's rows are not those of the checkpoint. Results that are
not plain data are stored pickled; ``--resume`` loads them, so only resume
folders you wrote yourself.

Exit statuses:

- 0: every row done.
- 1: some rows failed; they are in the files with their ``error`` column set
  (or, with ``--on-error raise``, the sweep stopped at the first one).
- 2: bad usage or a bad config file (including a syntax or import error in it:
  the message names the file and line), a folder already holding results
  without ``--overwrite`` or ``--resume``, or a ``--resume`` that cannot resume.
- 3: the output folder cannot be written (checked before any row runs).
- 130: interrupted (Ctrl-C); the rows finished so far are kept, and
  ``--resume`` continues from them.

Every failure is reported on one line, ``parallelize: error: ...``, naming the
command's flags, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import sys
import traceback
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, NoReturn, Sequence

from . import __version__
from .backends import available_backends
from .errors import BackendUnavailableError, ConfigError, ResumeMismatchError
from .options import ON_ERROR
from .results.folder import FORMATS, require_pyarrow
from .results.rows import PASS_AS, RowCall
from .validate import check_callable, check_choice, check_int

__all__ = ["load_config", "main"]

EXIT_FAILED_ROWS = 1
EXIT_USAGE = 2
EXIT_OUTPUT = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C

# The modes of ParamSpace.from_dict (space.py checks them inline; no constant to import).
MODES = ("combinatorial", "uniform", "random")

CHECKPOINT = ".checkpoint"  # inside the output folder
PARAMS = "_params.csv"

# Library names in messages -> the flags that set them; "x=" forms first.
_FLAGS = [
    (r"\boverwrite=True\b", "--overwrite"),
    (r"\bmode='(\w+)'", r"--mode \1"),
    (r"\bformat=\"(\w+)\"", r"--format \1"),
    (r"\bon_error policy\b", "--on-error"),
    (r"\bmax_workers\b", "--workers"),
    (r"\bn_samples\b", "--n-samples"),
    (r"\bmax_rows\b", "--max-rows"),
    (r"\bmax_mem\b", "--max-mem"),
    (r"\bpass_as\b", "--pass-as"),
    (r"\bon_error\b", "--on-error"),
    (r"\breduce_mem_usage\b", "--reduce-mem-usage"),
    (r"\b(unknown )?(backend|mode|format|seed)\b(?= must| '| are)", r"\1--\2"),
]


class _Fail(Exception):
    """A failure of the command itself, with its exit status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _flags(message: str) -> str:
    """``message`` with the library's argument names replaced by the command's flags."""
    for pattern, flag in _FLAGS:
        message = re.sub(pattern, flag, message)
    return message


def _where(exc: BaseException, folder: Path, default: Path) -> str:
    """``FILE:LINE`` of the innermost frame of ``exc`` in the config's folder."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve().parent == folder]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(default)


def load_config(path: str | Path) -> ModuleType:
    """Import a config file as a module.

    Args:
        path: the ``.py`` file defining ``CONFIG`` and ``function``.

    Raises:
        ConfigError: the file is missing, fails to import (syntax error, import
            error, any exception: the message names the file and line), or lacks
            ``CONFIG`` or ``function``.
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
    except Exception as exc:
        del sys.modules[name]
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        where = _where(exc, Path(folder), file)
        raise ConfigError(f"{where}: {type(exc).__name__}: {message}") from exc
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
    check_callable(f"'function' in {str(file)!r}", module.function)
    return module


class _PairCall:
    """Calls ``func((label, row))``, the row a Series as ``DataFrame.iterrows()`` gives it.

    Inputs travel as ``(label, dict)``: plain data, which the checkpoint hashes
    by value, so a rerun recognises its rows.
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def __call__(self, item: tuple[int, dict[str, Any]]) -> Any:
        import pandas as pd

        label, fields = item
        return self.func((label, pd.Series(fields, name=label)))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"parallelize: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="parallelize", description="Parallel parameter sweeps.")
    parser.add_argument("--version", action="version", version=f"parallelize {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="sweep the parameters of a config file and save the results")
    sweep.add_argument("config", help="Python file defining CONFIG and function")
    sweep.add_argument("--out", required=True, help="folder for the result files")
    sweep.add_argument("--mode", choices=MODES, help="how to sweep CONFIG")
    sweep.add_argument("--n-samples", type=int, help="points to draw in random mode")
    sweep.add_argument("--seed", type=int, help="seed of random mode")
    sweep.add_argument("--pass-as", choices=PASS_AS, help="how each row reaches the function")
    sweep.add_argument("--workers", type=int, default=None, help="worker processes (default: all CPUs)")
    sweep.add_argument("--backend", choices=available_backends(), default="process", help="default: process")
    sweep.add_argument("--max-rows", type=int, default=10_000, help="rows per file written (default 10000)")
    sweep.add_argument("--max-mem", type=float, default=None, help="approximate MB per file")
    sweep.add_argument("--format", choices=list(FORMATS), default="parquet", help="file format")
    sweep.add_argument("--reduce-mem-usage", action="store_true", help="downcast numbers without changing a value")
    sweep.add_argument(
        "--on-error",
        choices=ON_ERROR,
        default="collect",
        help="what a failing row does (default collect: kept with its error)",
    )
    again = sweep.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    again.add_argument("--resume", action="store_true", help="continue the interrupted sweep in --out")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _prepare_output(out: Path, overwrite: bool, resume: bool) -> None:
    """Check ``out`` before any row runs: usable (else 2) and writable (else 3)."""
    from .checkpoint import MANIFEST

    if out.exists() and not out.is_dir():
        raise _Fail(EXIT_OUTPUT, f"--out {str(out)!r} is a file; give a folder path")
    checkpoint = out / CHECKPOINT
    if resume and not (checkpoint / MANIFEST).is_file():
        raise _Fail(
            EXIT_USAGE,
            f"--resume: {str(out)!r} holds no sweep to resume (no {CHECKPOINT}/ checkpoint in it); "
            "run without --resume to start the sweep",
        )
    if out.is_dir() and any(out.iterdir()) and not (overwrite or resume):
        raise _Fail(
            EXIT_USAGE,
            f"--out {str(out)!r} is not empty; pass --overwrite to replace its results, "
            "--resume to continue the sweep in it, or choose another folder",
        )
    probe = out / f".parallelize-probe-{uuid.uuid4().hex}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _Fail(EXIT_OUTPUT, f"cannot write to --out {str(out)!r}: {exc.strerror or exc}") from exc
    if overwrite:
        shutil.rmtree(checkpoint, ignore_errors=True)


def _check_file_options(args: argparse.Namespace) -> None:
    """What write_results checks only once rows arrive: too late to leave --out untouched."""
    check_int("--max-rows", args.max_rows, minimum=1)
    if args.max_mem is not None and not 0 < args.max_mem < float("inf"):
        raise ConfigError(f"--max-mem must be a positive number of megabytes, got {args.max_mem}")
    if args.format == "parquet":
        require_pyarrow("writing", instead="pass --format csv")


def _sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from .checkpoint import Checkpoint
    from .results.files import write_results
    from .results.frame import FrameLayout
    from .runner import Parallelize
    from .space import ParamSpace

    config = load_config(args.config)
    mode = args.mode or getattr(config, "MODE", "combinatorial")
    n_samples = args.n_samples if args.n_samples is not None else getattr(config, "N_SAMPLES", None)
    seed = args.seed if args.seed is not None else getattr(config, "SEED", None)
    pass_as = args.pass_as or getattr(config, "PASS_AS", "pair")
    check_choice("pass_as", pass_as, PASS_AS)
    _check_file_options(args)
    options: dict[str, Any] = {"n_samples": n_samples, "seed": seed} if mode == "random" else {}
    space = ParamSpace.from_dict(config.CONFIG, mode=mode, **options)
    # One row per point, its label the row number users match results against
    # (mproc's advice, kept automatically here). Plain (label, dict) inputs: the
    # checkpoint hashes them by value, so a rerun recognises its rows.
    points = [dict(p) for p in space]
    func = RowCall(config.function) if pass_as == "kwargs" else _PairCall(config.function)
    out = Path(args.out)
    with Parallelize(
        args.workers, backend=args.backend, progress=not args.no_progress, on_error=args.on_error
    ) as runner:
        _prepare_output(out, args.overwrite, args.resume)
        checkpoint = Checkpoint(out / CHECKPOINT, allow_pickle=True)  # our own folder: see the module docstring
        done = sum(1 for p in checkpoint.completed_positions() if p < len(points))
        try:
            stream = runner.map(func, list(enumerate(points)), checkpoint=checkpoint)
        except ResumeMismatchError as exc:
            raise _Fail(
                EXIT_USAGE,
                f"--resume: {str(out)!r} holds another sweep: its recorded rows differ from those of "
                f"{args.config} (were parameter values changed?); pass --overwrite to replace it, "
                "or choose another --out",
            ) from exc
        pd.DataFrame.from_records(points, columns=list(space.keys)).to_csv(out / PARAMS, index_label="index")
        verb = f"resuming ({done} done) a sweep of" if args.resume else "sweeping"
        print(f"{verb} {len(points)} points of {list(space.keys)} in {mode} mode", file=sys.stderr)
        try:
            # Every row, stored ones from the checkpoint too: the files are rewritten whole.
            summary = write_results(
                stream.batches(),
                out,
                layout=FrameLayout("rows", index_names=(None,)),
                skip_failures=args.on_error == "skip",
                max_rows=args.max_rows,
                max_mem=args.max_mem,
                format=args.format,
                reduce_mem_usage=args.reduce_mem_usage,
                overwrite=True,
            )
        except OSError as exc:
            if exc.filename is None or out.resolve() not in Path(exc.filename).resolve().parents:
                raise
            raise _Fail(EXIT_OUTPUT, f"cannot write to --out {str(out)!r}: {exc}") from exc
        stats = stream.statistics()
    print(stats, file=sys.stderr)
    print(f"wrote {summary.rows} rows to {len(summary.files)} file(s) in {out}; parameters in {PARAMS}")
    if stats.failed:
        print(
            f"parallelize: {stats.failed} of {len(points)} rows failed; their 'error' column says why",
            file=sys.stderr,
        )
        return EXIT_FAILED_ROWS
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``parallelize`` command.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 done, 1 some rows failed, 2 bad usage or config,
        3 output folder not writable, 130 interrupted (see the module docstring).
    """
    args = _parser().parse_args(argv)
    try:
        return _sweep(args)
    except KeyboardInterrupt:
        started = (Path(args.out) / CHECKPOINT).is_dir()
        kept = f"; the rows finished so far are in {args.out}: --resume computes the rest" if started else ""
        print(f"parallelize: interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Fail as exc:
        print(f"parallelize: error: {exc}", file=sys.stderr)
        return exc.status
    except (ConfigError, ResumeMismatchError, BackendUnavailableError) as exc:
        print(f"parallelize: error: {_flags(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a row's own error with --on-error raise, or a broken run
        print(
            f"parallelize: error: the sweep stopped: {type(exc).__name__}: {_flags(str(exc))}; "
            f"the rows before it are in {args.out}",
            file=sys.stderr,
        )
        return EXIT_FAILED_ROWS


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
