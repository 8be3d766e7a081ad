"""Stability of the flagship fit (specs/agc-ttbar.yaml) across sample sizes and seeds.

    python benchmarks/stability.py [--events 3000,5000,...] [--seeds 42,7,123]
        [--workdir ~/.cache/reanimate/stability] [--json WORKDIR/stability.json]

For every events x seed (default: 3000, 5000, 10000, 20000, 30000, 40000, 50000, 100000 x 42,
7, 123) it runs the chain datasets -> train -> histograms -> statmodel -> fit (no plots) with
the real CLI, `reanimate run specs/agc-ttbar.yaml --workdir WORKDIR/w_{events}_{seed}
--set events=N --set seed=S --only datasets ... --only fit`, one work directory per run, and
reads what the local engine left there (the run's provenance.json, then the outputs it names:
fit_results.json, statmodel_report.json, histograms.root). A work directory already populated
is reused: the engine's cache makes unchanged steps instant, so a second sweep only reruns what
changed (a changed statmodel or fit reruns those two steps alone).

Per run: whether the chain completed (exit code 0; else the failing step's one-line reason),
whether the fit converged, the fitted ttbar_norm and its error, its pull against the true value
of the pseudo-data, the number of fit bins per channel after merging, the template rows
(sample x systematic x channel of statmodel_report.json) pruned (normsys or histosys), dropped
and smoothed, the parameters at a bound, and the fit step's seconds (from the run record; for a
cached fit, those of the run that made it). A fit that does not converge exits non-zero and
its results are not kept; then the parameters at a bound are read from its reason.

Truth. The AGC pseudo-data is (ttbar_ME_var + ttbar_PS_var) / 2 + wjets (nominal W+jets, no
single top; reanimate.analyses.agc.output). Here

    truth = sum_{4j1b, 4j2b} sum_{110 <= x < 550 GeV} (ME_var + PS_var) / 2
            / sum_{4j1b, 4j2b} sum_{110 <= x < 550 GeV} ttbar (nominal)

from the run's histograms.root rebinned to FIT_EDGES (an absent histogram counts as zero), and
pull = (fitted ttbar_norm - truth) / error. This ignores that single top is absent from the
pseudo-data (the model expects it, so the fit pulls ttbar_norm down by a little), and that the
fit also moves nuisance parameters: the pull is a figure of merit, not an exact N(0, 1) draw.

Verdict: every run with >= 5000 events completed with a converged fit and no nuisance parameter
at a bound. Runs are sequential. Time (measured on 2 cores): the whole sweep from nothing
about 25 min (the 100000-event runs dominate; a 20000-event run takes 25 s), a rerun after a
statmodel or fit change 2 min. Figures only; nothing is asserted (exit code 0).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "agc-ttbar.yaml"
STEPS = ("datasets", "train", "histograms", "statmodel", "fit")
EVENTS = (3000, 5000, 10000, 20000, 30000, 40000, 50000, 100000)
SEEDS = (42, 7, 123)
REGIONS = ("4j1b", "4j2b")
CHANNELS = ("4j1b_CR", "4j2b_SR")
VERDICT_MIN_EVENTS = 5000


def cli() -> list[str]:
    """The `reanimate` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("reanimate")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "reanimate.cli"]


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def duration(record: dict) -> float | None:
    if not record.get("start") or not record.get("end"):
        return None
    start, end = (datetime.fromisoformat(record[k]) for k in ("start", "end"))
    return round((end - start).total_seconds(), 2)


def output(records: dict, workdir: Path, step: str, name: str, rel: str) -> Path | None:
    """An output's path from the run record, else under WORKDIR/results/<step>/."""
    path = records.get(step, {}).get("outputs", {}).get(name, {}).get("path")
    if path and Path(path).is_file():
        return Path(path)
    fallback = workdir / "results" / step / rel
    return fallback if fallback.is_file() else None


def truth(histograms: Path) -> float:
    """(ME_var + PS_var) / 2 over nominal ttbar, both regions, in the fit range."""
    import numpy as np

    from reanimate.analyses.agc.histfile import read_histograms
    from reanimate.analyses.agc.statmodel_config import FIT_EDGES
    from reanimate.statistics.histfactory import rebin

    hists = read_histograms(histograms)

    def fit_range(name: str) -> float:
        if name not in hists:
            return 0.0
        values, _variances, edges = hists[name]
        return float(np.sum(rebin(np.asarray(values), np.asarray(edges), FIT_EDGES)))

    varied = sum((fit_range(f"{r}_ttbar_ME_var") + fit_range(f"{r}_ttbar_PS_var")) / 2
                 for r in REGIONS)
    nominal = sum(fit_range(f"{r}_ttbar") for r in REGIONS)
    return varied / nominal


