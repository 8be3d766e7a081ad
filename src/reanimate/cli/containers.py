"""``reanimate containers ...``: build the spec's images, push them, regenerate their pins.

Thin: parses options, calls `reanimate.containers`, prints. Progress lines go to stderr; the
result (one line per image) to stdout. No Docker daemon: one line, exit code 2.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from reanimate.cli.app import err

app = typer.Typer(
    help="Container images of a spec: build, push, regenerate requirements, list.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SPEC = typer.Argument(..., help="The analysis spec (YAML).")
ONLY = typer.Option(None, "--only", help="Only this container (repeatable).")


@app.callback()
def _containers() -> None:
    """Container images of a spec: build, push, regenerate requirements, list."""


def _progress(start: float):
    def say(line: str) -> None:
        err.print(f"{time.monotonic() - start:7.1f}s {line}", markup=False, highlight=False,
                  soft_wrap=True)

    return say


def _size(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


@app.command()
def build(
    spec: Path = SPEC,
    only: list[str] = ONLY,
    no_cache: bool = typer.Option(False, "--no-cache",
                                  help="Build even if an image of the same context exists."),
) -> None:
    """Build each container that has a build: context; record its image id in the lock."""
    from reanimate.containers import build_images
    from reanimate.spec import load_spec

    start = time.monotonic()
    loaded = load_spec(spec)
    entries = build_images(loaded, only or None, record=True, no_cache=no_cache,
                           progress=_progress(start))
    seconds = time.monotonic() - start
    for name, entry in entries.items():
        how = "up to date" if entry["cached"] else "built"
        typer.echo(f"{name}: {entry['image']} {entry['id']} {_size(entry['size'])} "
                   f"({how}, {seconds:.0f} s)")


@app.command()
def push(
    spec: Path = SPEC,
    registry: str = typer.Option(..., "--registry",
                                 help="HOST[:PORT]/NAMESPACE to push to, e.g. "
                                      "registry.example.org/reanimate."),
    only: list[str] = ONLY,
) -> None:
    """Push the built images to a registry; record the manifest digest it returned."""
    from reanimate.containers import push_images
    from reanimate.spec import load_spec

    start = time.monotonic()
    entries = push_images(load_spec(spec), registry, only or None)
    for name, entry in entries.items():
        repository = entry["pushed_last"]
        typer.echo(f"{name}: {repository}@{entry['pushed'][repository]} "
                   f"({time.monotonic() - start:.0f} s)")


@app.command()
def requirements(spec: Path = SPEC, only: list[str] = ONLY) -> None:
    """Regenerate the hash-pinned requirements.txt of each build context."""
    from reanimate.containers import write_requirements
    from reanimate.spec import load_spec

    for path, changed in write_requirements(load_spec(spec), only or None):
        typer.echo(f"{path}: {'written' if changed else 'up to date'}")


@app.command()
def context(
    spec: Path = SPEC,
    out: Path = typer.Option(..., "--out", help="Folder for one build context per container."),
    only: list[str] = ONLY,
) -> None:
    """Write the complete build context (Dockerfile, pins, wheels) for a plain docker build."""
    from reanimate.containers.build import export_context
    from reanimate.spec import load_spec

    start = time.monotonic()
    written = export_context(load_spec(spec), out, only or None, progress=_progress(start))
    for name, item in written.items():
        typer.echo(f"{name}: {item['path']} (context {item['context_sha256']})")


@app.command("list")
def list_(spec: Path = SPEC) -> None:
    """What the lock records for each container, and whether the daemon has that image."""
    from reanimate.containers.build import image_status
    from reanimate.spec import load_spec

    for row in image_status(load_spec(spec)):
        typer.echo(f"{row['name']}: {row['image']} lock={row['locked'] or '-'} "
                   f"daemon={row['daemon'] or '-'} {row['state']}"
                   + (f" pushed={row['pushed']}" if row["pushed"] else ""))
