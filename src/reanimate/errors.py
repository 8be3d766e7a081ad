"""The one exception family for user errors.

Anything raised as a ReanimateError reaches the user as one clear line (exit code 2) without a
traceback; every other exception is a bug and shows its traceback only with --debug.
"""

from __future__ import annotations


class ReanimateError(Exception):
    """A user error: bad input, a refused digest, a failed step. Exit code 2."""

    exit_code = 2


class SpecError(ReanimateError):
    """A spec with one or more problems; str() lists every problem, one per line."""

    def __init__(self, problems: list) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class DigestMismatch(ReanimateError):
    """A file whose sha256 differs from the one pinned in a lock or spec."""