def statmodel_counts(report: dict) -> dict:
    rows = report.get("systematics", [])
    bins = {ch["name"]: len(ch["edges"]) - 1 for ch in report.get("channels", [])}
    return {
        "bins": {ch: bins.get(ch) for ch in CHANNELS},
        "pruned": sum("pruned" in (r.get("normsys"), r.get("histosys")) for r in rows),
        "dropped": sum("dropped" in (r.get("normsys"), r.get("histosys")) for r in rows),
        "smoothed": sum("smoothed" in (r.get("treatments") or []) for r in rows),
        "samples_dropped": [f"{s['sample']}/{s['channel']}" for s in report.get("samples", [])
                            if s.get("status") == "dropped"],
    }


AT_BOUND = re.compile(r"([\w\[\]]+) at its (lower|upper) bound \(([^)]*)\)")


def one_run(events: int, seed: int, workdir: Path) -> dict:
    folder = workdir / f"w_{events}_{seed}"
    argv = [*cli(), "run", str(SPEC), "--workdir", str(folder), "--set", f"events={events}",
            "--set", f"seed={seed}", *(a for s in STEPS for a in ("--only", s))]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    row: dict = {"events": events, "seed": seed, "workdir": str(folder),
                 "exit_code": proc.returncode, "completed": proc.returncode == 0,
                 "wall_s": round(time.perf_counter() - start, 1), "reason": None,
                 "converged": None, "ttbar_norm": None, "error": None, "truth": None,
                 "pull": None, "at_bounds": [], "fit_s": None, "steps": {}}
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    try:
        run_dir = Path(json.loads(proc.stdout)["run"])
        provenance = json.loads((run_dir / "provenance.json").read_text())
    except (ValueError, KeyError, OSError):
        provenance = {}
    records = {r["name"]: r for r in provenance.get("steps", [])}
    row["steps"] = {n: r.get("status") for n, r in records.items() if n in STEPS}
    if not row["completed"]:
        failed = [n for n in STEPS if records.get(n, {}).get("status") == "failed"]
        row["reason"] = lines[-1] if lines else f"exit code {proc.returncode}"
        if failed:
            log = records[failed[0]].get("logs", {}).get("stderr")
            tail = [ln.strip() for ln in Path(log).read_text(errors="replace").splitlines()
                    if ln.strip()] if log and Path(log).is_file() else []
            last = tail[-1] if tail else records[failed[0]].get("message") or ""
            # the step's own one-line error, without its program name and the results file of
            # a non-converged fit (written to the step's scratch folder, deleted since)
            last = re.sub(r"^error: python -m [\w.]+: ", "", last)
            last = re.sub(r"; results written to \S+ with converged=false$", "", last)
            row["reason"] = f"{failed[0]}: {last}"
    if "fit" in records:
        row["fit_s"] = duration(records["fit"])

    histograms = output(records, folder, "histograms", "histograms", "histograms.root")
    if histograms is not None and records.get("histograms", {}).get("status") in (
            "executed", "cached"):
        row["truth"] = round(truth(histograms), 5)
    report = output(records, folder, "statmodel", "report", "statmodel/statmodel_report.json")
    if report is not None and records.get("statmodel", {}).get("status") in (
            "executed", "cached"):
        row.update(statmodel_counts(json.loads(report.read_text())))
    results = output(records, folder, "fit", "results", "fit/fit_results.json")
    if results is not None and records.get("fit", {}).get("status") in ("executed", "cached"):
        fit = json.loads(results.read_text())
        row["converged"] = bool(fit.get("converged"))
        row["ttbar_norm"], row["error"] = fit["poi"]["value"], fit["poi"]["error"]
        row["at_bounds"] = fit.get("status", {}).get("at_bounds", [])
        row["fit_reason"] = fit.get("status", {}).get("reason")
    elif records.get("fit", {}).get("status") == "failed":
        # the results of a fit that did not converge are not cached: read its reason
        row["converged"] = False if "did not converge" in (row["reason"] or "") else None
        row["at_bounds"] = [{"name": n, "bound": b, "value": v, "poi": False}
                            for n, b, v in AT_BOUND.findall(row["reason"] or "")]
    if row["ttbar_norm"] is not None and row["truth"] is not None and row["error"]:
        row["pull"] = round((row["ttbar_norm"] - row["truth"]) / row["error"], 3)
    return row


