"""REANA submission and serial export hardening, with the real reana-client 0.9.6 and REANA's own
parameter expansion (reana_commons.serial, from .venv-reana); no mocks.

* `submit --name` is validated and staging never deletes outside WORKDIR/reana/, nor on --dry-run;
* staged inputs keep collision-free paths, and inputs outside the spec's folder need
  --allow-outside;
* the serial export quotes every argument for bash and for REANA's `$` substitution: run as
  REANA runs it (a workspace, `bash -c "cd WS && CMD"`), it gives the local engine's bytes;
* a null parameter: a program flag is left out, a command placeholder is the empty string.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from test_engine_reana import reana_validate

from reanimate.engines.local import run_spec
from reanimate.engines.reana import export_reana
from reanimate.engines.reana_submit import STAGING_MARKER, stage_submission
from reanimate.errors import ReanimateError
from reanimate.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
CLIENT = REPO / ".venv-reana" / "bin" / "reana-client"
REANA_PYTHON = REPO / ".venv-reana" / "bin" / "python"
needs_client = pytest.mark.skipif(not CLIENT.exists(), reason="run `make .venv-reana` first")

SMALL = """
metadata: {name: small, version: "1"}
containers: {env: {image: "python:3.11-slim"}}
datasets:
  raw: {files: [{path: data.txt}]}
steps:
  copy:
    container: env
    command: [cp, "{inputs.src}", "{outputs.out}"]
    inputs: {src: datasets.raw}
    outputs: {out: copy.txt}
