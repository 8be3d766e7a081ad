"""One signal through a prepared analysis: derived run, PatchSet, patched model, limits, plots.

`reinterpret_signal` writes into OUTPUT:

    patch.json          the HEPData/pyhf PatchSet (one patch, the preserved workspace's digest)
    workspace.json      the patched pyhf workspace
    model.hs3.json      its HS3 document
    limits.json         the limit record (reanimate.statistics.limits) + analysis and signal
    plots/prefit.png, plots/postfit.png   the patched model, signal stacked on top
    derived/            the derived spec (derive.py) and the signal catalogue it may need

The derived run goes through the local engine (content-cached, provenance in its run folder,
WORKDIR/runs/RUN/provenance.json), in `workdir` (shared between points: the engine's cache is
safe for concurrent runs) or OUTPUT/work. Distinct points need distinct OUTPUT folders.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from reanimate.dask_cluster import SCHEDULER_ENV
from reanimate.errors import ReanimateError
from reanimate.reinterpret.analysis import PreparedAnalysis
from reanimate.reinterpret.signals import Signal, parse_signal


def point_name(signal: Signal) -> str:
    from reanimate.reinterpret.patchset import safe_name

    if signal.kind == "recipe":
        parts = [signal.recipe] + [f"{k}{v}" for k, v in signal.parameters.items()]
        return safe_name("_".join(parts))
    return safe_name(Path(signal.paths[0]).stem if signal.paths else "signal")


@contextlib.contextmanager
def _own_cluster():
    """The signal's steps start their own small cluster: a point may itself run on a worker of
    the campaign's scheduler ($DASK_SCHEDULER_URI), whose workers are all busy with points."""
    saved = os.environ.pop(SCHEDULER_ENV, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[SCHEDULER_ENV] = saved


def _catalogue(prepared: PreparedAnalysis, signal: Signal, folder: Path) -> str | None:
    """The catalogue JSON of the signal's events, its one process named signal_sample."""
    from reanimate.datasets.catalogue import (
        Catalogue,
        load_catalogue,
        resolve,
        write_catalogue,
    )
    from reanimate.hashing import sha256_file

    process = prepared.block["signal_sample"]
    target = folder / "signal-catalogue" / "catalogue.json"
    if signal.kind == "files":
        import uproot

        files = []
        for path in signal.paths:
            try:
                with uproot.open(path) as handle:
                    nevts = int(handle["Events"].num_entries)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's
                raise ReanimateError(f"--signal: {path}: no readable Events tree ({exc})") \
                    from None
            files.append({"path": os.path.relpath(path, target.parent), "nevts": nevts,
                          "sha256": sha256_file(Path(path))})
        entry = {"nevts_total": sum(f["nevts"] for f in files), "xsec_pb": signal.xsec_pb,
                 "files": files}
        write_catalogue(Catalogue.model_validate({process: {"nominal": entry}}), target)
        return str(target)
    if signal.kind != "catalogue":
        return None
    source = signal.paths[0]
    catalogue = load_catalogue(source)
    processes = list(catalogue.root)
    if processes == [process]:
        return source
    if len(processes) != 1:
        raise ReanimateError(f"--signal {signal.text}: the catalogue holds {len(processes)} "
                             f"processes ({', '.join(processes)}); give one, or name it "
                             f"{process!r}")
    data = catalogue.model_dump(mode="json")[processes[0]]
    for entry in data.values():
        for f in entry["files"]:
            f["path"] = os.path.relpath(resolve(source, f["path"]), target.parent) \
                if not f["path"].startswith(("root:", "http:", "https:", "s3:")) else f["path"]
    write_catalogue(Catalogue.model_validate({process: data}), target)
    return str(target)


def reinterpret_signal(prepared: PreparedAnalysis, signal: str | Signal, *, output: Path,
                       name: str | None = None, settings=None, workdir: Path | None = None,
                       plots: bool = True, reporter=None) -> dict:
    """Run SIGNAL through the prepared analysis (module docstring); the limit record.

    `settings`: a reanimate.statistics.limits.LimitSettings (default: the block's poi and
    confidence_level, CLs at mu = 1, asymptotic)."""
    import yaml

    from reanimate.atomic import write_text
    from reanimate.engines.local import run_spec
    from reanimate.reinterpret import derive, patchset
    from reanimate.spec.loader import load_spec
    from reanimate.statistics import jsonio

    start = time.perf_counter()
    block = prepared.block
    if not isinstance(signal, Signal):
        signal = parse_signal(signal, list(block.get("recipes") or {}))
    output = Path(output).resolve()
    folder = output / "derived"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReanimateError(f"-o {output}: cannot write there ({exc})") from None
    name = name or point_name(signal)
    catalogue = _catalogue(prepared, signal, folder)
    doc, patch_name, patch_output = derive.derived_spec(prepared, signal, catalogue)
    spec_path = folder / "reinterpret.yaml"
    write_text(spec_path, "# Made by reanimate reinterpret; do not edit.\n"
               + yaml.safe_dump(doc, sort_keys=False))
    loaded = load_spec(spec_path)
    with _own_cluster():
        report = run_spec(loaded, Path(workdir).resolve() if workdir else output / "work",
                          jobs=1, reporter=reporter)
    if report.failed or report.with_status("skipped"):
        failed = report.failed[0] if report.failed else report.with_status("skipped")[0]
        record = report.records[failed]
        log = (record.logs or {}).get("stderr")
        reason = _last_line(log)
        raise ReanimateError(f"signal step {failed} failed: {record.message or 'exit code '}"
                             f"{'' if record.message else record.exit_code}"
                             f"{f' ({reason})' if reason else ''}; log: "
                             f"{log or report.run_dir}")
    patch_record = report.records[patch_name]
    ops = jsonio.read(patch_record.outputs[patch_output]["path"], "JSON Patch")
    workspace = jsonio.read(prepared.output(block["workspace"]), "workspace")
    labels = signal.label_values()
    ps = patchset.make_patchset(
        workspace, ops, name=name, labels=labels,
        description=f"signal {signal.text} for {prepared.name} {prepared.version}",
        references=list(prepared.references),
        extra={"reanimate": {"analysis": prepared.as_dict(), "signal": signal.text}})
    patched = patchset.apply_patchset(workspace, ps)
    axes = _axes(prepared, workspace)
    jsonio.write(output / "patch.json", ps)
    jsonio.write(output / "workspace.json", patched)
    jsonio.write(output / "model.hs3.json", patchset.patched_hs3(patched, axes))
    from reanimate.statistics.limits import LimitSettings, limit_record

    settings = settings or LimitSettings(poi=block.get("poi"),
                                         cl=block.get("confidence_level") or 0.95)
    record = limit_record(patched, name=name, labels=labels, settings=settings)
    histograms = patch_record.inputs.get("signal_histograms", [{}])[0]
    record["analysis"] = prepared.as_dict()
    record["signal"] = {"spec": signal.text, "kind": signal.kind,
                        "sha256": histograms.get("sha256"),
                        "patch_sha256": patch_record.outputs[patch_output]["sha256"]}
    record["run"] = {"provenance": str(report.run_dir / "provenance.json"),
                     "derived_spec": str(spec_path), "executed": report.executed,
                     "cached": report.with_status("cached"),
                     "seconds": round(time.perf_counter() - start, 3)}
    if plots:
        from reanimate.reinterpret.model_plots import model_plots

        model_plots(patched, output / "plots", signal=block["signal_sample"], axes=axes,
                    title=f"{prepared.name}: {name}")
    record["run"]["seconds"] = round(time.perf_counter() - start, 3)
    jsonio.write(output / "limits.json", record)
    return record


def _axes(prepared: PreparedAnalysis, workspace: dict) -> dict:
    """Bin edges per channel, from the preserved HS3 model when the spec names one."""
    from reanimate.reinterpret.patchset import hs3_axes
    from reanimate.statistics import jsonio

    ref = (prepared.statistics or {}).get("hs3")
    if not ref or ref not in prepared.outputs:
        return {}
    return hs3_axes(jsonio.read(prepared.output(ref), "HS3 model"), workspace)


def _last_line(log: str | None) -> str:
    """The last non-empty line of a step's stderr log (its one-line error), if any: a point's
    reason must reach a user who cannot read the worker's files."""
    try:
        lines = Path(log).read_text(errors="replace").splitlines() if log else []
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")[:300]
