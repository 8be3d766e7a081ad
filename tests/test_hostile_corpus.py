"""The hostile corpus: malformed specs, data files and command lines, each refused cleanly.

Every case runs `reanimate ...` as a subprocess (as a user would), in a folder of its own
beside a sentinel folder, against a workdir holding a previous successful run of a tiny
command-step spec, and must:

* exit with code 2, within a bounded time, with no "Traceback" anywhere;
* say so in one line on stderr: `error: ...` for a command's error; for a spec's problems,
  one `FILE:LINE:COL: key.path: message` line each (the FILE being the spec as given), then
  the CLI's closing `N problem(s)` count line;
* print nothing on stdout (`program: this.nothing` used to print the Zen of Python);
* leave every file it was given alone: the sentinel folder beside it, the baseline run it was
  copied from, its own folder and its workdir are byte for byte as before (a listing with
  sha256 digests, link targets and kinds, compared before and after), and its HOME and TMPDIR
  stay empty.

The validator-level regression tests of the same defects are tests/test_validate_limits.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REAL_NANOAOD

TIMEOUT = 30  # seconds for one command; the slowest case takes about 3
HEADER = 'metadata: {name: demo, version: "1"}\n'
STEP = "steps:\n  a:\n    command: [echo]\n"

TINY = textwrap.dedent("""\
    metadata: {name: tiny, version: "1"}
    parameters: {n: 3, x: 1.5, label: hi}
    datasets:
      raw: {files: [{path: data.txt}]}
    steps:
      make:
        command: [python, -c, "import sys; open(sys.argv[1], 'w').write(open(sys.argv[2]).read()
          + sys.argv[3] + sys.argv[4] + sys.argv[5])", "{outputs.out}", "{inputs.raw}",
          "{parameters.n}", "{parameters.x}", "{parameters.label}"]
        inputs: {raw: datasets.raw}
        parameters: {n: "${parameters.n}", x: "${parameters.x}", label: "${parameters.label}"}
        outputs: {out: made.txt}
    """)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # {work} is replaced by the workdir's path
    files: dict[str, str | bytes] = field(default_factory=dict)  # written into the case folder
    setup: Callable[[Path, Path], None] | None = None  # (case folder, sentinel folder)
    expect: str = ""  # a fragment of stderr
    spec: str | None = None  # the spec file when the error is a spec's: FILE:LINE:COL lines
    pythonpath: str | None = None  # a folder of the case put on PYTHONPATH


def spec_case(case_id: str, text: str | bytes, expect: str, command: str = "run",
              **more) -> Case:
    argv = (command, "s.yaml") + (("--workdir", "{work}") if command == "run" else ())
    files = {"s.yaml": text, **more.pop("files", {})}
    return Case(case_id, argv, files=files, expect=expect, spec="s.yaml", **more)


def outputs(spec_outputs: str, more: str = "") -> str:
    return HEADER + "steps:\n  make:\n    command: [echo]\n    outputs: " + spec_outputs + "\n" \
        + more


# -- spec texts ---------------------------------------------------------------------------
def alias_bomb() -> str:
    lines = ["metadata:", "  name: demo", '  version: "1"', "  references:",
             "    - &a0 [" + ",".join(['"x"'] * 9) + "]"]
    lines += [f"    - &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 8)]
    return "\n".join(lines) + "\n" + STEP


def chain(n: int) -> str:
    """n steps each reading the next one's output (declared downstream-first), the last one
    reading the first: a cycle through all of them."""
    lines = [HEADER.rstrip("\n"), "steps:"]
    for i in range(n):
        lines.append(f"  s{i}: {{command: [echo], outputs: {{out: o{i}.txt}}, "
                     f"inputs: {{x: steps.s{(i + 1) % n}.out}}}}")
    return "\n".join(lines) + "\n"


def evil_library(case: Path, sentinel: Path) -> None:
    """A package and a module that write into the sentinel folder when imported."""
    lib = case / "lib"
    (lib / "evilpkg").mkdir(parents=True)
    trap = f"open({str(sentinel / 'imported')!r}, 'w').write('ran')\n"
    (lib / "evilpkg" / "__init__.py").write_text(trap)
    (lib / "evilmod.py").write_text(trap + "INTERFACE = None\n")


def symlink_loop(name: str) -> Callable[[Path, Path], None]:
    def setup(case: Path, sentinel: Path) -> None:
        (case / name).symlink_to(name + ".other")
        (case / (name + ".other")).symlink_to(name)
    return setup


def fifo(name: str) -> Callable[[Path, Path], None]:
    return lambda case, sentinel: os.mkfifo(case / name)


def truncated_root() -> bytes:
    if REAL_NANOAOD.exists():
        return REAL_NANOAOD.read_bytes()[:20_000]  # the header and a little of the first basket
    return b"root\x00\x00\xf6\x43" + bytes(92)  # a ROOT file's magic and nothing after


NOT_UTF8 = HEADER.encode() + b"steps:\n  a\xff: {command: [echo]}\n"
AGC_FILE = {"path": "trunc.root"}


def agc_json(data) -> str:
    import json

    return json.dumps(data)


SPEC_CASES = [
    # aliases
    spec_case("alias-bomb", alias_bomb(), "s.yaml:9:12: (document): YAML aliases expand to more "
              "than 10000 values"),
    spec_case("alias-recursive", HEADER + STEP + "statistics: &s {hs3: *s}\n",
              "s.yaml:5:22: (document): alias *s refers to the node that contains it"),
    spec_case("alias-undefined", HEADER + "steps: *nowhere\n", "found undefined alias"),
    spec_case("alias-depth", "a: &a0 " + "[" * 60 + "]" * 60 + "\n" + "".join(
        f"b{i}: &a{i} " + "[" * 10 + f"*a{i - 1}" + "]" * 10 + "\n" for i in range(1, 50)),
        "nesting deeper than 64 levels once alias *a0 is expanded"),
    spec_case("alias-merge-keys", HEADER + "base: &b {" + ", ".join(
        f"k{i}: v" for i in range(20)) + "}\n" + "".join(
        f"m{i}: {{<<: *b}}\n" for i in range(400)) + STEP, "YAML aliases expand to more than"),
    # nesting, numbers, values a constructor cannot build
    spec_case("nesting-flow-5000", "a: " + "[" * 5000 + "]" * 5000 + "\n",
              "s.yaml:1:67: (document): nesting deeper than 64 levels"),
    spec_case("nesting-block-3000", "a:\n" + "".join(" " * (i + 1) + "k:\n"
                                                     for i in range(3000)),
              "s.yaml:64:64: (document): nesting deeper than 64 levels"),
    spec_case("nesting-block-sequence-3000", "a:\n" + "- " * 3000 + "x\n",
              "nesting deeper than 64 levels"),
    spec_case("int-5000-digits", HEADER + "parameters: {n: " + "7" * 5000 + "}\n" + STEP,
              "s.yaml:2:17: (document): integer '77777777777777777777...7777777777' is out of "
              "range"),
    spec_case("int-huge-hex", HEADER + "parameters: {n: 0x" + "f" * 3000 + "}\n" + STEP,
              "is out of range: a spec integer fits in 64 bits"),
    spec_case("timestamp-impossible", HEADER + "parameters: {day: 2001-13-45}\n" + STEP,
              "cannot read the value '2001-13-45': month must be in 1..12"),
    spec_case("spec-too-large", HEADER + STEP + "# " + "x" * (9 * 1024 * 1024) + "\n",
              "more than a spec may have", command="validate"),
    # the step graph
    spec_case("chain-1500-cycle", chain(1500), "s.yaml:3:3: steps.s0: steps form a cycle: s0 "
              "-> s1 -> s2 -> s3 -> s4 -> ... (1493 more) -> s1498 -> s1499 -> s0"),
    # versions and booleans
    spec_case("version-float", "metadata: {name: demo, version: 1.10}\n" + STEP,
              "version 1.1 is a number to YAML", command="validate"),
    spec_case("spec-version-true", "spec_version: true\n" + HEADER + STEP,
              "s.yaml:1:1: spec_version: spec_version is the integer 1, got True"),
    spec_case("workers-boolean", HEADER + "steps:\n  a: {command: [echo], dask: {workers: yes}}\n",
              "steps.a.dask.workers: expected a number, got True"),
    # programs are located, never imported (unless in reanimate)
    spec_case("program-this-nothing", HEADER + "steps:\n  a: {program: this.nothing}\n",
              "program module 'this.nothing' cannot be imported", command="validate"),
    spec_case("program-third-party-parent", HEADER + "steps:\n  a: {program: evilpkg.tool}\n",
              "program module 'evilpkg.tool' cannot be imported", command="validate",
              setup=evil_library, pythonpath="lib"),
    spec_case("program-third-party-module", HEADER + "steps:\n  a: {program: evilmod}\n"
              "  b: {command: [echo], container: nope}\n",
              "s.yaml:4:24: steps.b.container: container 'nope' is not declared",
              setup=evil_library, pythonpath="lib"),
    # reserved and degenerate outputs
    spec_case("output-meta-file", outputs("{out: .reanimate-meta.json}"),
              "s.yaml:5:15: steps.make.outputs.out: output path '.reanimate-meta.json' uses "
              ".reanimate-meta.json"),
    spec_case("output-meta-in-folder", outputs("{out: deep/er/.reanimate-meta.json}"),
              "uses .reanimate-meta.json, the name of reanimate's own metadata file"),
    spec_case("output-dot", outputs("{out: .}"), "output path '.' is the step's directory"),
    spec_case("output-dot-slash", outputs("{out: ././}"), "is the step's directory itself"),
    spec_case("output-nul", outputs('{out: "made\\0.txt"}'), "contains a NUL byte"),
    spec_case("output-empty", outputs("{out: ''}"), "output path is empty"),
    spec_case("output-dir-vs-file", outputs("{a: x/}", "  other: {command: [echo], outputs: "
                                                       "{b: x}}\n"),
              "output 'x' is declared as a file here and as a directory by output 'a' of step "
              "'make'"),
    spec_case("output-file-as-folder", outputs("{a: res, b: res/inner.txt}"),
              "output 'res/inner.txt' lies inside 'res', which output 'a' declares as a file"),
    spec_case("output-case-only", outputs("{a: Hist.root, b: hist.root}"),
              "differs from 'Hist.root' (output 'a') only in case"),
    spec_case("step-names-case-only", HEADER + "steps:\n  make: {command: [echo]}\n"
              "  Make: {command: [echo]}\n", "step 'Make' differs from step 'make' only in case"),
    spec_case("output-name-256-bytes", outputs("{out: " + "n" * 256 + ".txt}"),
              "has a component of 260 bytes, longer than a file name may be (255 bytes)"),
    spec_case("step-name-too-long", HEADER + "steps:\n  " + "s" * 240 + ": {command: [echo]}\n",
              "step name of 240 bytes, longer than 200"),
    # malformed files of other kinds
    spec_case("spec-not-utf8", NOT_UTF8, "s.yaml:3:4: (document): byte 0xff is not UTF-8"),
    spec_case("spec-nul-character", HEADER + "steps:\n  a: {command: [ec\0ho]}\n",
              "s.yaml:3:19: (document): YAML error"),
    spec_case("spec-python-tag", HEADER + "steps: !!python/object/apply:os.system "
              "['touch pwned']\n", "could not determine a constructor for the tag"),
    spec_case("spec-two-documents", HEADER + STEP + "---\n" + HEADER + STEP,
              "expected a single document"),
    spec_case("spec-top-level-list", "- metadata: {}\n- steps: {}\n",
              "s.yaml:1:1: (document): a spec must be a mapping, this document is list"),
    spec_case("spec-unhashable-key", HEADER + "steps:\n  ? [a, b]\n  : {command: [echo]}\n",
              "found unhashable key"),
    spec_case("spec-duplicate-step", HEADER + STEP + "  a:\n    command: [true]\n",
              "duplicate key 'a' (first defined at line 3)"),
    spec_case("spec-unclosed-quote", HEADER + 'steps:\n  a: {command: ["echo]}\n',
              "s.yaml:3:17: (document): YAML syntax error: while scanning a quoted scalar found "
              "unexpected end of stream"),
]

FILE_CASES = [
    Case("spec-symlink-loop", ("run", "loop.yaml", "--workdir", "{work}"),
         setup=symlink_loop("loop.yaml"), spec="loop.yaml",
         expect="loop.yaml:0:0: (document): cannot read the spec: Too many levels of symbolic "
                "links"),
    Case("spec-is-a-directory", ("validate", "folder.yaml"),
         setup=lambda case, sentinel: (case / "folder.yaml").mkdir(), spec="folder.yaml",
         expect="cannot read the spec: it is a directory"),
    Case("spec-is-a-fifo", ("run", "pipe.yaml", "--workdir", "{work}"), setup=fifo("pipe.yaml"),
         spec="pipe.yaml", expect="cannot read the spec: not a regular file"),
]

RUN = ("run", "tiny.yaml", "--workdir", "{work}")
CLI_CASES = [
    Case("set-nan-float", RUN + ("--set", "x=nan"), expect="error: --set x=nan: expected float"),
    Case("set-inf-float", RUN + ("--set", "x=inf"), expect="error: --set x=inf: expected float"),
    Case("set-minus-infinity", RUN + ("--set", "x=-Infinity"), expect="expected float"),
    Case("set-nan-int", RUN + ("--set", "n=nan"), expect="error: --set n=nan: expected int"),
    Case("set-float-for-int", RUN + ("--set", "n=1e3"), expect="expected int"),
    Case("set-5000-digits", RUN + ("--set", "n=" + "9" * 5000), expect="expected int"),
    Case("set-no-equals", RUN + ("--set", "n"), expect="expected NAME=VALUE"),
    Case("set-no-name", RUN + ("--set", "=3"), expect="expected NAME=VALUE"),
    Case("plan-set-bad", ("plan", "tiny.yaml", "--workdir", "{work}", "--set", "x=nan"),
         expect="expected float"),
    Case("only-unknown-step", RUN + ("--only", "make", "--only", "nosuch"),
         expect="no step 'nosuch'"),
    Case("from-unknown-step", RUN + ("--from", "mak"), expect="no step 'mak'"),
    Case("workdir-is-a-file", ("run", "tiny.yaml", "--workdir", "data.txt"),
         expect="--workdir data.txt"),
    Case("workdir-under-a-file", ("run", "tiny.yaml", "--workdir", "data.txt/work"),
         expect="--workdir data.txt/work"),
    Case("engine-unknown", RUN + ("--engine", "slurm"), expect="unknown engine 'slurm'"),
    Case("jobs-zero", RUN + ("--jobs", "0"), expect="Invalid value for '--jobs'"),
    Case("command-unknown", ("rnu", "tiny.yaml"), expect="No such command 'rnu'"),
    Case("lock-not-json", RUN, files={"tiny.lock.json": "{garbage"},
         expect="not a valid lock file"),
    Case("lock-is-a-list", RUN, files={"tiny.lock.json": "[]"}, expect="not a valid lock file"),
    Case("lock-files-a-list", RUN, files={"tiny.lock.json": '{"files": [1, 2]}'},
         expect="not a valid lock file"),
    Case("lock-entry-not-an-object", RUN, files={"tiny.lock.json": '{"files": {"data.txt": 3}}'},
         expect="lock"),
    Case("import-agc-process-a-list", ("datasets", "import-agc", "agc.json", "--out", "cat.json"),
         files={"agc.json": agc_json({"ttbar": ["nominal"]})}, expect="got a list"),
    Case("import-agc-top-level-list", ("datasets", "import-agc", "agc.json", "--out", "cat.json"),
         files={"agc.json": agc_json([{"ttbar": {}}])}, expect="agc.json"),
    Case("import-agc-nevts-negative", ("datasets", "import-agc", "agc.json", "--out", "cat.json"),
         files={"agc.json": agc_json({"ttbar": {"nominal": {"files": [
             {"path": "trunc.root", "nevts": -5}]}}}), "trunc.root": truncated_root()},
         expect="'nevts' must be a non-negative integer, got -5"),
    Case("import-agc-out-dot", ("datasets", "import-agc", "agc.json", "--out", "."),
         files={"agc.json": agc_json({"ttbar": {"nominal": {"files": [AGC_FILE]}}}),
                "trunc.root": truncated_root()}, expect="--out"),
    Case("import-agc-truncated-root", ("datasets", "import-agc", "agc.json", "--out", "cat.json"),
         files={"agc.json": agc_json({"ttbar": {"nominal": {"files": [AGC_FILE]}}}),
                "trunc.root": truncated_root()}, expect="trunc.root"),
    Case("agc-compare-not-root", ("agc", "compare", "notes.root", "notes.root"),
         files={"notes.root": "just some notes\n"}, expect="notes.root"),
    Case("agc-compare-truncated-root", ("agc", "compare", "trunc.root", "trunc.root"),
         files={"trunc.root": truncated_root()}, expect="trunc.root"),
    Case("hs3-to-pyhf-garbage", ("hs3", "to-pyhf", "model.json", "-o", "ws.json"),
         files={"model.json": "\x00\x01 garbage {"}, expect="model.json"),
    Case("hs3-to-pyhf-wrong-shape", ("hs3", "to-pyhf", "model.json", "-o", "ws.json"),
         files={"model.json": '{"distributions": 3, "metadata": {"hs3_version": "0.2"}}'},
         expect="error: "),
    Case("submit-name-dotdot", ("submit", "tiny.yaml", "--dry-run", "--name", "../..",
                                "--workdir", "{work}"), expect="../.."),
    Case("submit-name-slash", ("submit", "tiny.yaml", "--dry-run", "--name", "a/b",
                               "--workdir", "{work}"), expect="a/b"),
    Case("export-cwl-into-a-file", ("export", "cwl", "tiny.yaml", "-o", "data.txt"),
         expect="data.txt"),
]


def xfail(case: Case, reason: str):
    return pytest.param(case, id=case.id, marks=pytest.mark.xfail(strict=True, reason=reason))


XFAIL: dict[str, str] = {}  # known failures, each with what fails (none at present)
CASES = [xfail(c, XFAIL[c.id]) if c.id in XFAIL else pytest.param(c, id=c.id)
         for c in SPEC_CASES + FILE_CASES + CLI_CASES]


# -- the harness --------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root: kind and sha256 (files), target (links), nothing read else."""
    out: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ("dir",)
            elif stat.S_ISREG(info.st_mode):
                out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                out[rel] = ("other", stat.S_IFMT(info.st_mode))
    return out


