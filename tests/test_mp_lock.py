"""multiprocessing_lib's API (``mp_lock``, ``mp_lock_values``, ``is_completed``).

Real worker processes and real files: ``save_callback`` writes to disk, the
process function logs each call so that recomputation can be counted, and the
example is run as a user would run it, crash included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from parallelize import (
    ConfigError,
    MpLockReport,
    ResumeMismatchError,
    TaskFailure,
    is_completed,
    mp_lock,
    mp_lock_values,
)

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 90.0


# -- helpers (module level, so worker processes can import them) ---------------------


def log_call(shared_data: dict[str, Any], item: Any) -> None:
    with open(shared_data["log"], "a") as fh:
        fh.write(json.dumps(item) + "\n")


def upper(item: str, shared_data: dict[str, Any], init_values: dict[str, Any]) -> str:
    log_call(shared_data, item)
    return item.upper()


def logged_calls(log: Path) -> list[Any]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


class JsonLines:
    """A save_callback appending ``{"name", "result"}`` lines to ``<path>.jsonl``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Any], list[Any]]] = []

    def __call__(self, path: str, results: list[Any], names: list[Any]) -> None:
        self.calls.append((path, list(results), list(names)))
        with open(path + ".jsonl", "a") as fh:
            for name, result in zip(names, results, strict=True):
                fh.write(json.dumps({"name": name, "result": result}) + "\n")


def saved(out: Path) -> list[dict[str, Any]]:
    path = out / "data.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- mp_lock -------------------------------------------------------------------------


