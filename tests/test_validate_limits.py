"""Regression tests: what a hostile or degenerate spec can make `validate` do is bounded.

Each test reproduces one defect found by the hostile-input review (an alias bomb that took
minutes and gigabytes, internal errors instead of located problems, programs imported by
validate, outputs that collide with the engine's own files or with each other); the CLI-level
acceptance over many such inputs is tests/test_hostile_corpus.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reanimate.errors import SpecError
from reanimate.spec import load_spec, validate_text
from reanimate.spec import loader as loader_module
from reanimate.spec.graph import downstream, find_cycle, topological_order
from reanimate.spec.yaml_source import ALIAS_BUDGET, MAX_DEPTH, parse_yaml

HEADER = 'metadata: {name: demo, version: "1"}\n'
STEP = "steps:\n  a:\n    command: [echo]\n"


def problems(text: str, path: str = "s.yaml") -> list[str]:
    spec, found = validate_text(text, path)
    assert spec is None
    return [str(p) for p in found]


def one(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def alias_bomb(levels: int = 7, width: int = 9) -> str:
    """The 470-byte bomb of the report: `levels` lists of `width` aliases of the list before."""
    lines = ["metadata:", "  name: demo", '  version: "1"', "  references:",
             "    - &a0 [" + ",".join(['"x"'] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"    - &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n" + STEP


# -- 1. aliases: a budget, recursion, parse once ----------------------------------------------
def test_alias_bomb_is_refused_fast_at_the_alias():
    text = alias_bomb()
    assert len(text.encode()) < 520
    start = time.perf_counter()
    found = problems(text)
    assert time.perf_counter() - start < 2
    assert found == [
        f"s.yaml:9:12: (document): YAML aliases expand to more than {ALIAS_BUDGET} values (an "
        "alias bomb?); write the values out or use fewer aliases"]


def test_alias_bomb_memory_stays_small():
    """In a fresh interpreter (the report: 8.3 GB, > 120 s): peak RSS well under 200 MB."""
    code = textwrap.dedent(f"""
        import sys
        from reanimate.spec import validate_text
        spec, found = validate_text({alias_bomb()!r}, "s.yaml")
        assert spec is None and len(found) == 1, found
        # VmHWM: this process's own peak (ru_maxrss can carry the forking parent's over exec)
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        print(status.split()[0])
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert int(proc.stdout) < 200_000  # KiB


def test_a_few_aliases_are_still_fine():
    text = ("metadata: {name: demo, version: '1'}\n"
            "x-resources: &res {memory: 1Gi, cpus: 1}\n"
            "steps:\n"
            "  a: {command: [echo], resources: *res}\n"
            "  b: {command: [echo], resources: *res}\n")
    found = problems(text)
    assert found == ["s.yaml:2:1: x-resources: unknown key 'x-resources'"]
    yaml_text = text.replace("x-resources: &res {memory: 1Gi, cpus: 1}\n", "").replace(
        "resources: *res}\n  b", "resources: &res {memory: 1Gi, cpus: 1}}\n  b")
    spec, found = validate_text(yaml_text, "s.yaml")
    assert found == [] and spec.steps["b"].resources.memory == "1Gi"


def test_recursive_alias_is_refused():
    assert one(HEADER + STEP + "statistics: &s {hs3: *s}\n") == (
        "s.yaml:5:22: (document): alias *s refers to the node that contains it "
        "(a recursive alias)")


def test_aliases_cannot_nest_past_the_depth_limit():
    text = "a: &a0 " + "[" * 60 + "]" * 60 + "\n" + "".join(
        f"b{i}: &a{i} " + "[" * 10 + f"*a{i - 1}" + "]" * 10 + "\n" for i in range(1, 50))
    assert one(text) == (f"s.yaml:2:19: (document): nesting deeper than {MAX_DEPTH} levels once "
                         "alias *a0 is expanded")


