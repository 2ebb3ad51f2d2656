"""An mproc-style sweep: a config dict, results saved to files in batches, loaded back.

A ``CONFIG = {name: [values]}`` dict is swept in one of three modes
(``uniform``: values zipped; ``combinatorial``: every combination; ``random``:
``n_samples`` random points), the function runs on worker processes, and its
results are written every ``max_rows`` rows to Parquet (or CSV) files while the
sweep runs, each file also kept under ``max_mem`` MB. The files are then loaded
back in input order and shrunk with ``reduce_mem_usage``, which never changes a
value. The same function also runs over the rows of a DataFrame, the way mproc
called it (``func((index, row))``).

Run: ``python examples/mproc_sweep.py [uniform|combinatorial|random] [parquet|csv]``
"""

from __future__ import annotations

import sys
import tempfile

import pandas as pd

from parallelize import Parallelize, ParamSpace, read_results, reduce_mem_usage

CONFIG = {
    "number": list(range(0, 400, 4)),
    "divisor": [2, 3, 5, 7],
    "scale": [0.5, 1.0, 2.0, 4.0],
}


def divides(number: int, divisor: int, scale: float) -> list[dict[str, float]]:
    """One row per check: several rows per parameter point (a list of dicts)."""
    return [
        {"check": "divides", "value": float(number % divisor == 0)},
        {"check": "scaled", "value": number * scale},
    ]


def divides_row(pair: tuple[int, pd.Series]) -> dict[str, bool]:
    """The mproc signature: the ``(index, row)`` pair of ``DataFrame.iterrows()``."""
    index, row = pair
    return {"divides": bool(row["number"] % row["divisor"] == 0)}


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "combinatorial"
    fmt = sys.argv[2] if len(sys.argv) > 2 else "parquet"
    options = {"n_samples": 500, "seed": 0} if mode == "random" else {}
    config = CONFIG if mode != "uniform" else {k: v[:4] for k, v in CONFIG.items()}
    space = ParamSpace.from_dict(config, mode=mode, **options)
    print(f"mode={mode}: {len(space)} points, format={fmt}")

    with tempfile.TemporaryDirectory() as folder, Parallelize(2, backend="process") as runner:
        summary = runner.map(divides, space).to_files(folder, max_rows=250, max_mem=0.02, format=fmt)
        print(summary)
        names = [p.name for p in summary.files]
        print("files:", ", ".join(names[:3]) + (f", ... {names[-1]}" if len(names) > 3 else ""))

        results = read_results(folder)
        print(f"loaded {len(results)} rows; first task positions: {results.index[:6].tolist()}")
        print(results[["number", "divisor", "scale", "check", "value", "error"]].head(4).to_string())

        reduced, report = reduce_mem_usage(results)
        print(report)
        print("dtypes:", {c: str(t) for c, t in reduced.dtypes.items() if c in ("number", "divisor", "scale", "value")})

        # The mproc way: the parameters as a DataFrame, one task per row. The
        # results are indexed like the input rows, so they join back onto them.
        params = pd.DataFrame([dict(p) for p in space]).head(6).rename_axis("point")
        rows = runner.map_rows(divides_row, params).to_dataframe()
        print(params.join(rows[["divides"]]).to_string())


if __name__ == "__main__":
    main()
