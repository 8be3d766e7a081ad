"""The package layout holds: light start-up, the AGC is a plug-in, no cycles, UI only in cli/.

See docs/architecture.md for the rules these tests enforce.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "src" / "reanimate"

#: Libraries that `reanimate --help`, `validate` and `plan` must not import at start.
HEAVY = ("numpy", "awkward", "uproot", "dask", "distributed", "mlflow", "pyhf", "iminuit",
         "matplotlib", "xgboost", "hist", "cwltool")

#: Terminal UI: the command line (cli/) only.
UI = ("typer", "rich")


# -- start-up ---------------------------------------------------------------------------------

PROBE = """
import json, sys
argv, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["reanimate", *argv]
import reanimate.cli
try:
    reanimate.cli.main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted({m.partition(".")[0] for m in sys.modules} & set(heavy))
print(json.dumps({"code": code, "loaded": loaded}))
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["validate", "specs/agc-ttbar.yaml"],
     ["plan", "specs/agc-ttbar.yaml"]],
    ids=lambda argv: " ".join(argv),
)
def test_light_commands_import_no_heavy_library(argv, tmp_path):
    """The CLI runs in-process in a fresh interpreter; then sys.modules is inspected."""
    if argv[0] == "plan":
        argv = [*argv, "--workdir", str(tmp_path / "work")]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["code"] == 2 and "No such command" in proc.stderr:
        pytest.skip(f"`reanimate {argv[0]}` does not exist yet")
    assert result["code"] == 0, proc.stderr
    assert result["loaded"] == [], (
        f"`reanimate {' '.join(argv)}` imported {result['loaded']} at start; import them inside "
        "the function that needs them (find the importer with `python -X importtime`)"
    )


# -- the import graph, from the source ---------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in ``path``: top-level, in functions, relative ones
    resolved, ``from pkg import sub`` as ``pkg.sub``, and ``importlib.import_module("...")``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"):
            yield node.lineno, node.args[0].value


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def unit(module: str) -> str | None:
    """The first-level part of reanimate a module belongs to (spec, engines, ..., a top-level
    module such as lock or atomic), or None outside reanimate."""
    parts = module.split(".")
    if parts[0] != "reanimate":
        return None
    if len(parts) == 1:
        return "reanimate"
    candidate = PACKAGE / parts[1]
    if candidate.is_dir() or candidate.with_suffix(".py").is_file():
        return parts[1]
    return "reanimate"  # a name defined in reanimate/__init__.py (e.g. __version__)


def test_platform_never_imports_an_analysis():
    """An analysis is a plug-in: only analyses/ itself and the command line may import it."""
    offenders = []
    for path in modules():
        if unit(module_name(path)) in ("analyses", "cli"):
            continue
        for line, module in imports(path):
            if module == "reanimate.analyses" or module.startswith("reanimate.analyses."):
                offenders.append(f"{path.relative_to(REPO)}:{line}: imports {module}")
    assert not offenders, "\n".join(offenders)


def unit_graph() -> dict[str, dict[str, list[str]]]:
    """{unit: {imported unit: ["file:line", ...]}} over every import, lazy ones included."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in modules():
        source = unit(module_name(path))
        graph.setdefault(source, {})
        for line, module in imports(path):
            target = unit(module)
            if target and target != source and target != "reanimate":
                graph[source].setdefault(target, []).append(f"{path.relative_to(REPO)}:{line}")
    return graph


def test_no_import_cycles_between_packages():
    graph = unit_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, {})):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    described = []
    for cycle in cycles:
        edges = [f"  {a} -> {b} ({', '.join(graph[a][b][:3])})"
                 for a, b in zip(cycle, cycle[1:], strict=False)]
        described.append(" -> ".join(cycle) + "\n" + "\n".join(edges))
    assert not cycles, "import cycles between packages:\n" + "\n".join(described)


def test_libraries_import_no_terminal_ui():
    """typer and rich belong to cli/: a library reports progress through plain lines or a
    callback (engines/report.py), so it runs the same under any front end."""
    offenders = []
    for path in modules():
        if unit(module_name(path)) == "cli":
            continue
        for line, module in imports(path):
            if module.partition(".")[0] in UI:
                offenders.append(f"{path.relative_to(REPO)}:{line}: imports {module}")
    assert not offenders, "\n".join(offenders)


# -- documentation references ------------------------------------------------------------------

DOC_SOURCES = ("src", "tests", "docs", "benchmarks", "specs", "README.md")


def text_files() -> Iterator[Path]:
    for name in DOC_SOURCES:
        root = REPO / name
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            if path.suffix in (".py", ".md", ".yaml") and "__pycache__" not in path.parts:
                yield path


def test_documentation_references_resolve():
    """Every page under docs/ named in the repository exists, every relative Markdown link in
    docs/ and README.md points at a file, and every `agc-analysis.md §N` (or `section N`) is
    a section of docs/agc-analysis.md."""
    import re

    sections = set(re.findall(r"^## (\d+)\. ", (REPO / "docs/agc-analysis.md").read_text(), re.M))
    problems = []
    for path in text_files():
        text = path.read_text()
        where = path.relative_to(REPO)
        for name in set(re.findall(r"\bdocs/([\w.-]+\.md)\b", text)):
            if not (REPO / "docs" / name).is_file():
                problems.append(f"{where}: docs/{name} does not exist")
        if path.suffix == ".md":
            for target in re.findall(r"\]\(([^)#:\s]+\.md)(?:#[^)]*)?\)", text):
                if not (path.parent / target).is_file():
                    problems.append(f"{where}: link to {target} does not resolve")
        for number in re.findall(r"agc-analysis\.md\)?`?\s+(?:§|section )(\d+)", text):
            if number not in sections:
                problems.append(f"{where}: agc-analysis.md has no section {number}")
    assert not problems, "\n".join(problems)
