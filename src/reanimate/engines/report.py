"""What an engine tells the person watching: one event per step, a live line while steps run.

The engines call a Reporter; the CLI gives them one that draws with rich on stderr, tests and
libraries the silent default. Engines themselves import no terminal library.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


class Reporter:
    """Silent by default; subclass to show events."""

    def step(self, event: str, name: str, text: str, tail: list[str] | None = None) -> None:
        """event: running | executed | cached | pinned | failed | skipped."""

    @contextlib.contextmanager
    def waiting(self, text: str) -> Iterator[Callable[[str], None]]:
        """A live line while steps run; yields a function that updates its text."""
        yield lambda _text: None

    def summary(self, text: str, failed: bool) -> None:
        """The closing line of a run."""
