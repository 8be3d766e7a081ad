"""A program step against its program's declared interface (reanimate.steps.interface).

For a `program:` step whose module declares an INTERFACE, every key under `parameters:`,
`inputs:` and `outputs:` must be a flag of the program in that role, every literal value must
parse as the flag's kind (and be one of its choices), and every required flag must be given.
The `dask:` and `mlflow:` blocks add engine flags, which the program must declare.

Only a program of the reanimate package is imported to read its INTERFACE (importing runs a
module's code, and validate must not run a spec's code): a third-party program is located
without importing it (spec/programs.py) and gets no interface checks.

Like spec/checks.py, this runs on the raw YAML data and skips whatever has the wrong shape (the
pydantic pass reports that); each finding is (loc, message, hint).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from reanimate.errors import ReanimateError
from reanimate.spec.problems import did_you_mean
from reanimate.spec.programs import locate, trusted
from reanimate.spec.refs import (
    DatasetRef,
    ParameterRef,
    RefError,
    as_list,
    parse_parameter,
    parse_ref,
)
from reanimate.spec.yaml_source import Loc
from reanimate.steps.interface import Flag, Interface, load_interface, render

Finding = tuple[Loc, str, str | None]

KIND_WORDS = {
    "int": "an integer", "float": "a number", "bool": "a boolean (true or false)",
    "str": "a string", "file": "a file path", "directory": "a directory path",
}
TABLES = {"parameter": "parameters", "input": "inputs", "output": "outputs"}
#: The flags the engines add from a step's blocks (reanimate.engines.plan.block_flags).
BLOCK_FLAGS = {
    "dask": ("dask_workers", "dask_threads_per_worker", "dask_memory_per_worker"),
    "mlflow": ("mlflow_experiment", "mlflow_registered_model"),
}


def check_step_interface(data: dict, name: str, step: dict) -> Iterator[Finding]:
    """Findings of the step `name` (raw dict `step` of the raw spec `data`) against its program."""
    if not isinstance(step, dict):
        return
    program = step.get("program")
    if not isinstance(program, str) or not program or locate(program) is None:
        return  # no program, or one that cannot be found: spec/checks.py reports it
    if not trusted(program):
        return  # a third-party module is never imported (that runs its code): no checks
    if program.rsplit(".", 1)[-1] == "__main__":
        return  # importing a __main__ module would run it
    base: Loc = ("steps", name)
    try:
        interface = load_interface(program)
    except ReanimateError as exc:  # found but fails to import: reported nowhere else
        yield (base + ("program",), str(exc), "fix the module so that python -m can run it")
        return
    if interface is None:
        return
    check = _StepCheck(data, base, step, program, interface)
    yield from check.parameters()
    yield from check.inputs()
    yield from check.outputs()
    yield from check.blocks()
    yield from check.missing()


class _StepCheck:
    def __init__(self, data: Any, base: Loc, step: dict, program: str, interface: Interface):
        self.data, self.base, self.step = data, base, step
        self.program, self.interface = program, interface

    def _names(self, role: str) -> list[str]:
        return [f.name for f in self.interface.by_role(role)]

    def _unknown(self, role: str, key: Any) -> Finding:
        loc = self.base + (TABLES[role], key)
        names = self._names(role)
        hint = did_you_mean(str(key), names) or (
            f"its {TABLES[role]}: {', '.join(names)}" if names
            else f"it takes no {TABLES[role]}"
        )
        return (loc, f"{self.program} has no {role} {str(key)!r}", hint)

    def _misplaced(self, table: str, key: Any, flag: Flag) -> Finding:
        loc = self.base + (table, key)
        if flag.role == "engine":
            block = flag.name.split("_", 1)[0]
            field = flag.name.split("_", 1)[1] if "_" in flag.name else flag.name
            return (loc, f"--{flag.name} of {self.program} is set by the engines from the "
                         f"step's {block}: block; {table}: may not name it",
                    f"write {block}: {{{field}: ...}}")
        article = "an" if flag.role[0] in "aeiou" else "a"
        return (loc, f"--{flag.name} is {article} {flag.role} of {self.program}; "
                     f"list it under {TABLES[flag.role]}:", None)

    # -- parameters ------------------------------------------------------------------------
    def parameters(self) -> Iterator[Finding]:
        for key, value in _table(self.step, "parameters").items():
            flag = self.interface.flag(str(key))
            if flag is None:
                yield self._unknown("parameter", key)
            elif flag.role != "parameter":
                yield self._misplaced("parameters", key, flag)
            else:
                yield from self._value(self.base + ("parameters", key), flag, value)

    def _value(self, loc: Loc, flag: Flag, value: Any) -> Iterator[Finding]:
        via = ""
        try:
            parsed = parse_parameter(value)
        except RefError:
            return  # malformed: spec/checks.py reports it
        if isinstance(parsed, ParameterRef):
            globals_ = _table(self.data, "parameters")
            if parsed.name not in globals_:
                return  # undeclared: spec/checks.py reports it
            via, value = str(parsed), globals_[parsed.name]
            if isinstance(value, str) and value.startswith("${"):
                return  # a global referencing another: spec/checks.py reports it
        if value is None or isinstance(value, dict | list):
            return  # None: the flag is left out; a mapping or list: pydantic reports it
        what = f"--{flag.name} of {self.program}"
        if not _accepts(flag, value):
            hint = None
            if isinstance(value, bool) and flag.kind in ("str", "file", "directory"):
                hint = "YAML reads yes/no/true/false/on/off as a boolean; quote it for text"
            elif flag.kind == "bool":
                hint = "write true or false, unquoted"
            elif flag.kind == "int" and isinstance(value, float):
                hint = "write a whole number"
            elif (flag.kind in ("int", "float") and isinstance(value, str)
                  and _converts(flag, value)):
                hint = "write the number without quotes"
            yield (loc, f"{what} takes {KIND_WORDS[flag.kind]}, {_given(via, value)}", hint)
            return
        if flag.choices is not None:
            parsed = flag.convert(render(value))
            if parsed not in flag.choices:
                allowed = ", ".join(map(str, flag.choices))
                yield (loc, f"{what} must be one of {allowed}, {_given(via, value)}",
                       did_you_mean(str(value), [str(c) for c in flag.choices]))

    # -- inputs and outputs ----------------------------------------------------------------
    def inputs(self) -> Iterator[Finding]:
        for key, value in _table(self.step, "inputs").items():
            flag = self.interface.flag(str(key))
            if flag is None:
                yield self._unknown("input", key)
            elif flag.role != "input":
                yield self._misplaced("inputs", key, flag)
            elif not flag.many:
                paths = self._path_count(value)
                if paths > 1:
                    yield (self.base + ("inputs", key),
                           f"--{flag.name} of {self.program} takes one path, but this input "
                           f"gives {paths}", "reference a single output or file")

    def _path_count(self, value: Any) -> int:
        count = 0
        for item in as_list(value):
            try:
                ref = parse_ref(item)
            except RefError:
                ref = None
            if isinstance(ref, DatasetRef):  # one path per file of the dataset
                dataset = _table(self.data, "datasets").get(ref.name)
                files = dataset.get("files") if isinstance(dataset, dict) else None
                count += len(files) if isinstance(files, list) and files else 1
            else:
                count += 1
        return count

    def outputs(self) -> Iterator[Finding]:
        for key, path in _table(self.step, "outputs").items():
            flag = self.interface.flag(str(key))
            if flag is None:
                yield self._unknown("output", key)
            elif flag.role != "output":
                yield self._misplaced("outputs", key, flag)
            elif isinstance(path, str) and path:
                loc = self.base + ("outputs", key)
                if flag.kind == "file" and path.endswith("/"):
                    yield (loc, f"--{flag.name} of {self.program} writes a file, but {path!r} "
                                "declares a directory", "drop the trailing '/'")
                elif flag.kind == "directory" and not path.endswith("/"):
                    yield (loc, f"--{flag.name} of {self.program} writes a directory, but "
                                f"{path!r} declares a file", f"write {path + '/'!r}: a "
                                "trailing '/' marks a directory")

    # -- blocks and required flags ---------------------------------------------------------
    def blocks(self) -> Iterator[Finding]:
        for block, names in BLOCK_FLAGS.items():
            settings = self.step.get(block)
            if not isinstance(settings, dict):
                continue
            added = list(names)
            if block == "mlflow" and not settings.get("registered_model"):
                added.remove("mlflow_registered_model")
            missing = [n for n in added if (f := self.interface.flag(n)) is None
                       or f.role != "engine"]
            if missing:
                flags = ", ".join(f"--{n}" for n in missing)
                yield (self.base + (block,),
                       f"the {block}: block adds {flags}, which {self.program} does not take",
                       f"remove the {block}: block")

    def missing(self) -> Iterator[Finding]:
        given = {str(k) for table in TABLES.values() for k in _table(self.step, table)}
        # a misspelt key already suggests the flag it misses (did_you_mean's own matching)
        names = self.interface.names
        given |= {close for key in given if key not in names
                  for close in difflib.get_close_matches(key, names, n=1, cutoff=0.6)}
        for role, table in TABLES.items():
            if table in self.step and not isinstance(self.step[table], dict | None):
                continue  # the wrong shape: pydantic reports it
            values = _table(self.step, table)
            loc = self.base + (table,) if table in self.step else self.base
            for flag in self.interface.by_role(role):
                if not flag.required or values.get(flag.name) is not None:
                    continue
                if flag.name in given:
                    continue  # listed under another table: reported as misplaced
                yield (loc, f"missing required {role} {flag.name!r} of {self.program}",
                       f"--{flag.name}: {flag.help}" if flag.help else None)


def _accepts(flag: Flag, value: Any) -> bool:
    """Whether a literal spec value has the flag's kind.

    Strict on the YAML type, as the CWL engine types a program's parameters from its interface
    (cwltool refuses the string '3' for an int): a bool is no number and no text, a quoted
    number is no number; text takes any number, as written.
    """
    if isinstance(value, bool):
        return flag.kind == "bool"
    if flag.kind == "int":
        return isinstance(value, int)
    if flag.kind == "float":
        return isinstance(value, int | float)
    if flag.kind == "bool":
        return False
    return isinstance(value, str | int | float)


def _given(via: str, value: Any) -> str:
    return f"but {via} is {value!r}" if via else f"got {value!r}"


def _converts(flag: Flag, text: str) -> bool:
    try:
        flag.convert(text)
    except Exception:  # noqa: BLE001 - ValueError, argparse.ArgumentTypeError, ...
        return False
    return True


def _table(data: Any, key: str) -> dict:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}
