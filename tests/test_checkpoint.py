"""Checkpoint and resume: real processes, real files, real signals.

A run with ``checkpoint=FOLDER`` records each finished task before handing out
its result; a rerun computes only what is missing and returns every result once,
in input order. These tests kill runs for real (SIGKILL of the parent, SIGINT),
tear journal files by hand, and count computations in log files written by the
task itself.
"""

from __future__ import annotations

import base64
import json
import math
import os
import pickle
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parallelize import (
    Checkpoint,
    CheckpointError,
    ConfigError,
    ModelEvaluator,
    Parallelize,
    ParamSpace,
    ResumeMismatchError,
    TaskFailure,
    parallel,
)
from parallelize.checkpoint import MANIFEST, STORED_WORKER, input_hash
from parallelize.checkpoint.journal import _RECORD_HEADER, _RECORD_MAGIC, _SEGMENT_MAGIC, _frame

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


def test_rerun_computes_only_what_is_missing_and_keeps_order(
    make_runner: Callable[..., Parallelize], tmp_path: Path
) -> None:
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
    out = list(
        runner.run_batches(
            logged_square, range(20), call="arg", ordered=True, fixed={"log": str(log2)}, checkpoint=folder
        )
    )
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
    # In order, every item before the changed position (the input's error comes
    # after the results of what it gave before it), nothing from it on.
    assert got == [0, 1, 2, 3, 4]
    # Position 2, missing before, ran in the resumed run and was recorded.
    assert Checkpoint(folder).completed_positions() == set(range(10))


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
        out = list(
            runner.run_batches(logged_square, range(20), ordered=True, fixed={"log": str(log)}, checkpoint=folder)
        )
    assert out == [x * x for x in range(20)]
    (segment,) = journals(folder)
    return segment


def _rerun(folder: Path, log: Path) -> list[int]:
    with Parallelize(1, backend="serial") as runner:
        return list(
            runner.run_batches(logged_square, range(20), ordered=True, fixed={"log": str(log)}, checkpoint=folder)
        )


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


def test_a_reader_racing_the_writer_of_a_new_checkpoint_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reader polling a folder that a new run is creating: its manifest is not
    # there when first looked for, and is by the time the folder is listed.
    folder = tmp_path / "ck"
    with Parallelize(1) as runner:
        assert list(runner.map(str, range(3), checkpoint=folder)) == ["0", "1", "2"]
    real_exists = Path.exists
    missed: list[Path] = []

    def exists_late(self: Path) -> bool:
        if self.name == "checkpoint.json" and not missed:
            missed.append(self)
            return False  # not yet in place...
        return real_exists(self)  # ...and there when looked at again

    monkeypatch.setattr(Path, "exists", exists_late)
    assert Checkpoint(folder).completed_positions() == {0, 1, 2}
    assert missed


# -- damaged and crafted files: always a CheckpointError, never a crash or code run ---------
#
# A crash can only tear the end of a journal (tested above). Everything below has a
# valid checksum, written with the module's own framing, so only the reader's checks
# stand between a crafted file and the caller.

N_CRAFT = 6
H0 = input_hash(0)
CRAFTED = "journal-99999999999999999999-1-crafted0.log"  # sorts after the real journals
DEEP = 100_000


def _double(x: int) -> int:
    return 2 * x


def _base_checkpoint(folder: Path) -> Path:
    """A complete checkpoint of ``_double`` over ``range(N_CRAFT)``; returns its journal."""
    with Parallelize(2, backend="thread") as runner:
        assert list(runner.map(_double, range(N_CRAFT), checkpoint=folder)) == [2 * x for x in range(N_CRAFT)]
    (segment,) = journals(folder)
    return segment


def _resume(runner: Parallelize, folder: Path | Checkpoint) -> list[Any]:
    return list(runner.map(_double, range(N_CRAFT), checkpoint=folder))


def _records(segment: Path) -> list[bytes]:
    """The payloads of a journal's records, read with the module's own header layout."""
    data, offset, out = segment.read_bytes(), len(_SEGMENT_MAGIC), []
    while offset < len(data):
        _, length, _ = _RECORD_HEADER.unpack_from(data, offset)
        out.append(data[offset + _RECORD_HEADER.size : offset + _RECORD_HEADER.size + length])
        offset += _RECORD_HEADER.size + length
    return out


