"""The layering drawn in the README ("Where things live"), asserted on the import graph.

Every ``import`` of the package's own modules is read from the source (at module
level and inside functions alike, since a lazy import is still a dependency), so
that the layers stay true as the code changes, as trio's ``test_exports.py``
keeps its public surface true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "parallelize"

# Lowest first. A module may import its own layer's modules and lower layers only.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "core",
        {
            "errors",
            "validate",
            "retry",
            "durable",
            "durations",
            "statistics",
            "hashing",
            "distributions",
            "space",
            "options",
            "logs",
        },
    ),
    ("worker", {"worker"}),
    ("scheduler", {"scheduler"}),
    ("backends", {"backends"}),
    ("results", {"results"}),
    ("checkpoint", {"checkpoint"}),
    ("engine", {"engine"}),
    ("jobs", {"jobs"}),
    (
        "face",
        {
            "runner",
            "decorator",
            "model_evaluator",
            "batchify",
            "mplock",
            "executor",
            "joblib_backend",
            "cli",
            "__init__",
            "__main__",
        },
    ),
]

# Within the core, who may import whom (the rest of the core imports only errors).
CORE_EDGES = {
    "validate": {"errors"},
    "retry": {"errors", "validate"},
    "options": {"errors", "validate", "retry"},
    "space": {"errors", "validate", "hashing", "distributions"},
    "hashing": {"errors", "validate"},
    "distributions": {"errors", "validate"},
    "statistics": {"errors", "durations"},
}

# Layers of the same height that must not know each other.
STRANGERS = [("results", "checkpoint"), ("checkpoint", "results"), ("scheduler", "worker")]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The package's own modules that ``path`` imports, as dotted names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "parallelize"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "parallelize":
                continue
            if node.module is None or target == "parallelize":
                # `from . import x` / `from parallelize import x`: x may be a module.
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if _is_module(candidate) else target)
            else:
                found.add(target)
    found.discard(name)
    return found


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _layer_key(dotted: str) -> str:
    """``parallelize.engine.dispatch`` -> ``engine``; ``parallelize.space`` -> ``space``."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(dotted: str) -> int:
    key = _layer_key(dotted)
    for height, (_, members) in enumerate(LAYERS):
        if key in members:
            return height
    raise AssertionError(f"{dotted} belongs to no layer: add it to LAYERS (and to the README's 'Where things live')")


GRAPH = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer() -> None:
    for module in GRAPH:
        _layer(module)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_a_higher_layer(module: str) -> None:
    height = _layer(module)
    upward = sorted(t for t in GRAPH[module] if _layer(t) > height)
    assert not upward, f"{module} (layer {LAYERS[height][0]}) imports higher layers: {upward}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _layer_key(m) in LAYERS[0][1]))
def test_core_modules_import_only_what_they_are_allowed(module: str) -> None:
    allowed = CORE_EDGES.get(_layer_key(module), {"errors"} if _layer_key(module) != "errors" else set())
    found = {_layer_key(t) for t in GRAPH[module]}
    assert found <= allowed, f"{module} imports {sorted(found - allowed)}; the core allows it {sorted(allowed)}"


def test_layers_of_one_height_do_not_import_each_other() -> None:
    for a, b in STRANGERS:
        for module, targets in GRAPH.items():
            if _layer_key(module) == a:
                bad = sorted(t for t in targets if _layer_key(t) == b)
                assert not bad, f"{module} imports {bad}: {a}/ and {b}/ must not know each other"


def test_worker_imports_nothing_above_the_core() -> None:
    # A worker process pays for what this package imports (see worker/__init__.py).
    for module, targets in GRAPH.items():
        if _layer_key(module) == "worker":
            bad = sorted(
                t
                for t in targets
                if _layer_key(t) not in {"worker", "errors", "retry", "validate", "durable", "durations"}
            )
            assert not bad, (
                f"{module} imports {bad}; a worker imports only errors, retry, validate, durable and durations"
            )


def test_no_import_cycle() -> None:
    # Depth-first search for a back edge, over modules (lazy imports included).
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if target.endswith("__init__") or target == "parallelize":
                continue  # the package's lazy re-exports are a face, not a dependency
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module != "parallelize" and module not in state:
            visit(module)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_opens_with_a_docstring(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc) > 20, f"{path.relative_to(PACKAGE)} has no docstring saying what it holds"


def test_the_readme_tree_names_every_module() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    missing = sorted(
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py") and p.name not in section
    )
    assert not missing, f"README 'Where things live' does not name {missing}"
