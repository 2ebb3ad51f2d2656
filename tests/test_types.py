"""The type hints catch the mistakes they are there for (run with mypy, when it is installed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="mypy is not installed (pip install -e '.[test]' brings it)")

ROOT = Path(__file__).resolve().parent.parent

SNIPPET = """
from parallelize import Parallelize

def label(x: int) -> str:
    return str(x)

with Parallelize(2) as runner:
    reveal_type(runner.map(label, range(3)))
    Parallelize(2, on_error="colect")
    Parallelize(2, backend="proces")
    runner.map_rows(label, None, pass_as="row")
"""


def test_a_type_checker_sees_result_types_and_catches_misspelt_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "use.py"
    script.write_text(textwrap.dedent(SNIPPET))
    monkeypatch.chdir(ROOT)  # the package as checked out, as the README's editable install gives it
    out, err, _ = api.run(["--no-error-summary", "--cache-dir", str(tmp_path / "cache"), str(script)])
    assert "ResultStream[str]" in out or "ResultStream[builtins.str]" in out, out + err
    assert 'Argument "on_error" to "Parallelize" has incompatible type "Literal[\'colect\']"' in out, out
    assert 'Argument "backend" to "Parallelize" has incompatible type "Literal[\'proces\']"' in out, out
    assert 'Argument "pass_as" to "map_rows"' in out, out
