"""What every step program shares: argparse that fails in one line, and the error contract.

A step is `python -m reanimate.steps.NAME --flag value ...`; a user error (ReanimateError or a
bad flag) prints one line on stderr and exits 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from reanimate.errors import ReanimateError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(2, f"error: {self.prog}: {message}\n")


def boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], object],
         argv: list[str] | None = None) -> None:
    args = parser.parse_args(argv)
    try:
        run(args)
    except ReanimateError as exc:
        message = " ".join(str(exc).split("\n"))
        print(f"error: {parser.prog}: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)


def one_line(exc: ReanimateError) -> str:
    """A user error as the single stderr line a step prints: `error: ...`."""
    return "error: " + "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