def _craft(folder: Path, body: bytes, where: str) -> Path:
    """Put one record with a valid CRC holding ``body`` in the checkpoint; return its file.

    ``own-file``: the only record of a new journal file (where a torn record would be);
    ``middle``: appended to the run's journal, followed by a valid record (of a
    position past the input, so that it supersedes nothing).
    """
    if where == "own-file":
        path = folder / CRAFTED
        path.write_bytes(_SEGMENT_MAGIC + _frame(body))
        return path
    (segment,) = [p for p in journals(folder) if p.name != CRAFTED]
    with open(segment, "ab") as fh:
        fh.write(_frame(body) + _frame(_row(N_CRAFT + 1, input_hash(N_CRAFT + 1), "j", 1)))
    return segment


def _row(*row: Any) -> bytes:
    return json.dumps({"tasks": [list(row)]}).encode()


def _value(doc: Any) -> bytes:
    """A record storing ``doc`` as the JSON result of position 0."""
    return _row(0, H0, "j", doc)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


EIGHT = _b64(bytes(8))
CRAFTED_RECORDS = [
    # the framing's content
    ("empty", b""),
    ("not-json", b"{not json"),
    ("not-utf8", b'{"tasks":[[0,"\xff\xfe","j",1]]}'),
    ("utf16", json.dumps({"tasks": [[0, H0, "j", 1]]}).encode("utf-16")),
    ("nan-literal", b'{"tasks":[[0,"' + H0.encode() + b'","j",NaN]]}'),
    ("infinity-literal", b'{"tasks":[[0,"' + H0.encode() + b'","j",-Infinity]]}'),
    ("deep-record", b"[" * DEEP + b"]" * DEEP),
    ("deep-object", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    # the record's shape
    ("top-list", b"[[0]]"),
    ("top-int", b"7"),
    ("top-null", b"null"),
    ("no-tasks", b"{}"),
    ("extra-key", json.dumps({"tasks": [[0, H0, "j", 1]], "more": 1}).encode()),
    ("tasks-object", b'{"tasks":{"0":1}}'),
    ("tasks-empty", b'{"tasks":[]}'),
    ("row-int", b'{"tasks":[5]}'),
    ("row-short", _row(0, H0, "j")),
    ("row-long", _row(0, H0, "j", 1, 2)),
    ("row-object", b'{"tasks":[{"pos":0}]}'),
    # positions
    ("pos-negative", _row(-1, H0, "j", 1)),
    ("pos-float", _row(0.0, H0, "j", 1)),
    ("pos-bool", _row(True, H0, "j", 1)),
    ("pos-string", _row("0", H0, "j", 1)),
    ("pos-null", _row(None, H0, "j", 1)),
    ("pos-list", _row([0], H0, "j", 1)),
    ("pos-2**64", _row(2**64, H0, "j", 1)),
    ("pos-5000-digits", b'{"tasks":[[' + b"9" * 5000 + b',"' + H0.encode() + b'","j",1]]}'),
    ("pos-nan", b'{"tasks":[[NaN,"' + H0.encode() + b'","j",1]]}'),
    # hashes and kinds
    ("hash-int", _row(0, 5, "j", 1)),
    ("hash-short", _row(0, "abc", "j", 1)),
    ("hash-upper", _row(0, H0.upper(), "j", 1)),
    ("hash-long", _row(0, H0 + "0", "j", 1)),
    ("kind-unknown", _row(0, H0, "q", 1)),
    ("kind-internal-v", _row(0, H0, "v", 1)),  # the in-memory "decoded" kind is never read
    ("kind-list", _row(0, H0, ["j"], 1)),
    ("kind-int", _row(0, H0, 1, 1)),
    ("none-kind-with-value", _row(0, H0, "-", 1)),
    ("pickle-not-string", _row(0, H0, "p", [1])),
    # stored results
    ("deep-value", b'{"tasks":[[0,"' + H0.encode() + b'","j",' + b"[" * DEEP + b"]" * DEEP + b"]]}"),
    ("value-600-deep", _value(json.loads("[" * 600 + "]" * 600))),  # json reads it; the decoder refuses
    ("value-1e999", b'{"tasks":[[0,"' + H0.encode() + b'","j",1e999]]}'),
    ("untagged-dict", _value({"a": 1, "b": 2})),
    ("empty-dict", _value({})),
    ("unknown-tag", _value({"zz": 1})),
    ("pickle-tag", _value({"pickle": _b64(b"cos\nsystem\n.")})),
    ("tuple-int", _value({"t": 5})),
    ("map-list", _value({"m": [1]})),
    ("dict-pair-short", _value({"d": [[1]]})),
    ("dict-pairs-object", _value({"d": {"a": 1}})),
    ("dict-unhashable-key", _value({"d": [[[1], 2]]})),
    ("set-unhashable", _value({"set": [[1]]})),
    ("fset-string", _value({"fset": "ab"})),
    ("float-finite-string", _value({"f": "1.5"})),
    ("float-int", _value({"f": 5})),
    ("bytes-bad-base64", _value({"b": "!!!"})),
    ("bytes-int", _value({"b": 5})),
    ("complex-one", _value({"c": [1.0]})),
    ("complex-strings", _value({"c": ["1", "2"]})),
    ("complex-ints", _value({"c": [1, 2]})),
    ("complex-nested", _value({"c": [[1.0], 2.0]})),
    ("nd-object-dtype", _value({"nd": ["|O", [1], EIGHT]})),
    ("nd-object-dtype-O8", _value({"nd": ["|O8", [1], EIGHT]})),
    ("nd-structured", _value({"nd": ["i4,i4", [1], EIGHT]})),
    ("nd-subarray", _value({"nd": ["(2,)<i4", [1], EIGHT]})),
    ("nd-void", _value({"nd": ["|V8", [1], EIGHT]})),
    ("nd-dtype-list", _value({"nd": [[["a", "<i8"]], [1], EIGHT]})),
    ("nd-dtype-zero-size", _value({"nd": ["<U0", [1], ""]})),
    ("nd-negative-shape", _value({"nd": ["<i8", [-1], EIGHT]})),
    ("nd-bool-shape", _value({"nd": ["<i8", [True], EIGHT]})),
    ("nd-float-shape", _value({"nd": ["<i8", [1.0], EIGHT]})),
    ("nd-huge-shape", _value({"nd": ["<i8", [2**62, 2**62, 2**62], EIGHT]})),
    ("nd-65-dims", _value({"nd": ["<i8", [1] * 65, EIGHT]})),
    ("nd-size-mismatch", _value({"nd": ["<i8", [3], EIGHT]})),
    ("nd-two-items", _value({"nd": ["<i8", [1]]})),
    ("nd-data-int", _value({"nd": ["<i8", [1], 8]})),
    ("ns-empty", _value({"ns": ["<i8", ""]})),
    ("ns-object", _value({"ns": ["|O", EIGHT]})),
    ("ns-too-long", _value({"ns": ["<i4", EIGHT]})),
]


@pytest.mark.parametrize("where", ["own-file", "middle"])
@pytest.mark.parametrize("body", [b for _, b in CRAFTED_RECORDS], ids=[name for name, _ in CRAFTED_RECORDS])
def test_a_crafted_record_with_a_valid_crc_is_a_checkpoint_error(tmp_path: Path, body: bytes, where: str) -> None:
    folder = tmp_path / "ck"
    _base_checkpoint(folder)
    path = _craft(folder, body, where)
    before = journals(folder)
    with Parallelize(2, backend="thread") as runner:
        with pytest.raises(CheckpointError) as info:
            _resume(runner, folder)
    message = str(info.value)
    assert path.name in message and "record " in message and "damaged" in message, message
    assert f"Delete the folder {str(folder)!r}" in message, message
    assert isinstance(info.value, ConfigError)
    assert journals(folder) == before  # raised before anything ran or was written


def test_a_valid_crafted_record_is_used(tmp_path: Path) -> None:
    """The checks refuse only what the writer never writes: a well-formed record is read."""
    folder = tmp_path / "ck"
    _base_checkpoint(folder)
    _craft(folder, _value({"t": [1, {"b": _b64(b"x")}, {"f": "nan"}]}), "own-file")
    with Parallelize(2, backend="thread") as runner:
        out = _resume(runner, folder)
    assert out[0][:2] == (1, b"x") and math.isnan(out[0][2]) and out[1:] == [2 * x for x in range(1, N_CRAFT)]


def test_a_huge_length_in_a_record_header_is_a_checkpoint_error(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    segment = _base_checkpoint(folder)
    with open(segment, "ab") as fh:
        fh.write(_RECORD_HEADER.pack(_RECORD_MAGIC, 2**63, 0) + b"{}")
    with Parallelize(2, backend="thread") as runner, pytest.raises(CheckpointError, match=r"claims \d+ bytes"):
        _resume(runner, folder)
    with pytest.raises(CheckpointError, match=segment.name):
        Checkpoint(folder).completed_positions()


def test_a_crafted_pickle_is_refused_and_never_loaded(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    marker = tmp_path / "code-ran"
    _base_checkpoint(folder)
    payload = _b64(pickle.dumps(Marker(str(marker))))
    path = _craft(folder, _row(0, H0, "p", payload), "own-file")
    with Parallelize(2, backend="thread") as runner:
        with pytest.raises(CheckpointError, match=rf"1 pickled result\(s\).*{path.name}.*allow_pickle=True"):
            _resume(runner, folder)
        # Neither as a tagged value nor as a NumPy object array.
        path.write_bytes(_SEGMENT_MAGIC + _frame(_value({"nd": ["|O", [1], payload]})))
        with pytest.raises(CheckpointError, match="refusing NumPy dtype"):
            _resume(runner, folder)
        # With allow_pickle, a pickle whose base64 is damaged is an error too, before anything runs.
        path.write_bytes(_SEGMENT_MAGIC + _frame(_row(0, H0, "p", "not base64!")))
        with pytest.raises(CheckpointError, match="task 0 cannot be read"):
            _resume(runner, Checkpoint(folder, allow_pickle=True))
    assert not marker.exists()


def test_damage_found_only_by_decoding_is_reported_when_the_run_opens(tmp_path: Path) -> None:
    """Positions are listed without decoding results; a resume decodes them before running."""
    folder = tmp_path / "ck"
    _base_checkpoint(folder)
    _craft(folder, _value({"zz": 1}), "own-file")
    assert Checkpoint(folder).completed_positions() == set(range(N_CRAFT))
    with Parallelize(2, backend="thread") as runner:
        with pytest.raises(CheckpointError, match="stored result of task 0 cannot be read.*unknown tag 'zz'"):
            runner.map(_double, range(N_CRAFT), checkpoint=folder)  # at once, not when iterated


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"\xff\xfe",
        b"[" * DEEP + b"]" * DEEP,
        b"[]",
        b'"checkpoint"',
        b'{"format": "parallelize-checkpoint", "version": 1, "call": "arg", "hash": NaN}',
        b'{"format": "parallelize-checkpoint", "version": 1, "call": 5, "hash": "sha256-params-v1"}',
        b'{"format": "parallelize-checkpoint", "version": 1, "call": "nope", "hash": "sha256-params-v1"}',
        b'{"format": "parallelize-checkpoint", "version": 1, "call": "arg", "hash": "md5"}',
        b'{"format": "parallelize-checkpoint", "version": 1, "call": "arg"}',
        b'{"format": "parallelize-checkpoint", "version": 1, "call": "arg", "hash": "sha256-params-v1", "x": 1}',
        b'{"format": "other", "version": 1, "call": "arg", "hash": "sha256-params-v1"}',
    ],
    ids=[
        "empty",
        "not-json",
        "not-utf8",
        "deep",
        "list",
        "string",
        "nan",
        "call-int",
        "call-unknown",
        "hash-scheme",
        "missing-key",
        "extra-key",
        "other-format",
    ],
)
def test_a_damaged_manifest_is_a_checkpoint_error(tmp_path: Path, content: bytes) -> None:
    folder = tmp_path / "ck"
    _base_checkpoint(folder)
    (folder / MANIFEST).write_bytes(content)
    with Parallelize(2, backend="thread") as runner, pytest.raises(CheckpointError) as info:
        _resume(runner, folder)
    message = str(info.value)
    assert str(folder / MANIFEST) in message and "damaged" in message and "Delete the folder" in message


def test_other_manifest_versions_and_a_missing_manifest_are_checkpoint_errors(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    _base_checkpoint(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "version": 2}))
    with Parallelize(2, backend="thread") as runner:
        with pytest.raises(CheckpointError, match="format version 2; this version of parallelize reads version 1"):
            _resume(runner, folder)
        (folder / MANIFEST).unlink()
        with pytest.raises(CheckpointError, match="it is missing, but the folder holds journal files"):
            _resume(runner, folder)


