"""Our AGC histogram stage against a coffea implementation of the same selection, side by side.

    .venv/bin/python benchmarks/peer.py [--events 300000] [--chunk_sizes 200000,100000]
        [--rounds 3] [--data DIR] [--venv ~/.cache/reanimate/peer-venv] [--coffea 2025.12.0]
        [--basket N] [--core 0] [--seed 42]

Inputs: ``--events`` generated NanoAOD-schema ttbar events in one file (benchmarks/throughput.py
``build_base``) and a catalogue for our stage, in a temporary folder or in ``--data`` (kept and
reused). As generated, the file has one basket per branch, so every chunk decompresses the
whole branch (both sides alike; at 100,000-entry chunks three times); ``--basket 10000``
rewrites it with 10,000-entry baskets, closer to real NanoAOD. Coffea runs in its own virtual
environment, made once with pip from PyPI at ``--venv`` (outside the repository; delete it to
rebuild), because coffea releases pin numpy/awkward their own way. The coffea side is
benchmarks/peer_coffea.py (``coffea.processor.Runner``, ``IterativeExecutor``, ``NanoAODSchema``;
the same selection, systematics and histograms as ours).

Every measured run is a fresh process pinned to one core (``taskset -c CORE``, OMP/OPENBLAS/MKL
threads 1). For each chunk size, each round runs, one after the other: our step program as a
whole process (``python -m reanimate.analyses.agc.steps.histograms --dask_workers 1``: python
start, imports, catalogue check, processing, writing), the coffea script as a whole process,
and our chunk loop in a process of its own (``process_chunk`` over the ``plan_chunks`` tasks,
merged in order). A first, unreported round warms the page cache and the imports.

Printed (min and median over the rounds, ratios > 1 mean ours is faster):
  (1) events per CPU-second of the histogram work — ours: the chunk loop's ``process_time``;
      coffea: ``Runner.run`` over the pre-processed chunks — and the ratio ours / coffea;
  (2) whole-process wall seconds of each and the speed ratio ours / coffea (= coffea's wall /
      ours), with the processes' CPU seconds beside them (robust on a shared machine);
  events/s (wall) of each processing loop; and the check of the two outputs: the largest
  relative bin difference of the nominal 4j1b HT and 4j2b m_bjj histograms and over all the
  histograms both write, and the peak RSS of each whole process. Figures only, no asserts.

The two outputs agree bin for bin when both cut the file into the same chunks (coffea cuts a
file into equal chunks: 300,000 entries at 200,000 are 2 x 150,000 there, 200,000 + 100,000
here); otherwise the sums of weights differ in the last bits (~1e-14 relative) from the order
of the floating-point additions across chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COFFEA = "2025.12.0"  # installs on python 3.11 with numpy 2 / awkward 2; processor.Runner
DEFAULT_VENV = Path.home() / ".cache/reanimate/peer-venv"
THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                            "NUMEXPR_NUM_THREADS")}
XSEC_TTBAR, LUMI = 729.84, 3378.0


def _log(message: str) -> None:
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)


def coffea_python(venv: Path, version: str) -> Path:
    """The venv's python with coffea ``version`` importable; makes the venv when needed."""
    python = venv / "bin/python"
    if python.exists() and _versions(python).get("coffea") == version:
        return python
    _log(f"peer: installing coffea=={version} into {venv} (once; a minute or two)")
    if not python.exists():
        subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"coffea=={version}"], capture_output=True, text=True)
    if pip.returncode != 0 or _versions(python).get("coffea") != version:
        tail = "\n".join((pip.stdout + pip.stderr).splitlines()[-15:])
        raise SystemExit(f"peer: cannot install coffea=={version} into {venv}:\n{tail}")
    return python


def _versions(python: Path | str) -> dict[str, str]:
    """Versions of the array stack importable by ``python`` ({} if coffea is not)."""
    code = ("import json, importlib.metadata as m; import coffea, hist, uproot; print(json.dumps("
            "{p: m.version(p) for p in ('coffea', 'awkward', 'numpy', 'uproot', 'hist')}))")
    found = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return json.loads(found.stdout) if found.returncode == 0 else {}


def _base_python() -> str:
    """The interpreter this venv was made from (a venv made from a venv would chain)."""
    return getattr(sys, "_base_executable", sys.executable)


