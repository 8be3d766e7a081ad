"""`reanimate bundle SPEC` / `bundle inspect FILE` and `reanimate verify BUNDLE` (docs/preserve.md).

`bundle` is a group whose default command is `create`: `reanimate bundle SPEC ...` creates,
`reanimate bundle inspect FILE` inspects (any first argument that is not a subcommand is taken
as create's SPEC).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.core import TyperGroup

from reanimate.cli.app import app, err

SUBCOMMAND_HELP = ("--help", "-h")


class DefaultCreate(TyperGroup):
    """A group that runs `create` when its first argument names no subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in SUBCOMMAND_HELP:
            args = ["create", *args]
        return super().parse_args(ctx, args)


bundle_app = typer.Typer(
    cls=DefaultCreate, no_args_is_help=True,
    help="Preserve an analysis as one Workflow Run RO-Crate zip, or inspect one.\n\n"
         "reanimate bundle SPEC [--workdir W] [-o NAME-VERSION.crate.zip]  (create)\n\n"
         "reanimate bundle inspect FILE [--json]",
)


@bundle_app.callback()
def _bundle() -> None:
    """Preserve an analysis as one Workflow Run RO-Crate zip, or inspect one."""


def _limits(max_size: str, max_unpacked: str):
    from reanimate.preserve.archive import Limits, parse_size

    return Limits(max_bundle=parse_size(max_size), max_unpacked=parse_size(max_unpacked))


def _human(size: int | None) -> str:
    from reanimate.preserve.archive import human_size

    return "-" if size is None else human_size(size)


def _out():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


CREATE_HELP = (
    "Bundle the latest complete run of SPEC in WORKDIR as one zip: spec, lock, pinned models, "
    "build contexts, small inputs, the code as a wheel, the exported CWL and reana.yaml, every "
    "step's outputs, the provenance. The same run gives the same bytes.")
INSPECT_HELP = (
    "Show what a bundle holds and check every file's sha256 against its metadata: exit 0 if "
    "all match, 1 naming each file that does not, 2 for an unsafe or unreadable archive.")
VERIFY_HELP = (
    "Unpack a bundle safely, rerun it with its own code and compare every preserved output "
    "with the rerun's: exit 0 if all are identical or within tolerance, 1 naming each that "
    "differs (and its first differing bins or keys), 2 if the bundle is refused.")


@bundle_app.command("create", help=CREATE_HELP)
def create(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    workdir: Path = typer.Option(Path("work"), "--workdir", "-w",
                                 help="The work directory of a complete run of the spec."),
    output: Path = typer.Option(None, "--output", "-o",
                                help="The zip to write (default NAME-VERSION.crate.zip here)."),
    with_images: bool = typer.Option(False, "--with-images",
                                     help="Add the container images (docker save)."),
    max_input_size: str = typer.Option(
        "100MB", "--max-input-size",
        help="Largest local input file copied in (inputs named by URL never are)."),
) -> None:
    from reanimate.preserve.archive import parse_size
    from reanimate.preserve.crate import build_bundle

    result = build_bundle(spec, workdir, output, with_images=with_images,
                          max_input_size=parse_size(max_input_size),
                          progress=lambda text: err.print(f"[dim]{text}[/dim]", soft_wrap=True))
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    print(f"wrote {result.path} ({result.members} files, {_human(result.size)}, "
          f"sha256 {result.sha256}) from run {result.run}")


@bundle_app.command("inspect", help=INSPECT_HELP)
def inspect(
    file: Path = typer.Argument(..., help="The bundle (.crate.zip)."),
    as_json: bool = typer.Option(False, "--json", help="Print the inspection as JSON."),
    max_size: str = typer.Option("64GB", "--max-size", help="Refuse a larger bundle."),
    max_unpacked: str = typer.Option("256GB", "--max-unpacked",
                                     help="Refuse a bundle whose files add up to more."),
) -> None:
    from reanimate.preserve.inspect import inspect_bundle

    found = inspect_bundle(file, _limits(max_size, max_unpacked))
    if as_json:
        print(json.dumps(found.as_dict(), indent=2))
    else:
        _print_inspection(found)
    if not found.ok:
        raise typer.Exit(1)