def nuisance_at_bounds(row: dict) -> list[dict]:
    return [b for b in row["at_bounds"] if not b.get("poi")]


def cells(row: dict) -> list[str]:
    def num(x, fmt):
        return "-" if x is None else format(x, fmt)

    norm = ("-" if row["ttbar_norm"] is None
            else f"{row['ttbar_norm']:.3f} ± {row['error']:.3f}")
    bins = row.get("bins")
    bounds = ", ".join(f"{b['name']}{' (POI)' if b.get('poi') else ''}"
                       for b in row["at_bounds"]) or "-"
    return [str(row["events"]), str(row["seed"]), "yes" if row["completed"] else "no",
            {True: "yes", False: "no", None: "-"}[row["converged"]], norm,
            num(row["truth"], ".3f"), num(row["pull"], "+.2f"),
            "-" if not bins else f"{bins['4j1b_CR']}/{bins['4j2b_SR']}",
            str(row.get("pruned", "-")), str(row.get("dropped", "-")),
            str(row.get("smoothed", "-")), bounds, num(row["fit_s"], ".1f"),
            row["reason"] or ""]


HEADER = ["events", "seed", "completed", "converged", "ttbar_norm ± err", "truth", "pull",
          "bins 4j1b/4j2b", "pruned", "dropped", "smoothed", "at bounds", "fit s", "reason"]


def table(rows: list[dict]) -> str:
    body = [HEADER, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in body) for i in range(len(HEADER))]
    right = {0, 1, 5, 6, 8, 9, 10, 12}
    out = []
    for line in body:
        text = "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        out.append(text.rstrip())
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def summaries(rows: list[dict]) -> list[str]:
    out = []
    for n in sorted({r["events"] for r in rows}):
        group = [r for r in rows if r["events"] == n]
        completed = sum(r["completed"] for r in group)
        converged = sum(bool(r["converged"]) for r in group)
        bounded = sum(bool(nuisance_at_bounds(r)) for r in group)
        out.append(f"{n:>7} events: {completed}/{len(group)} completed, {converged}/{len(group)} "
                   f"converged, {bounded}/{len(group)} with a nuisance parameter at a bound")
    return out


def verdict(rows: list[dict]) -> bool:
    return all(r["completed"] and r["converged"] and not nuisance_at_bounds(r)
               for r in rows if r["events"] >= VERDICT_MIN_EVENTS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=ints, default=list(EVENTS), help="comma-separated")
    p.add_argument("--seeds", type=ints, default=list(SEEDS), help="comma-separated")
    p.add_argument("--workdir", type=Path,
                   default=Path.home() / ".cache" / "reanimate" / "stability")
    p.add_argument("--json", type=Path, default=None, help="default WORKDIR/stability.json")
    args = p.parse_args()
    workdir = args.workdir.expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    total = len(args.events) * len(args.seeds)
    started = time.perf_counter()
    for n in args.events:
        for s in args.seeds:
            row = one_run(n, s, workdir)
            rows.append(row)
            state = ("converged" if row["converged"] else "NOT converged") if row["completed"] \
                else f"FAILED ({row['reason']})"
            norm = "" if row["ttbar_norm"] is None else \
                f", ttbar_norm {row['ttbar_norm']:.3f} ± {row['error']:.3f}"
            print(f"[{len(rows)}/{total}] events={n} seed={s}: {state}{norm} "
                  f"({row['wall_s']:.1f} s)", file=sys.stderr, flush=True)
    ok = verdict(rows)
    judged = any(r["events"] >= VERDICT_MIN_EVENTS for r in rows)
    print(table(rows))
    print()
    for line in summaries(rows):
        print(line)
    print(f"every run with >= {VERDICT_MIN_EVENTS} events completed with a converged fit and "
          f"no nuisance parameter at a bound: {('yes' if ok else 'no') if judged else 'n/a'}")
    path = (args.json or workdir / "stability.json").expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "spec": str(SPEC), "workdir": str(workdir), "events": args.events, "seeds": args.seeds,
        "truth": "sum over 4j1b, 4j2b in [110, 550] GeV of (ttbar_ME_var + ttbar_PS_var) / 2 "
                 "over the same sum of nominal ttbar",
        "wall_s": round(time.perf_counter() - started, 1), "verdict": ok if judged else None,
        "summary": summaries(rows), "runs": rows,
    }, indent=2) + "\n")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