def test_a_foreign_journal_file_is_an_error_but_a_zero_filled_one_is_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    _base_checkpoint(folder)
    (folder / CRAFTED).write_bytes(bytes(4096))  # a power cut can leave a new file as zeros
    assert Checkpoint(folder).completed_positions() == set(range(N_CRAFT))
    (folder / CRAFTED).write_bytes(b"#!/bin/sh\nrm -rf /\n")
    with pytest.raises(CheckpointError, match=rf"{CRAFTED}.*starts with b'#!/bin/s'"):
        Checkpoint(folder).completed_positions()


def test_results_too_deep_or_too_big_for_json_are_pickled_not_lost(tmp_path: Path) -> None:
    """What the reader refuses, the writer never writes: such results take the pickle route."""
    from parallelize.checkpoint.codec import _MAX_NESTING

    deep: Any = 0
    for _ in range(_MAX_NESTING):  # one level too many
        deep = [deep]
    deep = [deep]
    results = [10**5000, deep]
    folder = tmp_path / "ck"
    with Parallelize(2, backend="thread") as runner:
        assert list(runner.map(lambda i: results[i], range(2), checkpoint=folder)) == results
        with pytest.raises(CheckpointError, match=r"2 pickled result\(s\)"):
            runner.map(lambda i: results[i], range(2), checkpoint=folder)
        assert list(runner.map(lambda i: 0, range(2), checkpoint=Checkpoint(folder, allow_pickle=True))) == results