"""


def cli(*args, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "reanimate.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, check=False)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes): what must survive untouched."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write(root / "data.txt", "abc\n")
    write(root / "spec.yaml", SMALL)
    write(root / "keep" / "precious.txt", "do not delete\n")
    return root


def reana_expand(doc: dict, overrides: dict | None = None) -> list[dict]:
    """The serial steps with `${NAME}` expanded by REANA's own code (reana_commons.serial)."""
    parameters = {**doc.get("inputs", {}).get("parameters", {}), **(overrides or {})}
    code = ("import json, sys; from reana_commons.serial import serial_load; d = json.load("
            "sys.stdin); print(json.dumps(serial_load(None, d['spec'], d['parameters'])))")
    proc = subprocess.run([str(REANA_PYTHON), "-c", code], capture_output=True, text=True,
                          input=json.dumps({"spec": doc["workflow"]["specification"],
                                            "parameters": parameters}),
                          env=dict(os.environ, PYTHONWARNINGS="ignore"), check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["steps"]


def run_like_reana(reana_yaml: Path, workspace: Path, overrides: dict | None = None) -> Path:
    """Run a serial reana.yaml as REANA does: the declared inputs uploaded at the workspace root,
    `${NAME}` expanded by reana_commons, each command run as `bash -c "cd WS && CMD"`."""
    doc = yaml.safe_load(reana_yaml.read_text())
    workspace.mkdir(parents=True)
    for rel in doc.get("inputs", {}).get("files", []):
        (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(reana_yaml.parent / rel, workspace / rel)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for step in reana_expand(doc, overrides):
        for command in step["commands"]:
            proc = subprocess.run(["bash", "-c", f"cd {workspace} && {command}"], env=env,
                                  capture_output=True, text=True, check=False)
            assert proc.returncode == 0, (step["name"], command, proc.stderr)
    return workspace


def outputs_of(loaded, root: Path) -> dict[str, bytes]:
    """STEP/OUTPUT -> bytes under root/results/STEP/ (a local work dir or a REANA workspace)."""
    out = {}
    for name, step in loaded.spec.steps.items():
        for oname, path in step.outputs.items():
            out[f"{name}/{oname}"] = (root / "results" / name / path).read_bytes()
    return out


# -- 1. workflow names and the staging folder ------------------------------------------------
@pytest.mark.parametrize("name", ["../..", "..", "a/b", "a.b", "-rf", "", "x y", "ä"])
def test_submit_rejects_unsafe_names_and_deletes_nothing(proj, name):
    before = tree(proj.parent)
    proc = cli("submit", "spec.yaml", "--dry-run", "--name", name, cwd=proj)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: workflow name {name!r} ")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert tree(proj.parent) == before  # nothing deleted, nothing staged
    assert not (proj / "work").exists()


def test_submit_rejects_an_absolute_name(proj, tmp_path):
    victim = write(tmp_path / "victim" / "file.txt", "mine\n").parent
    for args in (["--dry-run"], []):
        proc = cli("submit", "spec.yaml", "--name", victim, *args, cwd=proj,
                   env=dict(os.environ, REANA_SERVER_URL="http://127.0.0.1:9",
                            REANA_ACCESS_TOKEN="x"))
        assert proc.returncode == 2 and "letters, digits" in proc.stderr, proc.stderr
        assert (victim / "file.txt").read_text() == "mine\n"


@needs_client
def test_dry_run_never_deletes_an_existing_staging_folder(proj):
    first = cli("submit", "spec.yaml", "--dry-run", cwd=proj)
    assert first.returncode == 0, first.stderr
    staging = proj / "work" / "reana" / "small"
    assert first.stdout.splitlines()[0].endswith(f"validate -f {staging}/reana.yaml")
    (staging / "notes.txt").write_text("mine\n")
    kept = tree(staging)
    second = cli("submit", "spec.yaml", "--dry-run", cwd=proj)
    assert second.returncode == 0, second.stderr
    assert tree(staging) == kept
    fresh = Path(shlex.split(second.stdout.splitlines()[0])[-1]).parent
    assert fresh != staging and fresh.parent == staging.parent
    assert fresh.name.startswith("small.dry-run-") and (fresh / "reana.yaml").is_file()
    assert "already staged" in second.stderr


def test_submit_refuses_a_folder_it_did_not_stage(proj):
    foreign = write(proj / "work" / "reana" / "small" / "thesis.tex", "years of work\n").parent
    outside = write(proj.parent / "elsewhere" / "data.bin", "keep\n").parent
    link = proj / "work" / "reana" / "linked"
    link.symlink_to(outside, target_is_directory=True)
    env = dict(os.environ, REANA_SERVER_URL="http://127.0.0.1:9", REANA_ACCESS_TOKEN="x")
    for name in ("small", "linked"):
        proc = cli("submit", "spec.yaml", "--name", name, cwd=proj, env=env)
        assert proc.returncode == 2, proc.stderr
        assert "was not staged by reanimate" in proc.stderr, proc.stderr
    assert (foreign / "thesis.tex").read_text() == "years of work\n"
    assert (outside / "data.bin").read_text() == "keep\n" and link.is_symlink()


def test_a_real_submission_replaces_only_its_own_staging(proj):
    loaded = load_spec(proj / "spec.yaml")
    work = proj / "work"
    folder = stage_submission(loaded, work, "small", "serial")
    assert folder == (work / "reana" / "small").resolve()
    assert (folder / STAGING_MARKER).is_file()
    (folder / "stale.txt").write_text("old\n")
    again = stage_submission(loaded, work, "small", "serial")
    assert again == folder and not (folder / "stale.txt").exists()
    assert (folder / "reana.yaml").is_file()
    with pytest.raises(ReanimateError, match="workflow name"):
        stage_submission(loaded, work, "../..", "serial")
    assert (proj / "keep" / "precious.txt").exists()


# -- 2. inputs: collision-free staging, nothing from outside without --allow-outside -----------
TWO_FOLDERS = """
metadata: {name: twofolders, version: "1"}
containers: {env: {image: "python:3.11-slim"}}
datasets:
  first: {files: [{path: ../a/events.txt}]}
  second: {files: [{path: ../b/events.txt}]}
steps:
  join:
    container: env
    command: [sh, -c, 'cat "$0" "$1" > "$2"', "{inputs.x}", "{inputs.y}", "{outputs.out}"]
    inputs: {x: datasets.first, y: datasets.second}
    outputs: {out: joined.txt}
"""


@pytest.fixture
def two_folders(tmp_path: Path) -> Path:
    write(tmp_path / "a" / "events.txt", "events of a\n")
    write(tmp_path / "b" / "events.txt", "events of b\n")
    return write(tmp_path / "proj" / "spec.yaml", TWO_FOLDERS)


def test_inputs_outside_the_analysis_folder_are_refused(two_folders, tmp_path):
    secret = write(tmp_path / "secret" / "shadow", "root:x:0:0\n")
    spec = two_folders.read_text().replace(
        "outputs: {out: joined.txt}",
        f"outputs: {{out: joined.txt}}\n  leak:\n    container: env\n"
        f"    command: [cat, '{{inputs.s}}']\n    inputs: {{s: 'file:{secret}'}}\n"
        f"    outputs: {{out: x.txt}}")
    two_folders.write_text(spec)
    proc = cli("submit", "spec.yaml", "--dry-run", cwd=two_folders.parent)
    assert proc.returncode == 2, proc.stderr
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "../a/events.txt (dataset first)" in message
    assert "../b/events.txt (dataset second)" in message
    assert f"{secret} (steps.leak.inputs.s)" in message
    assert "--allow-outside" in message
    assert not (two_folders.parent / "work" / "reana" / "twofolders").exists()


def test_a_symlink_out_of_the_folder_is_outside(proj, tmp_path):
    secret = write(tmp_path / "secret.txt", "token\n")
    (proj / "data.txt").unlink()
    (proj / "data.txt").symlink_to(secret)
    proc = cli("submit", "spec.yaml", "--dry-run", cwd=proj)
    assert proc.returncode == 2 and "data.txt (dataset raw)" in proc.stderr, proc.stderr


@needs_client
@pytest.mark.parametrize("workflow_type", ["serial", "cwl"])
def test_allow_outside_stages_same_names_apart(two_folders, tmp_path, workflow_type):
    proj = two_folders.parent
    proc = cli("submit", "spec.yaml", "--dry-run", "--allow-outside", "--type", workflow_type,
               cwd=proj)
    assert proc.returncode == 0, proc.stderr
    reana_yaml = Path(shlex.split(proc.stdout.splitlines()[0])[-1])
    doc = yaml.safe_load(reana_yaml.read_text())
    data = [f for f in doc["inputs"]["files"] if f.endswith("events.txt")]
    assert len(data) == 2 and data[0] != data[1]
    assert sorted((reana_yaml.parent / f).read_text() for f in data) == [
        "events of a\n", "events of b\n"]
    code, warnings = reana_validate(reana_yaml)
    assert code == 0 and warnings == [], warnings
    if workflow_type == "serial":
        loaded = load_spec(two_folders)
        run_like_reana(reana_yaml, tmp_path / "ws")
        run_spec(loaded, tmp_path / "local")
        assert (tmp_path / "ws" / "results" / "join" / "joined.txt").read_text() == \
            "events of a\nevents of b\n"
        assert outputs_of(loaded, tmp_path / "ws") == \
            outputs_of(loaded, tmp_path / "local")


# -- 3. the serial export runs as the local engine does ----------------------------------------
QUOTING = r"""
metadata: {name: quoting, version: "1"}
containers: {env: {image: "python:3.11-slim"}}
parameters:
  label: hello world
  tag: first
  loud: true
  ratio: 0.5
  odd-name: plain
datasets:
  raw: {files: [{path: "data dir/data.txt"}]}
steps:
  greet:
    container: env
    command: [sh, -c, "echo {parameters.label} > {outputs.out}; echo done >> {outputs.out}"]
    parameters: {label: "${parameters.label}"}
    outputs: {out: greet.txt}
  dollars:
    container: env
    command: [sh, -c, 'printf "%s|%s|%s|%s|$UNSET_X\n" "$0" "$1" "$2" "${3}" > "$4"',
              "{parameters.tag}", "{parameters.loud}", "{parameters.note}", "{parameters.odd}",
              "{outputs.out}"]
    parameters: {tag: "${parameters.tag}", loud: "${parameters.loud}",
                 odd: "${parameters.odd-name}", note: "it's $5 & \"quoted\"; `not run` \\ ${HOME}"}
    outputs: {out: dollars.txt}
  chain:
    container: env
    command: [sh, -c, "cat {inputs.a} > {outputs.out}; echo {parameters.ratio} >> {outputs.out}"]
    inputs: {a: steps.greet.out}
    parameters: {ratio: "${parameters.ratio}"}
    outputs: {out: nested/chain.txt}
  python:
    container: env
    command: [python, -c, "import sys; open(sys.argv[-1], 'w').write(''.join(open(p).read()
                            for p in sys.argv[1:-1]) + '$')",
              "{inputs.c}", "{inputs.raw}", "{outputs.out}"]
    inputs: {c: steps.chain.out, raw: datasets.raw}
    outputs: {out: "py dir/py.txt"}
"""


@pytest.fixture
def quoting(tmp_path: Path) -> Path:
    write(tmp_path / "proj" / "data dir" / "data.txt", "raw data\n")
    return write(tmp_path / "proj" / "spec.yaml", QUOTING)


@needs_client
def test_serial_export_gives_the_local_engine_bytes(quoting, tmp_path):
    loaded = load_spec(quoting)
    reana_yaml = export_reana(loaded, quoting.parent / "reana.yaml", "serial")["reana"]
    code, warnings = reana_validate(reana_yaml)
    assert code == 0 and warnings == [], warnings
    doc = yaml.safe_load(reana_yaml.read_text())
    commands = {s["name"]: s["commands"][0] for s in doc["workflow"]["specification"]["steps"]}
    assert '"${label}"' in commands["greet"]  # still REANA's substitution
    assert doc["inputs"]["parameters"] == {"label": "hello world", "loud": "true", "ratio": 0.5,
                                           "tag": "first"}
    run_like_reana(reana_yaml, tmp_path / "ws")
    run_spec(loaded, tmp_path / "local")
    reana, local = outputs_of(loaded, tmp_path / "ws"), \
        outputs_of(loaded, tmp_path / "local")
    assert reana == local
    assert reana["greet/out"] == b"hello world\ndone\n"
    assert reana["dollars/out"] == (b"first|true|it's $5 & \"quoted\"; `not run` \\ ${HOME}|"
                                    b"plain|\n")


@needs_client
def test_serial_global_parameters_stay_reana_parameters(quoting, tmp_path):
    """`reana-client run -p label=...` still reaches the command, inside a `sh -c` string too."""
    loaded = load_spec(quoting)
    reana_yaml = export_reana(loaded, quoting.parent / "reana.yaml", "serial")["reana"]
    run_like_reana(reana_yaml, tmp_path / "ws", {"label": "other words", "tag": "second"})
    assert (tmp_path / "ws/results/greet/greet.txt").read_text() == "other words\ndone\n"
    assert (tmp_path / "ws/results/dollars/dollars.txt").read_text().startswith("second|")


SHELL_VALUES = r"""
metadata: {name: shellvalues, version: "1"}
containers: {env: {image: "python:3.11-slim"}}
parameters:
  spaced: "two  spaces"
  nasty: "a'b \"c\" $HOME `id` ; d\\e"
datasets:
  raw: {files: [{path: "data dir/it's.txt"}]}
steps:
  inner:
    container: env
    command: [sh, -c, "printf '%s|' {parameters.spaced} {parameters.nasty} {parameters.lit}
                       > {outputs.out}; cat {inputs.raw} >> {outputs.out}"]
    inputs: {raw: datasets.raw}
    parameters: {spaced: "${parameters.spaced}", nasty: "${parameters.nasty}", lit: "x; rm -rf y"}
    outputs: {out: inner.txt}
"""


@needs_client
def test_serial_placeholder_values_inside_a_shell_string_are_shell_quoted(tmp_path):
    spec = write(tmp_path / "proj" / "spec.yaml", SHELL_VALUES)
    write(spec.parent / "data dir" / "it's.txt", "raw data\n")
    reana_yaml = export_reana(load_spec(spec), spec.parent / "reana.yaml", "serial")["reana"]
    assert reana_validate(reana_yaml) == (0, [])
    doc = yaml.safe_load(reana_yaml.read_text())
    # a value the shell would break inside REANA's plain-text substitution is written literally
    assert doc["inputs"]["parameters"] == {"spaced": "two  spaces"}
    run_like_reana(reana_yaml, tmp_path / "ws")
    assert (tmp_path / "ws/results/inner/inner.txt").read_text() == \
        "two  spaces|a'b \"c\" $HOME `id` ; d\\e|x; rm -rf y|raw data\n"


def test_local_engine_shell_quotes_placeholder_values_too(tmp_path):
    spec = write(tmp_path / "proj" / "spec.yaml", SHELL_VALUES)
    write(spec.parent / "data dir" / "it's.txt", "raw data\n")
    run_spec(load_spec(spec), tmp_path / "local")
    assert (tmp_path / "local/results/inner/inner.txt").read_text() == \
        "two  spaces|a'b \"c\" $HOME `id` ; d\\e|x; rm -rf y|raw data\n"


# -- 4. null parameters ------------------------------------------------------------------------
NULLS = """
metadata: {name: nulls, version: "1"}
containers: {env: {image: "python:3.11-slim"}}
parameters:
  missing: null
steps:
  program:
    container: env
    program: reanimate.cli
    parameters: {gone: null, kept: 3, global: "${parameters.missing}"}
    outputs: {out: out.json}
  command:
    container: env
    command: [sh, -c, 'printf "[%s][%s]" "$0" "$1" > "$2"; echo x{parameters.x}y >> "$2"',
              "{parameters.x}", "{parameters.y}", "{outputs.out}"]
    parameters: {x: null, y: "${parameters.missing}"}
    outputs: {out: null.txt}
"""


@needs_client
def test_serial_null_parameters(tmp_path):
    spec = write(tmp_path / "proj" / "spec.yaml", NULLS)
    reana_yaml = export_reana(load_spec(spec), spec.parent / "reana.yaml", "serial")["reana"]
    # REANA's own remark on a workflow without inputs, and nothing else
    assert reana_validate(reana_yaml) == (
        0, ['-> WARNING: Workflow "inputs" are missing in the REANA specification.'])
    doc = yaml.safe_load(reana_yaml.read_text())
    assert "inputs" not in doc  # null is never a REANA parameter (it would be "None")
    steps = {s["name"]: s["commands"][0] for s in reana_expand(doc)}
    program = shlex.split(steps["program"].split(" && ")[-1])
    assert program == ["python", "-m", "reanimate.cli", "--kept", "3", "--out", "out.json"]
    assert "None" not in steps["command"]
    # run the command step alone (the program step is not a real program)
    serial = doc["workflow"]["specification"]
    serial["steps"] = [s for s in serial["steps"] if s["name"] == "command"]
    only = spec.parent / "command-only.yaml"
    only.write_text(yaml.safe_dump(doc))
    run_like_reana(only, tmp_path / "ws")
    assert (tmp_path / "ws/results/command/null.txt").read_text() == "[][]xy\n"


def test_local_engine_null_command_parameter_is_empty(tmp_path):
    text = NULLS[:NULLS.index("  program:")] + NULLS[NULLS.index("  command:"):]
    spec = write(tmp_path / "proj" / "spec.yaml", text)
    run_spec(load_spec(spec), tmp_path / "local")
    assert (tmp_path / "local/results/command/null.txt").read_text() == "[][]xy\n"
