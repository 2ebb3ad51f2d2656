"""The examples run as a user would run them, and print what the README shows.

Each script runs in a fresh interpreter (``sys.executable``) from the project
root, with a timeout so that a hung example fails instead of hanging the suite.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Seconds one example may take before it counts as hung.
TIMEOUT = 90


def run_example(name: str, *args: str, cwd: Path = ROOT) -> str:
    """Run ``examples/<name>`` in ``cwd`` and return its standard output; fail on a non-zero exit."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_run_queue_prints_one_result_per_thread() -> None:
    out = run_example("run_queue.py")
    assert out.strip().splitlines()[-1] == "['Bar', 'Bar', 'Bar', 'Bar']"


def test_batchify_prints_the_four_batches_of_the_readme() -> None:
    out = run_example("batchify.py")
    expected = [
        "{'colors': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24], 'variations': ['a', 'b']}",
        "{'colors': [25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49], 'variations': ['a', 'b']}",
        "{'colors': [50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74], 'variations': ['a', 'b']}",
        "{'colors': [75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99], 'variations': ['a', 'b']}",
    ]
    assert out.strip().splitlines() == expected


def test_model_evaluator_runs_the_6090_point_grid() -> None:
    out = run_example("model_evaluator.py")
    lines = out.strip().splitlines()
    assert "STATISTICS" in lines
    assert "size: 6090 items" in lines
    assert "completed: 6090  failed: 0  pending: 0" in lines
    assert "6090" in lines
    # Grid order: impurity (2) outermost, then depth (29), then bins (105):
    # index 903 is depth 2 + 903 // 105 = 10, bins 10 * (1 + 903 % 105) = 640.
    assert (
        lines[-1] == "[(10, 'gini', 640), (10, 'gini', 650), (10, 'gini', 660), (10, 'gini', 670), (10, 'gini', 680)]"
    )


def test_decorator_example_maps_and_grids() -> None:
    out = run_example("decorator.py")
    assert "collatz_steps(27) = 111" in out
    assert "longest chain below 10001 starts at 6171: 261 steps" in out
    assert "size: 10000 items" in out
    assert "grid of 1681 points: minimum 0 at x=1, y=1" in out


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None,
    reason='the digits grid search needs scikit-learn: pip install -e ".[examples]"',
)
def test_digits_grid_search_quick(tmp_path: Path) -> None:
    out = run_example("digits_grid_search.py", "--quick", cwd=tmp_path)
    lines = out.splitlines()
    best = [line for line in lines if line.startswith("best: ")]
    assert len(best) == 1, out
    # The quick grid is C in {1, 10} x gamma in {1e-4, 1e-3}; gamma=1e-3 wins clearly.
    assert "gamma=0.001" in best[0]
    accuracy = float(best[0].split("accuracy ")[1].split()[0])
    assert 0.9 < accuracy <= 1.0
    assert "STATISTICS" in lines
    assert "size: 4 items" in lines
    assert "completed: 4  failed: 0  pending: 0" in lines
    assert "plot: digits_grid.png" in lines and (tmp_path / "digits_grid.png").stat().st_size > 5_000


def test_job_sweep_example_gathers_and_plots_the_metrics(tmp_path: Path) -> None:
    out = run_example("job_sweep.py", str(tmp_path / "sweep"))
    assert out.count("COMPLETED") == 16
    assert "4 job(s) wrote to stderr (dividing by zero), and still exited 0:" in out
    assert "ZeroDivisionError: division by zero" in out
    assert (tmp_path / "sweep" / "sweep.png").stat().st_size > 5_000


# Further examples: they must run to completion.
OTHER_EXAMPLES = ["param_space.py"]


@pytest.mark.parametrize("name", OTHER_EXAMPLES)
def test_other_examples_run(name: str) -> None:
    run_example(name)