@pytest.mark.parametrize(
    "make",
    [
        lambda v: [v],
        lambda v: (v,),
        lambda v: {"k": v},
        lambda v: {1: v},
        lambda v: frozenset({v}),
        lambda v: [complex(math.nan, 1.0), v],
        lambda v: (np.arange(2), v),
    ],
    ids=["list", "tuple", "str-dict", "int-dict", "frozenset", "complex", "ndarray"],
)
def test_encoder_and_decoder_allow_exactly_the_same_nesting(make: Callable[[Any], Any]) -> None:
    """The deepest value the encoder writes decodes; one level more, it is pickled and refused."""
    from parallelize.checkpoint.codec import _MAX_NESTING, _NotPlain, decode, encode

    def through_json(doc: Any) -> Any:
        return json.loads(json.dumps(doc, allow_nan=False))

    value: Any = b"leaf"
    depth = 0
    while True:
        deeper = make(value)
        try:
            encode(deeper)
        except _NotPlain:
            break
        value, depth = deeper, depth + 1
    assert depth > 30
    assert repr(decode(through_json(encode(value)))) == repr(value)
    # The document the encoder would write with a little more room is one the decoder refuses.
    extra = next(n for n in (1, 2, 3) if _room_is_enough(encode, deeper, _MAX_NESTING + n, _NotPlain))
    doc = through_json(encode(deeper, _MAX_NESTING + extra))
    with pytest.raises(ValueError, match="nested more than 200 levels"):
        decode(doc)
    assert repr(decode(doc, _MAX_NESTING + extra)) == repr(deeper)


