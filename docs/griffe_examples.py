"""A griffe extension: an ``Example:`` section is read as ``Examples:``.

Google style allows both titles, but griffe knows only ``Examples:``: under
``Example:`` it makes an admonition of Markdown text, where ``>>>`` lines become
nested quotes instead of code. Renaming the title before the docstring is parsed
gives the doctest lines their code blocks.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rename each ``Example:`` section title of a docstring to ``Examples:``."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