def test_load_spec_parses_the_text_once(tmp_path, monkeypatch):
    path = tmp_path / "s.yaml"
    path.write_text(HEADER + STEP)
    calls = []
    real = loader_module.parse_yaml

    def counting(text, name="<string>"):
        calls.append(name)
        return real(text, name)

    monkeypatch.setattr(loader_module, "parse_yaml", counting)
    loaded = load_spec(path)
    assert calls == [str(path)]
    assert loaded.source.position(("steps", "a")).line == 3


# -- 2. located problems instead of internal errors -------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", f"s.yaml:1:67: (document): nesting deeper than "
                                             f"{MAX_DEPTH} levels"),
    ("a:\n" + "".join(" " * (i + 1) + "k:\n" for i in range(3000)),
     f"s.yaml:64:64: (document): nesting deeper than {MAX_DEPTH} levels"),
    ("a:\n" + "- " * 3000 + "x\n", f"s.yaml:2:127: (document): nesting deeper than "
                                   f"{MAX_DEPTH} levels"),
], ids=["flow-5000", "block-3000", "block-sequence-3000"])
def test_deep_nesting_is_located(text, expected):
    assert one(text) == expected


def test_nesting_a_spec_needs_is_fine():
    parse_yaml("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n")


@pytest.mark.parametrize("value", ["1" * 5000, "0x" + "f" * 2000, "9223372036854775808",
                                   "-9223372036854775809"])
def test_huge_integer_is_located(value):
    found = one(HEADER + "parameters:\n  n: " + value + "\n" + STEP)
    assert found.startswith("s.yaml:3:6: (document): integer '")
    assert "is out of range: a spec integer fits in 64 bits (quote it if it is text)" in found
    assert len(found) < 200


def test_largest_64_bit_integers_are_fine():
    spec, found = validate_text(HEADER + "parameters: {a: 9223372036854775807, "
                                "b: -9223372036854775808}\n" + STEP)
    assert found == [] and spec.parameters["a"] == 2**63 - 1


def test_impossible_timestamp_is_located():
    assert one(HEADER + "parameters: {day: 2001-13-45}\n" + STEP) == (
        "s.yaml:2:19: (document): cannot read the value '2001-13-45': month must be in 1..12")


def test_spec_in_a_symlink_loop(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "a.yaml")
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'a.yaml'}:0:0: (document): cannot read the spec: "
        "Too many levels of symbolic links"]


@pytest.mark.parametrize("kind", ["fifo", "directory", "not-utf8"])
def test_unreadable_spec_is_one_problem(tmp_path, kind):
    path = tmp_path / "s.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # reading it would block forever
        expected = f"{path}:0:0: (document): cannot read the spec: not a regular file"
    elif kind == "directory":
        path.mkdir()
        expected = f"{path}:0:0: (document): cannot read the spec: it is a directory"
    else:
        path.write_bytes(HEADER.encode() + b"steps:\n  a\xff: {}\n")
        expected = f"{path}:3:4: (document): byte 0xff is not UTF-8 (a spec is UTF-8 text)"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [str(p) for p in info.value.problems] == [expected]


def chain(n: int, cycle: bool = False) -> str:
    """n command steps, each reading the next one's output: declared downstream-first."""
    lines = [HEADER.rstrip("\n"), "steps:"]
    for i in range(n):
        upstream = i + 1 if i + 1 < n else (0 if cycle else None)
        inputs = f", inputs: {{x: steps.s{upstream}.out}}" if upstream is not None else ""
        lines.append(f"  s{i}: {{command: [echo], outputs: {{out: o{i}.txt}}{inputs}}}")
    return "\n".join(lines) + "\n"


def test_long_chain_declared_downstream_first_validates():
    start = time.perf_counter()
    spec, found = validate_text(chain(1500))
    assert found == [] and len(spec.steps) == 1500
    assert time.perf_counter() - start < 10


