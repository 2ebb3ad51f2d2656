"""The API reference: every public name on a page, docstrings free of reST, the strict build green.

The site is MkDocs with mkdocstrings (``mkdocs.yml``, ``docs/``): its first page
is README.md, put there by ``docs/hooks.py``; the API pages hold one
``::: dotted.name`` block per public object. The build tests run only where
the ``docs`` extra is installed (``pip install -e ".[docs]"``) and skip saying
so elsewhere; CI also runs ``mkdocs build --strict`` itself.
"""

from __future__ import annotations

import ast
import html
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import parallelize
import parallelize.jobs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = ROOT / "parallelize"

DIRECTIVE = re.compile(r"^::: *([\w.]+)[ \t]*$", re.MULTILINE)
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
SPHINX_ROLE = re.compile(r":(class|func|meth|mod|attr|exc|data|obj):`")
# reST that help() would show as it is: directives, backslash escapes, hyperlink
# references, substitutions, and roles of any name (:py:class:, :ref:, :math:).
RST = {
    "a directive (.. name::)": re.compile(r"^\s*\.\. [\w-]+::", re.MULTILINE),
    "a backslash escape": re.compile(r"\\[ *_`|]"),
    "a hyperlink reference (`text <url>`_)": re.compile(r"`[^`\n]+`__?(?!\w)"),
    "a substitution (|name|)": re.compile(r"(?<![|\w])\|\w[\w ]*\|(?![|\w])"),
    "a role": re.compile(r"(?<![\w`]):[a-z]+(:[a-z]+)?:`"),
}

HAVE_MKDOCS = all(importlib.util.find_spec(m) is not None for m in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers"))
needs_mkdocs = pytest.mark.skipif(
    not HAVE_MKDOCS, reason='mkdocs and mkdocstrings[python] are not installed: pip install -e ".[docs]"'
)


def _directives() -> list[str]:
    """The dotted names of every ``:::`` block under docs/, outside HTML comments."""
    names: list[str] = []
    for page in sorted(DOCS.rglob("*.md")):
        names += DIRECTIVE.findall(COMMENT.sub("", page.read_text(encoding="utf-8")))
    return names


def _resolve(dotted: str) -> Any:
    """The object named ``dotted``: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


PUBLIC = [(parallelize, name) for name in parallelize.__all__] + [
    (parallelize.jobs, name) for name in parallelize.jobs.__all__
]


def test_directives_resolve() -> None:
    names = _directives()
    assert names, "no ::: block under docs/"
    assert len(names) == len(set(names)), "an object is documented twice"
    for dotted in names:
        _resolve(dotted)


@pytest.mark.parametrize("module, name", PUBLIC, ids=[f"{m.__name__}.{n}" for m, n in PUBLIC])
def test_every_public_name_has_a_block(module: Any, name: str) -> None:
    # A re-export (parallelize.jobs.ParamSpace is parallelize.ParamSpace) is
    # documented where the object is: one block, linked from the other page.
    dotted = f"{module.__name__}.{name}"
    obj = getattr(module, name)
    documented = _directives()
    assert dotted in documented or any(_resolve(d) is obj for d in documented), (
        f"{dotted} has no '::: {dotted}' block under docs/ (nor does the object it names)"
    )


def test_no_block_is_commented_out() -> None:
    # A block hidden in an HTML comment documents nothing and the build would not notice.
    for page in sorted(DOCS.rglob("*.md")):
        for comment in COMMENT.findall(page.read_text(encoding="utf-8")):
            assert ":::" not in comment, f"{page.name}: a commented-out block: {comment.strip()[:80]}"


def _docstrings() -> list[tuple[str, str]]:
    """(file:line name, docstring) for every module, class and function in the package."""
    found: list[tuple[str, str]] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    line = getattr(node, "lineno", 1)
                    name = getattr(node, "name", "module")
                    found.append((f"{path.relative_to(ROOT)}:{line} {name}", doc))
    return found


def test_the_package_has_docstrings_to_check() -> None:
    assert len(_docstrings()) > 200


def test_no_docstring_has_a_sphinx_role() -> None:
    bad = [f"{where}: {m.group(0)}" for where, doc in _docstrings() for m in SPHINX_ROLE.finditer(doc)]
    assert not bad, "Sphinx roles; write ``name`` instead:\n" + "\n".join(bad)


def test_no_docstring_shows_rst_markup_in_help() -> None:
    bad = [
        f"{where}: {what}: {m.group(0)!r}"
        for where, doc in _docstrings()
        for what, pattern in RST.items()
        for m in pattern.finditer(doc)
    ]
    assert not bad, "reST markup that help() shows as it is:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "text, found",
    [
        ("See :class:`Parallelize`.", "role"),
        ("See :py:func:`map`.", "role"),
        (".. note::\n    careful", "directive"),
        ("a\\ b", "escape"),
        ("`the docs <https://example.org>`_", "hyperlink"),
        ("|version|", "substitution"),
        ("``x`` and ``y``: plain; a | b | c; `x`", None),
        ("Returns:\n    ``{'a': 1}``; ``a|b``", None),
    ],
)
def test_the_rst_patterns_find_what_they_mean(text: str, found: str | None) -> None:
    hits = [what for what, pattern in RST.items() if pattern.search(text)] + (
        ["role"] if SPHINX_ROLE.search(text) else []
    )
    if found is None:
        assert not hits, hits
    else:
        assert any(found in what for what in hits), hits


# --- the strict build -------------------------------------------------------------------------------------------


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=100,
    )


def test_the_config_is_strict() -> None:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^strict: true$", text, re.MULTILINE), "mkdocs.yml must keep strict: true"
    assert re.search(r"^  anchors: warn$", text, re.MULTILINE), "a broken anchor must fail the build"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_MKDOCS:
        pytest.skip('mkdocs and mkdocstrings[python] are not installed: pip install -e ".[docs]"')
    out = tmp_path_factory.mktemp("site")
    done = _build(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-6000:]}"
    return out


def _prose(page: Path) -> str:
    """A built page's visible text outside code, section titles and scripts."""
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"<(script|style|pre|code)\b.*?</\1>", "", text, flags=re.DOTALL)
    text = re.sub(r'<span class="doc-section-title">.*?</span>', "", text, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


@needs_mkdocs
def test_the_index_is_the_readme(site: Path) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    from markdown.extensions.toc import slugify  # what MkDocs makes the headings' ids with

    for title in re.findall(r"^## (.+)$", readme, re.MULTILINE):
        anchor = slugify(title.replace("`", ""), "-")
        assert f'id="{anchor}"' in index, f"README section {title!r} is not on the index"
    for image in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme):
        if "://" not in image:
            assert (site / image).is_file(), f"{image}, shown by the README, is not on the site"


