"""Step program: the JSON Patch that adds a signal to the preserved AGC workspace.

    python -m reanimate.analyses.agc.steps.signal_patch --signal_histograms H.root|H.json
        --workspace workspace.json --report statmodel_report.json [--signal signal]
        [--signal_sample signal] --patch patch.json

Reads the signal's histograms (`{region}_{signal}` and `{region}_{signal}_{variation}`: the
histograms step's ROOT file, or the AGC reference JSON of its `--dump_json`, whose optional
"variances" list sits beside "contents"; without it the variances are the contents, unit
weights, said on stderr), and the preserved workspace and statmodel report (the bins, the
staterror bins and the treatments the model was built with). Writes the RFC 6902 operations
(JSON list) that append the signal sample to every channel, with mu_signal, its systematics
(luminosity, jet energy scale and resolution, b-tag, treated as the backgrounds were) and the
channel's staterror, and make mu_signal the POI: applied to the workspace they give exactly
the workspace `statmodel --signal` builds from the backgrounds' and the signal's histograms.
A region without the signal's nominal histogram (no events there) leaves the signal out of
that channel, said on stderr; none in any region is an error. pyhf checks the patched
workspace where it is used (`reanimate reinterpret`), not here. User errors: one line on
stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys

from reanimate.errors import ReanimateError
from reanimate.steps.interface import Flag, Interface, program_main

INTERFACE = Interface(
    prog="python -m reanimate.analyses.agc.steps.signal_patch",
    description=__doc__.split("\n")[0],
    flags=(
        Flag("signal_histograms", "file", "input",
             help="the signal's histograms: ROOT of the histograms step, or its JSON"),
        Flag("workspace", "file", "input", help="the preserved pyhf workspace (no signal)"),
        Flag("report", "file", "input", help="the preserved statmodel_report.json"),
        Flag("signal", "str", "parameter", default="signal",
             help="the signal's process name in the histograms"),
        Flag("signal_sample", "str", "parameter", default="signal",
             help="the signal's sample name in the model"),
        Flag("patch", "file", "output", help="the JSON Patch (RFC 6902 operations, JSON)"),
    ),
)


def read_signal_histograms(path: str, process: str, notes: list[str]) -> tuple[dict, list]:
    """({name: (values, variances, edges)} of the histograms of `process` in a ROOT or JSON
    file, each checked (finite, non-negative variances, matching lengths); all the names)."""
    from pathlib import Path

    from reanimate.analyses.agc import histfile

    if Path(path).suffix.lower() == ".json":
        hists = _read_json(path, process, notes)
    else:
        hists = histfile.read_histograms(path)
    mine = {n: h for n, h in hists.items() if _of_process(n, process)}
    for name, h in mine.items():
        _check_histogram(path, name, h)
    return mine, sorted(hists)


def _of_process(name: str, process: str) -> bool:
    from reanimate.analyses.agc.statmodel_config import REGIONS

    region, _, rest = name.partition("_")
    return region in REGIONS and (rest == process or rest.startswith(process + "_"))


def _read_json(path: str, process: str, notes: list[str]) -> dict:
    import numpy as np

    from reanimate.statistics import jsonio

    doc = jsonio.read(path, "signal histograms")
    if not isinstance(doc, dict) or not doc:
        raise ReanimateError(f"{path}: expected an object {{name: {{edges, contents}}}}")
    out, unit = {}, []
    for name, h in doc.items():
        if not (isinstance(h, dict) and isinstance(h.get("edges"), list)
                and isinstance(h.get("contents"), list)):
            raise ReanimateError(f"{path}: histogram {name}: expected {{edges, contents}}")
        try:
            edges = np.asarray(h["edges"], dtype=float)
            contents = np.asarray(h["contents"], dtype=float)
            variances = (contents if h.get("variances") is None
                         else np.asarray(h["variances"], dtype=float))
        except (TypeError, ValueError):
            raise ReanimateError(f"{path}: histogram {name}: not a list of numbers") from None
        if h.get("variances") is None and _of_process(name, process):
            unit.append(name)
        if contents.ndim != 1 or len(contents) != len(edges) + 1:
            raise ReanimateError(f"{path}: histogram {name}: {len(contents)} contents for "
                                 f"{len(edges)} edges (expected edges + 1, with flow bins)")
        if variances.shape != contents.shape:
            raise ReanimateError(f"{path}: histogram {name}: {len(variances)} variances for "
                                 f"{len(contents)} contents")
        out[name] = (contents[1:-1], variances[1:-1], edges)
    if unit:
        notes.append(f"{path}: no variances for {len(unit)} histogram(s) (e.g. {unit[0]}): "
                     f"unit weights assumed for the staterror")
    return out


def _check_histogram(path: str, name: str, h) -> None:
    import numpy as np

    values, variances, edges = h
    where = f"{path}: histogram {name}"
    if len(edges) < 2 or len(values) != len(edges) - 1 or len(variances) != len(values):
        raise ReanimateError(f"{where}: {len(values)} bins for {len(edges)} edges")
    if not (np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)):
        raise ReanimateError(f"{where}: edges not finite and increasing")
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(variances))):
        raise ReanimateError(f"{where}: a bin content or variance is not finite")
    if np.any(variances < 0):
        raise ReanimateError(f"{where}: a negative variance")


def _checked_lookup(path: str, hists: dict, regions: list[dict]):
    """histfile.lookup, with a rebinning failure (to a region's `edges`) named by its
    histogram."""
    from reanimate.statistics import histfactory

    def find(region: str, process: str, variation: str | None):
        name = f"{region}_{process}" + (f"_{variation}" if variation else "")
        found = hists.get(name)
        if found is not None:
            edges = next(r["edges"] for r in regions if r["region"] == region)
            try:
                histfactory.rebin(found[0], found[2], edges)
            except ReanimateError as exc:
                raise ReanimateError(f"{path}: histogram {name}: {exc}") from None
        return found

    return find


def build_patch(signal_histograms: str, workspace: dict, report: dict, signal: str = "signal",
                signal_sample: str = "signal", notes: list[str] | None = None) -> list[dict]:
    """The RFC 6902 operations adding the signal to `workspace` (see the module's doc)."""
    from reanimate.analyses.agc import statmodel_config
    from reanimate.statistics import histfactory
    from reanimate.statistics.treatments import Treatments

    notes = [] if notes is None else notes
    if not signal or not signal_sample:
        raise ReanimateError("--signal and --signal_sample must not be empty")
    if not (isinstance(workspace, dict) and isinstance(workspace.get("version"), str)
            and all(isinstance(workspace.get(k), list)
                    for k in ("channels", "measurements", "observations"))):
        raise ReanimateError("the workspace is not a pyhf workspace (version, channels, "
                             "measurements, observations)")
    if not (isinstance(report, dict) and isinstance(report.get("treatments"), dict)
            and isinstance(report.get("channels"), list)):
        raise ReanimateError("the report is not a statmodel report (no treatments, channels)")
    try:
        treatments = Treatments(**report["treatments"])
    except TypeError as exc:
        raise ReanimateError(f"the report's treatments are not understood ({exc})") from None
    config = statmodel_config.config(treatments, statmodel_config.signal(signal, signal_sample))
    hists, every = read_signal_histograms(signal_histograms, signal, notes)
    nominal = [f"{ch.region}_{signal}" for ch in config.channels]
    if not any(name in hists for name in nominal):
        others = sorted(hists) or every
        more = f", ... ({len(others)} in all)" if len(others) > 5 else ""
        raise ReanimateError(
            f"{signal_histograms}: no histogram {' or '.join(nominal)} of the signal "
            f"{signal!r} (the file has: {', '.join(others[:5])}{more})")
    for name, ch in zip(nominal, config.channels, strict=True):
        if name not in hists:
            notes.append(f"no histogram {name}: the signal has no events in {ch.name}, left out "
                         f"of that channel")
    by_region = [{"region": ch.region, "edges": next(
        (c["edges"] for c in report["channels"] if c.get("name") == ch.name), ch.edges)}
        for ch in config.channels]
    decisions: dict = {}
    ops = histfactory.signal_patch(workspace, report, config,
                                   _checked_lookup(signal_histograms, hists, by_region),
                                   decisions)
    for row in decisions["samples"]:
        if row["status"] != "kept" and f"{_region(config, row['channel'])}_{signal}" in hists:
            notes.append(f"the signal has no events in the fit range of {row['channel']}, left "
                         f"out of that channel")
    return ops


def _region(config, channel: str) -> str:
    return next(ch.region for ch in config.channels if ch.name == channel)


def run(args: argparse.Namespace) -> str:
    import jsonpatch

    from reanimate.analyses.agc.statmodel_config import SIGNAL_POI
    from reanimate.statistics import jsonio

    workspace = jsonio.read(args.workspace, "workspace")
    report = jsonio.read(args.report, "statmodel report")
    notes: list[str] = []
    ops = build_patch(args.signal_histograms, workspace, report, args.signal,
                      args.signal_sample, notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        patched = jsonpatch.apply_patch(workspace, ops)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ReanimateError(f"the patch does not apply to the workspace ({exc})") from None
    # pyhf checks the patched model where it is used (reanimate.reinterpret.patchset): not
    # importing it here saves 1.7 s of every signal point
    del patched
    jsonio.write(args.patch, ops)
    channels = [op["path"].split("/")[2] for op in ops if op["path"].startswith("/channels/")]
    names = [workspace["channels"][int(i)]["name"] for i in channels]
    return (f"patch: {len(ops)} operations; {args.signal_sample} ({args.signal}) in "
            f"{', '.join(names)}; POI {SIGNAL_POI}")


def main(argv: list[str] | None = None) -> int:
    return program_main(INTERFACE, run, argv)


if __name__ == "__main__":
    sys.exit(program_main(INTERFACE, run))
