"""The seeds' own spellings, where their users will type them.

``mp_lock_value`` (the name multiprocessing_lib's code used), ``verbose=``,
``is_mp_lock_completed``, ``Parallelize.join()``; and the inputs the originals
ran wrongly (a string ``data_list`` per character, an empty ``out_path`` into
the working directory) refused with a message, before anything runs.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import parallelize
from parallelize import (
    ConfigError,
    Parallelize,
    is_completed,
    is_mp_lock_completed,
    mp_lock,
    mp_lock_value,
    mp_lock_values,
)


def double(item: Any, shared_data: Any, init_values: Any) -> Any:
    return int(item) * 2


def test_mp_lock_value_is_the_original_name_of_mp_lock_values(tmp_path: Path) -> None:
    assert mp_lock_value is mp_lock_values
    assert "mp_lock_value" in parallelize.__all__
    data = [str(i) for i in range(12)]
    assert mp_lock_value(data, double, None, 2, tmp_path / "out", backend="thread") == [2 * i for i in range(12)]


def test_is_mp_lock_completed_is_is_completed(tmp_path: Path) -> None:
    assert is_mp_lock_completed is is_completed
    data = ["a", "b", "c"]
    out = tmp_path / "out"
    assert not is_mp_lock_completed(data, out)
    mp_lock(data, lambda item, s, i: item, None, 2, out, backend="thread")
    assert is_mp_lock_completed(data, out)


def test_verbose_shows_the_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = [str(i) for i in range(5)]
    mp_lock(data, double, None, 2, tmp_path / "quiet", backend="thread", verbose=False)
    assert "5/5" not in capsys.readouterr().err
    mp_lock(data, double, None, 2, tmp_path / "loud", backend="thread", verbose=True)
    assert "5/5" in capsys.readouterr().err
    mp_lock_values(data, double, None, 2, tmp_path / "values", backend="thread", verbose=True)
    assert "5/5" in capsys.readouterr().err


def test_verbose_and_progress_that_disagree_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="verbose"):
        mp_lock(["1"], double, None, 1, tmp_path / "out", backend="thread", progress=True, verbose=False)
    with pytest.raises(ConfigError, match="verbose must be True or False, got 'yes'"):
        mp_lock(["1"], double, None, 1, tmp_path / "out", backend="thread", verbose="yes")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("call", [mp_lock, mp_lock_values])
def test_a_string_data_list_is_refused_not_run_per_character(tmp_path: Path, call: Any) -> None:
    with pytest.raises(ConfigError, match=r"the string 'image\.png'.*once per character.*\[data_list\]"):
        call("image.png", double, None, 2, tmp_path / "out", backend="thread")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="data_list"):
        is_completed("image.png", tmp_path / "out")


@pytest.mark.parametrize("call", [mp_lock, mp_lock_values])
def test_an_empty_out_path_is_refused_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="out_path is empty"):
        call(["1", "2"], double, None, 2, "", backend="thread")
    assert os.listdir(tmp_path) == []
    with pytest.raises(ConfigError, match="out_path is empty"):
        is_mp_lock_completed(["1"], "")


def test_join_waits_for_the_run_like_the_original() -> None:
    finished = threading.Event()

    def slow(queue: Any) -> None:
        time.sleep(0.3)
        finished.set()
        queue.put("done")
        queue.task_done()

    runner = Parallelize(threads=2)
    assert runner.join() is True  # nothing was run
    runner.run(slow)
    assert runner.join(timeout=0.01) is False
    assert runner.join(timeout=30) is True
    assert finished.is_set()
    assert list(runner.results()) == ["done", "done"]
    runner.shutdown()


def test_join_does_not_raise_the_runs_error_results_does() -> None:
    def boom(queue: Any) -> None:
        raise ValueError("bad")

    with Parallelize(threads=1) as runner:
        runner.run(boom)
        assert runner.join(timeout=30) is True
        with pytest.raises(ValueError, match="bad"):
            list(runner.results())