def input_name(events: int, basket: int | None) -> str:
    return f"ttbar_{events}" + (f"_b{basket}" if basket else "")


def build_inputs(data: Path, events: int, basket: int | None) -> None:
    """(child) The ttbar file and our catalogue in ``data`` (reused when the catalogue is
    there); one JSON line: the catalogue, the file, its baskets per branch."""
    name = input_name(events, basket)
    catalogue, path = data / f"catalogue_{name}.json", data / f"{name}.root"
    if not catalogue.exists():
        _build(data, events, basket, catalogue, path)
    import uproot

    with uproot.open(path) as f:
        baskets = f["Events"]["Jet_pt"].num_baskets
    print(json.dumps({"catalogue": str(catalogue), "file": str(path), "baskets": baskets}))


def _build(data: Path, events: int, basket: int | None, catalogue: Path, path: Path) -> None:
    sys.path.insert(0, str(HERE))
    from throughput import build_base

    from reanimate.hashing import sha256_file

    t0 = time.perf_counter()
    if basket:
        base = data / f"{input_name(events, None)}.base.root"
        how = build_base(base, events)
        rebasket(base, path, basket)
        base.unlink()
        how += f", rewritten in {basket:,}-entry baskets"
    else:
        how = build_base(path, events) + ", one basket per branch"
    entry = {"path": path.name, "nevts": events, "sha256": sha256_file(path)}
    doc = {"ttbar": {"nominal": {"nevts_total": events, "files": [entry]}}}
    catalogue.write_text(json.dumps(doc, indent=1))
    _log(f"peer: {events:,} ttbar events ({how}), {path.stat().st_size / 1e6:.0f} MB, "
         f"{time.perf_counter() - t0:.0f} s to build")


def rebasket(source: Path, path: Path, basket: int) -> None:
    """``source``'s Events tree (every branch) written again, ``basket`` entries per basket."""
    import awkward as ak
    import uproot

    with uproot.open(source) as f:
        tree = f["Events"]
        names = [k for k in tree.keys() if not k.startswith("n")]
        events = tree.arrays(names, library="ak")
    columns = {k: events[k] for k in names if "_" not in k}
    for coll in sorted({k.split("_")[0] for k in names if "_" in k}):
        columns[coll] = ak.zip({k[len(coll) + 1:]: events[k] for k in names
                                if k.startswith(coll + "_")})
    with uproot.recreate(path) as f:
        out = f.mktree("Events", {k: v.type.content for k, v in columns.items()})
        for start in range(0, len(events), basket):
            out.extend({k: v[start:start + basket] for k, v in columns.items()})


