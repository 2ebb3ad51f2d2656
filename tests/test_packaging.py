"""Packaged like a library one can depend on: version, licence, classifiers,
an editable install a type checker can see, and honest import errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import parallelize

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 120.0


def _project() -> dict:  # type: ignore[type-arg]
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def test_version_is_one_number_everywhere() -> None:
    assert parallelize.__version__ == _project()["version"] == metadata.version("parallelize")
    for command in (["parallelize", "--version"], [sys.executable, "-m", "parallelize", "--version"]):
        if command[0] == "parallelize":
            command[0] = str(Path(sys.executable).with_name("parallelize"))
        done = subprocess.run(command, capture_output=True, text=True, timeout=LIMIT)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"parallelize {parallelize.__version__}"


def test_the_licence_file_is_the_one_declared() -> None:
    assert _project()["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "License :: OSI Approved :: MIT License" in _project()["classifiers"]


def test_classifiers_name_this_python_and_agree_with_requires_python() -> None:
    classifiers = _project()["classifiers"]
    versions = sorted(
        tuple(int(p) for p in c.rsplit(" ", 1)[1].split("."))
        for c in classifiers
        if c.startswith("Programming Language :: Python :: 3.")
    )
    assert sys.version_info[:2] in versions, "the suite runs on a Python the classifiers do not name"
    floor = _project()["requires-python"]
    assert floor == f">={versions[0][0]}.{versions[0][1]}", "requires-python and the oldest classifier differ"


def test_every_dependency_has_a_floor_that_ci_installs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "floors.py"), "test"], capture_output=True, text=True, timeout=LIMIT
    )
    if done.returncode != 0 and "tomllib" in done.stderr:
        pytest.skip("floors.py needs Python 3.11's tomllib")
    assert done.returncode == 0, done.stderr
    pins = dict(line.split("==") for line in done.stdout.split())
    assert {"pandas", "numpy", "loky", "cloudpickle", "tqdm"} <= set(pins)
    # pandas below 2.2.2 is built for NumPy 1 only: with no NumPy ceiling, pip may pair it with NumPy 2.
    assert tuple(int(p) for p in pins["pandas"].split(".")) >= (2, 2, 2)
    assert "floors.py" in (ROOT / ".ci" / "run").read_text()


def _editable() -> bool:
    direct = metadata.distribution("parallelize").read_text("direct_url.json")
    return bool(direct) and json.loads(direct).get("dir_info", {}).get("editable", False)


def test_a_type_checker_sees_the_editable_install(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    if not _editable():
        pytest.skip("parallelize is not installed in editable mode here (the README installs it so)")
    user = tmp_path / "user_code.py"
    user.write_text("from parallelize import Parallelize\nrunner = Parallelize(max_workers='four')\n")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(user)],
        capture_output=True,
        text=True,
        timeout=LIMIT,
        cwd=tmp_path,  # not the project folder: the package must be found through the install
    )
    assert "import-not-found" not in done.stdout, done.stdout
    assert 'Argument "max_workers" to "Parallelize" has incompatible type "str"' in done.stdout, done.stdout


WRITE_PARQUET = textwrap.dedent(
    """
    import sys
    from parallelize import Parallelize
    from parallelize.errors import BackendUnavailableError
    try:
        with Parallelize(1, backend="serial") as runner:
            runner.map(abs, [1, 2]).to_files(sys.argv[1], format="parquet")
    except BackendUnavailableError as exc:
        print(exc)
    """
)


def _write_parquet(tmp_path: Path, fake: str | None) -> str:
    env_path = tmp_path / "site"
    env_path.mkdir(parents=True)
    if fake is not None:
        (env_path / "pyarrow").mkdir()
        (env_path / "pyarrow" / "__init__.py").write_text(fake)
    script = f"import sys; sys.path.insert(0, {str(env_path)!r})\n"
    if fake is None:
        script += "sys.modules['pyarrow'] = None\n"  # as if it were not installed
    done = subprocess.run(
        [sys.executable, "-c", script + WRITE_PARQUET, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_pyarrow_missing_says_install_it(tmp_path: Path) -> None:
    said = _write_parquet(tmp_path, None)
    assert 'needs pyarrow: pip install "parallelize[parquet]"' in said
    assert "failed to import" not in said


def test_pyarrow_installed_but_broken_says_why(tmp_path: Path) -> None:
    said = _write_parquet(
        tmp_path, "raise ImportError('libarrow.so.1600: cannot open shared object file: No such file or directory')"
    )
    assert "installed but failed to import" in said
    assert "libarrow.so.1600: cannot open shared object file" in said
    assert 'pip install "parallelize[parquet]"' not in said
    said = _write_parquet(tmp_path / "numpy", "raise AttributeError('_ARRAY_API not found')")
    assert "AttributeError: _ARRAY_API not found" in said
