"""The declared interface of a step program: its flags, once, for argparse, --help and validate.

A step program is `python -m MODULE --flag value ...`. It declares its flags in a module-level

    INTERFACE = Interface(prog="python -m MODULE", description=..., flags=(Flag(...), ...))

and runs with `sys.exit(program_main(INTERFACE, run))`. The same declaration builds the parser
(and so --help), and lets `reanimate validate` check a spec's step against the program without
running it (reanimate.spec.interface_checks): a misspelt parameter, a value of the wrong type, an
input listed as a parameter, a missing required input.

A flag's name is the spec's key (`parameters: {seed: 42}` -> `--seed 42`). Its role says where
a spec sets it: `parameter`, `input`, `output`, or `engine` for the flags the engines add from a
step's `dask:` and `mlflow:` blocks (reanimate.engines.plan.block_flags), which `parameters:`
may not name. Values arrive rendered as the engines render them: `str(value)`, booleans as
`true`/`false`.

User errors (ReanimateError, or a bad flag) print one line on stderr and exit 2, no traceback.
Light imports only: `reanimate validate` imports this module.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reanimate.errors import ReanimateError

KINDS = ("int", "float", "bool", "str", "file", "directory")
ROLES = ("parameter", "input", "output", "engine")
FLAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")  # the spec's NAME_PATTERN

METAVARS = {"int": "N", "float": "X", "bool": "true|false", "str": "TEXT", "file": "FILE",
            "directory": "DIR"}
GROUPS = {
    "input": "inputs (the spec's inputs:)",
    "parameter": "parameters (the spec's parameters:)",
    "output": "outputs (the spec's outputs:)",
    "engine": "engine flags (added from the step's dask: and mlflow: blocks)",
}


class _Required:
    """The default of a flag that must be given."""

    _instance: _Required | None = None

    def __new__(cls) -> _Required:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def render(value: Any) -> str:
    """A value as it stands on a step's command line (every engine writes it so)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def boolean(text: str) -> bool:
    """true|false (also 1|0, yes|no), any case: what the engines render a boolean as."""
    value = str(text).strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "int": int, "float": float, "bool": boolean, "str": str, "file": str, "directory": str,
}


@dataclass(frozen=True)
class Flag:
    """One flag `--{name}` of a step program."""

    name: str  # the flag is --{name}; equals the spec's key
    kind: str  # "int" | "float" | "bool" | "str" | "file" | "directory"
    role: str  # "parameter" | "input" | "output" | "engine"
    default: Any = REQUIRED  # REQUIRED => the flag must be given
    help: str = ""
    many: bool = False  # an input taking several paths (nargs="+")
    choices: tuple | None = None

    def __post_init__(self) -> None:
        if not FLAG_NAME.match(self.name):
            raise ValueError(f"flag name {self.name!r} is not a spec name")
        if self.kind not in KINDS:
            raise ValueError(f"flag --{self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.role not in ROLES:
            raise ValueError(f"flag --{self.name}: role {self.role!r} is not one of {ROLES}")
        if self.many and self.role != "input":
            raise ValueError(f"flag --{self.name}: only an input takes several paths")
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def option(self) -> str:
        return f"--{self.name}"

    def convert(self, text: str) -> Any:
        """The value of one rendered argument (ValueError / ArgumentTypeError when invalid)."""
        return _CONVERTERS[self.kind](text)

    def describe(self) -> str:
        """The --help text: the help, then what the flag takes and its default."""
        what = self.kind + (", one or more" if self.many else "")
        if self.required:
            tail = f"{what}, required"
        elif self.default is None:
            tail = what
        elif self.kind == "bool":
            tail = f"{what}, default {'true' if self.default else 'false'}"
        else:
            tail = f"{what}, default {self.default if self.default != '' else repr('')}"
        text = f"{self.help} [{tail}]" if self.help else f"[{tail}]"
        return text.replace("%", "%%")  # argparse formats help with %


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        message = " ".join(message.split())
        self.exit(2, f"error: {self.prog}: {message}\n")


@dataclass(frozen=True)
class Interface:
    """Everything a step program accepts on its command line."""

    prog: str  # e.g. "python -m reanimate.steps.fit"
    description: str
    flags: tuple[Flag, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "flags", tuple(self.flags))
        seen: set[str] = set()
        for flag in self.flags:
            if flag.name in seen:
                raise ValueError(f"{self.prog}: flag --{flag.name} declared twice")
            seen.add(flag.name)

    def flag(self, name: str) -> Flag | None:
        return next((f for f in self.flags if f.name == name), None)

    def by_role(self, role: str) -> list[Flag]:
        return [f for f in self.flags if f.role == role]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.flags]

    def parser(self) -> argparse.ArgumentParser:
        """argparse built from the flags; a bad command line is one line on stderr, exit 2."""
        parser = _Parser(prog=self.prog, description=self.description, allow_abbrev=False)
        for role in ("input", "parameter", "output", "engine"):
            flags = self.by_role(role)
            if not flags:
                continue
            group = parser.add_argument_group(GROUPS[role])
            for flag in flags:
                group.add_argument(flag.option, **_argparse_options(flag))
        return parser


def _argparse_options(flag: Flag) -> dict[str, Any]:
    options: dict[str, Any] = {"dest": flag.name, "type": _CONVERTERS[flag.kind],
                               "help": flag.describe()}
    if flag.required:
        options["required"] = True
    else:
        options["default"] = flag.default
    if flag.kind == "bool":
        # `--flag true|false` as the engines render it; a bare `--flag` still means true
        options.update(nargs="?", const=True, metavar="true|false")
    elif flag.many:
        options.update(nargs="+", metavar=METAVARS[flag.kind])
    else:
        options["metavar"] = METAVARS[flag.kind]
    if flag.choices is not None:
        options["choices"] = flag.choices
        options["metavar"] = "|".join(str(c) for c in flag.choices)
    return options


def load_interface(program: str) -> Interface | None:
    """The INTERFACE of the step program `program` (a module name); None if it declares none.

    Only a module of the reanimate package is imported to read it (importing a module runs its
    code): for any other program, None, whatever it declares. Raises ReanimateError when a
    reanimate module cannot be imported.
    """
    if program != "reanimate" and not program.startswith("reanimate."):
        return None  # third-party: never imported by validate, plan or the exports
    try:
        module = importlib.import_module(program)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import failure is the user's
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ReanimateError(
            f"program {program!r} cannot be imported ({type(exc).__name__}: {detail})"
        ) from None
    interface = getattr(module, "INTERFACE", None)
    if interface is None:
        return None
    if not isinstance(interface, Interface):
        raise ReanimateError(
            f"{program}.INTERFACE is a {type(interface).__name__}, "
            "not a reanimate.steps.interface.Interface"
        )
    return interface


def one_line(message: str) -> str:
    """A (possibly multi-line) message as one line."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def program_main(
    interface: Interface,
    run: Callable[[argparse.Namespace], object],
    argv: list[str] | None = None,
) -> int:
    """The main of every step program: parse, run, and turn a user error into one line.

    Returns the exit code: 0, the ReanimateError's exit_code, or argparse's (2 for a bad flag,
    0 for --help). A str returned by `run` is printed on stderr (a summary line).
    """
    try:
        args = interface.parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad flag already reported in one line
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        result = run(args)
    except ReanimateError as exc:
        print(f"error: {interface.prog}: {one_line(str(exc))}", file=sys.stderr, flush=True)
        return exc.exit_code
    if isinstance(result, str):
        print(result, file=sys.stderr, flush=True)
    return 0
