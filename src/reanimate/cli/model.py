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
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    step: str = typer.Option(None, "--step", help="Training step (default: the one with an "
                             "mlflow.registered_model)."),
    version: str = typer.Option(None, "--version", help="Model version (default: the latest)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI",
                                     help="MLflow tracking/registry URI."),
) -> None:
    """Pin a training step to a registered model version: files next to the spec, digests in
    the lock. Runs then use these files instead of retraining, and refuse them if altered."""
    import os
    import tempfile

    from reanimate.analyses.agc.ml.pinning import pin_from_registry
    from reanimate.errors import ReanimateError
    from reanimate.lock import write_pin
    from reanimate.spec import load_spec

    loaded = load_spec(spec)
    candidates = [n for n, s in loaded.spec.steps.items() if s.mlflow and s.mlflow.registered_model]
    step = step or (candidates[0] if len(candidates) == 1 else None)
    if step not in candidates:
        raise ReanimateError("name the training step with --step (steps with a registered "
                             f"model: {', '.join(candidates) or 'none'})")
    if not tracking_uri:
        raise ReanimateError("no registry: give --tracking-uri or set MLFLOW_TRACKING_URI")
    name = loaded.spec.steps[step].mlflow.registered_model
    target = loaded.base_dir / "models" / name
    target.mkdir(parents=True, exist_ok=True)
    files = {}
    # download into a fresh hidden folder, then rename each verified file into vN/ (atomic)
    with tempfile.TemporaryDirectory(prefix=".pending-", dir=target) as pending:
        fetched = pin_from_registry(tracking_uri, name, version, pending)
        final = target / f"v{fetched['version']}"
        final.mkdir(exist_ok=True)
        for output, entry in fetched["files"].items():
            dst = final / Path(entry["path"]).name
            os.replace(entry["path"], dst)
            files[output] = {"path": str(dst.relative_to(loaded.base_dir)),
                             "sha256": entry["sha256"]}
    pin_record = {"name": name, "version": fetched["version"], "run_id": fetched["run_id"],
                  "files": files}
    lock = write_pin(loaded.path, step, pin_record)
    typer.echo(json.dumps(pin_record, indent=2, sort_keys=True))
    typer.echo(f"pinned step {step!r} to {name} version {fetched['version']} in {lock}", err=True)


@app.command()
def fetch(
    tracking_uri: str = typer.Option(..., "--tracking-uri", help="MLflow tracking/registry URI."),
    name: str = typer.Option(..., "--name", help="Registered model name."),
    version: str = typer.Option(None, "--version", help="Model version (default: the latest)."),
    out: Path = typer.Option(Path("."), "--out", help="Directory for model_even/odd.json."),
) -> None:
    """Download a registered version's two model files, check their digests, print the pin."""
    from reanimate.analyses.agc.ml.pinning import pin_from_registry

    result = pin_from_registry(tracking_uri, name, version, out)
    typer.echo(json.dumps(result, indent=2, sort_keys=True))
