"""`reanimate registry list|show|download`: what a registry holds, over HTTP."""

from __future__ import annotations

from reanimate.cli.registry import app  # noqa: F401  (commands are added to this group)
