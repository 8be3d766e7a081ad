"""The registry's settings: where the store and the database are, and the limits it enforces.

One store folder holds everything by default: `registry.sqlite` (the embedded database), `blobs/`
(content-addressed files), `tmp/` (uploads in flight) and `work/` (the workers' scratch). A
facility points `database_url` at PostgreSQL and shares the store folder between the server and
its workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

STORE_ENV = "REANIMATE_REGISTRY_STORE"
DATABASE_ENV = "REANIMATE_REGISTRY_DATABASE"
DEFAULT_STORE = "registry"
GB, MB = 1000**3, 1000**2


@dataclass(frozen=True)
class Settings:
    store: Path
    database_url: str = ""
    max_upload: int = 4 * GB           # one bundle or campaign file, bytes (413 above)
    max_unpacked: int = 64 * GB        # a bundle's members, summed
    max_ratio: float = 200.0           # a member's uncompressed / compressed size (zip bombs)
    max_campaign_files: int = 1000     # files uploaded with one campaign
    max_points: int = 10_000           # points in one campaign
    lease_seconds: float = 60.0        # a worker's lease on a point, renewed by its heartbeat
    max_attempts: int = 3              # leases that may expire before a point is failed
    public_url: str = ""               # how users reach the server (shown on pages), optional
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "store", Path(self.store).resolve())
        if not self.database_url:
            object.__setattr__(self, "database_url",
                               f"sqlite:///{self.store / 'registry.sqlite'}")

    @property
    def blobs(self) -> Path:
        return self.store / "blobs"

    @property
    def tmp(self) -> Path:
        return self.store / "tmp"

    @property
    def work(self) -> Path:
        return self.store / "work"

    @property
    def dialect(self) -> str:
        return self.database_url.split(":", 1)[0].split("+", 1)[0]


def settings_from(store: str | Path | None = None, database: str | None = None,
                  **overrides) -> Settings:
    """Settings from CLI options, else $REANIMATE_REGISTRY_STORE / _DATABASE, else ./registry."""
    store = store or os.environ.get(STORE_ENV) or DEFAULT_STORE
    database = database or os.environ.get(DATABASE_ENV) or ""
    return Settings(store=Path(store), database_url=database, **overrides)
