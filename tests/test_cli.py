"""The command line: an mproc config file swept from the shell, results on disk.

Every exit status is checked by running the real command in a subprocess
(``python -m parallelize sweep ...``) in a session of its own, so that the
worker processes it starts can be found, and must be gone, once it exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from parallelize import read_results
from parallelize.cli import load_config, main
from parallelize.errors import ConfigError

# Seconds one command may take before it counts as hung.
TIMEOUT = 25

CONFIG = textwrap.dedent(
    """
    from helper_fn import square_plus as function

    CONFIG = {"x": list(range(30)), "plus": [0, 10], "tag": "run"}
    MODE = "combinatorial"
    """
)

HELPER = textwrap.dedent(
    """
    import time
    from pathlib import Path

    def square_plus(index_row):
        index, row = index_row
        if row["x"] == 13 and row["plus"] == 10:
            raise ValueError("unlucky")
        return {"y": row["x"] ** 2 + row["plus"], "tag": row["tag"]}

    def slow_double(index_row):
        index, row = index_row
        time.sleep(0.1)
        return {"y": 2 * row["x"]}

    def mark(x):
        # Leaves a trace of every row that ran.
        (Path(__file__).parent / "ran").mkdir(exist_ok=True)
        (Path(__file__).parent / "ran" / str(x)).touch()
        return {"y": x}
    """
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "helper_fn.py").write_text(HELPER)
    path = tmp_path / "MPROC_CONFIG.py"
    path.write_text(CONFIG)
    return path


def write_config(tmp_path: Path, name: str, text: str) -> Path:
    """A config file next to ``helper_fn.py``."""
    (tmp_path / "helper_fn.py").write_text(HELPER)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _left_in_session(sid: int) -> list[psutil.Process]:
    left = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except (OSError, psutil.Error):
            continue
    return left


def check_no_process_left(sid: int) -> None:
    """The command's workers (reparented once it exits) must end too."""
    deadline = time.monotonic() + 10
    left = _left_in_session(sid)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _left_in_session(sid)
    for p in left:
        p.kill()
    assert not left, f"processes left behind by the command: {left}"


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "parallelize", "sweep", *args, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own session and group: its workers can be found, and reached
    )


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        check_no_process_left(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return finish(start_cli(*args))


def assert_one_line_error(proc: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    """Exit ``status``, a single ``parallelize: error:`` line holding ``words``, no traceback."""
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("parallelize: error: "), proc.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


# --------------------------------------------------------------------------- 0 and 1


def test_exit_0_when_every_row_is_done(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "ok.py",
        """
        from helper_fn import mark as function
        CONFIG = {"x": list(range(20))}
        PASS_AS = "kwargs"
        """,
    )
    out = tmp_path / "out"
    proc = run_cli(str(path), "--out", str(out), "--workers", "2", "--max-rows", "8", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    frame = read_results(out)
    assert list(frame.index) == list(range(20))
    assert list(frame["y"]) == list(range(20))
    assert frame["error"].isna().all()
    assert len(list(out.glob("part-*.csv"))) == 3
    assert (out / "_params.csv").exists()


def test_sweep_writes_every_row_in_order_with_errors_kept(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli(str(config), "--out", str(out), "--workers", "2", "--max-rows", "25", "--format", "csv")
    # One row failed: exit status 1, its error saved with the rest.
    assert proc.returncode == 1, proc.stderr
    assert "1 of 60 rows failed" in proc.stderr
    frame = read_results(out)
    assert len(frame) == 60
    assert list(frame.index) == list(range(60))
    ok = frame[frame["error"].isna()]
    assert len(ok) == 59
    params = [(x, p) for x in range(30) for p in (0, 10)]
    for i, row in ok.iterrows():
        x, plus = params[i]
        assert row["y"] == x * x + plus
    failed = frame[frame["error"].notna()]
    assert list(failed.index) == [params.index((13, 10))]
    assert "ValueError: unlucky" in failed["error"].iloc[0]
    assert len(list(out.glob("part-*.csv"))) == 3
    assert (out / "_params.csv").exists()


def test_random_mode_from_the_command_line(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli(
        str(config), "--out", str(out), "--mode", "random", "--n-samples", "12", "--seed", "3",
        "--workers", "2", "--format", "csv",
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    assert len(read_results(out)) == 12


# --------------------------------------------------------------------------- 2


@pytest.mark.parametrize(
    "args, words",
    [
        (["--bogus"], ["unrecognized arguments: --bogus"]),
        (["--mode", "zipped"], ["--mode", "'zipped'", "combinatorial"]),
        (["--format", "xlsx"], ["--format", "'xlsx'", "parquet"]),
        (["--pass-as", "dict"], ["--pass-as", "'dict'", "kwargs"]),
        (["--workers", "0"], ["--workers must be", "0"]),
        (["--max-rows", "0"], ["--max-rows must be", "0"]),
        (["--resume", "--overwrite"], ["--resume", "--overwrite"]),
        (["--mode", "uniform"], ["x=30", "plus=2"]),
        (["--mode", "random"], ["--mode random requires --n-samples"]),
    ],
    ids=["unknown-flag", "bad-mode", "bad-format", "bad-pass-as", "workers", "max-rows", "resume-and-overwrite",
         "uniform-lengths", "random-without-n"],
)  # fmt: skip
def test_bad_usage_exits_2_on_one_line_naming_the_flags(
    config: Path, tmp_path: Path, args: list[str], words: list[str]
) -> None:
    out = tmp_path / "out"
    line = assert_one_line_error(run_cli(str(config), "--out", str(out), *args), 2, *words)
    for python_name in ("max_workers", "max_rows", "n_samples", "pass_as", "overwrite=True"):
        assert python_name not in line
    assert not out.exists()  # nothing touched


def test_config_with_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text('CONFIG = {"x": [1, 2]}\n\ndef function(row)\n    return row\n')
    assert_one_line_error(run_cli(str(path), "--out", str(tmp_path / "out")), 2, f"{path}:3:", "SyntaxError")


def test_config_whose_import_fails_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "noimport.py"
    path.write_text('CONFIG = {"x": [1, 2]}\nfrom no_such_module_here import function\n')
    assert_one_line_error(
        run_cli(str(path), "--out", str(tmp_path / "out")),
        2,
        f"{path}:2:",
        "ModuleNotFoundError",
        "no_such_module_here",
    )


def test_config_errors_from_load_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("CONFIG = {'a': [1]}\n")
    with pytest.raises(ConfigError, match="must define 'function'"):
        load_config(path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    path.write_text("CONFIG = {'a': [1]}\n\n1 / 0\n")
    with pytest.raises(ConfigError, match=r"bad\.py:3: ZeroDivisionError"):
        load_config(path)


def test_a_folder_holding_results_needs_overwrite_or_resume(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(str(config), "--out", str(out), "--backend", "thread", "--format", "csv").returncode == 1
    before = read_results(out)
    assert_one_line_error(run_cli(str(config), "--out", str(out), "--format", "csv"), 2, "--overwrite", "--resume")
    # --overwrite replaces results and checkpoint: the new values, not the stored ones.
    config.write_text(CONFIG.replace("[0, 10]", "[0, 100]"))
    proc = run_cli(str(config), "--out", str(out), "--backend", "thread", "--format", "csv", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    after = read_results(out)
    assert len(after) == len(before) == 60
    assert after["y"].iloc[1] == 100 and (after["worker"] != "checkpoint").all()


def test_resume_without_a_checkpoint_exits_2(config: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "missing"):
        assert_one_line_error(run_cli(str(config), "--out", str(out), "--resume"), 2, "--resume", "no sweep to resume")


def test_resume_of_another_sweep_exits_2_and_keeps_the_folder(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(str(config), "--out", str(out), "--backend", "thread", "--format", "csv").returncode == 1
    before = read_results(out)
    config.write_text(CONFIG.replace("[0, 10]", "[0, 11]"))
    assert_one_line_error(run_cli(str(config), "--out", str(out), "--resume"), 2, "holds another sweep", "--overwrite")
    assert read_results(out).equals(before)


# --------------------------------------------------------------------------- 3


MARKING = """
from helper_fn import mark as function
CONFIG = {"x": list(range(5))}
PASS_AS = "kwargs"
"""


@pytest.mark.parametrize("where", ["a file", "under a file", "under /proc"])
def test_an_unwritable_output_folder_exits_3_before_any_row_runs(tmp_path: Path, where: str) -> None:
    path = write_config(tmp_path, "marking.py", MARKING)
    somefile = tmp_path / "somefile"
    somefile.write_text("not a folder")
    # Tests run as root, whom permission bits do not stop: use paths no one can write.
    out = {"a file": somefile, "under a file": somefile / "out", "under /proc": Path("/proc/parallelize-test/out")}
    if where == "under /proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc on this platform")
    assert_one_line_error(run_cli(str(path), "--out", str(out[where]), "--format", "csv"), 3, "--out")
    assert not (tmp_path / "ran").exists()


# --------------------------------------------------------------------------- 130 and --resume


SLOW = """
from helper_fn import slow_double as function
CONFIG = {"x": list(range(40))}
"""


@pytest.mark.parametrize("target", ["process", "group"], ids=["sigint-to-command", "ctrl-c-in-a-terminal"])
def test_ctrl_c_exits_130_keeps_rows_and_resume_finishes(tmp_path: Path, target: str) -> None:
    path = write_config(tmp_path, "slow.py", SLOW)
    out = tmp_path / "out"
    args = [str(path), "--out", str(out), "--workers", "2", "--max-rows", "4", "--format", "csv"]
    proc = start_cli(*args)
    deadline = time.monotonic() + TIMEOUT
    while not (out / "part-000000.csv").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended or hung before its first file"
        time.sleep(0.02)
    if target == "group":
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the workers get it too
    else:
        proc.send_signal(signal.SIGINT)
    stopped = finish(proc)
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert "--resume" in stopped.stderr
    kept = read_results(out)
    assert 4 <= len(kept) < 40
    assert list(kept.index) == list(range(len(kept)))
    assert list(kept["y"]) == [2 * i for i in range(len(kept))]

    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    frame = read_results(out)
    assert list(frame.index) == list(range(40))  # each row once, in order
    assert list(frame["y"]) == [2 * i for i in range(40)]
    # The rows kept at the interruption were not computed again.
    assert (frame["worker"] == "checkpoint").sum() >= len(kept)