def _print_inspection(found) -> None:
    from rich.table import Table

    out = _out()
    out.print(f"{found.bundle}: {found.name} {found.version or ''} ({_human(found.size)}, "
              f"{found.files} files, sha256 {found.sha256})", markup=False)
    out.print(f"  {found.title}", markup=False)
    out.print(f"  run: {found.run.get('name')}, {found.run.get('start')} .. "
              f"{found.run.get('end')}; published {found.published}", markup=False)
    out.print(f"  spec: {found.spec}; code: {found.code.get('wheel')} (source "
              f"{str(found.code.get('source'))[:12]})", markup=False)
    out.print(f"  content: {found.identifier}", markup=False)
    steps = Table("step", "status", "in image", "parameters", title="steps",
                  title_justify="left")
    for step in found.steps:
        params = ", ".join(f"{k}={v}" for k, v in step["parameters"].items()) or "-"
        where = step["image"] if step["ran_in_image"] else "no (ran natively)"
        steps.add_row(step["name"], step["status"], where, params)
    out.print(steps)
    for pin in found.pins:
        out.print(f"  {pin['what']} ({pin['path']})", markup=False)
    if found.images:
        images = Table("container", "image", "id", "archive", title="images",
                       title_justify="left")
        for image in found.images:
            images.add_row(image["container"], f"{image['name']}:{image['tag']}",
                           (image["sha256"] or "-")[:12], image["archive"] or "-")
        out.print(images)
    outputs = Table("output", "step", "size", "sha256", title="outputs", title_justify="left")
    outputs.columns[0].overflow = "fold"
    for item in found.outputs:
        outputs.add_row(item["path"], item["step"], _human(item["size"]), item["sha256"][:16])
    out.print(outputs)
    if found.inputs:
        inputs = Table("input", "size", "sha256", title="inputs", title_justify="left")
        for item in found.inputs:
            where = item["path"] or f"{item['url']} (by URL)"
            inputs.add_row(where, _human(item["size"]) if item["size"] else "-",
                           (item["sha256"] or "none pinned")[:16])
        out.print(inputs)
    for problem in found.problems:
        out.print(f"mismatch: {problem}", markup=False)
    if found.problems:
        out.print(f"{len(found.problems)} of {found.files} file(s) do not match the metadata",
                  markup=False)
    else:
        out.print(f"all {found.files} file digests match the metadata", markup=False)


@app.command(help=VERIFY_HELP)
def verify(
    bundle: str = typer.Argument(..., metavar="BUNDLE|NAME@VERSION",
                                 help="The bundle (.crate.zip) to rerun, or with --registry a "
                                      "published version (downloaded, its sha256 checked)."),
    engine: str = typer.Option("local", "--engine", help="local (default) or cwl (cwltool on "
                               "the bundle's exported workflow)."),
    containers: str = typer.Option(None, "--containers",
                                   help="docker: run the steps in their images."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    tolerance: float = typer.Option(0.0, "--tolerance", min=0.0,
                                    help="Relative tolerance for numbers (JSON, and histogram "
                                         "bins if above the 1e-5 default); 0: exact."),
    keep: Path = typer.Option(None, "--keep", help="Unpack and rerun here, and keep it "
                              "(default: a temporary folder, removed)."),
    max_size: str = typer.Option("64GB", "--max-size", help="Refuse a larger bundle."),
    max_unpacked: str = typer.Option("256GB", "--max-unpacked",
                                     help="Refuse a bundle whose files add up to more."),
    registry: str = typer.Option(None, "--registry", help="Verify NAME@VERSION of this "
                                 "registry (default: $REANIMATE_REGISTRY when BUNDLE is no "
                                 "file)."),
    token: str = typer.Option(None, "--token", help="API token (private analyses) "
                              "(default: $REANIMATE_TOKEN)."),
) -> None:
    import tempfile

    from reanimate.cli.registry_client import remote

    registry = remote(registry, bundle, Path(bundle).is_file() or "@" not in bundle)
    with tempfile.TemporaryDirectory(prefix="reanimate-verify-") as scratch:
        path = _download(registry, token, bundle, Path(scratch)) if registry else Path(bundle)
        _verify(path, engine, containers, as_json, tolerance, keep, max_size, max_unpacked)


def _download(registry: str, token: str | None, ref: str, folder: Path) -> Path:
    from reanimate.cli.registry_client import client
    from reanimate.registry.client import parse_ref

    name, version = parse_ref(ref)
    with client(registry, token) as reg:
        path, sha = reg.download(name, version, folder / f"{name}-{version}.crate.zip")
    err.print(f"[dim]downloaded {name}@{version} from {reg.url} (sha256 {sha})[/dim]",
              soft_wrap=True)
    return path


def _verify(bundle: Path, engine, containers, as_json, tolerance, keep, max_size,
            max_unpacked) -> None:
    from reanimate.preserve.verify import verify_bundle

    report = verify_bundle(bundle, engine=engine, containers=containers, tolerance=tolerance,
                           keep=keep, limits=_limits(max_size, max_unpacked),
                           progress=lambda text: err.print(f"[dim]{text}[/dim]", soft_wrap=True))
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report) -> None:
    from rich.table import Table

    out = _out()
    out.print(f"{report.bundle}: rerun with the {report.engine} engine, code from "
              f"{report.code}" + ("" if report.kept else " (removed)"), markup=False)
    if report.rerun_exit != 0:
        out.print(f"the rerun failed (exit {report.rerun_exit}); last lines of its stderr:",
                  markup=False)
        for line in report.rerun_tail:
            out.print(f"    {line}", markup=False)
        return
    table = Table("output", "status", "kind", "size", title="outputs", title_justify="left")
    table.columns[0].overflow = "fold"
    colours = {"identical": "green", "within tolerance": "cyan"}
    for item in report.outputs:
        colour = colours.get(item.status, "red")
        table.add_row(item.path, f"[{colour}]{item.status}[/{colour}]", item.kind,
                      _human(item.preserved_size))
    out.print(table)
    for item in report.outputs:
        if item.status not in colours:
            for detail in item.details or [item.status]:
                out.print(f"{item.status}: {item.path}: {detail}", markup=False)
    counts: dict[str, int] = {}
    for item in report.outputs:
        counts[item.status] = counts.get(item.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    out.print(f"{report.status}: {summary} ({len(report.outputs)} outputs)", markup=False)
