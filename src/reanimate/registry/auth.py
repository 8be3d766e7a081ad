"""API tokens: `rnm_<random>` secrets, shown once; the database keeps their sha256 and a prefix.

Scopes: `read` (private analyses), `publish`, `campaign`, `admin` (implies every scope). A
request's principal is the token's owner with its scopes; no token is the anonymous reader of
public analyses.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from reanimate.errors import ReanimateError
from reanimate.registry import db
from reanimate.registry.models import Token

SCOPES = ("read", "publish", "campaign", "admin")
PREFIX = "rnm_"
OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")


class Unauthorized(ReanimateError):
    """A bad or unknown token (401)."""

    status = 401


@dataclass(frozen=True)
class Principal:
    owner: str
    scopes: frozenset[str]
    token_id: int

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    def has(self, scope: str) -> bool:
        return self.admin or scope in self.scopes

    def effective_scopes(self) -> list[str]:
        return list(SCOPES) if self.admin else [s for s in SCOPES if s in self.scopes]


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes) -> list[str]:
    scopes = [str(s).strip() for s in scopes]
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ReanimateError(f"scope(s) {', '.join(map(repr, bad)) or '(none)'}: give one or "
                             f"more of {', '.join(SCOPES)}")
    return [s for s in SCOPES if s in scopes]


def check_owner(owner: str) -> str:
    if not isinstance(owner, str) or not OWNER_RE.fullmatch(owner):
        raise ReanimateError(f"owner {owner!r}: letters, digits and . _ @ - (at most 100, "
                             "starting with a letter or digit)")
    return owner


def add_token(session: Session, owner: str, scopes, name: str = "") -> tuple[Token, str]:
    """A new token row (in `session`, not committed) and its secret."""
    scopes = check_scopes(scopes)
    secret = PREFIX + secrets.token_urlsafe(32)
    row = Token(owner=check_owner(owner), name=str(name)[:200], scopes=" ".join(scopes),
                hash=hash_token(secret), prefix=secret[:12], created_at=time.time())
    session.add(row)
    session.flush()
    return row, secret


def create_token(settings, owner: str, scopes, name: str = "") -> str:
    """A token made directly in the database (the facility admin's tool); the secret."""
    check_scopes(scopes)
    check_owner(owner)
    if db.current_revision(settings.database_url) is None:  # a fresh store: make its tables
        db.migrate(settings.database_url)
    db.require_current(settings.database_url)
    with db.session(settings.database_url) as s:
        _, secret = add_token(s, owner, scopes, name)
    return secret


def principal(session: Session, header: str | None) -> Principal | None:
    """The principal of an `Authorization: Bearer TOKEN` header; None without one. A header
    that names no valid token is refused (401)."""
    if not header:
        return None
    kind, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if kind.lower() != "bearer" or not secret:
        raise Unauthorized("the Authorization header is not `Bearer TOKEN`")
    digest = hash_token(secret)
    row = session.scalars(select(Token).where(Token.hash == digest)).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.hash, digest):
        raise Unauthorized("unknown or revoked token")
    return Principal(row.owner, frozenset(row.scopes.split()), row.id)


def _ready(settings) -> None:
    db.require_current(settings.database_url)


def list_tokens(settings) -> list[dict]:
    """Every token (never its secret): id, owner, name, scopes, prefix, created, revoked."""
    _ready(settings)
    with db.session(settings.database_url) as s:
        return [{"id": t.id, "owner": t.owner, "name": t.name, "scopes": t.scopes.split(),
                 "prefix": t.prefix, "created_at": t.created_at, "revoked_at": t.revoked_at}
                for t in s.scalars(select(Token).order_by(Token.id))]


def revoke_token(settings, which: str) -> dict:
    """Revoke the token whose id or prefix (its first 12 characters, as listed) is `which`;
    from then on it is refused (401). Idempotent; the row stays, as a record."""
    _ready(settings)
    with db.session(settings.database_url) as s:
        query = select(Token).where(Token.prefix == which)
        if which.isdigit():
            query = select(Token).where(Token.id == int(which))
        rows = s.scalars(query).all()
        if len(rows) != 1:
            raise ReanimateError(f"{which!r}: {'no' if not rows else 'more than one'} token "
                                 "with that id or prefix (see `reanimate registry token list`)")
        row = rows[0]
        if row.revoked_at is None:
            row.revoked_at = time.time()
        return {"id": row.id, "owner": row.owner, "prefix": row.prefix,
                "revoked_at": row.revoked_at}