def clean_env(home: Path, tmp: Path) -> dict[str, str]:
    env = dict(os.environ, HOME=str(home), TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1",
               COLUMNS="100")
    for name in ("PYTHONPATH", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """A folder with tiny.yaml, its data file, and work/ holding one successful run of it."""
    root = tmp_path_factory.mktemp("baseline")
    (root / "tiny.yaml").write_text(TINY)
    (root / "data.txt").write_text("data\n")
    home = tmp_path_factory.mktemp("baseline-home")  # the user's own HOME stays untouched
    proc = subprocess.run([sys.executable, "-m", "reanimate.cli", "run", "tiny.yaml",
                           "--workdir", "work"], cwd=root, capture_output=True, text=True,
                          env=clean_env(home, home), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (root / "work" / "results").is_dir()
    return root


def test_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert len({c.values[0].id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES)
def test_hostile_input_is_refused_cleanly(case: Case, baseline: Path, tmp_path: Path):
    sentinel = tmp_path / "sentinel"  # beside the case's own folder
    (sentinel / "deep").mkdir(parents=True)
    (sentinel / "keep.txt").write_text("keep\n")
    (sentinel / "deep" / "keep.bin").write_bytes(bytes(range(256)))
    own = tmp_path / "case"
    box, work, home, tmp = own / "box", own / "work", own / "home", own / "tmp"
    shutil.copytree(baseline, box, symlinks=True, ignore=shutil.ignore_patterns("work"))
    shutil.copytree(baseline / "work", work, symlinks=True)
    home.mkdir()
    tmp.mkdir()
    for name, content in case.files.items():
        target = box / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    if case.setup:
        case.setup(box, sentinel)

    before, baseline_before = snapshot(tmp_path), snapshot(baseline)
    env = clean_env(home, tmp)
    if case.pythonpath:
        env["PYTHONPATH"] = str(box / case.pythonpath)
    argv = [a.replace("{work}", str(work)) for a in case.argv]
    try:
        proc = subprocess.run([sys.executable, "-m", "reanimate.cli", *argv], cwd=box, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reanimate {' '.join(argv)[:200]} ran for more than {TIMEOUT} s")

    shown = proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout, shown
    assert proc.returncode == 2, shown
    assert proc.stdout == "", proc.stdout[-2000:]
    lines = proc.stderr.splitlines()
    assert lines, "nothing on stderr"
    if case.spec is not None:
        located = re.compile(rf"^{re.escape(case.spec)}:\d+:\d+: \S+: \S")
        assert lines[-1] == f"{len(lines) - 1} problem(s)", shown
        assert lines[:-1] and all(located.match(line) for line in lines[:-1]), shown
    else:
        assert len(lines) == 1, shown
        assert lines[0].startswith("error: "), shown
    assert case.expect in proc.stderr, shown

    assert snapshot(tmp_path) == before, "files changed under the case's tmp directory"
    assert snapshot(baseline) == baseline_before, "the baseline run beside it changed"
    assert not any(home.iterdir()) and not any(tmp.iterdir())
