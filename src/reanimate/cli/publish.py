"""`reanimate publish SPEC --registry URL`: bundle a run and upload it as an immutable version."""

from __future__ import annotations

from pathlib import Path

import typer

from reanimate.cli.app import app, err
from reanimate.cli.registry_client import client, registry_option, token_option

PUBLISH_HELP = (
    "Bundle the latest complete run of SPEC in WORKDIR (as `reanimate bundle`) and publish it "
    "to a registry as NAME@VERSION (the spec's metadata). Versions are immutable: publishing "
    "the same bytes again is a no-op, other bytes under a published version are refused "
    "(exit 2). Needs a token with the publish scope.")


@app.command("publish", help=PUBLISH_HELP)
def publish(
    spec: Path = typer.Argument(None, help="The analysis spec (YAML); not needed with --bundle."),
    workdir: Path = typer.Option(Path("work"), "--workdir", "-w",
                                 help="The work directory of a complete run of the spec."),
    registry: str = registry_option(),
    token: str = token_option(),
    private: bool = typer.Option(False, "--private", help="Readable only with a read token "
                                 "(set at the analysis's first version)."),
    bundle: Path = typer.Option(None, "--bundle", help="Publish this bundle as it is instead "
                                "of making one."),
) -> None:
    import tempfile

    from reanimate.errors import ReanimateError

    if bundle is None and spec is None:
        raise ReanimateError("give the SPEC to bundle and publish, or --bundle FILE")
    reg = client(registry, token)
    with tempfile.TemporaryDirectory(prefix="reanimate-publish-") as scratch, reg:
        if bundle is None:
            from reanimate.preserve.crate import build_bundle

            made = build_bundle(spec, workdir, Path(scratch),
                                progress=lambda text: err.print(f"[dim]{text}[/dim]",
                                                                soft_wrap=True))
            for warning in made.warnings:
                err.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
            bundle = made.path
        elif not bundle.is_file():
            raise ReanimateError(f"{bundle}: no such bundle")
        from reanimate.hashing import sha256_file
        from reanimate.registry.client import RegistryError, bundle_identity

        name, version = bundle_identity(bundle)
        err.print(f"[dim]uploading {bundle.name} to {reg.url}[/dim]", soft_wrap=True)
        try:
            status, info = reg.publish(bundle, private=private)
        except RegistryError as exc:
            if exc.status == 409:
                mine = sha256_file(bundle)
                theirs = _published_digest(reg, name, version) or "another digest"
                raise ReanimateError(f"{name}@{version} is already published with sha256 "
                                     f"{theirs}; this bundle is sha256 {mine}: versions are "
                                     "immutable, publish a new version") from None
            raise
    sha = info.get("bundle_sha256", "")
    if status == 200:
        print(f"{name}@{version} already published with the same content (sha256 {sha})")
    else:
        print(f"published {name}@{version} (sha256 {sha})")


def _published_digest(reg, name: str, version: str) -> str | None:
    from reanimate.registry.client import RegistryError

    try:
        return reg.version(name, version).get("bundle_sha256")
    except RegistryError:
        return None
