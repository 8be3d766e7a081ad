"""The `reanimate` command: parses arguments, calls the library, prints.

User errors (ReanimateError) become one line on stderr and exit code 2 (1 for a failed step);
tracebacks appear only with --debug.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from reanimate import __version__
from reanimate.errors import ReanimateError, SpecError

app = typer.Typer(
    help="Preserve HEP analyses, rerun them anywhere, reinterpret them with new signals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)
STATE = {"debug": False}

from reanimate.steps.agc.commands import app as agc_app  # noqa: E402

app.add_typer(agc_app, name="agc")

from reanimate.datasets.commands import app as datasets_app  # noqa: E402

app.add_typer(datasets_app, name="datasets")

from reanimate.statistics.commands import app as hs3_app  # noqa: E402

app.add_typer(hs3_app, name="hs3")

from reanimate.ml.commands import app as model_app  # noqa: E402

app.add_typer(model_app, name="model")


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    STATE["debug"] = debug
    if version:
        print(__version__)
        raise typer.Exit(0)


@app.command()
def validate(spec: Path = typer.Argument(..., help="The analysis spec (YAML).")) -> None:
    """Check a spec; print every problem as FILE:LINE:COL: key.path: message (hint)."""
    from reanimate.spec import load_spec

    loaded = load_spec(spec)
    steps = ", ".join(loaded.spec.steps)
    err.print(f"[green]ok[/green] {spec}: {len(loaded.spec.steps)} steps ({steps})")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the spec (for editor autocompletion)."""
    from reanimate.spec import Spec

    print(json.dumps(Spec.model_json_schema(), indent=2))


@app.command()
def lock(spec: Path = typer.Argument(..., help="The analysis spec (YAML).")) -> None:
    """Write SPEC.lock.json with the sha256 of every input file of the spec."""
    from reanimate.lock import write_lock
    from reanimate.spec import load_spec

    loaded = load_spec(spec)
    path, count = write_lock(loaded)
    err.print(f"locked {count} input file(s) in {path}")


@app.command()
def run(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    workdir: Path = typer.Option(Path("work"), "--workdir", "-w", help="Cache, results, runs."),
    only: list[str] = typer.Option(None, "--only", help="Run only this step (repeatable)."),
    from_step: str = typer.Option(None, "--from", help="Run this step and everything after it."),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="Steps run at the same time."),
    force: bool = typer.Option(False, "--force", help="Ignore the cache for selected steps."),
    set_: list[str] = typer.Option(None, "--set", help="Override a parameter: NAME=VALUE."),
    engine: str = typer.Option("local", "--engine", help="local (default) or cwl (cwltool)."),
    provenance: bool = typer.Option(False, "--provenance", help="cwl: write a CWLProv bag."),
) -> None:
    """Run the analysis: steps in dependency order, unchanged steps served from the cache."""
    from reanimate.engines.local import run_spec
    from reanimate.spec import load_spec

    if engine not in ("local", "cwl"):
        raise ReanimateError(f"unknown engine {engine!r} (available: local, cwl)")
    loaded = load_spec(spec)
    if engine == "cwl":
        from reanimate.engines.cwl import run_cwl

        if only or from_step or set_:
            raise ReanimateError("--only, --from and --set apply to the local engine only")
        err.print(f"running {spec} with cwltool in {workdir}/cwl ...")
        outputs = run_cwl(loaded, workdir, provenance=provenance)
        print(json.dumps({k: v.get("path") for k, v in outputs.items()}, indent=2))
        return
    report = run_spec(
        loaded, workdir, only=only or None, from_step=from_step, jobs=jobs, force=force,
        overrides=_parse_overrides(set_ or []),
    )
    print(json.dumps(report.summary(), indent=2))
    if report.failed:
        raise typer.Exit(1)


