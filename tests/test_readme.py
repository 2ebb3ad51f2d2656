"""The README's Python examples run as written (section by section, in order).

Sections whose examples stand for the user's own code (a model to load, a
remote cluster, a function named ``simulate``) are covered by their own tests
and by the scripts in ``examples/`` instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

# Sections whose snippets name things the reader supplies.
ILLUSTRATIVE = (
    "Resume after a crash",
    "multiprocessing_lib's mp_lock",
    "Sweeps from the command line",
    "From a laptop to a cluster",
    "On a Slurm, Grid Engine or PBS cluster",
)


def _sections() -> list[tuple[str, str]]:
    text = README.read_text()
    out = []
    for section in re.split(r"\n## ", text):
        title = section.splitlines()[0].strip()
        blocks = re.findall(r"```python\n(.*?)```", section, re.S)
        if blocks and not title.startswith(ILLUSTRATIVE):
            out.append((title, "\n".join(blocks)))
    return out


@pytest.mark.parametrize("title, code", _sections(), ids=[t for t, _ in _sections()])
def test_readme_section_runs(title: str, code: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if 'use="slurm"' in code:
        request.getfixturevalue("slurm_cluster")  # the real one-node Slurm (skips, saying why, without it)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"README section {title!r} failed:\n{proc.stderr[-3000:]}"


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text().splitlines()[:12]
    text = "\n".join(head)
    assert 'pip install -e ".[examples]" && .venv/bin/python examples/digits_grid_search.py' in text
    assert 'pip install -e ".[test]" && .venv/bin/python -m pytest' in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest' in ci