def test_mp_lock_processes_and_saves_every_item_in_batches(tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "calls.log"
    data = [f"item{i}" for i in range(25)]
    save = JsonLines()
    report = mp_lock(data, upper, save, 2, out, save_batch=10, shared_data={"log": str(log)})
    assert report == MpLockReport(computed=25, resumed=0, failures=())
    assert report.ok
    assert sorted((r["name"], r["result"]) for r in saved(out)) == sorted((d, d.upper()) for d in data)
    assert all(path == str(out / "data") for path, _, _ in save.calls)
    assert sorted(len(names) for _, _, names in save.calls) == [5, 10, 10]
    assert is_completed(data, out)

    again = mp_lock(data, upper, save, 2, out, save_batch=10, shared_data={"log": str(log)})
    assert again == MpLockReport(computed=0, resumed=25, failures=())
    assert len(logged_calls(log)) == 25  # nothing ran again
    assert len(save.calls) == 3


OVERLAP: dict[str, Any] = {"busy": False, "overlaps": 0, "calls": 0}


def overlap_detecting_save(path: str, results: list[Any], names: list[Any]) -> None:
    # No lock on purpose: two calls at once would see each other's flag.
    if OVERLAP["busy"]:
        OVERLAP["overlaps"] += 1
    OVERLAP["busy"] = True
    time.sleep(0.02)
    OVERLAP["calls"] += 1
    OVERLAP["busy"] = False


def quick(item: int, shared_data: Any, init_values: Any) -> int:
    return item * 2


@pytest.mark.parametrize("backend", ["process", "thread"])
def test_save_callback_never_runs_twice_at_once(tmp_path: Path, backend: str) -> None:
    OVERLAP.update(busy=False, overlaps=0, calls=0)
    report = mp_lock(range(60), quick, overlap_detecting_save, 4, tmp_path, save_batch=3, backend=backend)
    assert report.computed == 60
    assert OVERLAP["calls"] == 20
    assert OVERLAP["overlaps"] == 0


class FailingSave:
    """Saves like JsonLines, but raises on its ``fail_at``-th call."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.n = 0

    def __call__(self, path: str, results: list[Any], names: list[Any]) -> None:
        self.n += 1
        if self.n == self.fail_at:
            raise OSError("disk full")
        JsonLines()(path, results, names)


def test_an_item_is_done_only_once_its_batch_was_saved(tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "calls.log"
    data = [f"x{i}" for i in range(40)]
    with pytest.raises(OSError, match="disk full"):
        mp_lock(data, upper, FailingSave(3), 2, out, save_batch=5, shared_data={"log": str(log)})
    names_saved = {r["name"] for r in saved(out)}
    assert len(names_saved) == 10  # two batches saved before the failing one
    assert not is_completed(data, out)

    first = len(logged_calls(log))
    report = mp_lock(data, upper, JsonLines(), 2, out, save_batch=5, shared_data={"log": str(log)})
    assert report.resumed == 10 and report.computed == 30
    assert sorted(r["name"] for r in saved(out)) == sorted(data)  # each exactly once
    rerun = logged_calls(log)[first:]
    assert not set(rerun) & names_saved
    assert is_completed(data, out)


def sometimes_fails(item: int, shared_data: dict[str, Any], init_values: Any) -> int:
    log_call(shared_data, item)
    if item % 7 == 3 and not os.path.exists(shared_data["fixed"]):
        raise ValueError(f"cannot process {item}")
    return item


def test_one_failure_does_not_stop_the_others_and_a_rerun_retries_it(tmp_path: Path) -> None:
    out, log, fixed = tmp_path / "out", tmp_path / "calls.log", tmp_path / "fixed"
    shared = {"log": str(log), "fixed": str(fixed)}
    save = JsonLines()
    with pytest.warns(RuntimeWarning, match=r"3 item\(s\) failed.*item 3: ValueError: cannot process 3"):
        report = mp_lock(range(20), sometimes_fails, save, 2, out, save_batch=4, shared_data=shared)
    assert [f.index for f in report.failures] == [3, 10, 17]
    assert all(isinstance(f.exception, ValueError) for f in report.failures)
    assert not report.ok and report.computed == 17
    assert sorted(r["name"] for r in saved(out)) == sorted(set(range(20)) - {3, 10, 17})
    assert not is_completed(range(20), out)

    fixed.touch()
    first = len(logged_calls(log))
    report = mp_lock(range(20), sometimes_fails, save, 2, out, save_batch=4, shared_data=shared)
    assert report == MpLockReport(computed=3, resumed=17, failures=())
    assert sorted(logged_calls(log)[first:]) == [3, 10, 17]
    assert sorted(r["name"] for r in saved(out)) == list(range(20))


# -- init_function and shared_data ----------------------------------------------------------


def init_with_lock(shared_data: dict[str, Any]) -> dict[str, Any]:
    with open(shared_data["log"], "a") as fh:
        fh.write(json.dumps(["init", os.getpid()]) + "\n")
    return {"lock": threading.Lock(), "model": lambda s: s[::-1], "pid": os.getpid()}


def use_model(item: str, shared_data: dict[str, Any], init_values: dict[str, Any]) -> list[Any]:
    with init_values["lock"]:
        return [init_values["model"](item), init_values["pid"], os.getpid(), shared_data["suffix"]]


def test_init_function_runs_once_per_worker_and_may_return_unpicklable_objects(tmp_path: Path) -> None:
    log = tmp_path / "init.log"
    data = [f"w{i}" for i in range(30)]
    values = mp_lock_values(
        data,
        use_model,
        None,
        2,
        tmp_path / "out",
        save_batch=3,
        shared_data={"log": str(log), "suffix": "!"},
        init_function=init_with_lock,
    )
    assert [v[0] for v in values] == [d[::-1] for d in data]
    assert all(v[1] == v[2] for v in values)  # init_values came from this very worker
    assert all(v[3] == "!" for v in values)
    inits = Counter(pid for _, pid in logged_calls(log))
    worker_pids = {v[2] for v in values}
    assert worker_pids <= set(inits) and set(inits.values()) == {1}
    assert os.getpid() not in worker_pids  # processes, not threads


def check_defaults(item: int, shared_data: Any, init_values: Any) -> list[Any]:
    return [shared_data, init_values]


def test_without_shared_data_and_init_function_both_are_empty_dicts(tmp_path: Path) -> None:
    assert mp_lock_values([1], check_defaults, None, 1, tmp_path) == [[{}, {}]]


# -- mp_lock_values -----------------------------------------------------------------------


def test_mp_lock_values_keeps_order_and_duplicates_and_reruns_without_recomputing(tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "calls.log"
    data = ["b", "a", "b", "c", "a", "b"]
    save = JsonLines()
    assert mp_lock_values(data, upper, save, 2, out, save_batch=2, shared_data={"log": str(log)}) == [
        "B",
        "A",
        "B",
        "C",
        "A",
        "B",
    ]
    assert Counter(logged_calls(log)) == Counter(data)  # once per position, duplicates included
    assert Counter(r["name"] for r in saved(out)) == Counter(data)
    again = mp_lock_values(data, upper, save, 2, out, save_batch=2, shared_data={"log": str(log)})
    assert again == ["B", "A", "B", "C", "A", "B"]
    assert len(logged_calls(log)) == len(data)
    assert len(save.calls) == 3


def test_mp_lock_values_puts_failures_in_place(tmp_path: Path) -> None:
    shared = {"log": str(tmp_path / "calls.log"), "fixed": str(tmp_path / "fixed")}
    with pytest.warns(RuntimeWarning):
        values = mp_lock_values(range(5), sometimes_fails, None, 2, tmp_path / "out", shared_data=shared)
    assert values[:3] == [0, 1, 2] and values[4] == 4
    assert isinstance(values[3], TaskFailure) and values[3].index == 3


def test_mp_lock_values_after_mp_lock_computes_the_values(tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "calls.log"
    mp_lock(["p", "q"], upper, None, 1, out, shared_data={"log": str(log)})
    assert mp_lock_values(["p", "q"], upper, None, 1, out, shared_data={"log": str(log)}) == ["P", "Q"]
    assert mp_lock_values(["p", "q"], upper, None, 1, out, shared_data={"log": str(log)}) == ["P", "Q"]
    assert logged_calls(log) == ["p", "q", "p", "q"]  # mp_lock keeps no values


def make_set(item: int, shared_data: Any, init_values: Any) -> Any:
    return {item, item + 1}  # plain data: stored as JSON, no pickle needed


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


def make_point(item: int, shared_data: Any, init_values: Any) -> Point:
    return Point(item)


def test_results_that_need_pickle_resume_only_with_allow_pickle(tmp_path: Path) -> None:
    assert mp_lock_values([1, 2], make_set, None, 1, tmp_path / "a") == [{1, 2}, {2, 3}]
    assert mp_lock_values([1, 2], make_set, None, 1, tmp_path / "a") == [{1, 2}, {2, 3}]
    assert [p.x for p in mp_lock_values([1, 2], make_point, None, 1, tmp_path / "b")] == [1, 2]
    with pytest.raises(ConfigError, match="allow_pickle=True"):
        mp_lock_values([1, 2], make_point, None, 1, tmp_path / "b")
    points = mp_lock_values([1, 2], make_point, None, 1, tmp_path / "b", allow_pickle=True)
    assert [p.x for p in points] == [1, 2]


# -- is_completed, changed data, bad arguments -------------------------------------------------


def test_is_completed_and_changed_data(tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "calls.log"
    assert not is_completed(["a"], out)
    mp_lock(["a", "b", "c"], upper, None, 1, out, shared_data={"log": str(log)})
    assert is_completed(["a", "b", "c"], out)
    assert is_completed(["a", "b"], out)
    assert not is_completed(["a", "b", "c", "d"], out)
    with pytest.raises(ResumeMismatchError, match=r"1 \(now 'B'\)"):
        is_completed(["a", "B", "c"], out)
    with pytest.raises(ResumeMismatchError, match=r"1 \(now 'B'\)"):
        mp_lock(["a", "B", "c"], upper, None, 1, out, shared_data={"log": str(log)})
    assert logged_calls(log) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"process": 3}, "process must be callable"),
        ({"save_callback": "x"}, "save_callback must be None or callable"),
        ({"save_batch": 0}, "save_batch must be an integer >= 1"),
        ({"num_procs": 0}, "max_workers must be an integer >= 1"),
        ({"init_function": 1}, "init_function must be None or callable"),
        ({"out_path": None}, "out_path must be a folder path"),
    ],
)
def test_bad_arguments_are_named(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {
        "data_list": [1],
        "process": quick,
        "save_callback": None,
        "num_procs": 1,
        "out_path": tmp_path,
    }
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        mp_lock(**args)


# -- the example: a real crash (SIGKILL of the parent) and a resume --------------------------


@pytest.mark.slow
def test_example_crashes_then_resumes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "mp_lock_resume.py"), "--out_path", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[1] == "first run: killed by signal 9, 30 of 100 items saved"
    assert lines[2] == "completed? False"
    assert lines[3] == "second run: 30 items already done, 70 processed, 0 failed"
    assert lines[4:] == ["completed? True", "every item saved exactly once: True"]


# -- save_batch controls saving only -----------------------------------------------------


def which_worker(item: int, shared_data: Any, init_values: Any) -> int:
    time.sleep(0.05)
    return os.getpid()


def test_save_batch_does_not_decide_how_the_work_is_spread(tmp_path: Path) -> None:
    # The original's tests use 10 items and save_batch=10: one batch would run on one worker.
    save = JsonLines()
    pids = mp_lock_values(list(range(10)), which_worker, save, 2, tmp_path / "out", save_batch=10)
    assert len(set(pids)) == 2, f"all ten items ran in one worker process: {pids}"
    assert [len(names) for _, _, names in save.calls] == [10]


def test_groups_are_exactly_save_batch_across_batches(tmp_path: Path) -> None:
    save = JsonLines()
    mp_lock(list(range(23)), quick, save, 2, tmp_path / "out", save_batch=4, backend="thread")
    sizes = [len(names) for _, _, names in save.calls]
    assert sizes == [4, 4, 4, 4, 4, 3]
    assert sorted(n for _, _, names in save.calls for n in names) == list(range(23))


def test_a_group_not_saved_when_the_run_stops_is_not_done(tmp_path: Path) -> None:
    from parallelize import Checkpoint, Parallelize

    groups: list[list[int]] = []

    def before_record(positions: list[int], items: list[Any], values: list[Any]) -> None:
        groups.append(list(positions))

    def fail_at_nine(x: int) -> int:
        if x == 9:
            raise ValueError("nine")
        return x

    folder = tmp_path / "ck"
    checkpoint = Checkpoint(folder, before_record=before_record, record_every=4)
    with Parallelize(1, backend="thread", chunksize=1) as runner:
        with pytest.raises(ValueError, match="nine"):
            list(runner.map(fail_at_nine, range(12), checkpoint=checkpoint))
    assert groups == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert Checkpoint(folder).completed_positions() == frozenset(range(8))  # 8 was computed, never saved


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"record_every": 0}, "record_every"),
        ({"record_every": 3}, "give before_record too"),
    ],
)
def test_record_every_is_checked(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    from parallelize import Checkpoint

    if "before_record" not in kwargs and kwargs.get("record_every") == 0:
        kwargs = {**kwargs, "before_record": lambda p, i, v: None}
    with pytest.raises(ConfigError, match=match):
        Checkpoint(tmp_path / "ck", **kwargs)


def pid_and_init(item: Any, shared_data: dict[str, Any], init_values: dict[str, Any]) -> tuple[int, Any, Any]:
    return os.getpid(), init_values.get("call"), shared_data.get("tag")


def init_for(call: str) -> Any:
    def init(shared_data: dict[str, Any]) -> dict[str, Any]:
        return {"call": call}

    return init


def test_consecutive_calls_reuse_the_workers_with_each_calls_own_init_and_shared_data(tmp_path: Path) -> None:
    from parallelize.mplock import end_workers

    first = mp_lock_values(
        list(range(8)), pid_and_init, None, 2, tmp_path / "a", init_function=init_for("a"), shared_data={"tag": 1}
    )
    second = mp_lock_values(
        list(range(8)), pid_and_init, None, 2, tmp_path / "b", init_function=init_for("b"), shared_data={"tag": 2}
    )
    assert {(c, t) for _, c, t in first} == {("a", 1)}
    assert {(c, t) for _, c, t in second} == {("b", 2)}  # never the previous call's set-up
    assert {p for p, _, _ in second} <= {p for p, _, _ in first}  # the same processes
    # Fewer processes asked for: never more run than that.
    third = mp_lock_values(list(range(8)), pid_and_init, None, 1, tmp_path / "c", init_function=init_for("c"))
    assert len({p for p, _, _ in third}) == 1 and {c for _, c, _ in third} == {"c"}
    end_workers()
    for pid in {p for p, _, _ in first + third}:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"worker {pid} still runs after end_workers()")


def test_a_call_while_another_runs_gets_workers_of_its_own(tmp_path: Path) -> None:
    out: dict[str, list[Any]] = {}

    def run(name: str) -> None:
        out[name] = mp_lock_values(list(range(6)), slow_pid, None, 2, tmp_path / name, init_function=init_for(name))

    threads = [threading.Thread(target=run, args=(name,)) for name in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert {c for _, c in out["x"]} == {"x"} and {c for _, c in out["y"]} == {"y"}
    assert not {p for p, _ in out["x"]} & {p for p, _ in out["y"]}


def slow_pid(item: Any, shared_data: dict[str, Any], init_values: dict[str, Any]) -> tuple[int, Any]:
    time.sleep(0.2)
    return os.getpid(), init_values["call"]
