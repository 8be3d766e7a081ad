"""Start-up cost of the `reanimate` command: CPU time (user + sys) of a fresh process.

Each command runs N times as a child process; its CPU time is read from the kernel's resource
usage of that child (os.wait4), so the figure is what the command itself consumed, whatever the
machine's load. The median of the N runs is printed, with `python -c "import awkward"` as a
reference line: a command that imports the array stack cannot start faster than that.

    .venv/bin/python benchmarks/startup.py [--runs 7]

Target: `reanimate --help` under 0.3 s CPU. A command that the CLI does not have yet (exit 2,
"No such command") is skipped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = "specs/agc-ttbar.yaml"
TARGET_HELP_S = 0.3


def reanimate() -> list[str]:
    """The console script beside this interpreter (as a user runs it), else `python -m`."""
    script = Path(sys.executable).with_name("reanimate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "reanimate.cli"]


def cpu_seconds(argv: list[str]) -> tuple[float, float, int, str]:
    """(user, sys, exit code, stderr) of one run of ``argv`` in the repository root."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        text = err.read().decode(errors="replace")
    return usage.ru_utime, usage.ru_stime, proc.returncode, text


def measure(label: str, argv: list[str], runs: int) -> float | None:
    samples = []
    for _ in range(runs):
        user, system, code, stderr = cpu_seconds(argv)
        if code == 2 and "No such command" in stderr:
            print(f"{label:<40} skipped (no such command)")
            return None
        if code != 0:
            raise SystemExit(f"{label}: exit code {code}\n{stderr}")
        samples.append((user + system, user, system))
    total, user, system = (statistics.median(s[i] for s in samples) for i in range(3))
    print(f"{label:<40} {total:6.3f} s CPU  (user {user:.3f}, sys {system:.3f}; "
          f"median of {runs})")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (median)")
    args = parser.parse_args()
    cli = reanimate()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), command: {' '.join(cli)}")
    figures = {}
    for label, extra in [
        ("reanimate --version", ["--version"]),
        ("reanimate --help", ["--help"]),
        (f"reanimate validate {SPEC}", ["validate", SPEC]),
        (f"reanimate plan {SPEC}", ["plan", SPEC]),
    ]:
        figures[label] = measure(label, cli + extra, args.runs)
    measure('python -c "import awkward" (reference)', [sys.executable, "-c", "import awkward"],
            args.runs)
    help_s = figures["reanimate --help"]
    verdict = "meets" if help_s < TARGET_HELP_S else "MISSES"
    print(f"--help: {help_s:.3f} s CPU {verdict} the {TARGET_HELP_S} s target")


if __name__ == "__main__":
    main()
