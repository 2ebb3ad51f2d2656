"""The dask backend against raw Dask, on a real scheduler and two real workers.

Tiny tasks (``x + 1``) and the seed's 6,090-point grid, through
``Parallelize(backend="dask", address=...)`` and through ``client.map`` +
``client.gather`` of the same tasks on the same cluster. Raw Dask pays about a
millisecond or two per task, so its tiny-task run uses fewer tasks and the
comparison is per task.

Run: ``python benchmarks/dask_backend.py [--tiny N] [--raw-tiny N] [--reps R]``
(needs ``pip install -e ".[bench]"``); prints a markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dask_cluster import start_cluster  # noqa: E402
from distributed import Client  # noqa: E402

from parallelize import Parallelize, ParamSpace  # noqa: E402

GRID = {"impurity": ["gini", "entropy"], "depth": range(2, 31), "bins": range(10, 1051, 10)}


def inc(x: int) -> int:
    return x + 1


def grid_task(depth: int, impurity: str, bins: int, foo: str) -> tuple[int, str, int]:
    return (depth, impurity, bins)


def grid_task_positional(impurity: str, depth: int, bins: int, foo: str) -> tuple[int, str, int]:
    return (depth, impurity, bins)


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", type=int, default=100_000)
    parser.add_argument("--raw-tiny", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with start_cluster(2) as (address, _pids):
        with Client(address, set_as_default=False) as client:
            client.submit(inc, 0, pure=False).result()
            raw_tiny = timed(lambda: client.gather(client.map(inc, range(args.raw_tiny), pure=False)), args.reps)
            points = list(itertools.product(GRID["impurity"], GRID["depth"], GRID["bins"], ["bar"]))
            cols = [list(c) for c in zip(*points, strict=True)]
            raw_grid = timed(lambda: client.gather(client.map(grid_task_positional, *cols, pure=False)), args.reps)
        with Parallelize(2, backend="dask", address=address) as runner:
            list(runner.map(inc, range(1000)))
            tiny = timed(lambda: list(runner.map(inc, range(args.tiny))), args.reps)
            space = ParamSpace(**GRID, foo="bar")
            grid = timed(lambda: list(runner.map(grid_task, space)), args.reps)
    per = lambda ts, n: statistics.median(ts) / n * 1e6  # noqa: E731
    rows.append(("tiny `x + 1`: raw `client.map` + `gather`", args.raw_tiny, raw_tiny, per(raw_tiny, args.raw_tiny)))
    rows.append(("tiny `x + 1`: parallelize dask backend `map`", args.tiny, tiny, per(tiny, args.tiny)))
    rows.append(("6,090 grid: raw `client.map` + `gather`", 6090, raw_grid, per(raw_grid, 6090)))
    rows.append(("6,090 grid: parallelize dask backend `map(f, ParamSpace)`", 6090, grid, per(grid, 6090)))
    print("| run | tasks | median | min - max | per task |")
    print("|---|---|---|---|---|")
    for name, n, ts, us in rows:
        print(f"| {name} | {n:,} | {statistics.median(ts):.3f} s | {min(ts):.3f} - {max(ts):.3f} s | {us:.1f} us |")
    print()
    print(
        f"per-task ratio, tiny: {per(raw_tiny, args.raw_tiny) / per(tiny, args.tiny):.0f}x; "
        f"grid: {statistics.median(raw_grid) / statistics.median(grid):.0f}x"
    )


if __name__ == "__main__":
    main()
