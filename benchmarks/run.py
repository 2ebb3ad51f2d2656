"""Benchmark suite: parallelize side by side with joblib, mpire, multiprocessing,
concurrent.futures, loky and Dask, in one run.

Usage::

    pip install -e ".[bench]"
    python benchmarks/run.py                  # everything (about 15 minutes on 2 cores)
    python benchmarks/run.py --quick          # fewer repetitions and sizes (a few minutes)
    python benchmarks/run.py --only tiny_warm,cpu
    python benchmarks/run.py --readme         # also write the tables into benchmarks/README.md

Every measurement runs in a fresh Python process (started by this script with
``--case``), bounded by a timeout; a peer that fails or times out shows as
``n/a (reason)`` and the run goes on. Results go to ``benchmarks/results.json``
and ``benchmarks/results.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
MARK_START = "<!-- results:start -->"
MARK_END = "<!-- results:end -->"

#: Table labels: library and the form used.
LABELS: dict[str, str] = {
    "parallelize": 'parallelize `Parallelize(2, backend="process").map`',
    "parallelize-threads": "parallelize `Parallelize(16).map` (threads)",
    "parallelize-evaluator": "parallelize `ModelEvaluator(runner).run` + `results()`",
    "parallelize-space": "parallelize `runner.map(f, ParamSpace(...))`",
    "parallelize-args": "parallelize `runner.starmap(f, [(arr, i), ...])`",
    "parallelize-shared": "parallelize `Parallelize(..., shared_data=arr)`",
    "serial": "serial loop",
    "loky-startup": "reference: loky executor start + 1 empty task",
    "pool": "`multiprocessing.Pool.map` (default chunksize)",
    "ppe": "`ProcessPoolExecutor.map(chunksize=n/8)`",
    "loky": "loky `get_reusable_executor().map(chunksize=n/8)`",
    "joblib": "joblib `Parallel(n_jobs=2)(delayed(f)(x) ...)`",
    "mpire": "mpire `WorkerPool(2).map`",
    "dask": "Dask `LocalCluster(2 procs)` + `dask.bag.map` (16 partitions)",
    "tpe": "`ThreadPoolExecutor(16).map`",
    "threadpool": "`multiprocessing.pool.ThreadPool(16).map`",
    "joblib-threads": 'joblib `Parallel(16, prefer="threads")`',
    "mpire-threads": 'mpire `WorkerPool(16, start_method="threading")`',
    "dask-threads": 'Dask `compute(*delayed, scheduler="threads")`',
}

#: Labels that differ in one workload.
WORKLOAD_LABELS: dict[str, dict[str, str]] = {
    "notebook": {
        "parallelize": "parallelize `runner.map(task, X)` (rows, no chunking)",
        "pool": "`Pool().map(hundred_lines_job, chunks)` (notebook)",
        "joblib": "joblib `Parallel(2)(delayed(hundred_lines_job)(c) ...)`",
        "dask": 'Dask `compute(*delayed, scheduler="processes")` (notebook)',
    },
    "grid": {
        "pool": "`Pool.starmap(f, itertools.product(...))`",
        "mpire": "mpire `WorkerPool(2).map(f, product(...))`",
    },
    "streaming": {
        "parallelize": "parallelize `for _ in runner.map(f, it)`",
        "pool": "`Pool.imap(f, it, chunksize=1000)`",
        "joblib": 'joblib `Parallel(2, return_as="generator")`',
        "mpire": "mpire `WorkerPool(2).imap(chunk_size=1000)`",
    },
    "shared_array": {
        "pool": "`Pool.starmap(f, [(arr, i), ...])` (pickles)",
        "joblib": "joblib `delayed(f)(arr, i)` (auto memmap)",
        "mpire": "mpire `WorkerPool(2, shared_objects=arr)` (fork)",
    },
}

#: Before each case, wait up to QUIET_WAIT seconds for the machine to be this idle.
QUIET_CORES = 0.2
QUIET_WAIT = 60.0
#: Total seconds a run may spend waiting for quiet; after that it measures at once.
QUIET_BUDGET = 600.0

PROCESS_PEERS = ("parallelize", "pool", "ppe", "loky", "joblib", "mpire", "dask")
THREAD_PEERS = ("parallelize-threads", "tpe", "threadpool", "joblib-threads", "mpire-threads", "dask-threads")


@dataclass(frozen=True)
class Workload:
    """One benchmark: what runs, on which peers, with which settings per mode.

    Attributes:
        name: the key used by ``--only`` and in :data:`cases.CASES`.
        title: the table's heading.
        peers: the peer keys, the reference (parallelize) first.
        full: parameters of a full run; ``reps`` is repetitions per peer.
        quick: the same for ``--quick``.
        fresh: each repetition runs in its own fresh process (cold measurements).
        timeout: seconds one case process may take.
        reference: the peer the ratio column divides by.
        note: a line printed under the table.
    """

    name: str
    title: str
    peers: tuple[str, ...]
    full: dict[str, Any]
    quick: dict[str, Any]
    fresh: bool = False
    timeout: float = 300.0
    reference: str = "parallelize"
    note: str = ""
    slow_reps: dict[str, int] = field(default_factory=dict)


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "tiny_cold",
        "Tiny tasks, cold: 100,000 x `x + 1`, pool created in a fresh process",
        ("parallelize", "loky-startup", "pool", "ppe", "loky", "joblib", "mpire", "dask"),
        full={"n": 100_000, "reps": 5},
        quick={"n": 100_000, "reps": 3},
        fresh=True,
        timeout=120,
        slow_reps={"dask": 3},
        note="Time from creating the pool to the results in hand, each repetition in a fresh "
        "process; imports are done before the clock starts; pool shutdown is not counted.",
    ),
    Workload(
        "tiny_warm",
        "Tiny tasks, warm: 100,000 x `x + 1` on a running pool",
        PROCESS_PEERS,
        full={"n": 100_000, "reps": 5},
        quick={"n": 100_000, "reps": 3},
    ),
    Workload(
        "cpu",
        "CPU-bound: {tasks} tasks of about 10 ms of pure Python (speed-up = serial / time; ideal 2.0)",
        ("parallelize", "serial", "pool", "ppe", "loky", "joblib", "mpire", "dask"),
        full={"tasks": 400, "reps": 5},
        quick={"tasks": 100, "reps": 3},
    ),
    Workload(
        "notebook",
        "The notebook's row-wise feature engineering: 10,000 x 64 integers, cell as written",
        ("parallelize", "serial", "pool", "joblib", "dask"),
        full={"reps": 5},
        quick={"reps": 2},
        fresh=True,
        timeout=180,
        note="Each repetition is the notebook's cell in a fresh process (a fresh kernel): the pool is "
        "created inside the timed cell. Pool, joblib and Dask use the notebook's manual chunking "
        "(`np.array_split` into chunks of 100 rows, `hundred_lines_job` reading the global `X`); "
        "parallelize maps the per-row function over `X` directly.",
    ),
    Workload(
        "io",
        "I/O-bound: 200 x `sleep(0.01)` on 16 threads (ideal 200 x 0.01 / 16 = 0.125 s)",
        THREAD_PEERS,
        full={"tasks": 200, "seconds": 0.01, "reps": 5},
        quick={"tasks": 200, "seconds": 0.01, "reps": 3},
        reference="parallelize-threads",
        note="With 16 threads, 200 tasks need at least 13 rounds of 10 ms: 0.130 s.",
    ),
    Workload(
        "grid",
        "The seed's 6,090-point grid (impurity 2 x depth 29 x bins 105), tiny function",
        ("parallelize-evaluator", "parallelize-space", "pool", "joblib", "mpire"),
        full={"reps": 5},
        quick={"reps": 3},
        reference="parallelize-evaluator",
    ),
    Workload(
        "streaming",
        "Streaming memory: peak RSS growth of the parent over `x + 1` streamed, results not kept",
        ("parallelize", "pool", "joblib", "mpire"),
        full={"sizes": [10**5, 10**6, 10**7], "budget": 150},
        quick={"sizes": [10**4, 10**5, 10**6], "budget": 60},
        timeout=400,
        note="Input is an iterator (`iter(range(n))`, no length); one fresh process per library and size; "
        "RSS of the parent sampled every 10 ms, growth over its value after a warm-up. A size is skipped "
        "when ten times the previous size's time would exceed the budget.",
    ),
    Workload(
        "shared_array",
        "A {mb} MB NumPy array read by {parts} tasks (each sums one slice)",
        ("parallelize-args", "parallelize-shared", "pool", "joblib", "mpire"),
        full={"mb": 200, "parts": 20, "reps": 3},
        quick={"mb": 100, "parts": 20, "reps": 1},
        fresh=True,
        timeout=180,
        reference="parallelize-args",
        note="Peak memory of the parent and all its descendants (PSS: shared pages counted once) over the "
        "baseline before the array exists, sampled every 20 ms; it includes the array itself. Fresh "
        "process per repetition. `parallelize-shared` and mpire start their workers (and hand them the "
        "array) inside the measurement.",
    ),
    Workload(
        "skewed",
        "Skewed durations: {tasks} busy loops, one in fifty 100 ms, the rest 1 ms (ideal = work / 2)",
        PROCESS_PEERS,
        full={"tasks": 500, "reps": 5},
        quick={"tasks": 250, "reps": 3},
    ),
)


# -- running cases in fresh processes ---------------------------------------------------------------


def run_in_process(workload: str, peer: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one case in a fresh Python process; return its measurement or ``{"error": reason}``.

    The process gets its own session, so on a timeout the whole group (workers
    included) is killed, and any straggling worker is killed after it ends.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")]))
    env.setdefault("PYTHONWARNINGS", "ignore")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", workload, peer, json.dumps(params)]
    load = wait_for_quiet()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=str(HERE)
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.communicate()
        return {"error": f"timeout {timeout:.0f} s"}
    finally:
        _kill_group(proc.pid)
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            result.setdefault("values", {})["background_cores"] = load
            return result
    tail = (err.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    return {"error": tail[:200]}


def busy_cores(seconds: float = 1.0) -> float:
    """CPUs kept busy by every process on the machine over ``seconds`` (from /proc/stat)."""

    def snapshot() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = snapshot()
        time.sleep(seconds)
        busy1, total1 = snapshot()
    except OSError:
        return 0.0
    ncpu = os.cpu_count() or 1
    return ncpu * (busy1 - busy0) / max(total1 - total0, 1)


def wait_for_quiet(limit: float = QUIET_WAIT) -> float:
    """Wait (up to ``limit`` seconds) until other processes use under ``QUIET_CORES`` CPUs.

    Benchmarks on a shared machine are only as good as its idle time; the load
    found at the start of each case is recorded with the result.
    """
    global _quiet_limit, _quiet_spent
    start = time.monotonic()
    deadline = start + max(0.0, min(limit, _quiet_limit, QUIET_BUDGET - _quiet_spent))
    load = busy_cores()
    while load > QUIET_CORES and time.monotonic() < deadline:
        load = busy_cores()
    _quiet_spent += time.monotonic() - start
    # A machine busy for a whole wait is likely to stay busy: wait less next time.
    _quiet_limit = QUIET_WAIT if load <= QUIET_CORES else 5.0
    return load


_quiet_limit = QUIET_WAIT
_quiet_spent = 0.0


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def case_main(workload: str, peer: str, params_json: str) -> None:
    """Entry point of a case process: run it and print ``RESULT {json}``."""
    sys.path.insert(0, str(HERE))
    from cases import run_case

    try:
        result = run_case(workload, peer, json.loads(params_json))
    except BaseException as exc:  # report any failure as this peer's n/a, never crash the suite
        traceback.print_exc()
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result = {"error": f"{type(exc).__name__}: {text}"[:200]}
    print("RESULT " + json.dumps(result), flush=True)


# -- measuring a workload ----------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def summarize(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}


def measure(w: Workload, params: dict[str, Any], peers: tuple[str, ...]) -> dict[str, Any]:
    """Run every peer of a workload; return ``{peer: row}``."""
    rows: dict[str, Any] = {}
    params = dict(params)
    if w.name == "cpu":
        params["iterations"] = calibrate()
        log(f"  cpu_task iterations for 10 ms: {params['iterations']}")
    if w.name == "notebook":
        peers = ("serial",) + tuple(p for p in peers if p != "serial")  # its checksum checks the others
    for peer in peers:
        t0 = time.perf_counter()
        if w.name == "streaming":
            row = measure_streaming(w, params, peer)
        elif w.fresh:
            reps = min(params["reps"], w.slow_reps.get(peer, params["reps"]))
            one = dict(params, reps=1)
            results = [run_in_process(w.name, peer, one, w.timeout) for _ in range(reps)]
            row = merge(results)
            if w.name == "notebook" and peer == "serial" and "values" in row:
                params["checksum"] = row["values"]["checksum"][0]
        else:
            row = merge([run_in_process(w.name, peer, params, w.timeout)])
        rows[peer] = row
        log(f"  {peer:<22} {describe(row)}   [{time.perf_counter() - t0:.0f} s]")
    return rows


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from several case results (fresh-process repetitions)."""
    errors = [r["error"] for r in results if "error" in r]
    good = [r for r in results if "error" not in r]
    if not good:
        return {"error": errors[0] if errors else "no result"}
    times = [t for r in good for t in r["times"]]
    values: dict[str, list[Any]] = {}
    for r in good:
        for k, v in r.get("values", {}).items():
            values.setdefault(k, []).append(v)
    row: dict[str, Any] = {"times": times, **summarize(times), "values": values}
    if errors:
        row["errors"] = errors
    return row


