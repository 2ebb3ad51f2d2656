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
``--reps`` times, in this one process; the table gives the median time per
task. Memory is measured apart, in a fresh process per peer and size (freed
memory stays with a process, so a second measurement in the same process
would reuse it and show nothing): how far the parent's RSS rose (sampled every
5 ms) above its value before the call, after a warm-up of 1,000 tasks. It includes the result list itself
(8 bytes a slot, and 28 bytes an int above 256). The machine's load is
recorded per size.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
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


def _open(name: str, stack: contextlib.ExitStack) -> Callable[[int], Any]:
    """An open, warm pool of peer ``name``, as a function of the number of tasks."""
    if name == "parallelize":
        runner = stack.enter_context(Parallelize(2, backend="process"))
        run: Callable[[int], Any] = lambda n: list(runner.map(inc, range(n)))  # noqa: E731
    elif name.startswith("Pool"):
        pool = stack.enter_context(Pool(2))
        if name == "Pool.map":
            run = lambda n: pool.map(inc, range(n))  # noqa: E731
        else:
            run = lambda n: list(pool.imap(inc, range(n), chunksize=1000))  # noqa: E731
    else:
        from joblib import Parallel, delayed

        parallel = stack.enter_context(Parallel(n_jobs=2))
        run = lambda n: parallel(delayed(inc)(i) for i in range(n))  # noqa: E731
    run(1_000)  # warm: workers up, modules imported
    return run


def _memory_of(name: str, n: int) -> None:
    """In a fresh process: print how far RSS (bytes) rose above its start during one call of ``n`` tasks."""
    import psutil

    with contextlib.ExitStack() as stack:
        run = _open(name, stack)
        before = psutil.Process().memory_info().rss
        with MemorySampler(0.005) as mem:
            out = run(n)
        assert len(out) == n
    print(max(0, mem.peak_rss - before))


def _memory(name: str, n: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-of", name, str(n)], capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name} on {n} tasks failed:\n{out.stderr[-2000:]}")
    return int(out.stdout.strip().splitlines()[-1]) / 2**20


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--memory-of":
        _memory_of(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write benchmarks/scaling.md")
    args = parser.parse_args()
    rows: list[tuple[int, float, dict[str, float]]] = []
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
    with contextlib.ExitStack() as stack:
        runs = {name: _open(name, stack) for name in names}
        for n in sizes:
            load = busy_cores()
            times: dict[str, list[float]] = {name: [] for name in names}
            for rep in range(args.reps):
                order = names[rep % len(names) :] + names[: rep % len(names)]
                for name in order:
                    start = time.perf_counter()
                    runs[name](n)
                    times[name].append(time.perf_counter() - start)
            rows.append((n, load, {name: statistics.median(times[name]) / n for name in names}))
    # Pools closed: each memory figure comes from a fresh process of its own.
    for n, load, per_task in rows:
        cells = [f"{per_task[name] * 1e6:.2f} us, +{_memory(name, n):.1f} MB" for name in names]
        row = f"| {n:,} | " + " | ".join(cells) + f" | {load:.2f} cores |"
        print(row, flush=True)
        lines.append(row)
    finish(lines, HERE / "scaling.md" if args.write else None)


if __name__ == "__main__":
    main()
