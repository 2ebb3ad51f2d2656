"""Which installed libraries the process pool's zygote imports before it forks any worker.

A worker imports what its first job's pickle names (NumPy for an array, the
module of a function pickled by reference, what a ``__main__`` function's
globals refer to), and every worker pays that import, each on its own: 100 to
200 ms for NumPy, more for pandas or scikit-learn. Imported once in the
zygote, they come with every fork for free.

Only *installed libraries* and the standard library are preloaded (modules
under a ``site-packages`` or ``dist-packages`` directory, or named in
``sys.stdlib_module_names``, that this process has already imported):
libraries expect to be imported anywhere and to be forked after import
(``multiprocessing``'s ``fork`` start does it to them in every forked pool).
Your own modules are not: one that opens a connection or a file when it is
imported would share it between every worker. Your modules are still looked
into: the libraries they use, imported at their top level or through other
modules of yours (``from mypackage.models import fit``, whose module imports
scikit-learn), are preloaded, since importing your module in the worker would
import them anyway. So are the standard library's modules they use (``unittest``
alone takes 11 ms to import).

One thing a fork does that a fresh interpreter does not: it copies the state
the libraries set up as they were imported. Python's ``random`` reseeds itself
in a forked child; NumPy's global random state (``numpy.random.rand`` and
friends) does not, so each worker reseeds it from the operating system's
entropy as it starts, as a fresh interpreter would have (see
``pool_worker._forked_worker``).

Preloading is never required: a module that fails to import in the zygote is
skipped there, and the worker imports it as it would have (and reports the
error with the task that needed it).
"""

from __future__ import annotations

import re
import sys
from types import BuiltinFunctionType, FunctionType, ModuleType

__all__ = ["SCANNED_BYTES", "libraries_needed"]

#: How much of each pickle is searched for module names: the function and the
#: first arguments come first, and a search of 64 KB takes microseconds.
SCANNED_BYTES = 1 << 16

# A pickle's short string (protocol 4 and 5: SHORT_BINUNICODE, length, text)
# that looks like a dotted module name; the length is checked after.
_SHORT_NAME = re.compile(rb"\x8c([\x01-\xff])([A-Za-z_][A-Za-z0-9_.]*)")

# Never preloaded: already in the zygote, or never imported by a worker from a pickle.
_SKIP = ("parallelize", "cloudpickle", "__main__", "builtins")


def libraries_needed(*payloads: bytes | None) -> tuple[str, ...]:
    """The installed libraries that unpickling ``payloads`` would import in a fresh interpreter.

    Only modules this process has imported count (a name that is not in
    ``sys.modules`` is some other string). For each of your own modules named,
    the installed libraries it uses count instead (see the module docstring).
    """
    found: dict[str, None] = {}
    seen: set[str] = set()
    for payload in payloads:
        if not payload:
            continue
        for match in _SHORT_NAME.finditer(payload, 0, SCANNED_BYTES):
            name = match.group(2)
            if len(name) == match.group(1)[0]:
                _visit(name.decode("ascii"), found, seen)
    return tuple(found)


#: How many of your own modules one search looks into, at most: a program's
#: own package is tens of modules; this bounds the cost of a huge one.
MAX_OWN_MODULES = 200


def _visit(name: str, found: dict[str, None], seen: set[str]) -> None:
    """Add module ``name`` to ``found`` if it is a library, else the libraries your module ``name`` uses."""
    todo = [name]
    while todo:
        name = todo.pop()
        if name in seen or name.split(".")[0] in _SKIP:
            continue
        seen.add(name)
        module = sys.modules.get(name)
        if module is None:
            continue
        if name.split(".")[0] in _STDLIB or _is_library(module):
            found[module.__name__] = None  # imported, not looked into
            continue
        if len(seen) > MAX_OWN_MODULES:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, ModuleType):
                todo.append(value.__name__)
            elif isinstance(value, _DEFINED):  # a function or class, perhaps imported from elsewhere
                origin = value.__module__
                if isinstance(origin, str) and origin != name:
                    todo.append(origin)


_STDLIB = frozenset(sys.stdlib_module_names)
_DEFINED = (type, FunctionType, BuiltinFunctionType)  # what says where it was defined (other objects are not asked)


def _is_library(module: ModuleType) -> bool:
    path = getattr(module, "__file__", None) or ""
    return "site-packages" in path or "dist-packages" in path
