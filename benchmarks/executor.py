"""``parallelize.Executor`` beside ``ProcessPoolExecutor``: same-run pairs, one process.

Usage::

    pip install -e ".[bench]"
    python benchmarks/executor.py             # every case, 7 pairs each (several minutes on 2 cores:
                                              # ProcessPoolExecutor.map with chunksize=1 is slow)
    python benchmarks/executor.py --only submit --pairs 5
    python benchmarks/executor.py --quick     # small sizes, 2 pairs: checks that it runs, measures nothing

Both executors have 2 workers, are warm (started and used once) and alternate
which goes first, with ``benchmarks/pairs.py``'s harness (``pairs``,
``busy_cores``). ``ProcessPoolExecutor`` runs with its defaults (``mp_context``
included). Each figure is the median of the per-pair ratios parallelize / peer
(below 1: parallelize is faster), with the range over the pairs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from pairs import busy_cores, inc, pairs, refused_row, table_row  # noqa: E402

from parallelize.executor import Executor  # noqa: E402

N_TINY = 100_000
N_SUBMIT = 2_000


def _submit_all(executor: concurrent.futures.Executor, n: int) -> list[int]:
    futures = [executor.submit(inc, i) for i in range(n)]
    return [f.result() for f in futures]


def cases(
    peer: concurrent.futures.ProcessPoolExecutor, ours: Executor, n_tiny: int, n_submit: int
) -> dict[str, tuple[str, Callable[[], Any], Callable[[], Any]]]:
    return {
        "map": (
            f"{n_tiny:,} x `x + 1`: `ProcessPoolExecutor.map` vs `Executor.map` (default chunksize)",
            lambda: list(peer.map(inc, range(n_tiny))),
            lambda: list(ours.map(inc, range(n_tiny))),
        ),
        "map-chunksize": (
            "the same, `chunksize=1000` given to both",
            lambda: list(peer.map(inc, range(n_tiny), chunksize=1000)),
            lambda: list(ours.map(inc, range(n_tiny), chunksize=1000)),
        ),
        "submit": (
            f"{n_submit:,} x `submit(inc, i)`, then every result",
            lambda: _submit_all(peer, n_submit),
            lambda: _submit_all(ours, n_submit),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--only", help="comma-separated cases: map, map-chunksize, submit")
    parser.add_argument("--max-busy", type=float, default=0.5, help="refuse a case when others use more cores")
    parser.add_argument("--quick", action="store_true", help="small sizes and 2 pairs, to check that it runs")
    args = parser.parse_args()
    n_tiny, n_submit, n_pairs = (2_000, 200, 2) if args.quick else (N_TINY, N_SUBMIT, args.pairs)
    print(
        f"{os.cpu_count()} cores, {n_pairs} pairs a case (median of the per-pair ratios "
        "parallelize / ProcessPoolExecutor; below 1 parallelize is faster)."
    )
    print()
    print("| case | ratio (range) | ProcessPoolExecutor | parallelize | others' load |")
    print("|---|---|---|---|---|")
    with concurrent.futures.ProcessPoolExecutor(2) as peer, Executor(2) as ours:
        table = cases(peer, ours, n_tiny, n_submit)
        for key in args.only.split(",") if args.only else list(table):
            label, run_peer, run_ours = table[key]
            expected = list(range(1, (n_submit if key == "submit" else n_tiny) + 1))
            if run_peer() != expected or run_ours() != expected:  # checked outside the timed runs
                print(f"| {label} | wrong answer | | | |", flush=True)
                continue
            load = busy_cores()
            if load > args.max_busy and not args.quick:
                print(refused_row(label, load), flush=True)
                continue
            print(table_row(label, pairs(run_peer, run_ours, n_pairs), load), flush=True)


if __name__ == "__main__":
    main()
