"""parallelize's Slurm backend beside submitit, on the same Slurm, in one run.

    python benchmarks/cluster.py                 # 1,000 x 10 ms and 10,000 x 1 ms, 3 pairs each
    python benchmarks/cluster.py --pairs 1       # quicker

Needs a working Slurm (``tests/clusters/slurm.sh install && tests/clusters/slurm.sh start``)
and ``pip install submitit``. Each pair runs submitit and parallelize one after
the other, alternating which goes first, end to end (from the executor's
creation to the last result), and counts the array elements each submitted;
the machine's load is recorded before each pair. Figures are medians over the
pairs, with the same-run ratio parallelize / submitit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

WORKLOADS = {"1000 x 10 ms": (1_000, 0.010), "10000 x 1 ms": (10_000, 0.001)}
PARALLEL = 4  # array elements at once, for both


def work(args: tuple[int, float]) -> int:
    x, seconds = args
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return x


def run_parallelize(n: int, seconds: float, folder: Path) -> tuple[float, int, int]:
    from parallelize import Parallelize

    t0 = time.perf_counter()
    with Parallelize(PARALLEL, backend="slurm", folder=folder, poll_interval=1.0) as runner:
        out = list(runner.map(work, [(x, seconds) for x in range(n)]))
        backend: Any = runner.backend
    elapsed = time.perf_counter() - t0
    assert out == list(range(n))
    return elapsed, backend.submitted_elements, backend.submitted_arrays


def run_submitit(n: int, seconds: float, folder: Path) -> tuple[float, int, int]:
    import submitit

    t0 = time.perf_counter()
    executor = submitit.AutoExecutor(folder=folder)
    executor.update_parameters(timeout_min=30, slurm_partition="debug", slurm_array_parallelism=PARALLEL)
    jobs = executor.map_array(work, [(x, seconds) for x in range(n)])
    out = [job.result() for job in jobs]
    elapsed = time.perf_counter() - t0
    assert out == list(range(n))
    return elapsed, len(jobs), 1


def measure(name: str, fn: Callable[..., tuple[float, int, int]], n: int, seconds: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=os.getcwd()))
    try:
        elapsed, elements, submissions = fn(n, seconds, folder)
        return {"seconds": elapsed, "elements": elements, "submissions": submissions}
    except Exception as exc:  # noqa: BLE001 - a peer that fails is reported, the run goes on
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    peers = {"submitit": run_submitit, "parallelize": run_parallelize}
    print(f"# Slurm: parallelize beside submitit ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print("| workload | peer | end to end, median (s) | array elements | sbatch calls | parallelize / submitit |")
    print("|---|---|---|---|---|---|")
    for label, (n, seconds) in WORKLOADS.items():
        results: dict[str, list[dict[str, Any]]] = {k: [] for k in peers}
        loads = []
        for pair in range(args.pairs):
            loads.append(os.getloadavg()[0])
            order = list(peers) if pair % 2 == 0 else list(reversed(peers))
            for name in order:
                results[name].append(measure(name, peers[name], n, seconds))
        ok = {k: [r for r in v if "seconds" in r] for k, v in results.items()}
        ratios = [
            p["seconds"] / s["seconds"]
            for p, s in zip(results["parallelize"], results["submitit"], strict=True)
            if "seconds" in p and "seconds" in s
        ]
        for name in peers:
            if not ok[name]:
                print(f"| {label} | {name} | n/a ({results[name][0].get('error')}) | | | |")
                continue
            med = statistics.median(r["seconds"] for r in ok[name])
            ratio = f"{statistics.median(ratios):.2f}" if ratios and name == "parallelize" else ""
            print(
                f"| {label} | {name} | {med:.2f} | {ok[name][0]['elements']} | {ok[name][0]['submissions']} | {ratio} |"
            )
        print(f"\n(load average before each pair: {', '.join(f'{x:.2f}' for x in loads)})\n")


if __name__ == "__main__":
    main()