def test_long_cycle_is_located_and_shortened():
    assert one(chain(1500, cycle=True)) == (
        "s.yaml:3:3: steps.s0: steps form a cycle: s0 -> s1 -> s2 -> s3 -> s4 -> ... (1493 more)"
        " -> s1498 -> s1499 -> s0 (a step cannot depend on its own outputs, directly or not)")


def test_graph_walks_are_linear():
    n = 50_000
    deps = {f"s{i}": ([f"s{i + 1}"] if i + 1 < n else []) for i in range(n)}
    start = time.perf_counter()
    assert find_cycle(deps) is None
    order = topological_order(deps)
    assert order[0] == f"s{n - 1}" and order[-1] == "s0"
    assert len(downstream(deps, {f"s{n - 1}"})) == n
    assert time.perf_counter() - start < 5
    deps[f"s{n - 1}"] = ["s0"]
    assert len(find_cycle(deps)) == n + 1
    with pytest.raises(ValueError):
        topological_order(deps)


def test_topological_order_keeps_declaration_order_where_free():
    deps = {"c": ["b"], "a": [], "b": ["a"], "d": [], "e": ["c", "d"]}
    assert topological_order(deps) == ["a", "b", "c", "d", "e"]
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]
    assert downstream(deps, {"b"}) == {"b", "c", "e"}


# -- 3. versions, booleans, programs not executed ---------------------------------------------
def test_float_version_is_refused_with_a_hint():
    assert one('metadata: {name: demo, version: 1.10}\n' + STEP) == (
        "s.yaml:1:24: metadata.version: version 1.1 is a number to YAML, which drops trailing "
        'zeros (1.10 reads as 1.1) (quote it: version: "1.10")')
    spec, found = validate_text('metadata: {name: demo, version: 2}\n' + STEP)
    assert found == [] and spec.metadata.version == "2"


@pytest.mark.parametrize("value", ["true", "1.0"])
def test_spec_version_must_be_the_integer_1(value):
    assert one(f"spec_version: {value}\n" + HEADER + STEP) == (
        f"s.yaml:1:1: spec_version: spec_version is the integer 1, got "
        f"{ {'true': True, '1.0': 1.0}[value]!r} (write spec_version: 1)")


def test_a_boolean_is_no_number():
    found = problems(HEADER + "steps:\n  a:\n    command: [echo]\n"
                     "    resources: {cpus: true, timeout_seconds: yes}\n"
                     "    dask: {workers: on}\n")
    tail = "expected a number, got True (YAML reads true/false/yes/no/on/off as a boolean)"
    assert found == [f"s.yaml:5:17: steps.a.resources.cpus: {tail}",
                     f"s.yaml:5:29: steps.a.resources.timeout_seconds: {tail}",
                     f"s.yaml:6:12: steps.a.dask.workers: {tail}"]


def run_python(code: str, cwd: Path, extra_path: Path | None = None):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_validate_does_not_import_the_parent_of_a_program(tmp_path):
    """`program: this.nothing` used to print the Zen of Python (find_spec imports `this`)."""
    text = HEADER + "steps:\n  a: {program: this.nothing}\n"
    code = textwrap.dedent(f"""
        import sys
        from reanimate.spec import validate_text
        spec, found = validate_text({text!r})
        print([str(p) for p in found])
        print("this" in sys.modules)
    """)
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "[\"<string>:3:7: steps.a.program: program module 'this.nothing' cannot be imported "
        "(give a module runnable with python -m)\"]",
        "False",
    ]


