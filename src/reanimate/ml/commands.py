"""``reanimate model ...``: pin a registered model version (to be registered in reanimate.cli)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="Machine-learning models: pin registered versions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _model() -> None:
    """Machine-learning models: pin registered versions."""


@app.command()
def pin(
    tracking_uri: str = typer.Option(..., "--tracking-uri", help="MLflow tracking/registry URI."),
    name: str = typer.Option(..., "--name", help="Registered model name."),
    version: str = typer.Option(None, "--version", help="Model version (default: the latest)."),
    out: Path = typer.Option(Path("."), "--out", help="Directory for model_even/odd.json."),
) -> None:
    """Download a registered version's two model files, check their digests, print the pin."""
    from reanimate.ml.pinning import pin_from_registry

    result = pin_from_registry(tracking_uri, name, version, out)
    typer.echo(json.dumps(result, indent=2, sort_keys=True))
