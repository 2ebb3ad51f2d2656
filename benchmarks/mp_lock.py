"""``mp_lock`` on the original package's own tests: multiprocessing_lib beside parallelize, same run.

Usage::

    git clone https://github.com/gfickel/multiprocessing_lib /tmp/multiprocessing_lib
    python benchmarks/mp_lock.py --original /tmp/multiprocessing_lib            # 3 pairs
    python benchmarks/mp_lock.py --original /tmp/multiprocessing_lib --pairs 5

The original's ``src/tests/test_correctness.py`` is run as it is, in a fresh
process per measurement: ``test_mp_lock`` (63 calls of ``mp_lock`` on 10
items, 1 to 16 processes, ``save_batch`` 1 to 50) and
``test_mp_lock_init_function`` (9 calls with an ``init_function``). For
parallelize, the only change is that the module's ``mp_lock`` name is bound to
``parallelize.mp_lock``. The two sides alternate which goes first; each figure
is the median of the per-pair ratios parallelize / original (below 1:
parallelize is faster), with the range. Nothing of the original is copied here:
it is read from the checkout you give.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pairs import busy_cores, refused_row, table_row  # noqa: E402

TESTS = ("test_mp_lock", "test_mp_lock_init_function")

# Runs one of the original's tests in this fresh process and prints its time.
RUNNER = """
import json, os, sys, time, unittest
src, test, which = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, src)
os.chdir(src)
import tests.test_correctness as tc
if which == "parallelize":
    from parallelize import mp_lock
    tc.mp_lock = mp_lock
start = time.perf_counter()
result = unittest.TextTestRunner(stream=open(os.devnull, "w"), verbosity=0).run(tc.Correctness(test))
print(json.dumps({"seconds": time.perf_counter() - start, "ok": result.wasSuccessful()}))
"""


def _run(src: Path, test: str, which: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(src), test, which], capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        raise RuntimeError(f"{which} {test} failed:\n{out.stderr[-2000:]}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if not got["ok"]:
        raise RuntimeError(f"{which} {test}: the original's assertions failed")
    return float(got["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original", required=True, type=Path, help="a checkout of gfickel/multiprocessing_lib")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--max-busy", type=float, default=0.5, help="refuse a case when others use more cores")
    args = parser.parse_args()
    if not (args.original / "src" / "tests" / "test_correctness.py").exists():
        parser.error(f"{args.original} is not a checkout of multiprocessing_lib (no src/tests/test_correctness.py)")
    print("| the original's test | ratio (range) | original | parallelize | others' load |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(args.original / "src", src)  # its tests write into their own folder
        for test in TESTS:
            load = busy_cores()
            if load > args.max_busy:
                print(refused_row(f"`{test}`", load), flush=True)
                continue
            ratios, peer, ours = [], [], []
            for i in range(args.pairs):
                order = ["original", "parallelize"] if i % 2 == 0 else ["parallelize", "original"]
                got = {which: _run(src, test, which) for which in order}
                peer.append(got["original"])
                ours.append(got["parallelize"])
                ratios.append(got["parallelize"] / got["original"])
            r = {
                "ratio": statistics.median(ratios),
                "low": min(ratios),
                "high": max(ratios),
                "peer": statistics.median(peer),
                "ours": statistics.median(ours),
            }
            print(table_row(f"`{test}`", r, load, seconds=True), flush=True)


if __name__ == "__main__":
    main()
