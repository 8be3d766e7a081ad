"""The code a step runs, as one digest for its cache key.

A `program:` step inside reanimate runs its module and every reanimate module that module may
import, directly or not (found by reading `import` statements with ast, function-level ones
included, without importing anything): editing statistics/fitting.py changes the key of the
fit step and of the steps whose programs reach it, and of no other. A program outside reanimate
is digested as its whole top-level package. A `command:` step's code is the files it declares
under `code:`. Package __init__ modules on the way count, since importing runs them.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

import reanimate

PACKAGE_ROOT = Path(reanimate.__file__).resolve().parent


def _module_file(module: str) -> Path | None:
    """The source file of a reanimate module name, or None when it is none of ours."""
    parts = module.split(".")
    if parts[0] != "reanimate":
        return None
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def _imports(file: Path) -> frozenset[str]:
    """Every reanimate module a source file names in an import statement (and its parents)."""
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except SyntaxError:
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from reanimate.x import y` may name the module reanimate.x.y
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    out = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(name for name in out if name.split(".")[0] == "reanimate")


@cache
def module_closure(module: str) -> tuple[Path, ...]:
    """The source files of `module` and of every reanimate module it may import, sorted."""
    seen: dict[str, Path] = {}
    frontier = [module, *(".".join(module.split(".")[: i + 1]) for i in range(module.count(".")))]
    while frontier:
        name = frontier.pop()
        if name in seen:
            continue
        file = _module_file(name)
        if file is None:
            continue
        seen[name] = file
        frontier.extend(_imports(file) - seen.keys())
    return tuple(sorted(set(seen.values())))


def _digest_files(files: list[Path], root: Path, salt: str) -> str:
    digest = hashlib.sha256(salt.encode())
    for file in files:
        rel = file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)
        digest.update(rel.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


@cache
def program_digest(program: str) -> str:
    """Digest of the code a `python -m PROGRAM` step runs."""
    if program.split(".")[0] == "reanimate":
        files = list(module_closure(program))
        if not files:
            return f"missing:{program}"
        return _digest_files(files, PACKAGE_ROOT, reanimate.__version__)
    top = program.split(".")[0]
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin:
        return f"missing:{program}"
    origin = Path(found.origin)
    root = origin.parent
    files = sorted(root.rglob("*.py")) if origin.name == "__init__.py" else [origin]
    return _digest_files(files, root, top)


def code_files_digest(files: list[str], base_dir: Path) -> str:
    """Digest of the files a `command:` step declares under `code:` (paths from the spec)."""
    paths = [(base_dir / f).resolve() for f in files]
    return _digest_files(paths, base_dir.resolve(), "code")
