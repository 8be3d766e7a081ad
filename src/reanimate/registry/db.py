"""The database: an engine per URL (SQLite in WAL mode with a busy timeout, or PostgreSQL
through psycopg 3), sessions, and Alembic migrations shipped inside the package.

`migrate(url)` brings a database to the newest schema (from empty too); `require_current(engine)`
refuses a database that is behind, with the command that fixes it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from reanimate.errors import ReanimateError

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_S = 60


def normalise_url(url: str) -> str:
    """postgresql:// and postgres:// mean psycopg 3 (SQLAlchemy's default would be psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_S * 1000}")
    cursor.close()


@functools.lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine (and connection pool) per URL and process."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ReanimateError(f"{url!r}: not a database URL (sqlite:///PATH or "
                             "postgresql://USER@HOST:PORT/DB)") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_S,
                                                  "check_same_thread": False},
                               pool_size=20, max_overflow=40)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ReanimateError(f"{url!r}: the registry runs on SQLite or PostgreSQL")
    return create_engine(url, pool_size=20, max_overflow=40, pool_pre_ping=True)


@functools.lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session(url: str) -> Iterator[Session]:
    """A session committed on success and rolled back on any exception."""
    with _factory(url)() as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


def _alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with get_engine(url).connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise ReanimateError(f"cannot open the registry database {url}: "
                             f"{str(exc.orig).strip()}") from None


def migrate(url: str) -> tuple[str | None, str]:
    """Upgrade the database at `url` to the newest schema; returns (before, after) revisions."""
    from alembic import command

    before = current_revision(url)
    try:
        command.upgrade(_alembic_config(url), "head")
    except OperationalError as exc:
        raise ReanimateError(f"cannot migrate {url}: {str(exc.orig).strip()}") from None
    return before, head_revision()


def require_current(url: str) -> None:
    current, head = current_revision(url), head_revision()
    if current != head:
        raise ReanimateError(f"the registry database {url} is at schema {current or 'empty'}, "
                             f"not {head}; run `reanimate registry migrate --database URL`")
