"""Checkpoint and resume: real processes, real files, real signals.

A run with ``checkpoint=FOLDER`` records each finished task before handing out
its result; a rerun computes only what is missing and returns every result once,
in input order. These tests kill runs for real (SIGKILL of the parent, SIGINT),
tear journal files by hand, and count computations in log files written by the
task itself.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import psutil
import pytest

from parallelize import (
    Checkpoint,
    ConfigError,
    ModelEvaluator,
    Parallelize,
    ParamSpace,
    ResumeMismatchError,
    TaskFailure,
    parallel,
)
from parallelize.checkpoint import STORED_WORKER, input_hash

# Longest a test waits for a subprocess or a journal to reach a state: a guard
# against hanging, never a speed requirement.
LIMIT = 60.0


# -- helpers (module level, so the process backend can import them) ----------------


def logged_square(x: int, log: str) -> int:
    """x * x, appending x to ``log`` first, so tests can count computations."""
    with open(log, "a") as fh:
        fh.write(f"{x}\n")
    return x * x


def logged_identity(x: Any, log: str) -> Any:
    with open(log, "a") as fh:
        fh.write(json.dumps(repr(x)) + "\n")
    return x


def calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def journals(folder: Path) -> list[Path]:
    return sorted(folder.glob("journal-*.log"))


# -- resume in one process, every backend ----------------------------------------


def test_rerun_computes_only_what_is_missing_and_keeps_order(make_runner: Callable[..., Parallelize], tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    folder = tmp_path / "ck"
    runner = make_runner(2, chunksize=1)
    stream = runner.run_batches(
        logged_square, range(20), call="arg", ordered=True, fixed={"log": str(log)}, checkpoint=folder
    )
    first = [next(iter(stream)) for _ in range(5)]
    stream.close()
    assert first == [0, 1, 4, 9, 16]
    recorded = Checkpoint(folder).completed_positions()
    assert set(range(5)) <= recorded

    # The rerun logs elsewhere: tasks abandoned by close() may still be finishing.
    log2 = tmp_path / "rerun.log"
    out = list(runner.run_batches(
        logged_square, range(20), call="arg", ordered=True, fixed={"log": str(log2)}, checkpoint=folder
    ))
    assert out == [x * x for x in range(20)]
    again = Counter(map(int, calls(log2)))
    assert not set(again) & recorded  # nothing recorded ran again
    assert set(again) | recorded == set(range(20))
    assert all(n == 1 for n in again.values())


def test_map_with_checkpoint_returns_stored_results_without_running_anything(
    make_runner: Callable[..., Parallelize], tmp_path: Path
) -> None:
    folder = tmp_path / "ck"
    runner = make_runner(2)
    data = [3, 1, 3, 3, 2, 1]  # duplicates: one result per position
    assert list(runner.map(abs, data, checkpoint=folder)) == data
    assert runner.statistics().completed == 6

    stream = runner.map(abs, data, checkpoint=folder)
    assert list(stream) == data
    assert stream.statistics().completed == 0
    assert runner.statistics().completed == 0
    assert Checkpoint(folder).is_completed(data)
    assert not Checkpoint(folder).is_completed(data + [7])


def test_duplicates_are_kept_by_position_on_resume(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    folder = tmp_path / "ck"
    data = ["a", "b", "a", "a", "c", "b"]
    with Parallelize(1, backend="serial", chunksize=1) as runner:
        stream = runner.run_batches(logged_identity, data, ordered=True, fixed={"log": str(log)}, checkpoint=folder)
        it = iter(stream)
        assert [next(it), next(it), next(it)] == ["a", "b", "a"]
        stream.close()
        assert Checkpoint(folder).completed_positions() == {0, 1, 2}
        first = len(calls(log))
        out = list(runner.run_batches(logged_identity, data, ordered=True, fixed={"log": str(log)}, checkpoint=folder))
    assert out == data
    # Positions 3, 4, 5 ("a", "c", "b") ran again although "a" and "b" were done at other positions.
    assert [json.loads(line) for line in calls(log)[first:]] == ["'a'", "'c'", "'b'"]


def test_unordered_resume_yields_each_position_once(make_runner: Callable[..., Parallelize], tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    runner = make_runner(2, chunksize=2)
    stream = runner.map(str, range(30), checkpoint=folder, ordered=False)
    it = iter(stream)
    for _ in range(6):
        next(it)
    stream.close()
    out = list(runner.map(str, range(30), checkpoint=folder, ordered=False))
    assert Counter(out) == Counter(str(x) for x in range(30))


def test_batches_of_a_resumed_run_carry_input_positions_and_items(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    data = [10, 11, 12, 13, 14, 15]
    with Parallelize(1, backend="serial", chunksize=2) as runner:
        stream = runner.map(lambda x: x + 1, data, checkpoint=folder)
        it = iter(stream)
        assert [next(it), next(it)] == [11, 12]
        stream.close()
        batches = list(runner.map(lambda x: x + 1, data, checkpoint=folder).batches())
    assert [b.first for b in batches] == [0, 2, 4]
    assert batches[0].worker == STORED_WORKER and list(batches[0].items) == [10, 11]
    assert [list(b.items) for b in batches[1:]] == [[12, 13], [14, 15]]
    assert all(b.worker != STORED_WORKER for b in batches[1:])
    flat = [v for b in batches for v in b.values]
    assert flat == [x + 1 for x in data]
    assert all(math.isnan(d) for d in batches[0].durations)


def test_generator_input_is_streamed_not_materialised(tmp_path: Path) -> None:
    """An endless generator works: only what is consumed is computed and recorded."""
    import itertools

    folder = tmp_path / "ck"
    seen: list[int] = []

    def double(x: int) -> int:
        seen.append(x)
        return x * 2

    with Parallelize(2, chunksize=1) as runner:
        stream = runner.map(double, itertools.count(), checkpoint=folder)
        assert list(itertools.islice(stream, 10)) == [x * 2 for x in range(10)]
        stream.close()
        assert Checkpoint(folder).completed_positions() == set(range(10))
        first = len(seen)
        stream = runner.map(double, itertools.count(), checkpoint=folder)
        assert list(itertools.islice(stream, 15)) == [x * 2 for x in range(15)]
        stream.close()
    assert min(seen[first:]) == 10  # the recorded positions were not sent again


def test_failures_are_not_recorded_and_a_rerun_retries_them(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    flag = tmp_path / "fixed"

    def fragile(x: int) -> int:
        if x % 4 == 1 and not flag.exists():
            raise ValueError(f"bad {x}")
        return x

    with Parallelize(2, on_error="collect") as runner:
        out = list(runner.map(fragile, range(12), checkpoint=folder))
        failed = [v for v in out if isinstance(v, TaskFailure)]
        assert [f.index for f in failed] == [1, 5, 9]  # input positions
        assert Checkpoint(folder).completed_positions() == set(range(12)) - {1, 5, 9}
        flag.touch()
        stream = runner.map(fragile, range(12), checkpoint=folder)
        assert list(stream) == list(range(12))
        assert stream.statistics().completed == 3


def kill_own_worker_once(x: int, flag: str, log: str) -> int:
    """x, except that input 5 kills its worker process until ``flag`` exists."""
    with open(log, "a") as fh:
        fh.write(f"{x}\n")
    if x == 5 and not os.path.exists(flag):
        os.kill(os.getpid(), signal.SIGKILL)
    return x


@pytest.mark.slow
def test_a_killed_worker_loses_only_its_task(tmp_path: Path) -> None:
    folder, flag, log = tmp_path / "ck", tmp_path / "flag", tmp_path / "calls.log"
    fixed = {"flag": str(flag), "log": str(log)}
    with Parallelize(2, backend="process", on_error="collect", chunksize=3) as runner:
        out = list(runner.run_batches(kill_own_worker_once, range(12), ordered=True, fixed=fixed, checkpoint=folder))
        assert isinstance(out[5], TaskFailure) and out[5].index == 5
        assert out[:5] + out[6:] == [x for x in range(12) if x != 5]
        assert Checkpoint(folder).completed_positions() == set(range(12)) - {5}
        flag.touch()
        first = len(calls(log))
        again = list(runner.run_batches(kill_own_worker_once, range(12), ordered=True, fixed=fixed, checkpoint=folder))
    assert again == list(range(12))
    assert calls(log)[first:] == ["5"]


def test_skip_policy_drops_failures_of_resumed_runs(tmp_path: Path) -> None:
    def odd_fails(x: int) -> int:
        if x % 2:
            raise ValueError(x)
        return x

    with Parallelize(2, on_error="skip") as runner:
        assert list(runner.map(odd_fails, range(6), checkpoint=tmp_path / "ck")) == [0, 2, 4]
        assert list(runner.map(odd_fails, range(6), checkpoint=tmp_path / "ck")) == [0, 2, 4]


def test_raise_policy_reraises_the_users_error(tmp_path: Path) -> None:
    def boom(x: int) -> int:
        if x == 7:
            raise KeyError("seven")
        return x

    with Parallelize(2, chunksize=1) as runner:
        with pytest.raises(KeyError, match="seven"):
            list(runner.map(boom, range(10), checkpoint=tmp_path / "ck"))
        assert 7 not in Checkpoint(tmp_path / "ck").completed_positions()


# -- changed inputs --------------------------------------------------------------


def test_changed_list_input_is_reported_before_anything_runs(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    log = tmp_path / "calls.log"
    with Parallelize(2) as runner:
        list(runner.map(str, [1, 2, 3, 4, 5], checkpoint=folder))
        n_files = len(journals(folder))
        with pytest.raises(ResumeMismatchError) as info:
            runner.run_batches(logged_square, [1, 2, 30, 4, 50, 6], fixed={"log": str(log)}, checkpoint=folder)
        assert not log.exists()
        assert len(journals(folder)) == n_files
        # The original inputs still resume.
        assert list(runner.map(str, [1, 2, 3, 4, 5], checkpoint=folder)) == ["1", "2", "3", "4", "5"]
    message = str(info.value)
    assert "2 position(s)" in message and "2 (now 30)" in message and "4 (now 50)" in message
    assert str(folder) in message


def test_changed_generator_input_is_reported_without_mixing_results(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    with Parallelize(2) as runner:
        list(runner.map(str, range(10), checkpoint=folder))
        got: list[str] = []
        with pytest.raises(ResumeMismatchError, match=r"at 2 position\(s\): 3 \(now 33\), 8 \(now 88\)"):
            for v in runner.map(str, (x * 11 if x in (3, 8) else x for x in range(10)), checkpoint=folder):
                got.append(v)
        assert "33" not in got and "3" not in got[3:]


def test_changed_generator_input_after_a_missing_position_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "ck"

    def two_fails(x: int) -> int:
        if x == 2:
            raise ValueError(x)
        return x

    with Parallelize(2, on_error="collect") as runner:
        list(runner.map(two_fails, range(10), checkpoint=folder))  # records all but position 2
        got: list[int] = []
        with pytest.raises(ResumeMismatchError, match=r"at 1 position\(s\): 5 \(now 99\)"):
            for v in runner.map(abs, (99 if x == 5 else x for x in range(10)), checkpoint=folder):
                got.append(v)
    # In order, and nothing from the changed position on (when the engine reads
    # ahead to position 5 decides whether position 2 came out first).
    assert got in ([0, 1], [0, 1, 2])
    assert Checkpoint(folder).completed_positions() == set(range(10)) - {2}


def test_changed_space_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    with Parallelize(2) as runner:
        list(runner.map(lambda a, b: a * b, ParamSpace(a=[1, 2], b=[3, 4]), checkpoint=folder))
        with pytest.raises(ResumeMismatchError):
            runner.map(lambda a, b: a * b, ParamSpace(a=[1, 2], b=[3, 5]), checkpoint=folder)
        with pytest.raises(ResumeMismatchError, match="call mode 'kwargs'"):
            runner.map(lambda p: p, [1, 2, 3, 4], checkpoint=folder)


def test_shorter_input_reuses_the_matching_prefix(tmp_path: Path) -> None:
    with Parallelize(2) as runner:
        list(runner.map(str, range(10), checkpoint=tmp_path / "ck"))
        stream = runner.map(str, range(4), checkpoint=tmp_path / "ck")
        assert list(stream) == ["0", "1", "2", "3"]
        assert stream.statistics().completed == 0


# -- torn and foreign files --------------------------------------------------------


def _four_records(folder: Path, log: Path) -> Path:
    """A checkpoint of 20 squares written as four records of five tasks."""
    with Parallelize(1, backend="serial", chunksize=5) as runner:
        out = list(runner.run_batches(logged_square, range(20), ordered=True, fixed={"log": str(log)}, checkpoint=folder))
    assert out == [x * x for x in range(20)]
    (segment,) = journals(folder)
    return segment


def _rerun(folder: Path, log: Path) -> list[int]:
    with Parallelize(1, backend="serial") as runner:
        return list(runner.run_batches(logged_square, range(20), ordered=True, fixed={"log": str(log)}, checkpoint=folder))


@pytest.mark.parametrize("cut", [1, 7, 16, 30])
def test_torn_last_record_is_ignored_and_recomputed(tmp_path: Path, cut: int) -> None:
    folder, log = tmp_path / "ck", tmp_path / "calls.log"
    segment = _four_records(folder, log)
    data = segment.read_bytes()
    segment.write_bytes(data[:-cut])  # a crash in the middle of the last write
    assert Checkpoint(folder).completed_positions() == set(range(15))
    first = len(calls(log))
    assert _rerun(folder, log) == [x * x for x in range(20)]
    assert sorted(map(int, calls(log)[first:])) == list(range(15, 20))


def test_damaged_record_stops_reading_that_file(tmp_path: Path) -> None:
    folder, log = tmp_path / "ck", tmp_path / "calls.log"
    segment = _four_records(folder, log)
    data = bytearray(segment.read_bytes())
    # Flip a byte inside the second record's payload: its checksum no longer matches.
    offsets = [i for i in range(len(data)) if data[i : i + 4] == b"PZR1"]
    assert len(offsets) == 4
    data[offsets[1] + 40] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert Checkpoint(folder).completed_positions() == set(range(5))
    first = len(calls(log))
    assert _rerun(folder, log) == [x * x for x in range(20)]
    assert sorted(map(int, calls(log)[first:])) == list(range(5, 20))
    assert Checkpoint(folder).is_completed(range(20))


def test_garbage_and_half_created_files_are_ignored(tmp_path: Path) -> None:
    folder, log = tmp_path / "ck", tmp_path / "calls.log"
    segment = _four_records(folder, log)
    with open(segment, "ab") as fh:
        fh.write(b"\x00" + os.urandom(100))
    (folder / "journal-99999999999999999999-1-deadbeef.log").write_bytes(b"PZJ")  # torn file header
    assert Checkpoint(folder).completed_positions() == set(range(20))
    first = len(calls(log))
    assert _rerun(folder, log) == [x * x for x in range(20)]
    assert len(calls(log)) == first


def test_a_folder_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with Parallelize(1) as runner:
        with pytest.raises(ConfigError, match="not a parallelize checkpoint"):
            runner.map(str, range(3), checkpoint=tmp_path)
        with pytest.raises(ConfigError, match="must be a path"):
            runner.map(str, range(3), checkpoint=42)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# -- what is stored, and how ---------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types, all the way down (nan equal to nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) and type(k) is type(k2) for k, k2 in zip(a, b, strict=True))
    return bool(a == b)


PLAIN_RESULTS = [
    None,
    True,
    0,
    10**30,
    -0.0,
    1.5,
    float("nan"),
    float("inf"),
    "text é \ud800",
    b"\x00bytes",
    3 + 4j,
    (1, (2, "x")),
    [(1, 2), [3]],
    {"a": 1, "b": (2,)},
    {1: "int key", (1, 2): "tuple key", None: 0},
    {1, 2, 3},
    frozenset({"x", "y"}),
    np.arange(6, dtype=np.int16).reshape(2, 3),
    np.array([1.5, np.nan]),
    np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]"),
    np.array(["ab", "c"]),
    np.float32(2.5),
    np.int64(-3),
    np.bool_(True),
]


def test_plain_results_round_trip_exactly_without_pickle(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    results = PLAIN_RESULTS
    with Parallelize(2) as runner:
        first = list(runner.map(lambda i: results[i], range(len(results)), checkpoint=folder))
        stream = runner.map(lambda i: results[i], range(len(results)), checkpoint=folder)  # allow_pickle=False
        again = list(stream)
    assert stream.statistics().completed == 0
    for expected, a, b in zip(results, first, again, strict=True):
        assert _same(expected, b), (expected, b)
        assert _same(a, b)
    text = b"".join(p.read_bytes() for p in journals(folder))
    assert b'"p"' not in text  # no pickled record


class Marker:
    """A result whose unpickling touches a file: stands for a malicious pickle."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.path),))


