"""The public surface: every exported name resolves and is documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

import parallelize

# Classes whose public methods and properties are part of the API.
DOCUMENTED_CLASSES = [
    "Parallelize",
    "ModelEvaluator",
    "Batchify",
    "ParallelFunction",
    "Execution",
    "ResultStream",
    "AsyncResultStream",
    "RunOptions",
    "Statistics",
    "TaskFailure",
]


def own_docstring(obj: object) -> str:
    """The object's own docstring, or "" (a dataclass's generated signature does not count)."""
    doc = inspect.getdoc(obj) or ""
    name = getattr(obj, "__name__", "")
    if inspect.isclass(obj) and doc.startswith(f"{name}("):
        return ""
    return doc


def test_all_has_no_duplicates() -> None:
    assert len(parallelize.__all__) == len(set(parallelize.__all__))
    assert parallelize.__version__


@pytest.mark.parametrize("name", parallelize.__all__)
def test_every_exported_name_resolves_and_has_a_docstring(name: str) -> None:
    obj = getattr(parallelize, name)
    assert own_docstring(obj).strip(), f"parallelize.{name} has no docstring"


@pytest.mark.parametrize("class_name", DOCUMENTED_CLASSES)
def test_public_methods_have_docstrings(class_name: str) -> None:
    cls = getattr(parallelize, class_name)
    missing = []
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        target = value.fget if isinstance(value, property) else value
        if not callable(target):
            continue
        if not (inspect.getdoc(target) or "").strip():
            missing.append(attr)
    assert not missing, f"{class_name} methods without a docstring: {missing}"


def test_seed_import_paths() -> None:
    from parallelize.batchify import Batchify
    from parallelize.model_evaluator import ModelEvaluator

    assert Batchify is parallelize.Batchify
    assert ModelEvaluator is parallelize.ModelEvaluator
    assert importlib.import_module("parallelize.batchify").Batchify is Batchify


def test_errors_module_exports_match() -> None:
    errors = importlib.import_module("parallelize.errors")
    for name in errors.__all__:
        assert getattr(errors, name) is not None
        if name != "check_choice":
            assert getattr(parallelize, name) is getattr(errors, name)