def test_validate_never_imports_a_third_party_program(tmp_path):
    """A package and a module that write a file when imported: validate finds them, runs
    neither, and checks no interface for them."""
    lib = tmp_path / "lib"
    (lib / "evilpkg" / "steps").mkdir(parents=True)
    trap = "open({!r}, 'w').write('imported')\n"
    (lib / "evilpkg" / "__init__.py").write_text(trap.format(str(tmp_path / "pkg-ran")))
    (lib / "evilpkg" / "steps" / "__init__.py").write_text("")
    (lib / "evilpkg" / "steps" / "tool.py").write_text(
        trap.format(str(tmp_path / "tool-ran")) + "INTERFACE = 'not an interface'\n")
    (lib / "evilmod.py").write_text(trap.format(str(tmp_path / "mod-ran")))
    (lib / "nomain").mkdir()
    (lib / "nomain" / "__init__.py").write_text(trap.format(str(tmp_path / "nomain-ran")))
    text = HEADER + textwrap.dedent("""
        steps:
          a: {program: evilpkg.steps.tool, parameters: {nonsense: 1}}
          b: {program: evilmod}
          c: {program: evilpkg.nothing}
          d: {program: evilpkg.steps.tool.deeper}
          e: {program: nomain}
    """)
    code = textwrap.dedent(f"""
        import sys
        from reanimate.spec import validate_text
        from reanimate.steps.interface import load_interface
        spec, found = validate_text({text!r}, "s.yaml")
        for p in found:
            print(p)
        print(load_interface("evilpkg.steps.tool"))
        print(sorted(m for m in sys.modules if m.startswith(("evil", "nomain"))))
    """)
    proc = run_python(code, tmp_path, extra_path=lib)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "s.yaml:6:7: steps.c.program: program module 'evilpkg.nothing' cannot be imported "
        "(give a module runnable with python -m)",
        "s.yaml:7:7: steps.d.program: program module 'evilpkg.steps.tool.deeper' cannot be "
        "imported (give a module runnable with python -m)",
        "s.yaml:8:7: steps.e.program: program 'nomain' is a package without a __main__ module, "
        "which python -m cannot run (give a module runnable with python -m)",
        "None",
        "[]",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib"]


def test_reanimate_programs_are_still_checked_against_their_interface():
    found = problems(HEADER + "steps:\n  fit:\n    program: reanimate.steps.fit\n"
                     "    inputs: {workspace: file:ws.json}\n"
                     "    parameters: {significanse: true}\n"
                     "    outputs: {results: fit.json}\n")
    assert found == ["s.yaml:6:18: steps.fit.parameters.significanse: reanimate.steps.fit has "
                     "no parameter 'significanse' (did you mean 'significance'?)"]


# -- 4. reserved and degenerate outputs -------------------------------------------------------
def outputs_problems(outputs: str, more: str = "") -> list[str]:
    text = HEADER + "steps:\n  make:\n    command: [echo]\n    outputs: " + outputs + "\n" + more
    return problems(text)


@pytest.mark.parametrize("path, message", [
    (".reanimate-meta.json", "output path '.reanimate-meta.json' uses .reanimate-meta.json, the "
     "name of reanimate's own metadata file (choose another name)"),
    ("deep/.reanimate-meta.json", "output path 'deep/.reanimate-meta.json' uses "
     ".reanimate-meta.json, the name of reanimate's own metadata file (choose another name)"),
    (".", "output path '.' is the step's directory itself (name a file or a subdirectory, "
     "e.g. out/)"),
    ("./", "output path './' is the step's directory itself (name a file or a subdirectory, "
     "e.g. out/)"),
    ("'././.'", "output path '././.' is the step's directory itself (name a file or a "
     "subdirectory, e.g. out/)"),
    ('"a\\0b"', "output path 'a\\x00b' contains a NUL byte"),
    ("''", "output path is empty (name a file, or a directory with a trailing '/')"),
    ("x/" + "y" * 256, f"output path 'x/{'y' * 256}' has a component of 256 bytes, longer than "
     "a file name may be (255 bytes)"),
    ("é" * 128, f"output path '{'é' * 128}' has a component of 256 bytes, longer than a file "
     "name may be (255 bytes)"),
], ids=["meta", "meta-in-folder", "dot", "dot-slash", "dots", "nul", "empty", "long", "long-utf8"])
def test_reserved_and_degenerate_output_paths(path, message):
    assert outputs_problems("{out: " + path + "}") == [f"s.yaml:5:15: steps.make.outputs.out: "
                                                       f"{message}"]


