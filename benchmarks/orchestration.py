"""Orchestration overhead per step: local engine vs cwltool, on the same chain of trivial steps.

Each step copies its input to its output with a tiny Python program. The overhead per step is
(engine wall time - the same commands run back to back with subprocess) / number of steps,
all measured in one run so the figures share the machine's conditions.

    .venv/bin/python benchmarks/orchestration.py [--steps 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reanimate.engines.cwl import run_cwl
from reanimate.engines.local import run_spec
from reanimate.spec import load_spec

COPY = "import sys; open(sys.argv[2], 'w').write(open(sys.argv[1]).read() + 'x')"


def chain_spec(n: int) -> str:
    lines = ['metadata: {name: overhead, version: "1"}', "datasets:",
             "  seed: {files: [{path: seed.txt}]}", "steps:"]
    for i in range(n):
        source = "datasets.seed" if i == 0 else f"steps.s{i - 1}.out"
        lines += [f"  s{i}:", f'    command: [python, -c, "{COPY}", "{{inputs.x}}", '
                  '"{outputs.out}"]', f"    inputs: {{x: {source}}}",
                  f"    outputs: {{out: s{i}.txt}}"]
    return "\n".join(lines) + "\n"


def direct(n: int, folder: Path) -> float:
    start = time.perf_counter()
    previous = folder / "seed.txt"
    for i in range(n):
        out = folder / f"direct{i}.txt"
        subprocess.run([sys.executable, "-c", COPY, str(previous), str(out)], check=True)
        previous = out
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    timings: dict[str, list[float]] = {"direct": [], "local": [], "local-cached": [], "cwltool": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "seed.txt").write_text("seed")
        spec = root / "spec.yaml"
        spec.write_text(chain_spec(args.steps))
        loaded = load_spec(spec)
        for r in range(args.repeat):
            timings["direct"].append(direct(args.steps, root))
            start = time.perf_counter()
            run_spec(loaded, root / f"local{r}", jobs=1)
            timings["local"].append(time.perf_counter() - start)
            start = time.perf_counter()
            run_spec(loaded, root / f"local{r}", jobs=1)
            timings["local-cached"].append(time.perf_counter() - start)
            start = time.perf_counter()
            run_cwl(loaded, root / f"cwl{r}", container=False)
            timings["cwltool"].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in timings.items()}
    n = args.steps
    print(f"chain of {n} trivial steps, best of {args.repeat} (wall seconds)")
    print(f"  commands run directly        {best['direct']:7.3f} s")
    for name in ("local", "cwltool"):
        per_step = (best[name] - best["direct"]) / n
        print(f"  {name:<12} total {best[name]:7.3f} s  overhead per step {per_step * 1e3:7.1f} ms")
    print(f"  local, all cached      total {best['local-cached']:7.3f} s  "
          f"({best['local-cached'] / n * 1e3:.1f} ms per step to check the cache)")
    ratio = (best["cwltool"] - best["direct"]) / max(best["local"] - best["direct"], 1e-9)
    print(f"  cwltool overhead / local overhead: {ratio:.1f}x")


if __name__ == "__main__":
    main()
