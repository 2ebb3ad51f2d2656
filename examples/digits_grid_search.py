"""Grid search of a support vector classifier on the digits data set, across processes.

Every point of a ``C x gamma`` grid is one task: a 5-fold cross-validated
accuracy of ``SVC(C=C, gamma=gamma)`` on scikit-learn's bundled digits images
(1797 8x8 images, no download). The tasks run on a pool of worker processes with
a progress bar; the data is shipped once per worker as ``shared_data``, and each
worker is limited to one BLAS/OpenMP thread so that the processes, not the
threads inside them, share the CPUs.

Run::

    python examples/digits_grid_search.py            # 9 x 13 grid, 117 tasks
    python examples/digits_grid_search.py --quick    # 2 x 2 grid, a few seconds
    python examples/digits_grid_search.py --workers 4

It ends by saving ``digits_grid.png``: the accuracy against C and against
gamma, each averaged over the other (``evaluator.plot``). Needs scikit-learn
and matplotlib: ``pip install -e ".[examples]"``.
"""

from __future__ import annotations

import argparse
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC

from parallelize import ModelEvaluator, Parallelize, ParamSpace, worker_context

# The default grid: C over four decades, gamma over five (log-spaced).
FULL_GRID = {
    "C": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0],
    "gamma": [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1],
}
QUICK_GRID = {"C": [1.0, 10.0], "gamma": [1e-4, 1e-3]}


def cv_score(C: float, gamma: float, folds: int) -> dict[str, float]:
    """Cross-validated accuracy of one SVC on the digits data.

    Runs in a worker process; the data comes from the runner's ``shared_data``.

    Args:
        C: the SVC's regularisation parameter.
        gamma: the RBF kernel's coefficient.
        folds: number of cross-validation folds.

    Returns:
        ``accuracy`` and ``std``: the mean and the standard deviation of the
        accuracy over the folds.
    """
    X, y = worker_context().shared_data
    # n_jobs=1: the parallelism is across grid points, one process each.
    scores = cross_val_score(SVC(C=C, gamma=gamma), X, y, cv=folds, n_jobs=1)
    return {"accuracy": float(scores.mean()), "std": float(scores.std())}


def main() -> None:
    """Parse the command line, run the grid search and print the ranking and statistics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2 x 2 grid with 3 folds (a few seconds)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all CPUs)")
    args = parser.parse_args()

    grid = QUICK_GRID if args.quick else FULL_GRID
    folds = 3 if args.quick else 5
    X, y = load_digits(return_X_y=True)
    space = ParamSpace(C=grid["C"], gamma=grid["gamma"])
    print(
        f"digits: {X.shape[0]} images, {X.shape[1]} features; {len(space)} SVC settings x {folds}-fold cross-validation"
    )

    start = time.perf_counter()
    runner = Parallelize(
        args.workers,
        backend="process",
        progress=True,
        shared_data=(X, y),
        env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )
    with runner:
        evaluator = ModelEvaluator(runner)
        evaluator.run(cv_score, space, folds=folds)
        # Grid order, so each score lines up with its point of the space.
        scores = list(evaluator.results(ordered=True))
    elapsed = time.perf_counter() - start

    # Best accuracy first; among ties, the steadier, then the more regularised (smaller C).
    ranked = sorted(zip(space, scores, strict=True), key=lambda ps: (-ps[1]["accuracy"], ps[1]["std"], ps[0]["C"]))
    best, best_score = ranked[0]
    best_mean, best_std = best_score["accuracy"], best_score["std"]
    print(f"\nbest: C={best['C']:g} gamma={best['gamma']:g} accuracy {best_mean:.4f} +/- {best_std:.4f}")

    print("\ntop 5")
    print(f"{'rank':>4}  {'C':>8}  {'gamma':>8}  {'accuracy':>8}  {'std':>6}")
    for rank, (point, score) in enumerate(ranked[:5], start=1):
        mean, std = score["accuracy"], score["std"]
        print(f"{rank:>4}  {point['C']:>8g}  {point['gamma']:>8g}  {mean:>8.4f}  {std:>6.4f}")

    print(f"\n{len(scores)} tasks in {elapsed:.1f} s on {runner.max_workers} worker processes\n")
    print(evaluator.statistics())

    # The accuracy against each parameter, averaged over the other (band: one std).
    fig = evaluator.plot(x=["C", "gamma"], y=["accuracy"])
    for ax in fig.axes:
        ax.set_xscale("log")
    fig.savefig("digits_grid.png", dpi=80)
    print("\nplot: digits_grid.png")


if __name__ == "__main__":
    main()