def run_pinned(argv: list[str], core: int) -> dict:
    """Run ``argv`` pinned to ``core``; its wall and CPU seconds (from the kernel) and stdout."""
    env = {**os.environ, **THREADS}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(["taskset", "-c", str(core), *argv], env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(stderr.splitlines()[-20:])
        raise SystemExit(f"peer: {' '.join(argv[:4])} ... exit {proc.returncode}:\n{tail}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "stdout": stdout,
            "rss_mb": usage.ru_maxrss / 1024}


def chunk_loop(catalogue: str, chunk_size: int, seed: int) -> None:
    """(child) Our chunk loop in this process; one JSON line: events, CPU and wall seconds."""
    from reanimate.analyses.agc import distributed, samples

    plan = distributed.plan_chunks(samples.load_samples(catalogue), chunk_size, None, seed)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    _, events = distributed.run_chunks_here(plan.tasks, progress=False)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(json.dumps({"events": events, "chunks": len(plan.tasks), "cpu_s": cpu, "wall_s": wall}))


def one_round(python: Path, catalogue: Path, data_file: Path, out: Path, chunk_size: int,
              seed: int, core: int) -> dict:
    ours_out, coffea_out = out / f"ours_{chunk_size}.root", out / f"coffea_{chunk_size}.root"
    step = run_pinned(
        [sys.executable, "-m", "reanimate.analyses.agc.steps.histograms", "--samples",
         str(catalogue), "--histograms", str(ours_out), "--dask_workers", "1",
         "--chunk_size", str(chunk_size), "--seed", str(seed), "--no_progress", "true"], core)
    coffea = run_pinned(
        [str(python), str(HERE / "peer_coffea.py"), "--files", str(data_file), "--out",
         str(coffea_out), "--chunk_size", str(chunk_size), "--seed", str(seed),
         "--xsec", str(XSEC_TTBAR), "--lumi", str(LUMI)], core)
    loop = run_pinned([sys.executable, __file__, "--_chunk_loop", str(catalogue),
                       "--chunk_sizes", str(chunk_size), "--seed", str(seed)], core)
    inner_c, inner_o = _json_line(coffea["stdout"]), _json_line(loop["stdout"])
    return {"ours_wall": step["wall"], "ours_cpu": step["cpu"], "ours_rss": step["rss_mb"],
            "coffea_wall": coffea["wall"], "coffea_cpu": coffea["cpu"],
            "coffea_rss": coffea["rss_mb"], "ours": inner_o, "coffea": inner_c}


def _json_line(stdout: str) -> dict:
    """The last JSON line of a child's stdout (coffea's progress bars write there too)."""
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def compare(ours: Path, coffea: Path) -> dict:
    """Largest relative bin difference (flow bins included) per histogram both files hold."""
    import numpy as np
    import uproot

    diffs = {}
    with uproot.open(ours) as a, uproot.open(coffea) as b:
        names_a = {k.split(";")[0] for k in a.keys()}
        names_b = {k.split(";")[0] for k in b.keys()}
        for name in sorted(names_a & names_b):
            ha, hb = a[name], b[name]
            worst = 0.0
            for x, y in ((ha.values(flow=True), hb.values(flow=True)),
                         (ha.variances(flow=True), hb.variances(flow=True))):
                scale = np.maximum(np.abs(x), np.abs(y))
                rel = np.abs(x - y)[scale > 0] / scale[scale > 0]
                worst = max(worst, float(rel.max(initial=0.0)))
            diffs[name] = (worst, float(ha.values().sum()), float(hb.values().sum()))
    return {"diffs": diffs, "only_ours": sorted(names_a - names_b),
            "only_coffea": sorted(names_b - names_a)}


def _mm(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def report(chunk_size: int, rounds: list[dict], check: dict) -> None:
    events = rounds[0]["ours"]["events"]
    o_cpu, c_cpu = _mm([r["ours"]["cpu_s"] for r in rounds]), _mm([r["coffea"]["cpu_s"]
                                                                   for r in rounds])
    o_wall, c_wall = _mm([r["ours_wall"] for r in rounds]), _mm([r["coffea_wall"] for r in rounds])
    o_pcpu, c_pcpu = _mm([r["ours_cpu"] for r in rounds]), _mm([r["coffea_cpu"] for r in rounds])
    o_lw, c_lw = _mm([r["ours"]["wall_s"] for r in rounds]), _mm([r["coffea"]["wall_s"]
                                                                  for r in rounds])
    print(f"\nchunk size {chunk_size:,}: {events:,} events; chunks ours "
          f"{rounds[0]['ours']['chunks']}, coffea {rounds[0]['coffea']['chunks']}; "
          f"{len(rounds)} rounds (min / median)")
    print(f"  (1) events per CPU-second   ours {events / o_cpu[0]:>9,.0f} / "
          f"{events / o_cpu[1]:>9,.0f}   coffea {events / c_cpu[0]:>9,.0f} / "
          f"{events / c_cpu[1]:>9,.0f}   ours/coffea {c_cpu[0] / o_cpu[0]:.2f} / "
          f"{c_cpu[1] / o_cpu[1]:.2f}")
    print(f"      events/s (loop wall)     ours {events / o_lw[0]:>9,.0f} / "
          f"{events / o_lw[1]:>9,.0f}   coffea {events / c_lw[0]:>9,.0f} / "
          f"{events / c_lw[1]:>9,.0f}")
    print(f"  (2) whole process wall (s)  ours {o_wall[0]:>9.2f} / {o_wall[1]:>9.2f}   "
          f"coffea {c_wall[0]:>9.2f} / {c_wall[1]:>9.2f}   ours/coffea (speed) "
          f"{c_wall[0] / o_wall[0]:.2f} / {c_wall[1] / o_wall[1]:.2f}")
    print(f"      whole process CPU (s)   ours {o_pcpu[0]:>9.2f} / {o_pcpu[1]:>9.2f}   "
          f"coffea {c_pcpu[0]:>9.2f} / {c_pcpu[1]:>9.2f}   ours/coffea (speed) "
          f"{c_pcpu[0] / o_pcpu[0]:.2f} / {c_pcpu[1] / o_pcpu[1]:.2f}")
    o_rss, c_rss = _mm([r["ours_rss"] for r in rounds]), _mm([r["coffea_rss"] for r in rounds])
    print(f"      whole process peak RSS  ours {o_rss[0]:>7,.0f} MB / {o_rss[1]:,.0f}   "
          f"coffea {c_rss[0]:>7,.0f} MB / {c_rss[1]:,.0f}")
    diffs = check["diffs"]
    for name, label in (("4j1b_ttbar", "4j1b HT"), ("4j2b_ttbar", "4j2b m_bjj")):
        if name in diffs:
            worst, sa, sb = diffs[name]
            print(f"  check {label:<10} sum of weights ours {sa:,.6f} coffea {sb:,.6f}; "
                  f"largest relative bin difference {worst:.2e}")
    if diffs:
        name, (worst, _, _) = max(diffs.items(), key=lambda kv: kv[1][0])
        print(f"  check all {len(diffs)} common histograms: largest relative bin difference "
              f"{worst:.2e} ({name}); only ours: {len(check['only_ours'])}, only coffea: "
              f"{len(check['only_coffea'])}")


def _stack() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("awkward", "numpy", "uproot")}


def _describe(versions: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def _commit() -> str:
    """The checkout's commit, marked when the tree has uncommitted changes."""
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(HERE), *a], capture_output=True,
                              text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "(no git)"
    return head + (" + uncommitted changes" if git("status", "--porcelain", "--", "src") else "")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--chunk_sizes", default="200000,100000")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data", type=Path, help="keep the input files here (reused if present)")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="coffea's virtual env")
    p.add_argument("--coffea", default=COFFEA, help="coffea version to install")
    p.add_argument("--basket", type=int, default=None,
                   help="rewrite the generated file with this many entries per basket (default: "
                        "as generated, one basket per branch)")
    p.add_argument("--core", type=int, default=0, help="the core every run is pinned to")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--_chunk_loop", metavar="CATALOGUE", help=argparse.SUPPRESS)
    p.add_argument("--_build", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.chunk_sizes.split(",") if x]
    if args._chunk_loop:
        return chunk_loop(args._chunk_loop, sizes[0], args.seed)
    if args._build:
        return build_inputs(args.data, args.events, args.basket)
    if args.rounds < 1 or not sizes or min(sizes) <= 0:
        raise SystemExit("peer: --rounds and every chunk size must be positive")

    if shutil.which("taskset") is None:
        raise SystemExit("peer: needs taskset (util-linux) to pin the runs to one core")
    python = coffea_python(args.venv.expanduser(), args.coffea)
    with tempfile.TemporaryDirectory(prefix="reanimate-peer-") as tmp:
        data = args.data or Path(tmp) / "data"
        data.mkdir(parents=True, exist_ok=True)
        # in a child: this process stays small, so that the peak RSS its children report
        # (kept across fork and exec) is theirs
        built = subprocess.run(
            [sys.executable, __file__, "--_build", "--data", str(data), "--events",
             str(args.events)] + (["--basket", str(args.basket)] if args.basket else []),
            stdout=subprocess.PIPE, text=True, check=True)
        inputs = _json_line(built.stdout)
        catalogue, data_file = Path(inputs["catalogue"]), Path(inputs["file"])
        out = Path(tmp) / "out"
        out.mkdir()
        ours = _stack()
        print(f"peer benchmark, {args.events:,} generated ttbar events in {inputs['baskets']} "
              f"baskets per branch, core {args.core}\n"
              f"  ours:   reanimate {_commit()}, python {sys.version.split()[0]}, "
              f"{_describe(ours)}\n  coffea: {_describe(_versions(python))}", flush=True)
        one_round(python, catalogue, data_file, out, sizes[0], args.seed, args.core)  # warm-up
        results: dict[int, list[dict]] = {s: [] for s in sizes}
        for i in range(args.rounds):
            for size in sizes:
                results[size].append(
                    one_round(python, catalogue, data_file, out, size, args.seed, args.core))
            _log(f"peer: round {i + 1}/{args.rounds} done")
        for size in sizes:
            check = compare(out / f"ours_{size}.root", out / f"coffea_{size}.root")
            report(size, results[size], check)


if __name__ == "__main__":
    main()