def _room_is_enough(encode: Callable[..., Any], value: Any, room: int, not_plain: type[Exception]) -> bool:
    try:
        encode(value, room)
    except not_plain:
        return False
    return True


# Random JSON: scalars, words the decoder knows, and the containers the records use.
_TAGS = ["t", "m", "d", "set", "fset", "b", "c", "f", "nd", "ns"]
_WORDS = [
    *_TAGS,
    "tasks",
    "j",
    "p",
    "-",
    "v",
    "nan",
    "inf",
    "-inf",
    "<i8",
    "|O",
    "<f8",
    "|b1",
    "<U2",
    "<M8[ns]",
    "i4,i4",
    EIGHT,
    "",
]
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(_WORDS)
)
json_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_WORDS) | st.text(max_size=3), inner, max_size=3)
        | st.builds(lambda tag, body: {tag: body}, st.sampled_from(_TAGS), inner)
    ),  # tagged values, often
    max_leaves=30,
)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four, else ``bad``."""
    return st.integers(0, 3).flatmap(lambda n: good if n else bad)


# Rows that are mostly well-formed (a position with its own input's hash), so the
# decoder's checks are reached, not only the record's.
_rows = _mostly(
    st.integers(0, N_CRAFT - 1)
    .flatmap(
        lambda pos: st.tuples(
            st.just(pos),
            _mostly(st.just(input_hash(pos)), _leaves),
            _mostly(st.just("j"), st.sampled_from("p-v") | _leaves),
            json_values,
        )
    )
    .map(list),
    json_values,
)
record_bodies = json_values | st.lists(_rows, max_size=3).map(lambda rows: {"tasks": rows})


def _outcome(runner: Parallelize, folder: Path, body: bytes) -> list[Any] | None:
    """The resumed results, or None for a CheckpointError naming the crafted file."""
    base = journals(folder)
    path = folder / CRAFTED
    path.write_bytes(_SEGMENT_MAGIC + _frame(body))
    try:
        return _resume(runner, folder)
    except CheckpointError as exc:
        assert CRAFTED in str(exc), str(exc)
        return None
    finally:
        for extra in set(journals(folder)) - set(base):  # the crafted file, and any rerun's journal
            extra.unlink()


def test_random_json_records_give_a_checkpoint_error_or_a_resume(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    _base_checkpoint(folder)
    outcomes: Counter[str] = Counter()
    with Parallelize(2, backend="thread") as runner:

        @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(record_bodies)
        def check(doc: Any) -> None:
            out = _outcome(runner, folder, json.dumps(doc).encode())
            outcomes["error" if out is None else "resumed"] += 1
            if out is not None:
                assert len(out) == N_CRAFT

        check()
    assert outcomes["error"]


def test_random_stored_results_give_a_checkpoint_error_or_a_resume(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    _base_checkpoint(folder)
    outcomes: Counter[str] = Counter()
    with Parallelize(2, backend="thread") as runner:

        @settings(max_examples=200, deadline=None)
        @given(json_values)
        def check(doc: Any) -> None:
            out = _outcome(runner, folder, _value(doc))
            outcomes["error" if out is None else "resumed"] += 1
            if out is not None:
                assert out[1:] == [2 * x for x in range(1, N_CRAFT)]

        check()
    assert outcomes["error"] and outcomes["resumed"]


def test_random_bytes_in_a_record_give_a_checkpoint_error(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    _base_checkpoint(folder)
    with Parallelize(2, backend="thread") as runner:

        @settings(max_examples=200, deadline=None)
        @given(st.binary(max_size=64) | st.sampled_from([b"1", b"{}", b'"x"', b"[" * 5000]))
        def check(body: bytes) -> None:
            assert _outcome(runner, folder, body) is None  # random bytes are never a valid record

        check()


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
        run = subprocess.run(
            [sys.executable, "-c", HASH_CHILD], env=env, capture_output=True, text=True, timeout=LIMIT, check=True
        )
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
    computed_after = Counter(int(x) for x in calls(log)[len(computed_before) :])
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
        wait_until(
            lambda: len(Checkpoint(folder).completed_positions()) >= 20 or proc.poll() is not None,
            "the first run to record tasks",
        )
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
        wait_until(
            lambda: len(Checkpoint(folder).completed_positions()) >= 20 or proc.poll() is not None,
            "the first run to record tasks",
        )
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


# -- map_rows resumes like map, and keeps the frame's own index ---------------------


def _row_tag(pair: tuple[Any, Any]) -> str:
    label, row = pair
    return f"{label}:{row['x']}"


def _row_sum(x: int, y: int) -> int:
    if x == 3 and os.environ.get("PZ_TEST_FAIL_ROW") == "1":
        raise ValueError("row 3 fails on the first run")
    return x + y


@pytest.mark.parametrize("pass_as", ["pair", "kwargs"])
def test_map_rows_with_a_checkpoint_keeps_the_index_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pass_as: str
) -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": [10, 20, 30, 40]}, index=pd.Index(["a", "b", "c", "d"], name="key"))
    func = _row_tag if pass_as == "pair" else _row_sum
    folder = tmp_path / "ck"
    monkeypatch.setenv("PZ_TEST_FAIL_ROW", "1")
    with Parallelize(2, backend="thread", on_error="collect") as runner:
        first = runner.map_rows(func, frame, pass_as=pass_as, checkpoint=folder).to_dataframe()
    assert first.index.equals(frame.index) and first.index.name == "key"
    assert "input" not in first.columns
    monkeypatch.setenv("PZ_TEST_FAIL_ROW", "0")
    with Parallelize(2, backend="thread") as runner:
        stream = runner.map_rows(func, frame, pass_as=pass_as, checkpoint=folder)
        again = stream.to_dataframe()
        stats = runner.statistics()
    assert again.index.equals(frame.index) and again.index.name == "key"
    expected = ["a:1", "b:2", "c:3", "d:4"] if pass_as == "pair" else [11, 22, 33, 44]
    assert again["result"].tolist() == expected
    # The first run recorded every row that succeeded; the rerun computed only the rest.
    assert stats.completed == (0 if pass_as == "pair" else 1)
    assert list(again["worker"] == STORED_WORKER) == ([True] * 4 if pass_as == "pair" else [True, True, False, True])


# -- batches that record themselves where they run (the cluster backends' reattach) ----


def _journal_pids(folder: Path) -> set[int]:
    return {int(p.name.split("-")[2]) for p in folder.glob("journal-*.log")}


def test_a_backend_whose_jobs_outlive_the_submitter_has_its_workers_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On such a backend each batch writes its own journal where it runs; the submitter
    writes none of its own, and a rerun reads the workers' records back."""
    from parallelize import backends
    from parallelize.backends.process import ProcessBackend

    class Outliving(ProcessBackend):
        outlives_submitter = True

    monkeypatch.setitem(backends._REGISTRY, "test-outliving", Outliving)
    folder = tmp_path / "ck"
    with Parallelize(2, backend="test-outliving", chunksize=5) as r:
        out = list(r.map(_square_or_fail, range(20), checkpoint=folder, on_error="skip"))
    assert out == [x * x for x in range(20) if x != 7]
    pids = _journal_pids(folder)
    assert pids and os.getpid() not in pids  # written by the workers, not here
    assert Checkpoint(folder).completed_positions() == frozenset(range(20)) - {7}  # failures are not recorded
    with Parallelize(2, backend="process") as r:
        again = list(r.map(_square_or_fail, range(20), checkpoint=folder, on_error="skip"))
        assert r.statistics().completed + r.statistics().failed == 1  # only task 7 ran again
    assert again == out


def test_a_before_record_callback_keeps_recording_in_the_submitter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parallelize import backends
    from parallelize.backends.process import ProcessBackend

    class Outliving(ProcessBackend):
        outlives_submitter = True

    monkeypatch.setitem(backends._REGISTRY, "test-outliving-2", Outliving)
    seen: list[int] = []
    ck = Checkpoint(tmp_path / "ck", before_record=lambda positions, items, values: seen.extend(positions))
    with Parallelize(2, backend="test-outliving-2", chunksize=5) as r:
        assert list(r.map(_square_or_fail, range(6), checkpoint=ck)) == [x * x for x in range(6)]
    assert sorted(seen) == list(range(6))
    assert _journal_pids(tmp_path / "ck") == {os.getpid()}


def _square_or_fail(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x * x
