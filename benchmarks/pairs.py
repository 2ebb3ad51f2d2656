"""Same-run ratios: parallelize and its closest peer alternating in one process, pair by pair.

Usage::

    pip install -e ".[bench]"
    python benchmarks/pairs.py                   # every case, 7 pairs each (about 3 minutes on 2 cores)
    python benchmarks/pairs.py --only tiny,grid --pairs 5
    python benchmarks/pairs.py --write           # also write benchmarks/pairs.md

Both sides are warm (their pools started and used once) and run in this one
process, alternating which goes first, so that a machine that slows down or
speeds up during the run affects both alike. Each figure is the median of the
per-pair ratios parallelize / peer (below 1: parallelize is faster), with the
range over the pairs. The machine's load is recorded before each case, and a
case is refused (not measured) when other processes keep more than
``--max-busy`` cores busy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import statistics
import subprocess
import sys
import time
from multiprocessing import Pool
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from parallelize import ModelEvaluator, Parallelize, ParamSpace  # noqa: E402

N_TINY = 100_000


def inc(x: int) -> int:
    return x + 1


def point(impurity: str, depth: int, bins: int, foo: str) -> int:
    return depth + bins


def busy_10ms(x: int) -> int:
    end = time.perf_counter() + 0.01
    while time.perf_counter() < end:
        pass
    return x


GRID = {"impurity": ["gini", "entropy"], "depth": list(range(2, 31)), "bins": list(range(105)), "foo": ["bar"]}


def busy_cores(seconds: float = 1.0) -> float:
    """Cores kept busy by other processes over ``seconds`` (from /proc/stat)."""
    import psutil

    me = psutil.Process()
    mine0 = sum(me.cpu_times()[:2])
    total0 = psutil.cpu_times()
    time.sleep(seconds)
    mine = sum(me.cpu_times()[:2]) - mine0
    total1 = psutil.cpu_times()
    used = (total1.user + total1.system + total1.nice) - (total0.user + total0.system + total0.nice)
    return max(0.0, (used - mine) / seconds)


def pairs(peer: Callable[[], Any], ours: Callable[[], Any], n: int) -> dict[str, Any]:
    peer()
    ours()  # both warm
    ratios, peer_t, our_t = [], [], []
    for i in range(n):
        order = [("peer", peer), ("ours", ours)] if i % 2 == 0 else [("ours", ours), ("peer", peer)]
        got: dict[str, float] = {}
        for name, fn in order:
            t0 = time.perf_counter()
            fn()
            got[name] = time.perf_counter() - t0
        ratios.append(got["ours"] / got["peer"])
        peer_t.append(got["peer"])
        our_t.append(got["ours"])
    return {
        "ratio": statistics.median(ratios),
        "low": min(ratios),
        "high": max(ratios),
        "peer": statistics.median(peer_t),
        "ours": statistics.median(our_t),
    }


def cases(
    pool: Any, runner: Parallelize, tpool: Any, trunner: Parallelize
) -> dict[str, tuple[str, Callable[[], Any], Callable[[], Any]]]:
    space = ParamSpace(**GRID)
    product = list(itertools.product(*GRID.values()))

    def evaluator() -> list[Any]:
        ev = ModelEvaluator(runner)
        ev.run(point, **GRID)
        return list(ev.results(ordered=True))

    return {
        "tiny": (
            "100,000 x `x + 1`: `Pool.map` vs `runner.map`",
            lambda: pool.map(inc, range(N_TINY)),
            lambda: list(runner.map(inc, range(N_TINY))),
        ),
        "tiny-chunksize": (
            "the same, `chunksize=12500` given to parallelize",
            lambda: pool.map(inc, range(N_TINY)),
            lambda: list(runner.map(inc, range(N_TINY), chunksize=12500)),
        ),
        "threads": (
            '100,000 x `x + 1` on 2 threads: `ThreadPool.map` vs `backend="thread"`',
            lambda: tpool.map(inc, range(N_TINY)),
            lambda: list(trunner.map(inc, range(N_TINY))),
        ),
        "grid-space": (
            "6,090-point grid: `Pool.starmap(f, product)` vs `runner.map(f, ParamSpace)`",
            lambda: pool.starmap(point, product),
            lambda: list(runner.map(point, space)),
        ),
        "grid-evaluator": (
            "the same grid: `Pool.starmap` vs `ModelEvaluator.run` + `results()`",
            lambda: pool.starmap(point, product),
            evaluator,
        ),
        "cpu": (
            "400 x 10 ms of pure Python: `Pool.map` vs `runner.map`",
            lambda: pool.map(busy_10ms, range(400)),
            lambda: list(runner.map(busy_10ms, range(400))),
        ),
    }


def _ratio(x: float) -> str:
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"


def table_row(label: str, r: dict[str, float], load: float, seconds: bool = False) -> str:
    """One Markdown row: the case, the median ratio and its range, both medians, the load."""
    scale, unit = (1.0, "s") if seconds else (1e3, "ms")
    return (
        f"| {label} | **{_ratio(r['ratio'])}x** ({_ratio(r['low'])}-{_ratio(r['high'])}) "
        f"| {r['peer'] * scale:.{2 if seconds else 1}f} {unit} | {r['ours'] * scale:.{2 if seconds else 1}f} {unit} "
        f"| {load:.2f} cores |"
    )


def refused_row(label: str, load: float) -> str:
    """The row of a case not measured because others kept the machine busy."""
    return f"| {label} | refused: {load:.2f} cores busy | | | {load:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--only", help="comma-separated cases")
    parser.add_argument("--max-busy", type=float, default=0.5, help="refuse a case when others use more cores")
    parser.add_argument("--write", action="store_true", help="write benchmarks/pairs.md")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Same-run ratios, {when}, git {commit or '?'}, {os.cpu_count()} cores, {args.pairs} pairs a case "
        "(median of the per-pair ratios parallelize / peer; below 1 parallelize is faster).",
        "",
        "| case | ratio (range) | peer | parallelize | others' load |",
        "|---|---|---|---|---|",
    ]
    with (
        Pool(2) as pool,
        ThreadPool(2) as tpool,
        Parallelize(2, backend="process") as runner,
        Parallelize(2, backend="thread") as trunner,
    ):
        table = cases(pool, runner, tpool, trunner)
        chosen = args.only.split(",") if args.only else list(table)
        for key in chosen:
            label, peer, ours = table[key]
            load = busy_cores()
            if load > args.max_busy:
                row = refused_row(label, load)
            else:
                n = max(3, args.pairs // 2) if key == "cpu" else args.pairs
                row = table_row(label, pairs(peer, ours, n), load)
            print(row, flush=True)
            lines.append(row)
    finish(lines, HERE / "pairs.md" if args.write else None)


def finish(lines: list[str], path: Path | None) -> None:
    """Print the whole table once more, and write it to ``path`` if one is given."""
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if path is not None:
        path.write_text(text)


if __name__ == "__main__":
    main()
