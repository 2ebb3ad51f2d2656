"""The command line: an mproc config file swept from the shell, results on disk."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from parallelize import read_results
from parallelize.cli import load_config, main
from parallelize.errors import ConfigError

CONFIG = textwrap.dedent(
    """
    from helper_fn import square_plus as function

    CONFIG = {"x": list(range(30)), "plus": [0, 10], "tag": "run"}
    MODE = "combinatorial"
    """
)

HELPER = textwrap.dedent(
    """
    def square_plus(index_row):
        index, row = index_row
        if row["x"] == 13 and row["plus"] == 10:
            raise ValueError("unlucky")
        return {"y": row["x"] ** 2 + row["plus"], "tag": row["tag"]}
    """
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "helper_fn.py").write_text(HELPER)
    path = tmp_path / "MPROC_CONFIG.py"
    path.write_text(CONFIG)
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parallelize", "sweep", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sweep_writes_every_row_in_order_with_errors_kept(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli(str(config), "--out", str(out), "--workers", "2", "--max-rows", "25", "--format", "csv", "--no-progress")
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
    proc = run_cli(str(config), "--out", str(out), "--mode", "random", "--n-samples", "12", "--seed", "3",
                   "--workers", "2", "--no-progress", "--format", "csv")
    assert proc.returncode in (0, 1), proc.stderr
    assert len(read_results(out)) == 12


def test_uniform_mode_with_unequal_lengths_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    proc = run_cli(str(config), "--out", str(tmp_path / "out"), "--mode", "uniform")
    assert proc.returncode == 2
    assert "x=30" in proc.stderr and "plus=2" in proc.stderr


def test_config_without_function_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("CONFIG = {'a': [1]}\n")
    with pytest.raises(ConfigError, match="must define 'function'"):
        load_config(path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
