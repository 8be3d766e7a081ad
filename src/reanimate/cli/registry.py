"""`reanimate registry serve|migrate|token create`: the server side of the registry."""

from __future__ import annotations

import typer

app = typer.Typer(help="The registry: serve it, migrate its database, make tokens, run its "
                       "workers, and list, show and download what it holds (docs/registry.md).",
                  no_args_is_help=True)
