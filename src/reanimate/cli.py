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
    engine: str = typer.Option("local", "--engine", help="local (default)."),
) -> None:
    """Run the analysis: steps in dependency order, unchanged steps served from the cache."""
    from reanimate.engines.local import run_spec
    from reanimate.spec import load_spec

    if engine != "local":
        raise ReanimateError(f"unknown engine {engine!r} (available: local)")
    loaded = load_spec(spec)
    report = run_spec(
        loaded, workdir, only=only or None, from_step=from_step, jobs=jobs, force=force,
        overrides=_parse_overrides(set_ or []),
    )
    print(json.dumps(report.summary(), indent=2))
    if report.failed:
        raise typer.Exit(1)


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
