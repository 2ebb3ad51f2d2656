"""``progress=``: a tqdm bar, tqdm options, a tqdm class, and plain lines where no bar can be drawn."""

from __future__ import annotations

import functools
import io
import re
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import pytest
import tqdm.auto
import tqdm.std

from parallelize import ConfigError, Parallelize, parallel
from parallelize.engine.progress import PLAIN_INTERVAL_SECONDS, PlainProgress, make_progress
from parallelize.options import RunOptions


def square(x: int) -> int:
    return x * x


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


# -- True: a bar on a terminal, plain lines elsewhere ------------------------------------


def test_plain_lines_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with Parallelize(2, backend="thread", progress=True) as runner:
        assert list(runner.map(square, range(1000))) == [x * x for x in range(1000)]
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    # A fast run: the final line, and at most a line or two on the interval before it.
    assert 1 <= len(lines) <= 3, lines
    assert all(line.startswith("parallelize: ") for line in lines)
    assert re.fullmatch(r"parallelize: 1,000/1,000 tasks \(100%\), [\d.,e+-]+ tasks/s, done in \d+:\d\d", lines[-1])


def test_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Parallelize(2, backend="thread", progress=True) as runner:
        assert sum(runner.map(square, range(50))) == sum(x * x for x in range(50))
    shown = terminal.getvalue()
    assert "\r" in shown and "50/50" in shown  # tqdm redraws its bar in place


def test_a_notebook_gets_the_auto_bar_even_though_its_stderr_is_no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a Jupyter kernel looks like to tqdm.autonotebook: IPython's shell with
    # an IPKernelApp in its config (tqdm.auto is imported above, before this).
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = make_progress(True, 10)
    try:
        assert isinstance(bar, tqdm.auto.tqdm) and not isinstance(bar, PlainProgress)
    finally:
        bar.close()