def measure_streaming(w: Workload, params: dict[str, Any], peer: str) -> dict[str, Any]:
    """One fresh process per size; skip a size whose estimated time exceeds the budget."""
    sizes: dict[str, Any] = {}
    last: tuple[int, float] | None = None
    for n in params["sizes"]:
        if last is not None:
            estimate = last[1] * n / last[0]
            if estimate > params["budget"]:
                sizes[str(n)] = {"error": f"skipped: estimated {estimate:.0f} s > budget {params['budget']} s"}
                continue
        r = run_in_process(w.name, peer, {"n": n}, w.timeout)
        sizes[str(n)] = r
        if "error" in r:
            break
        last = (n, r["times"][0])
    return {"sizes": sizes}


def calibrate() -> int:
    """Iterations of ``cpu_task`` for 10 ms, measured in a fresh process."""
    code = "import workloads; print(workloads.calibrate_cpu(0.01))"
    env = dict(os.environ, PYTHONPATH=str(HERE))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    return int(out.stdout.strip())


# -- formatting ----------------------------------------------------------------------------------------


def fmt_s(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def describe(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"n/a ({row['error']})"
    if "sizes" in row:
        parts = []
        for n, r in row["sizes"].items():
            parts.append(
                f"{int(n):.0e}: "
                + (
                    f"n/a ({r['error']})"
                    if "error" in r
                    else f"{r['values']['growth_mb']:+.1f} MB in {fmt_s(r['times'][0])}"
                )
            )
        return "; ".join(parts)
    text = f"{fmt_s(row['median'])} ({fmt_s(row['min'])} – {fmt_s(row['max'])}, n={row['n']})"
    if "peak_pss_mb" in row.get("values", {}):
        text += f", peak {statistics.median(row['values']['peak_pss_mb']):.0f} MB PSS"
    return text


def label(workload: str, peer: str) -> str:
    return WORKLOAD_LABELS.get(workload, {}).get(peer) or LABELS.get(peer, peer)


def table(w: Workload, rows: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """Markdown lines for one workload."""
    lines = [f"### {w.title.format(**params)}", ""]
    if w.name == "streaming":
        sizes = params["sizes"]
        lines.append("| library | " + " | ".join(f"{n:,} tasks" for n in sizes) + " |")
        lines.append("|---|" + "---|" * len(sizes))
        for peer, row in rows.items():
            cells = []
            for n in sizes:
                r = row.get("sizes", {}).get(str(n)) if "sizes" in row else row
                if r is None:
                    cells.append("–")
                elif "error" in r:
                    cells.append(f"n/a ({r['error']})")
                else:
                    cells.append(
                        f"{r['values']['growth_mb']:+.1f} MB ({fmt_s(r['times'][0])})"
                        + busy_mark({"values": {"background_cores": [r["values"].get("background_cores", 0)]}})
                    )
            lines.append(f"| {label(w.name, peer)} | " + " | ".join(cells) + " |")
    else:
        ref = rows.get(w.reference, {})
        memory = w.name == "shared_array"
        extra = {"cpu": "speed-up", "io": "÷ ideal", "skewed": "÷ ideal", "notebook": "speed-up"}.get(w.name)
        head = "| library | median | min – max | ÷ parallelize |" + (f" {extra} |" if extra else "")
        if memory:
            head = "| library | median time | min – max | peak memory (PSS) | ÷ array | peak RSS sum | ÷ parallelize (time) |"
        lines += [head, "|---|" + "---|" * (head.count("|") - 2)]
        serial = rows.get("serial", {}).get("median")
        ideal = ideal_seconds(w, params)
        for peer, row in rows.items():
            if "error" in row:
                lines.append(f"| {label(w.name, peer)} | n/a ({row['error']}) |" + " |" * (head.count("|") - 3))
                continue
            ratio = f"{row['median'] / ref['median']:.2f}" if "median" in ref else "–"
            cells = [
                label(w.name, peer) + busy_mark(row),
                fmt_s(row["median"]),
                f"{fmt_s(row['min'])} – {fmt_s(row['max'])}",
            ]
            if memory:
                pss = statistics.median(row["values"]["peak_pss_mb"])
                rss = statistics.median(row["values"]["peak_rss_mb"])
                cells += [f"{pss:.0f} MB", f"{pss / params['mb']:.2f}", f"{rss:.0f} MB", ratio]
            else:
                cells.append(ratio)
                if extra in ("speed-up",):
                    cells.append(f"{serial / row['median']:.2f}" if serial and peer != "serial" else "–")
                elif extra:
                    cells.append(f"{row['median'] / ideal:.2f}" if ideal else "–")
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if w.note:
        lines += [w.note, ""]
    return lines


def busy_mark(row: dict[str, Any]) -> str:
    """A warning when other processes kept the machine busy as the measurement started."""
    loads = row.get("values", {}).get("background_cores") or [0.0]
    worst = max(loads)
    return f" (machine busy: {worst:.1f} CPUs used by others)" if worst > QUIET_CORES else ""


def ideal_seconds(w: Workload, params: dict[str, Any]) -> float | None:
    if w.name == "io":
        return params["tasks"] * params["seconds"] / 16
    if w.name == "skewed":
        sys.path.insert(0, str(HERE))
        from workloads import skew_duration

        return sum(skew_duration(i) for i in range(params["tasks"])) / 2
    return None


# -- targets -------------------------------------------------------------------------------------------


def targets(results: dict[str, Any], params: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each target of the issue whose data was measured."""
    out: list[tuple[str, str, str]] = []

    def med(workload: str, peer: str) -> float | None:
        return results.get(workload, {}).get(peer, {}).get("median")

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    p, pool, jl, mp = (med("tiny_warm", k) for k in ("parallelize", "pool", "joblib", "mpire"))
    if p and pool:
        out.append(
            (
                "tiny warm <= 0.8x Pool.map (default chunksize)",
                f"{fmt_s(p)} vs Pool {fmt_s(pool)} ({p / pool:.2f}x)",
                verdict(p <= 0.8 * pool),
            )
        )
    if p and jl and mp:
        out.append(
            (
                "tiny warm >= 5x faster than joblib and mpire",
                f"{jl / p:.1f}x joblib, {mp / p:.1f}x mpire",
                verdict(jl / p >= 5 and mp / p >= 5),
            )
        )
    c, loky = med("tiny_cold", "parallelize"), med("tiny_cold", "loky-startup")
    firsts = results.get("tiny_cold", {}).get("parallelize", {}).get("values", {}).get("first_s")
    if firsts and loky:
        first = statistics.median(firsts)
        out.append(
            (
                "tiny cold: first result <= loky start-up + 10 ms",
                f"{fmt_s(first)} vs {fmt_s(loky)} + 10 ms (all 100,000: {fmt_s(c)})",
                verdict(first <= loky + 0.010),
            )
        )
    elif c and loky:
        out.append(
            ("tiny cold <= loky start-up + 10 ms", f"{fmt_s(c)} vs {fmt_s(loky)} + 10 ms", verdict(c <= loky + 0.010))
        )
    s, pc, cpool = med("cpu", "serial"), med("cpu", "parallelize"), med("cpu", "pool")
    if s and pc:
        out.append(("CPU-bound speed-up >= 1.95", f"{s / pc:.2f}", verdict(s / pc >= 1.95)))
    if pc and cpool:
        out.append(
            (
                "CPU-bound no slower than Pool.map",
                f"{fmt_s(pc)} vs {fmt_s(cpool)} ({pc / cpool:.2f}x)",
                verdict(pc <= cpool),
            )
        )
    nb = med("notebook", "parallelize")
    others = {k: med("notebook", k) for k in ("pool", "joblib", "dask")}
    if nb and any(others.values()):
        shown = ", ".join(f"{k} {fmt_s(v)}" for k, v in others.items() if v)
        out.append(
            (
                "notebook faster than Pool, joblib, Dask as written",
                f"{fmt_s(nb)} vs {shown}",
                verdict(all(nb < v for v in others.values() if v)),
            )
        )
    io_p = med("io", "parallelize-threads")
    if io_p and "io" in params:
        ideal = params["io"]["tasks"] * params["io"]["seconds"] / 16
        out.append(
            (
                "I/O within 6% of ideal",
                f"{fmt_s(io_p)} vs {fmt_s(ideal)} ({io_p / ideal - 1:+.1%})",
                verdict(io_p <= 1.06 * ideal),
            )
        )
    gp = med("grid", "pool")
    for form in ("parallelize-evaluator", "parallelize-space"):
        g = med("grid", form)
        if g and gp:
            out.append(
                (
                    f"grid no slower than Pool.starmap warm ({form.split('-')[1]})",
                    f"{fmt_s(g)} vs {fmt_s(gp)} ({g / gp:.2f}x)",
                    verdict(g <= gp),
                )
            )
    st = results.get("streaming", {}).get("parallelize", {}).get("sizes", {})
    growth = {int(n): r["values"]["growth_mb"] for n, r in st.items() if "error" not in r}
    if len(growth) >= 2:
        lo, hi = min(growth), max(growth)
        out.append(
            (
                f"streaming memory flat within 5 MB ({lo:,} to {hi:,})",
                f"{growth[lo]:+.1f} MB -> {growth[hi]:+.1f} MB",
                verdict(growth[hi] - growth[lo] <= 5),
            )
        )
    for form in ("parallelize-args", "parallelize-shared"):
        row = results.get("shared_array", {}).get(form, {})
        if "values" in row:
            ratio = statistics.median(row["values"]["peak_pss_mb"]) / params["shared_array"]["mb"]
            out.append(
                (f"shared NumPy input peak < 1.5x array ({form.split('-')[1]})", f"{ratio:.2f}x", verdict(ratio < 1.5))
            )
    sk = med("skewed", "parallelize")
    if sk and "skewed" in params:
        ideal = ideal_seconds(next(w for w in WORKLOADS if w.name == "skewed"), params["skewed"])
        assert ideal
        out.append(
            (
                "skewed within 10% of perfect balance",
                f"{fmt_s(sk)} vs {fmt_s(ideal)} ({sk / ideal - 1:+.0%})",
                verdict(sk <= 1.10 * ideal),
            )
        )
    return out


# -- the machine -----------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """CPU, memory, OS and the version of every library compared."""
    from importlib import metadata

    info: dict[str, str] = {"cores (nproc)": str(len(os.sched_getaffinity(0)))}
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        info["CPU"] = cpu
    except (OSError, StopIteration):
        info["CPU"] = platform.processor() or "unknown"
    try:
        kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        info["memory"] = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    info["OS"] = platform.platform()
    info["Python"] = platform.python_version()
    for dist in ("parallelize", "joblib", "mpire", "loky", "cloudpickle", "dask", "distributed", "numpy", "psutil"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = "not installed"
    return info


def report(results: dict[str, Any], params: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    """The markdown report: when, where, targets, one table per workload."""
    lines = [
        f"Run on {meta['date']} ({meta['mode']} mode, {meta['duration']:.0f} s"
        + (f", git {meta['git']}" if meta.get("git") else "")
        + ").",
        "",
    ]
    if meta.get("reruns"):
        lines += [
            "Workloads measured (or measured again with `--update`) at: "
            + ", ".join(f"`{k}` {v}" for k, v in meta["reruns"].items())
            + ".",
            "",
        ]
    lines += [
        "| machine | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in meta["machine"].items()]
    lines.append("")
    checks = targets(results, params)
    if checks:
        lines += ["### Targets", "", "| target | measured | |", "|---|---|---|"]
        lines += [f"| {t} | {m} | {v} |" for t, m, v in checks]
        lines.append("")
    lines.append(
        "Times are medians of the repetitions, with min – max; `÷ parallelize` is a peer's median "
        "over parallelize's (above 1: parallelize is faster)."
    )
    lines.append("")
    for w in WORKLOADS:
        if w.name in results:
            lines += table(w, results[w.name], params[w.name])
    return "\n".join(lines)


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(HERE), "status", "--porcelain", "--", "../parallelize"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def update_readme(text: str) -> None:
    body = README.read_text() if README.exists() else ""
    if MARK_START in body and MARK_END in body:
        head, rest = body.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        body = f"{head}{MARK_START}\n{text}\n{MARK_END}{tail}"
    else:
        body = f"{body}\n{MARK_START}\n{text}\n{MARK_END}\n"
    README.write_text(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and sizes (a few minutes)")
    parser.add_argument(
        "--only", metavar="WORKLOAD", help="comma-separated workloads: " + ", ".join(w.name for w in WORKLOADS)
    )
    parser.add_argument("--peers", help="comma-separated peer keys to run (default: all)")
    parser.add_argument("--readme", action="store_true", help="write the report into benchmarks/README.md")
    parser.add_argument("--out", default=str(HERE / "results"), help="basename of results.json/.md")
    parser.add_argument(
        "--update", action="store_true", help="keep the saved results of the workloads not run now (with --only)"
    )
    parser.add_argument("--from-json", metavar="FILE", help="only rebuild the report from a saved results.json")
    parser.add_argument("--case", nargs=3, metavar=("WORKLOAD", "PEER", "PARAMS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        case_main(*args.case)
        return 0
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        text = report(saved["results"], saved["params"], saved["meta"])
        Path(args.out + ".md").write_text(text + "\n")
        print(text)
        if args.readme:
            update_readme(text)
        return 0
    only = set(args.only.split(",")) if args.only else None
    known = {w.name for w in WORKLOADS}
    if only and not only <= known:
        parser.error(f"unknown workload(s) {sorted(only - known)}; choose from {sorted(known)}")
    chosen_peers = set(args.peers.split(",")) if args.peers else None
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    date = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    results: dict[str, Any] = {}
    params: dict[str, dict[str, Any]] = {}
    reruns: dict[str, str] = {}
    if args.update and Path(args.out + ".json").exists():
        # Keep the other workloads of the saved run; replace those run now.
        saved = json.loads(Path(args.out + ".json").read_text())
        results, params = saved["results"], saved["params"]
        reruns = saved["meta"].get("reruns", {})
        date = saved["meta"]["date"]
    for w in WORKLOADS:
        if only and w.name not in only:
            continue
        peers = tuple(p for p in w.peers if not chosen_peers or p in chosen_peers or p in ("serial", "loky-startup"))
        params[w.name] = dict(w.quick if args.quick else w.full)
        log(f"[{w.name}] {w.title.format(**params[w.name])}")
        results[w.name] = measure(w, params[w.name], peers)
        if args.update:
            reruns[w.name] = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        # Saved after every workload, so an interrupted run keeps what it measured.
        meta = {
            "date": date,
            "mode": mode,
            "duration": time.perf_counter() - started,
            "machine": machine(),
            "git": git_revision(),
            "reruns": reruns,
        }
        Path(args.out + ".json").write_text(json.dumps({"meta": meta, "params": params, "results": results}, indent=1))
    text = report(results, params, meta)
    Path(args.out + ".md").write_text(text + "\n")
    print(text)
    if args.readme:
        update_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
