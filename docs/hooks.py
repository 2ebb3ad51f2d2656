"""MkDocs hooks: README.md as the site's first page, and the command's ``--help`` on its page.

README.md stays the one source of the tour. ``docs/index.md`` holds the line::

    --8<-- "README.md"

which ``on_page_markdown`` replaces with the README's text. The README's links
are relative to the repository's root, as the index page is to the site's
root, so they keep working if the files they name are on the site at the same
paths. ``on_files`` puts them there: a linked image or other file is copied as
it is (``examples/digits_grid.png``), and a linked Markdown file outside
``docs/`` (``benchmarks/README.md``) becomes a page of its own, not in the
navigation, whose own links are followed the same way. A link to the README
itself, from such a page, goes to the index. A link to a file that does not
exist is left alone, so the strict build fails on it, as it should.

A line ``<!-- command-help: sweep -->`` in a page is replaced by the text that
``parallelize sweep --help`` prints, so the command-line page cannot fall
behind the parser.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

README = "README.md"
INCLUDE = re.compile(r'^--8<-- "README\.md"[ \t]*$', re.MULTILINE)
COMMAND_HELP = re.compile(r"^<!-- command-help: ([\w -]*) -->[ \t]*$", re.MULTILINE)
# [text](target "title") and ![alt](target); [name]: target reference definitions.
INLINE_LINK = re.compile(r"(!?\[[^\]\n]*\]\()(<[^>\n]+>|[^)\s]+)((?:\s+\"[^\"\n]*\")?\))")
REFERENCE_LINK = re.compile(r"^( {0,3}\[[^\]\n]+\]:[ \t]*)(<[^>\n]+>|\S+)", re.MULTILINE)
FENCE = re.compile(r"^ {0,3}(```+|~~~+)")
EXTERNAL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//|#|/)")  # a scheme, a host, an anchor, an absolute path


def _root(config: MkDocsConfig) -> Path:
    """The repository: the folder of mkdocs.yml."""
    return Path(config.config_file_path).resolve().parent


def _outside_code(text: str) -> list[tuple[bool, str]]:
    """``text`` in pieces, each marked True where it is prose and False inside a fenced code block."""
    pieces: list[tuple[bool, str]] = []
    fence: str | None = None
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        m = FENCE.match(line)
        if fence is None and m:
            pieces.append((True, "".join(current)))
            current, fence = [line], m.group(1)[0] * len(m.group(1))
        elif fence is not None and m and m.group(1).startswith(fence):
            current.append(line)
            pieces.append((False, "".join(current)))
            current, fence = [], None
        else:
            current.append(line)
    pieces.append((fence is None, "".join(current)))
    return pieces


def _links(text: str) -> list[str]:
    """The relative link targets in the prose of Markdown ``text``, without their anchors."""
    found: list[str] = []
    for prose, piece in _outside_code(text):
        if prose:
            for m in [*INLINE_LINK.finditer(piece), *REFERENCE_LINK.finditer(piece)]:
                target = m.group(2).strip("<>").split("#", 1)[0]
                if target and not EXTERNAL.match(target):
                    found.append(target)
    return found


def _rewrite(text: str, change: Any) -> str:
    """``text`` with each link target in its prose replaced by ``change(target)``."""

    def inline(m: re.Match[str]) -> str:
        return m.group(1) + change(m.group(2)) + m.group(3)

    def reference(m: re.Match[str]) -> str:
        return m.group(1) + change(m.group(2))

    return "".join(
        REFERENCE_LINK.sub(reference, INLINE_LINK.sub(inline, piece)) if prose else piece
        for prose, piece in _outside_code(text)
    )


def _repository_files(config: MkDocsConfig) -> dict[str, Path]:
    """Site path -> repository file, for every file the README links to, directly or through a linked page."""
    root = _root(config)
    docs = Path(config.docs_dir).resolve()
    found: dict[str, Path] = {}
    todo = [root / README]
    while todo:
        page = todo.pop()
        base = page.parent.relative_to(root).as_posix()
        for target in _links(page.read_text(encoding="utf-8")):
            site_path = posixpath.normpath(posixpath.join(base, target))
            file = root / site_path
            if site_path.startswith("../") or site_path == README or not file.is_file():
                continue  # outside the repository, the index itself, or broken: left for MkDocs to judge
            if file.resolve().is_relative_to(docs) or site_path in found:
                continue  # already on the site
            found[site_path] = file
            if file.suffix == ".md":
                todo.append(file)
    return found


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for site_path, file in sorted(_repository_files(config).items()):
        if files.get_file_from_path(site_path) is None:
            inclusion = InclusionLevel.NOT_IN_NAV if file.suffix == ".md" else InclusionLevel.UNDEFINED
            files.append(File.generated(config, site_path, abs_src_path=str(file), inclusion=inclusion))
    return files


def _to_index(target: str, base: str) -> str:
    """A link to the README, from a page at ``base``, made a link to the index page."""
    path, hash_, anchor = target.partition("#")
    if path and posixpath.normpath(posixpath.join(base, path)) == README:
        return posixpath.relpath("index.md", base or ".") + hash_ + anchor
    return target


def _command_help(m: re.Match[str]) -> str:
    from parallelize.cli import main

    out = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal's width; the page's is fixed
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main([*m.group(1).split(), "--help"])
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "```text\n" + out.getvalue().rstrip() + "\n```"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    src = page.file.src_uri
    if INCLUDE.search(markdown):
        readme = (_root(config) / README).read_text(encoding="utf-8")
        markdown = INCLUDE.sub(lambda _: readme, markdown, count=1)
        markdown = _rewrite(markdown, lambda target: _to_index(target, ""))
    elif src in _repository_files(config):
        base = posixpath.dirname(src)
        markdown = _rewrite(markdown, lambda target: _to_index(target, base))
    return COMMAND_HELP.sub(_command_help, markdown)