export_app = typer.Typer(help="Compile a spec for another engine.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("cwl")
def export_cwl_command(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write into."),
) -> None:
    """Write a CWL v1.2 workflow (workflow/main.cwl, workflow/steps/*.cwl) and job.yml."""
    from reanimate.engines.cwl import export_cwl
    from reanimate.spec import load_spec

    written = export_cwl(load_spec(spec), output)
    err.print(f"wrote {len(written)} files under {output}; run them with "
              f"`cwltool {output}/workflow/main.cwl {output}/job.yml`")


@export_app.command("reana")
def export_reana_command(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    output: Path = typer.Option(Path("reana.yaml"), "--output", "-o", help="reana.yaml path."),
    workflow_type: str = typer.Option("cwl", "--type", help="cwl (default) or serial."),
    reana_version: str = typer.Option("0.9", "--reana-version",
                                      help="0.9, or 0.95 to add workflow.resources.dask."),
    bless: Path = typer.Option(None, "--bless", help="Work dir of a finished local run: "
                               "add the sha256 of its outputs to the REANA tests."),
) -> None:
    """Write reana.yaml (and the CWL and Gherkin files it names) beside it."""
    from reanimate.engines.reana import export_reana
    from reanimate.spec import load_spec

    written = export_reana(load_spec(spec), output, workflow_type, reana_version, bless)
    err.print(f"wrote {written['reana']} ({workflow_type}, REANA {reana_version}) and "
              f"{len(written) - 1} more file(s)")


@app.command()
def submit(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    name: str = typer.Option(None, "--name", "-n", help="Workflow name (default: spec name)."),
    workdir: Path = typer.Option(Path("work"), "--workdir", "-w", help="Where to stage files."),
    workflow_type: str = typer.Option("cwl", "--type", help="cwl (default) or serial."),
    reana_version: str = typer.Option("0.9", "--reana-version"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the reana-client commands."),
) -> None:
    """Create, upload and start the analysis on REANA (REANA_SERVER_URL, REANA_ACCESS_TOKEN)."""
    import shlex

    from reanimate.engines.reana import (
        call_client,
        client_commands,
        export_reana,
        require_server,
        stage,
    )
    from reanimate.spec import load_spec

    loaded = load_spec(spec)
    name = name or loaded.spec.metadata.name
    staged = stage(loaded, workdir / "reana" / name)
    written = export_reana(staged, staged.base_dir / "reana.yaml", workflow_type, reana_version)
    commands = client_commands(name, written["reana"])
    if dry_run:
        err.print(f"staged in {staged.base_dir}; would run there:")
        for argv in commands:
            print(" ".join(shlex.quote(a) for a in argv))
        return
    require_server()
    for argv in commands:
        err.print(f"$ {' '.join(argv[1:])}")
        call_client(argv, cwd=staged.base_dir)
    err.print(f"submitted {name}; follow it with `reanimate status {name}`")


@app.command()
def status(name: str = typer.Argument(..., help="REANA workflow name.")) -> None:
    """Show the status of a REANA workflow."""
    from reanimate.engines.reana import call_client, reana_client, require_server

    require_server()
    print(call_client([reana_client(), "status", "-w", name]).stdout, end="")


@app.command()
def download(
    name: str = typer.Argument(..., help="REANA workflow name."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Download folder."),
) -> None:
    """Download the declared outputs of a finished REANA workflow."""
    from reanimate.engines.reana import call_client, reana_client, require_server

    require_server()
    print(call_client([reana_client(), "download", "-w", name, "-o", str(output)]).stdout, end="")


def _parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ReanimateError(f"--set {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def main() -> None:
    try:
        # without standalone mode click returns the code of a typer.Exit instead of exiting
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except SpecError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        err.print(f"[red]{len(exc.problems)} problem(s)[/red]")
        sys.exit(exc.exit_code)
    except ReanimateError as exc:
        if STATE["debug"]:
            raise
        err.print("[red]error:[/red] ", end="")
        err.print(str(exc), markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # usage errors come through here too
        # typer vendors its own click, so recognise a usage error by what it can do
        if callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(2)
        if STATE["debug"]:
            raise
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (rerun with --debug)")
        sys.exit(3)


if __name__ == "__main__":
    main()