@needs_mkdocs
def test_every_block_has_its_anchor(site: Path) -> None:
    pages = "".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html"))
    missing = [
        d for d in _directives() if f'id="{d}"' not in pages and d not in ("parallelize.errors", "parallelize.cli")
    ]
    assert not missing, f"blocks that rendered no heading: {missing}"


@needs_mkdocs
def test_api_pages_show_no_raw_markup(site: Path) -> None:
    bad = []
    patterns = {
        "a role": SPHINX_ROLE,
        "backticks": re.compile(r"`"),
        "a reST literal marker (text::)": re.compile(r"\w::\s*$", re.MULTILINE),
        "a reST table": re.compile(r"^\s*={3,}\s+={3,}", re.MULTILINE),
        "a raw section title": re.compile(r"^\s*(Args|Returns|Raises|Yields|Attributes|Examples?):\s*$", re.MULTILINE),
    }
    for page in sorted((site / "api").rglob("*.html")):
        text = _prose(page)
        for what, pattern in patterns.items():
            for m in pattern.finditer(text):
                bad.append(f"{page.parent.name}: {what}: ...{text[max(0, m.start() - 60) : m.end() + 20]!r}")
        if "<blockquote>" in page.read_text(encoding="utf-8"):
            bad.append(f"{page.parent.name}: a quote (doctest lines outside an Examples: section?)")
    assert not bad, "\n".join(bad)


@needs_mkdocs
def test_the_parameters_render_as_a_table(site: Path) -> None:
    page = (site / "api" / "running" / "index.html").read_text(encoding="utf-8")
    start = page.index('id="parallelize.Parallelize"')
    section = page[start : page.index('id="parallelize.Parallelize.', start)]
    assert "<table" in section and "<code>backend</code>" in section and "<code>shared_data</code>" in section
    assert "language-pycon" in section or "&gt;&gt;&gt;" in section  # the Example: is code


@needs_mkdocs
def test_the_command_line_page_has_the_help(site: Path) -> None:
    page = (site / "api" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "usage: parallelize sweep" in html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "command-help" not in page


# --- the hook, on a site of its own --------------------------------------------------------------------------------


@needs_mkdocs
def test_the_readme_links_work_on_the_site_and_a_broken_one_fails(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "hooks.py").write_text((DOCS / "hooks.py").read_text(encoding="utf-8"))
    (tmp_path / "docs" / "index.md").write_text('--8<-- "README.md"\n')
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\nstrict: true\nexclude_docs: '*.py'\nhooks: [docs/hooks.py]\n"
        "validation: {anchors: warn, unrecognized_links: warn, not_found: warn}\n"
    )
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "plot.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "README.md").write_text("# Bench\n\nBack to [the tour](../README.md#speed).\n")
    readme = (
        "# T\n\n![plot](img/plot.png), [bench](bench/README.md)\n\n```\n[in code](not/a/link.md)\n```\n\n## Speed\n"
    )
    (tmp_path / "README.md").write_text(readme)

    done = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "img" / "plot.png").read_bytes() == b"\x89PNG\r\n"
    assert 'href="../#speed"' in (tmp_path / "site" / "bench" / "index.html").read_text()

    (tmp_path / "README.md").write_text(readme + "\nSee [gone](gone.md).\n")
    done = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0 and "gone.md" in done.stderr
