"""`reanimate publish SPEC --registry URL`: bundle a run and upload it as an immutable version."""

from __future__ import annotations
