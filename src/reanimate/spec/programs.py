"""Where a step's `program:` module is, found without running any of its code.

`importlib.util.find_spec("a.b")` imports the package `a` to read its `__path__`, which runs
`a/__init__.py`: `program: this.nothing` would print the Zen of Python, and a hostile package
could do anything. Validation instead walks the dotted name one segment at a time with
`importlib.machinery.PathFinder` (the finder `python -m` ends up using for files on sys.path):
the first segment over sys.path, each next one over the package folder(s) found for the
previous, reading file names only. A package already imported (reanimate itself, the standard
library's loaded modules) is looked up in sys.modules, with its real `__path__`.

Only modules of the `reanimate` package are trusted enough to be imported, for their declared
INTERFACE (steps/interface.py `load_interface`); a third-party program is only located.
"""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec, PathFinder

TRUSTED = "reanimate"


def trusted(module: str) -> bool:
    """Whether `module` lies in the reanimate package (imported to read its INTERFACE)."""
    return module == TRUSTED or module.startswith(TRUSTED + ".")


def locate(module: str) -> ModuleSpec | None:
    """The spec of `module` as `python -m` would find it, or None; imports nothing."""
    parts = module.split(".")
    if not module or not all(part.isidentifier() for part in parts):
        return None
    search: list[str] | None = None  # None: sys.path
    found: ModuleSpec | None = None
    for index in range(len(parts)):
        name = ".".join(parts[: index + 1])
        loaded = sys.modules.get(name)
        try:
            if loaded is not None:
                found = getattr(loaded, "__spec__", None)
                locations = getattr(loaded, "__path__", None)
            else:
                found = PathFinder.find_spec(name, search)
                locations = found.submodule_search_locations if found else None
        except (ImportError, ValueError, OSError, AttributeError, TypeError):
            return None
        if found is None:
            return None
        if index < len(parts) - 1:
            if locations is None:
                return None  # not a package: it has no submodules
            search = [str(p) for p in locations]
    return found


def program_problem(module: str) -> str | None:
    """Why `python -m module` cannot run, or None when it can be found."""
    found = locate(module)
    if found is None:
        return f"program module {module!r} cannot be imported"
    locations = found.submodule_search_locations
    if locations is not None and not module.endswith(".__main__"):
        main = locate(module + ".__main__")
        if main is None:
            return (f"program {module!r} is a package without a __main__ module, "
                    "which python -m cannot run")
    return None
