"""Print pip constraints pinning every declared dependency to its floor.

``python .ci/floors.py test > floors.txt`` reads ``pyproject.toml``: the
package's dependencies and those of the extras named, and writes ``name==floor``
for each ``name>=floor``; ``pip install -c floors.txt -e ".[test]"`` then
installs the lowest versions the project claims to work with.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def floors(extras: list[str]) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    pins: dict[str, str] = {}
    for requirement in requirements:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)", requirement.strip())
        if m is None:
            sys.exit(f"floors.py: {requirement!r} has no plain '>=' floor; give one or teach floors.py")
        name = m.group(1).lower()
        if name in pins and pins[name] != m.group(3):
            sys.exit(f"floors.py: {name} has two floors, {pins[name]} and {m.group(3)}; make them one")
        pins[name] = m.group(3)
    return pins


if __name__ == "__main__":
    for name, version in sorted(floors(sys.argv[1:]).items()):
        print(f"{name}=={version}")