def test_in_a_subprocess_with_stderr_in_a_file_the_file_has_plain_lines(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from parallelize import Parallelize

        def square(x):
            return x * x

        with Parallelize(2, backend="process", progress=True) as runner:
            print(sum(runner.map(square, range(300))))
        """
    )
    log = tmp_path / "stderr.log"
    with log.open("w") as err:
        done = subprocess.run(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=err, text=True, timeout=90, check=False
        )
    text = log.read_text()
    assert done.returncode == 0, text
    assert done.stdout.strip() == str(sum(x * x for x in range(300)))
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines and all(line.startswith("parallelize: ") for line in lines), text
    assert lines[-1].startswith("parallelize: 300/300 tasks (100%)") and "done in" in lines[-1]


# -- options and classes ------------------------------------------------------------------


def test_dict_options_reach_tqdm() -> None:
    out = io.StringIO()
    with Parallelize(2, backend="thread", progress={"desc": "fitting", "leave": True, "file": out}) as runner:
        assert len(list(runner.map(square, range(40)))) == 40
    shown = out.getvalue()
    assert "fitting" in shown and "40/40" in shown and "parallelize" not in shown


def test_per_call_options_override_the_runners() -> None:
    out = io.StringIO()
    with Parallelize(2, backend="thread") as runner:
        assert len(list(runner.map(square, range(7), progress={"desc": "per call", "file": out}))) == 7
    assert "per call" in out.getvalue() and "7/7" in out.getvalue()


class RecordingBar(tqdm.std.tqdm):  # type: ignore[misc]  # tqdm ships no type hints
    """A tqdm class that remembers its bars and draws them into a buffer."""

    made: list[RecordingBar] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("file", io.StringIO())
        RecordingBar.made.append(self)
        super().__init__(*args, **kwargs)


def test_a_tqdm_class_is_used() -> None:
    RecordingBar.made.clear()
    with Parallelize(2, backend="thread", progress=RecordingBar) as runner:
        assert len(list(runner.map(square, range(25)))) == 25
    [bar] = RecordingBar.made
    assert (bar.n, bar.total, bar.desc, bar.unit) == (25, 25, "parallelize", "task")


def test_any_callable_taking_tqdms_keywords_is_used() -> None:
    out = io.StringIO()
    lines = functools.partial(PlainProgress, file=out, interval=3600)
    with Parallelize(2, backend="thread", progress=lines) as runner:
        assert len(list(runner.map(square, range(12)))) == 12
    assert out.getvalue().startswith("parallelize: 12/12 tasks (100%)")


def test_submit_reports_progress_through_the_same_option() -> None:
    RecordingBar.made.clear()
    with Parallelize(2, backend="thread", progress=RecordingBar) as runner:
        assert [f.result(timeout=30) for f in [runner.submit(square, i) for i in range(5)]] == [0, 1, 4, 9, 16]
    assert RecordingBar.made and sum(bar.n for bar in RecordingBar.made) == 5


def test_options_given_as_a_dict_are_frozen_in_the_record() -> None:
    given = {"desc": "fit", "position": 1}
    options = RunOptions(progress=given)
    given["desc"] = "changed"
    assert dict(options.progress) == {"desc": "fit", "position": 1}  # type: ignore[arg-type]
    assert options == RunOptions(progress={"position": 1, "desc": "fit"})
    assert hash(options) == hash(RunOptions(progress={"position": 1, "desc": "fit"}))
    assert options.replace(progress=False).progress is False


@pytest.mark.parametrize(
    ("bad", "fragments"),
    [
        ("yes", ["progress='yes'", "True, False, a dict of tqdm keyword options"]),
        (3, ["progress=3", "tqdm class"]),
        (None, ["progress=None"]),
        ({"descr": "typo"}, ["'descr'", "'desc'"]),
        ({"total": 5}, ["'total'", "the run sets total"]),
        ({1: "x"}, ["1"]),
        (lambda total: None, ["cannot be called with tqdm's keywords", "desc="]),
    ],
    ids=["str", "int", "none", "unknown-key", "total", "non-str-key", "narrow-callable"],
)
def test_bad_values_raise_config_error_naming_them(bad: Any, fragments: list[str]) -> None:
    for build in (
        lambda: Parallelize(2, progress=bad),
        lambda: Parallelize(2).map(square, [1], progress=bad),
        lambda: parallel(progress=bad)(square),
    ):
        with pytest.raises(ConfigError) as info:
            build()
        for fragment in fragments:
            assert fragment in str(info.value), (fragment, str(info.value))


# -- the plain lines themselves ---------------------------------------------------------------


def test_plain_line_format() -> None:
    report = PlainProgress(total=10_000, file=io.StringIO())
    report.n = 1_200
    elapsed = 1_200 / 35.2
    assert report.format_line(elapsed, final=False) == "parallelize: 1,200/10,000 tasks (12%), 35.2 tasks/s, 4:10 left"
    report.n = 10_000
    assert (
        report.format_line(3_700.0, final=True)
        == "parallelize: 10,000/10,000 tasks (100%), 2.7 tasks/s, done in 1:01:40"
    )
    report.n = 40
    assert report.format_line(20.0, final=True) == "parallelize: 40/10,000 tasks (0%), 2.0 tasks/s, stopped after 0:20"
    unknown = PlainProgress(desc="fit", file=io.StringIO())
    unknown.n = 5
    assert unknown.format_line(0.5, final=False) == "fit: 5 tasks, 10.0 tasks/s"


def test_plain_lines_wait_for_the_interval() -> None:
    out = io.StringIO()
    quiet = PlainProgress(total=100, file=out, interval=3600)
    for _ in range(100):
        quiet.update(1)
    assert out.getvalue() == ""  # nothing before the interval
    quiet.close()
    quiet.close()  # once only
    assert out.getvalue().splitlines() == [out.getvalue().strip()] and "100/100" in out.getvalue()

    out = io.StringIO()
    chatty = PlainProgress(total=3, file=out, interval=0.01)
    for _ in range(3):
        time.sleep(0.05)  # more than the interval: each update writes its line
        chatty.update(1)
    chatty.close()
    lines = out.getvalue().splitlines()
    assert [line.split(" tasks")[0] for line in lines] == [
        "parallelize: 1/3",
        "parallelize: 2/3",
        "parallelize: 3/3",
        "parallelize: 3/3",
    ]
    assert lines[-1].endswith(tuple(f"done in 0:0{s}" for s in range(10)))


def test_plain_progress_checks_its_interval_and_survives_a_closed_file() -> None:
    assert PLAIN_INTERVAL_SECONDS > 0
    with pytest.raises(ConfigError, match="interval"):
        PlainProgress(interval=0)
    closed = io.StringIO()
    closed.close()
    report = PlainProgress(total=1, file=closed, interval=0.000001)
    report.update(1)  # the write fails: the run goes on
    report.close()
