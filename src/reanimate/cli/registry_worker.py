"""`reanimate registry worker`: takes queued campaign points from the registry and runs them."""

from __future__ import annotations

from reanimate.cli.registry import app  # noqa: F401  (commands are added to this group)