def test_pickled_results_are_refused_unless_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    marker = tmp_path / "code-ran"
    with Parallelize(1) as runner:
        list(runner.map(lambda _: Marker(str(marker)), range(2), checkpoint=folder))
        assert not marker.exists()
        with pytest.raises(ConfigError, match=r"2 pickled result\(s\).*allow_pickle=True"):
            runner.map(lambda _: Marker(str(marker)), range(2), checkpoint=folder)
        assert not marker.exists()  # opening the folder ran nothing
        out = list(runner.map(lambda _: 0, range(2), checkpoint=Checkpoint(folder, allow_pickle=True)))
    assert marker.exists()  # loading a pickle does run code: hence the default
    assert out == [None, None]  # Path.touch returns None


HASH_CHILD = textwrap.dedent(
    """
    import json, sys
    from parallelize.checkpoint import input_hash
    values = [{"b", "a", "c"}, {"x": frozenset({"p", "q"}), "y": [1, 2.0]}, ("s", b"t"), 10**20]
    print(json.dumps([input_hash(v) for v in values]))
    """
)


def test_input_hash_is_the_same_in_every_process_and_hash_seed() -> None:
    hashes = []
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", HASH_CHILD], env=env, capture_output=True, text=True, timeout=LIMIT, check=True)
        hashes.append(json.loads(run.stdout))
    assert hashes[0] == hashes[1] == hashes[2]
    assert len(set(hashes[0])) == 4
    assert input_hash(1) != input_hash(1.0) != input_hash(True)
    assert input_hash((1, 2)) != input_hash([1, 2])


