"""How the cost grows: time per task and parent memory from 10^3 to 10^6 tiny tasks.

Usage::

    pip install -e ".[bench]"
    python benchmarks/scaling.py                 # 10^3 to 10^6, 3 repetitions (about 3 minutes on 2 cores)
    python benchmarks/scaling.py --max 100000 --reps 5
    python benchmarks/scaling.py --write         # also write benchmarks/scaling.md

``x + 1`` over ``range(n)`` on 2 workers, every pool warm and open for the
whole run, results collected into a list: ``list(runner.map(...))``,
``Pool.map`` (its default chunksize), ``list(Pool.imap(..., chunksize=1000))``
(imap's default of 1 is a round trip per task) and joblib's ``Parallel``
(automatic batching). For each size the peers take turns, in a rotating order,
``--reps`` times; the table gives the median time per task, and the parent's
peak RSS growth over the call (sampled every 10 ms, against the RSS just
before), which includes the result list itself (about 8 bytes a result: ints
below 256 are shared, the rest are new objects of 28 bytes). The machine's
load is recorded per size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import statistics
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from measure import MemorySampler  # noqa: E402
from pairs import busy_cores, finish, inc  # noqa: E402

from parallelize import Parallelize  # noqa: E402


def _measure(fn: Callable[[], Any]) -> tuple[float, int]:
    import psutil

    base = psutil.Process().memory_info().rss
    with MemorySampler(0.01) as mem:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
    del out
    return seconds, max(0, mem.peak_rss - base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write benchmarks/scaling.md")
    args = parser.parse_args()
    from joblib import Parallel, delayed

    sizes = [n for n in (1_000, 10_000, 100_000, 1_000_000) if n <= args.max]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    names = ["parallelize", "Pool.map", "Pool.imap(chunksize=1000)", "joblib"]
    lines = [
        f"Scaling, {when}, git {commit or '?'}, {os.cpu_count()} cores, `x + 1` on 2 workers, warm, "
        f"median of {args.reps}: time per task, and the parent's peak RSS growth during the call.",
        "",
        "| tasks | " + " | ".join(names) + " | others' load |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    with Pool(2) as pool, Parallelize(2, backend="process") as runner, Parallel(n_jobs=2) as parallel:
        runs: dict[str, Callable[[int], Any]] = {
            "parallelize": lambda n: list(runner.map(inc, range(n))),
            "Pool.map": lambda n: pool.map(inc, range(n)),
            "Pool.imap(chunksize=1000)": lambda n: list(pool.imap(inc, range(n), chunksize=1000)),
            "joblib": lambda n: parallel(delayed(inc)(i) for i in range(n)),
        }
        for name in names:  # warm: workers up, modules imported
            runs[name](1_000)
        for n in sizes:
            load = busy_cores()
            got: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
            for rep in range(args.reps):
                order = names[rep % len(names) :] + names[: rep % len(names)]
                for name in order:
                    got[name].append(_measure(functools.partial(runs[name], n)))
            cells = []
            for name in names:
                per_task = statistics.median(t for t, _ in got[name]) / n
                memory = statistics.median(m for _, m in got[name]) / 2**20
                cells.append(f"{per_task * 1e6:.2f} us, +{memory:.1f} MB")
            row = f"| {n:,} | " + " | ".join(cells) + f" | {load:.2f} cores |"
            print(row, flush=True)
            lines.append(row)
    finish(lines, HERE / "scaling.md" if args.write else None)


if __name__ == "__main__":
    main()
