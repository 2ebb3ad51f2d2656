"""scikit-learn's GridSearchCV on joblib's default backend (loky) and on parallelize's joblib backend.

Usage::

    pip install -e ".[bench,examples]"
    python benchmarks/joblib_backend.py              # 3 x 3 grid, 5 folds, 5 pairs (about 20-30 s on 2 cores)
    python benchmarks/joblib_backend.py --pairs 9
    python benchmarks/joblib_backend.py --quick      # a tiny smoke run, a few seconds, no load check

The same search (``GridSearchCV(SVC(), grid, cv=5, n_jobs=2)`` on the full
digits data, 45 fits) runs under loky and under
``parallel_config(backend="parallelize")`` with worker processes, alternating
in this one process with the pairing of ``benchmarks/pairs.py`` (both warm:
loky's reusable executor, and one ``ParallelizeBackend`` whose runner stays up
across the pairs). The figure is the median of the per-pair ratios
parallelize / loky (below 1: parallelize is faster), with the range. Both
searches are checked to find the same ``best_params_`` and scores, outside the
timed region. The machine's load is recorded first, and the run is refused
when other processes keep more than ``--max-busy`` cores busy.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pairs import busy_cores, pairs, refused_row, table_row  # noqa: E402  (puts the checkout on sys.path too)

from parallelize.joblib_backend import ParallelizeBackend, last_runner  # noqa: E402

# A smaller cut of the README's main job (9 x 13 C x gamma, 5 folds): 9 settings x 5 folds.
GRID = {"C": [1.0, 10.0, 100.0], "gamma": [1e-4, 5e-4, 1e-3]}
FOLDS = 5
QUICK_GRID = {"C": [1.0, 10.0], "gamma": [1e-3]}
QUICK_FOLDS = 3
QUICK_SAMPLES = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5, help="timed pairs (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="n_jobs of the search (default 2)")
    parser.add_argument("--max-busy", type=float, default=0.5, help="refuse the run when others use more cores")
    parser.add_argument("--quick", action="store_true", help="a tiny grid and one pair: checks that it runs")
    args = parser.parse_args()

    import joblib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    grid, folds, n_pairs = (QUICK_GRID, QUICK_FOLDS, 1) if args.quick else (GRID, FOLDS, args.pairs)
    if args.quick:
        X, y = X[:QUICK_SAMPLES], y[:QUICK_SAMPLES]
    fits = len(grid["C"]) * len(grid["gamma"]) * folds
    backend = ParallelizeBackend(runner_backend="process")  # one runner, kept warm across the pairs

    def search() -> Any:
        return GridSearchCV(SVC(), grid, cv=folds, n_jobs=args.workers).fit(X, y)

    def loky() -> Any:
        return search()  # no parallel_config: joblib's default backend

    def ours() -> Any:
        with joblib.parallel_config(backend=backend):
            return search()

    # Correctness, untimed (and both sides warm before the pairs).
    expected, got = loky(), ours()
    if got.best_params_ != expected.best_params_ or not np.array_equal(
        got.cv_results_["mean_test_score"], expected.cv_results_["mean_test_score"]
    ):
        raise SystemExit(f"the searches disagree: loky {expected.best_params_}, parallelize {got.best_params_}")

    load = busy_cores()
    label = (
        f"GridSearchCV(SVC()) on digits ({X.shape[0]} images), {fits} fits, n_jobs={args.workers}: "
        'loky vs `parallel_config(backend="parallelize")`, processes'
    )
    print(f"{os.cpu_count()} cores, {n_pairs} pair(s); others' load {load:.2f} cores", flush=True)
    print("| case | ratio (range) | loky | parallelize | others' load |")
    print("|---|---|---|---|---|")
    if load > args.max_busy and not args.quick:
        print(refused_row(label, load))
        return
    print(table_row(label, pairs(loky, ours, n_pairs), load, seconds=True))
    runner = last_runner()  # the backend's own runner: only its calls are recorded there
    if runner is not None:
        stats = runner.statistics()
        print(
            f"\nparallelize ran {stats.completed} joblib batches for {fits * (n_pairs + 2)} fits "
            f"(joblib groups short fits into one batch), mean utilisation {stats.utilisation:.0%}"
        )


if __name__ == "__main__":
    main()