# -- the other entry points ------------------------------------------------------------


def test_model_evaluator_resumes_a_grid(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    log = tmp_path / "calls.log"

    def score(depth: int, impurity: str) -> tuple[int, str]:
        with open(log, "a") as fh:
            fh.write("x\n")
        return depth, impurity

    with Parallelize(2) as runner:
        evaluator = ModelEvaluator(runner)
        evaluator.run(score, depth=range(2, 6), impurity=["gini", "entropy"], checkpoint=folder)
        first = list(evaluator.results(ordered=True))
        evaluator.run(score, depth=range(2, 6), impurity=["gini", "entropy"], checkpoint=folder)
        second = list(evaluator.results(ordered=True))
        assert evaluator.statistics().completed == 0
    assert first == second == [(d, i) for d in range(2, 6) for i in ["gini", "entropy"]]
    assert len(calls(log)) == 8


def test_decorator_map_and_grid_take_a_checkpoint(tmp_path: Path) -> None:
    @parallel(workers=2)
    def cube(x: int) -> int:
        return x**3

    @parallel(workers=2)
    def add(a: int, b: int) -> int:
        return a + b

    try:
        assert list(cube.map(range(5), checkpoint=tmp_path / "m")) == [0, 1, 8, 27, 64]
        assert list(cube.map(range(5), checkpoint=tmp_path / "m")) == [0, 1, 8, 27, 64]
        assert cube.statistics().completed == 0
        assert list(add.grid(a=[1, 2], b=[10, 20], checkpoint=tmp_path / "g")) == [11, 21, 12, 22]
        assert list(add.grid(a=[1, 2], b=[10, 20], checkpoint=tmp_path / "g")) == [11, 21, 12, 22]
        assert add.statistics().completed == 0
    finally:
        cube.shutdown()
        add.shutdown()


# -- real crashes in a subprocess --------------------------------------------------------

SWEEP = textwrap.dedent(
    """
    import json, sys, time
    from parallelize import Parallelize

    def slow(x):
        with open(sys.argv[2], "a") as fh:
            fh.write(f"{x}\\n")
        time.sleep(0.02)
        return x * x

    if __name__ == "__main__":
        folder, log, backend, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
        with Parallelize(2, backend=backend) as runner:
            out = list(runner.map(slow, range(n), checkpoint=folder))
        print(json.dumps(out))
    """
)

N = 300


def _start(script: Path, folder: Path, log: Path, backend: str, seed: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.Popen(
        [sys.executable, str(script), str(folder), str(log), backend, str(N)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: killpg reaches its workers too
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_gone(procs: list[psutil.Process]) -> list[psutil.Process]:
    deadline = time.monotonic() + 10
    alive = procs
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    return alive


def _finish_and_check(script: Path, folder: Path, log: Path, backend: str) -> None:
    """Rerun to completion; every result once, in order; only missing tasks computed."""
    done_before = Checkpoint(folder).completed_positions()
    computed_before = [int(x) for x in calls(log)]
    assert 0 < len(done_before) < N
    rerun = _start(script, folder, log, backend, seed="2")
    try:
        out, err = rerun.communicate(timeout=LIMIT)
    finally:
        _kill_group(rerun.pid)
    assert rerun.returncode == 0, err
    assert json.loads(out) == [x * x for x in range(N)]
    computed_after = Counter(int(x) for x in calls(log)[len(computed_before):])
    assert not set(computed_after) & done_before  # no recorded task ran again
    assert set(computed_after) == set(range(N)) - done_before
    assert set(computed_after.values()) == {1}
    recomputed = set(computed_after) & set(computed_before)
    assert len(recomputed) < len(done_before)
    assert Checkpoint(folder).is_completed(range(N))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["process", "thread"])
def test_resume_after_sigkill_of_the_parent(tmp_path: Path, backend: str) -> None:
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    folder, log = tmp_path / "ck", tmp_path / "calls.log"
    proc = _start(script, folder, log, backend, seed="1")
    try:
        wait_until(lambda: len(Checkpoint(folder).completed_positions()) >= 20 or proc.poll() is not None,
                   "the first run to record tasks")
        assert proc.poll() is None, proc.communicate()[1]
        group = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)  # the parent dies mid-run, no cleanup at all
        proc.wait(timeout=LIMIT)
    finally:
        _kill_group(proc.pid)  # its orphaned workers
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not _wait_gone(group)
    _finish_and_check(script, folder, log, backend)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["process", "thread"])
def test_ctrl_c_stops_promptly_and_the_rerun_completes(tmp_path: Path, backend: str) -> None:
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    folder, log = tmp_path / "ck", tmp_path / "calls.log"
    proc = _start(script, folder, log, backend, seed="1")
    try:
        wait_until(lambda: len(Checkpoint(folder).completed_positions()) >= 20 or proc.poll() is not None,
                   "the first run to record tasks")
        assert proc.poll() is None, proc.communicate()[1]
        group = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C
        # Exits on its own (the guard only turns a hang into a failure).
        _, err = proc.communicate(timeout=15)
        left = _wait_gone(group)
    finally:
        _kill_group(proc.pid)
        if proc.poll() is None:
            proc.wait()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    assert not [p.cmdline() for p in left if "resource_tracker" not in " ".join(p.cmdline())]
    _finish_and_check(script, folder, log, backend)