def test_longest_name_is_fine():
    assert validate_text(HEADER + "steps:\n  a: {command: [echo], outputs: {o: "
                         + "y" * 255 + "}}\n")[1] == []


def test_directory_and_file_of_the_same_path():
    assert outputs_problems("{a: x/, b: x}") == [
        "s.yaml:5:22: steps.make.outputs.b: output 'x' is declared as a file here and as a "
        "directory by output 'a' ('x/') (a trailing '/' marks a directory; use one form)"]
    assert outputs_problems("{a: x}", "  other: {command: [echo], outputs: {b: ./x/}}\n") == [
        "s.yaml:6:38: steps.other.outputs.b: output './x/' is declared as a directory here and "
        "as a file by output 'a' of step 'make' ('x') (a trailing '/' marks a directory; use "
        "one form)"]


def test_same_path_twice_in_one_step():
    assert outputs_problems("{a: x.txt, b: ./x.txt}") == [
        "s.yaml:5:25: steps.make.outputs.b: output './x.txt' is also declared by output 'a' of "
        "this step (give each output a distinct path)"]


def test_a_file_cannot_be_the_folder_of_another_output():
    assert outputs_problems("{a: res, b: res/inner.txt}") == [
        "s.yaml:5:23: steps.make.outputs.b: output 'res/inner.txt' lies inside 'res', which "
        "output 'a' declares as a file (a file cannot be the folder of another output)"]
    assert outputs_problems("{a: res}", "  b: {command: [echo], outputs: {x: res/deep/x}}\n") == [
        "s.yaml:6:34: steps.b.outputs.x: output 'res/deep/x' lies inside 'res', which output "
        "'a' of step 'make' declares as a file (a file cannot be the folder of another output)"]
    # files in a folder that is no output, and several files under one folder, stay fine
    assert validate_text(HEADER + "steps:\n  a: {command: [echo], outputs: "
                         "{x: m/a.json, y: m/b.json}}\n")[1] == []


def test_names_differing_only_in_case():
    assert outputs_problems("{a: Out.txt, b: out.txt}") == [
        "s.yaml:5:27: steps.make.outputs.b: output 'out.txt' differs from 'Out.txt' (output "
        "'a') only in case; they collide on case-insensitive filesystems (give each output a "
        "distinct path)"]
    text = HEADER + "steps:\n  make: {command: [echo]}\n  Make: {command: [echo]}\n"
    assert problems(text) == [
        "s.yaml:4:3: steps.Make: step 'Make' differs from step 'make' only in case; they collide "
        "on case-insensitive filesystems (and as CWL files) (rename one of them)"]


def test_step_name_too_long():
    name = "s" * 201
    assert problems(HEADER + f"steps:\n  {name}: {{command: [echo]}}\n") == [
        f"s.yaml:3:3: steps.{name}: step name of 201 bytes, longer than 200 (a step name "
        "becomes a folder and file names)"]


# -- 5. --set nan / inf -----------------------------------------------------------------------
@pytest.mark.parametrize("item, expected", [
    ("x=nan", "error: --set x=nan: expected float"),
    ("x=inf", "error: --set x=inf: expected float"),
    ("x=-Infinity", "error: --set x=-Infinity: expected float"),
    ("n=nan", "error: --set n=nan: expected int"),
])
def test_set_refuses_nan_and_inf(cli, write_spec, tmp_path, item, expected):
    spec = write_spec(HEADER + "parameters: {x: 1.5, n: 3}\n" + STEP)
    proc = cli("plan", spec, "--workdir", tmp_path / "work", "--set", item)
    assert proc.returncode == 2
    assert proc.stderr.strip() == expected
    assert not (tmp_path / "work").exists()
