"""Which installed libraries the process pool's zygote imports before it forks any worker.

A worker imports what its first job's pickle names (NumPy for an array, the
module of a function pickled by reference, what a ``__main__`` function's
globals refer to), and every worker pays that import, each on its own: 100 to
200 ms for NumPy, more for pandas or scikit-learn. Imported once in the
zygote, they come with every fork for free.

Only *installed libraries* are preloaded (modules under a ``site-packages``
or ``dist-packages`` directory that this process has already imported):
libraries expect to be imported anywhere and to be forked after import
(``multiprocessing``'s ``fork`` start does it to them in every forked pool).
Your own modules are not: one that opens a connection or a file when it is
imported would share it between every worker. Your modules are still looked
into: the libraries they imported at their top level are preloaded, since
importing your module in the worker would import them anyway.

Preloading is never required: a module that fails to import in the zygote is
skipped there, and the worker imports it as it would have (and reports the
error with the task that needed it).
"""

from __future__ import annotations

import re
import sys
from types import ModuleType

__all__ = ["SCANNED_BYTES", "libraries_needed"]

#: How much of each pickle is searched for module names: the function and the
#: first arguments come first, and a search of 64 KB takes microseconds.
SCANNED_BYTES = 1 << 16

# A pickle's short string (protocol 4 and 5: SHORT_BINUNICODE, length, text)
# that looks like a dotted module name; the length is checked after.
_SHORT_NAME = re.compile(rb"\x8c([\x01-\xff])([A-Za-z_][A-Za-z0-9_.]*)")

# Never preloaded: already in the zygote, or never imported by a worker from a pickle.
_SKIP = ("parallelize", "cloudpickle", "__main__", "builtins", "copyreg", "_codecs")


def libraries_needed(*payloads: bytes | None) -> tuple[str, ...]:
    """The installed libraries that unpickling ``payloads`` would import in a fresh interpreter.

    Only modules this process has imported count (a name that is not in
    ``sys.modules`` is some other string). For each of your own modules named,
    the installed libraries among its globals count instead.
    """
    found: dict[str, None] = {}
    for payload in payloads:
        if not payload:
            continue
        for match in _SHORT_NAME.finditer(payload, 0, SCANNED_BYTES):
            name = match.group(2)
            if len(name) != match.group(1)[0]:
                continue
            module = sys.modules.get(name.decode("ascii"))
            if module is None or module.__name__.split(".")[0] in _SKIP:
                continue
            if _is_library(module):
                found[module.__name__] = None
            else:
                for value in list(vars(module).values()):
                    if isinstance(value, ModuleType) and _is_library(value):
                        if value.__name__.split(".")[0] not in _SKIP:
                            found[value.__name__] = None
    return tuple(found)


def _is_library(module: ModuleType) -> bool:
    path = getattr(module, "__file__", None) or ""
    return "site-packages" in path or "dist-packages" in path
