"""`reanimate registry list|show|download`: what a registry holds, over HTTP; and the
--registry/--token options the other client commands share (publish, campaign, verify)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from reanimate.cli.registry import app

REGISTRY_ENV, TOKEN_ENV = "REANIMATE_REGISTRY", "REANIMATE_TOKEN"
REGISTRY_HELP = "The registry's URL, e.g. http://127.0.0.1:8000 (default: $REANIMATE_REGISTRY)."
TOKEN_HELP = "API token (Authorization: Bearer) (default: $REANIMATE_TOKEN)."


def registry_option():
    return typer.Option(None, "--registry", envvar=REGISTRY_ENV, show_envvar=False,
                        help=REGISTRY_HELP)


def token_option():
    return typer.Option(None, "--token", envvar=TOKEN_ENV, show_envvar=False, help=TOKEN_HELP)


def remote(explicit: str | None, argument: str, local_exists: bool) -> str | None:
    """The registry a command with a local or remote argument talks to: --registry if given,
    else $REANIMATE_REGISTRY when the argument is not a local folder or file, else None."""
    if explicit:
        return explicit
    return None if local_exists else (os.environ.get(REGISTRY_ENV) or None)


def client(registry: str | None, token: str | None):
    from reanimate.registry.client import RegistryClient

    return RegistryClient(registry or "", token or os.environ.get(TOKEN_ENV))


def _out():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _human(size) -> str:
    from reanimate.cli.bundle import _human as human

    return human(size)


@app.command("list")
def list_(
    registry: str = registry_option(),
    token: str = token_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the analyses as JSON."),
) -> None:
    """The analyses a registry holds (private ones only with a token that may read them)."""
    from rich.table import Table

    with client(registry, token) as reg:
        items = reg.analyses()
    if as_json:
        print(json.dumps(items, indent=2))
        return
    table = Table("name", "latest", "versions", "owner", "public", "title",
                  title=f"{len(items)} analyses at {registry or os.environ.get(REGISTRY_ENV)}",
                  title_justify="left")
    for item in items:
        table.add_row(item["name"], item.get("latest") or "-", str(item.get("versions", 0)),
                      item.get("owner") or "-", "yes" if item.get("public", True) else "no",
                      item.get("title") or "")
    _out().print(table)


@app.command("show")
def show(
    ref: str = typer.Argument(..., metavar="NAME[@VERSION]",
                              help="An analysis, or one of its versions."),
    registry: str = registry_option(),
    token: str = token_option(),
    include_yanked: bool = typer.Option(False, "--include-yanked",
                                        help="List yanked versions too."),
    as_json: bool = typer.Option(False, "--json", help="Print the registry's JSON."),
) -> None:
    """An analysis and its versions, or one version: digest, metadata, steps, every file."""
    from reanimate.registry.client import parse_ref

    name, version = parse_ref(ref, version=False)
    with client(registry, token) as reg:
        data = reg.version(name, version) if version else reg.analysis(name, include_yanked)
    if as_json:
        print(json.dumps(data, indent=2))
    elif version:
        _print_version(data)
    else:
        _print_analysis(data)


def _print_analysis(data: dict) -> None:
    from rich.table import Table

    out = _out()
    out.print(f"{data['name']} (owner {data.get('owner')}, "
              f"{'public' if data.get('public', True) else 'private'}, created "
              f"{data.get('created_at')})", markup=False)
    table = Table("version", "published", "publisher", "sha256", "yanked", "title",
                  title="versions", title_justify="left")
    for item in data.get("versions", []):
        table.add_row(item["version"], _when(item.get("published_at")),
                      item.get("publisher") or "-", (item.get("bundle_sha256") or "")[:16],
                      "yes" if item.get("yanked") else "", item.get("title") or "")
    out.print(table)


def _when(iso) -> str:
    """2026-12-01T20:40:07.86Z -> 2026-12-01 20:40:07 (UTC)."""
    return str(iso)[:19].replace("T", " ") if iso else "-"


def _print_version(data: dict) -> None:
    from rich.table import Table

    out = _out()
    meta = data.get("metadata") or {}
    out.print(f"{data['name']}@{data['version']}: {data.get('title') or ''}", markup=False)
    lines = [("sha256", data.get("bundle_sha256")), ("size", _human(data.get("bundle_size"))),
             ("content", data.get("identifier")),
             ("published", _when(data.get("published_at")) + " UTC"),
             ("publisher", data.get("publisher")),
             ("authors", ", ".join(meta.get("authors") or []) or None),
             ("license", meta.get("license")), ("spec", meta.get("spec")),
             ("references", ", ".join(map(str, meta.get("references") or [])) or None)]
    if data.get("yanked"):
        lines.append(("yanked", data.get("yank_reason") or "yes"))
    for key, value in lines:
        if value:
            out.print(f"  {key}: {value}", markup=False)
    if meta.get("steps"):
        steps = Table("step", "status", "image", title="steps", title_justify="left")
        for step in meta["steps"]:
            steps.add_row(str(step.get("name")), str(step.get("status") or "-"),
                          str(step.get("image") or "-"))
        out.print(steps)
    files = Table("file", "size", "sha256", title=f"{len(meta.get('files') or [])} files",
                  title_justify="left")
    files.columns[0].overflow = "fold"
    for item in meta.get("files") or []:
        files.add_row(item["path"], _human(item.get("size")), (item.get("sha256") or "")[:16])
    out.print(files)


@app.command("download")
def download(
    ref: str = typer.Argument(..., metavar="NAME@VERSION", help="The version to download."),
    output: Path = typer.Option(None, "--output", "-o",
                                help="The file to write (default: NAME-VERSION.crate.zip here); "
                                     "a folder: that file in it."),
    registry: str = registry_option(),
    token: str = token_option(),
) -> None:
    """Download a version's bundle, streamed, its sha256 checked against the registry's."""
    from reanimate.registry.client import parse_ref

    name, version = parse_ref(ref)
    target = output or Path(f"{name}-{version}.crate.zip")
    if target.is_dir():
        target = target / f"{name}-{version}.crate.zip"
    with client(registry, token) as reg:
        path, sha = reg.download(name, version, target)
    print(f"wrote {path} ({_human(path.stat().st_size)}, sha256 {sha})")
