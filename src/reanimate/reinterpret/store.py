"""A campaign's durable store: `DIR/campaign.sqlite`, one row per point, written as it ends.

SQLite in WAL mode; every change is its own committed transaction, so a campaign killed at any
moment leaves every finished point stored and nothing half-written. Tables:

* ``points`` — digest (primary key: the point's content digest), position, name, labels (JSON),
  status (pending | running | done | failed), attempts (times it was started), started and
  finished (unix time), record (JSON, the point's limit record with its provenance), error;
* ``events`` — an append-only log (time, digest, event: queued | started | completed | failed,
  detail), from which "no point was computed twice" is read;
* ``meta`` — key/value: the campaign's name, file, digest, and the ordered list of its points.

Only the process running the campaign writes (one writer: the lock file `DIR/campaign.lock`
keeps a second `campaign run` out); workers never touch it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reanimate.errors import ReanimateError

FILENAME = "campaign.sqlite"
STATUSES = ("pending", "running", "done", "failed")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    digest TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    record TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    digest TEXT,
    event TEXT NOT NULL,
    detail TEXT
);
"""


class Store:
    """One campaign's SQLite store (open with :func:`open_store`)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.db = connection
        self.lock = threading.RLock()  # start events are written from Dask's event-loop thread

    # -- writing (each call commits) ---------------------------------------------------------

    def set_meta(self, **values: Any) -> None:
        with self.lock, self.db:
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                [(k, json.dumps(v, sort_keys=True)) for k, v in values.items()])

    def add_points(self, points: list[dict]) -> int:
        """Insert the points not yet known (pending) and renumber all in the campaign's order;
        a point left `running` by a killed run is pending again. Returns how many were new."""
        with self.lock, self.db:
            known = {r[0] for r in self.db.execute("SELECT digest FROM points")}
            for position, point in enumerate(points):
                values = (position, point["name"], _dumps(point["labels"]), point["digest"])
                if point["digest"] in known:
                    self.db.execute("UPDATE points SET position = ?, name = ?, labels = ? "
                                    "WHERE digest = ?", values)
                else:
                    self.db.execute("INSERT INTO points (position, name, labels, digest, status) "
                                    "VALUES (?, ?, ?, ?, 'pending')", values)
            stale = self.db.execute("UPDATE points SET status = 'pending' "
                                    "WHERE status = 'running'").rowcount
            added = len({p["digest"] for p in points} - known)
            self._event(None, "queued", f"{len(points)} points, {added} new, {stale} interrupted")
        return added

    def started(self, digest: str, when: float | None = None) -> None:
        """A worker started the point (its event may arrive after the result: then the
        attempt was already counted by :meth:`completed`)."""
        with self.lock, self.db:
            self.db.execute("UPDATE points SET status = 'running', attempts = attempts + 1, "
                            "started = ? WHERE digest = ? AND status IN ('pending', 'failed')",
                            (when or time.time(), digest))
            self._event(digest, "started", None, when)

    def completed(self, digest: str, record: dict) -> bool:
        """Store a finished point; False (and nothing written) if it was already done."""
        return self._finish(digest, "done", record=record)

    def failed(self, digest: str, message: str) -> bool:
        return self._finish(digest, "failed", error=message)

    def _finish(self, digest: str, status: str, record: dict | None = None,
                error: str | None = None) -> bool:
        with self.lock, self.db:
            cursor = self.db.execute(
                "UPDATE points SET attempts = attempts + (status != 'running'), status = ?, "
                "finished = ?, record = ?, error = ? WHERE digest = ? AND status != 'done'",
                (status, time.time(), _dumps(record) if record else None, error, digest))
            if cursor.rowcount:
                event = "completed" if status == "done" else "failed"
                self._event(digest, event, error or (record or {}).get("status"))
            return bool(cursor.rowcount)

    def log(self, event: str, detail: str | None = None) -> None:
        with self.lock, self.db:
            self._event(None, event, detail)

    def _event(self, digest: str | None, event: str, detail: str | None,
               when: float | None = None) -> None:
        self.db.execute("INSERT INTO events (time, digest, event, detail) VALUES (?, ?, ?, ?)",
                        (when or time.time(), digest, event, detail))

    # -- reading -------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        with self.lock:
            rows = self.db.execute("SELECT key, value FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def points(self, digests: list[str] | None = None) -> list[dict]:
        """Every point (or these, in this order) as a dict, labels and record parsed."""
        with self.lock:
            rows = self.db.execute(
                "SELECT digest, position, name, labels, status, attempts, started, finished, "
                "record, error FROM points ORDER BY position, digest").fetchall()
        out = {}
        for row in rows:
            point = dict(zip(("digest", "position", "name", "labels", "status", "attempts",
                              "started", "finished", "record", "error"), row, strict=True))
            point["labels"] = json.loads(point["labels"])
            point["record"] = json.loads(point["record"]) if point["record"] else None
            out[point["digest"]] = point
        if digests is None:
            return list(out.values())
        return [out[d] for d in digests if d in out]

    def current(self) -> list[dict]:
        """The points of the campaign last run here, in its order."""
        return self.points(self.meta().get("points"))

    def events(self, event: str | None = None) -> list[dict]:
        query = "SELECT id, time, digest, event, detail FROM events"
        with self.lock:
            rows = self.db.execute(query + (" WHERE event = ?" if event else "") + " ORDER BY id",
                                   (event,) if event else ()).fetchall()
        return [dict(zip(("id", "time", "digest", "event", "detail"), r, strict=True))
                for r in rows]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for point in self.current():
            counts[point["status"]] += 1
        return counts

    def close(self) -> None:
        self.db.close()


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False)


@contextmanager
def open_store(folder: str | Path, *, create: bool = False) -> Iterator[Store]:
    """The store in `folder` (created with `create`); ReanimateError if there is none."""
    folder = Path(folder)
    path = folder / FILENAME
    if not create and not path.is_file():
        raise ReanimateError(f"no campaign store in {folder} (expected {path}; run "
                             "`reanimate campaign run FILE -o DIR` first)")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # a committed point survives a crash
        connection.execute("PRAGMA busy_timeout=30000")
        if create:
            connection.executescript(SCHEMA)
        else:
            connection.execute("SELECT 1 FROM points LIMIT 1")
    except sqlite3.DatabaseError as exc:
        raise ReanimateError(f"{path}: not a campaign store ({exc})") from None
    store = Store(path, connection)
    try:
        yield store
    finally:
        store.close()
