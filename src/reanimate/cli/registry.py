"""`reanimate registry serve|migrate|token create`: the server side of the registry."""

from __future__ import annotations

import typer

from reanimate.cli.app import err

app = typer.Typer(help="The registry: serve it, migrate its database, make tokens, run its "
                       "workers, and list, show and download what it holds (docs/registry.md).",
                  no_args_is_help=True)
token_app = typer.Typer(help="API tokens (made directly in the database: the facility "
                             "admin's tool).", no_args_is_help=True)
app.add_typer(token_app, name="token")

STORE_HELP = "The store folder (default $REANIMATE_REGISTRY_STORE or ./registry)."
DATABASE_HELP = ("Database URL: sqlite:///PATH or postgresql://USER@HOST:PORT/DB (default "
                 "$REANIMATE_REGISTRY_DATABASE or SQLite in the store).")


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    database: str = typer.Option(None, "--database", help=DATABASE_HELP),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    max_upload: str = typer.Option(None, "--max-upload",
                                   help="Largest bundle or campaign upload (e.g. 4GB, 500MiB)."),
    no_migrate: bool = typer.Option(False, "--no-migrate",
                                    help="Refuse a database behind the newest schema instead "
                                         "of migrating it."),
) -> None:
    """Run the registry server (JSON API at /api/v1, web pages at /, OpenAPI at /docs)."""
    from reanimate.preserve.archive import parse_size
    from reanimate.registry.app import serve as run
    from reanimate.registry.config import settings_from

    overrides = {"max_upload": parse_size(max_upload)} if max_upload else {}
    settings = settings_from(store, database, **overrides)
    run(settings, host, port, migrate=not no_migrate, say=err.print)


@app.command("migrate")
def migrate(
    database: str = typer.Option(None, "--database", help=DATABASE_HELP),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Bring the registry database to the newest schema (from empty too)."""
    from reanimate.registry import db
    from reanimate.registry.config import settings_from

    settings = settings_from(store, database)
    before, after = db.migrate(settings.database_url)
    print(f"schema {before or 'empty'} -> {after}" if before != after
          else f"schema {after}: up to date")


@token_app.command("create")
def token_create(
    owner: str = typer.Option(..., "--owner", help="Who the token acts as."),
    scope: list[str] = typer.Option(..., "--scope",
                                    help="read, publish, campaign or admin (repeatable)."),
    name: str = typer.Option("", "--name", help="A note: what the token is for."),
    database: str = typer.Option(None, "--database", help=DATABASE_HELP),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Make an API token; it is printed once, as the last line."""
    from reanimate.registry import auth
    from reanimate.registry.config import settings_from

    auth.check_scopes(scope)
    auth.check_owner(owner)
    settings = settings_from(store, database)
    secret = auth.create_token(settings, owner, scope, name)
    err.print(f"token for {owner} ({' '.join(auth.check_scopes(scope))}); it is not shown again:")
    print(secret)


@token_app.command("list")
def token_list(
    database: str = typer.Option(None, "--database", help=DATABASE_HELP),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Every token: id, owner, scopes, prefix (its first characters), made, revoked. Secrets
    are never stored, so never shown."""
    from datetime import UTC, datetime

    from reanimate.registry import auth
    from reanimate.registry.config import settings_from

    def when(t):
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC") if t else "-"

    for t in auth.list_tokens(settings_from(store, database)):
        print(f"{t['id']:>4}  {t['prefix']}  {t['owner']:<16} {' '.join(t['scopes']):<24} "
              f"made {when(t['created_at'])}  revoked {when(t['revoked_at'])}"
              f"{'  ' + t['name'] if t['name'] else ''}")


@token_app.command("revoke")
def token_revoke(
    which: str = typer.Argument(..., help="The token's id or prefix, as `token list` shows."),
    database: str = typer.Option(None, "--database", help=DATABASE_HELP),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Revoke a token: the server refuses it (401) from the next request on. The record stays."""
    from reanimate.registry import auth
    from reanimate.registry.config import settings_from

    done = auth.revoke_token(settings_from(store, database), which)
    err.print(f"revoked token {done['id']} ({done['prefix']}…) of {done['owner']}")
