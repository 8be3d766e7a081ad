"""Compile a spec to reana.yaml (type cwl or serial) and submit it through reana-client.

A submission is staged in WORKDIR/reana/NAME/ (`stage_submission`): a workflow name REANA
accepts, inputs from inside the spec's folder only (unless allowed), and nothing replaced but a
folder staged before, never on a dry run. Serial commands are quoted for bash and for REANA's
`$` substitution (`_Words`; docs/engines.md, "Serial commands").

reana-client lives in its own virtual environment (.venv-reana): it pins jsonschema<4 and a 2021
cwltool that would downgrade ours, so we only ever call its command line.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reanimate.engines.cwl import CwlCompiler
from reanimate.engines.plan import Arg, Plan, PlanStep, make_plan, render
from reanimate.errors import ReanimateError
from reanimate.hashing import HashMemo, sha256_file
from reanimate.spec.loader import LoadedSpec
from reanimate.spec.refs import FileRef, substitute

REANA_VERSIONS = ("0.9", "0.95")
REPO_ROOT = Path(__file__).resolve().parents[3]

#: A REANA workflow name: letters, digits, '-' and '_' (REANA refuses dots; a slash or '..'
#: would leave the staging root), starting with a letter or digit (never an option look-alike).
WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
#: The file that marks WORKDIR/reana/NAME/ as made by `stage_submission`: only such a folder is
#: ever replaced.
STAGING_MARKER = ".reanimate-staging"
#: What REANA's string.Template accepts in ${...}: a name with '-' cannot be substituted.
_TEMPLATE_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
#: What bash still interprets inside double quotes: REANA puts a parameter's value as plain text
#: into "${NAME}", so a value holding one of these is written into the command instead.
_DOUBLE_QUOTE_SPECIAL = frozenset('"$`\\')
_MARK = "\0"  # stands for a placeholder while a template is cut up (argv holds no NUL)


def _clean(path: str) -> str:
    return path.rstrip("/")


def _quote(text: str) -> str:
    """shlex.quote, written shorter where `text` holds single quotes: 'it'\\''s' for it's."""
    if text and shlex.quote(text) == text:
        return text
    return "\\'".join(f"'{part}'" if part else "" for part in text.split("'")) or "''"


def _literal(text: str) -> str:
    """Text as one shell word of a REANA serial command: quoted, each `$` doubled (REANA
    expands `$NAME` and `${NAME}` in the whole command before bash runs it; `$$` is a `$`).

    A literal `${` is also cut in two by an empty quote (`'$''{'`, the same word to bash):
    reana-client validate would take `$${X}` for a use of parameter X. A `$` makes the text
    quoted, and never sits next to a `'`, so the cut is always inside single quotes.
    """
    return _quote(text).replace("${", "$''{").replace("$", "$$")


@dataclass(frozen=True)
class _Global:
    """A global parameter left to REANA: `"${NAME}"`, replaced by its inputs.parameters value."""

    name: str


class _Words:
    """The shell words of one serial step, from the plan's argument template.

    * a text, input or output argument, and a whole-argument placeholder: one word per value;
    * a null parameter: a program flag is left out; in a command it is the empty string;
    * an argument with placeholders inside is shell code (`sh -c "..."`): each value is
      substituted shell-quoted (shlex.quote, so a plain word stays as it is) inside the word;
    * a step parameter that reads a global parameter stays REANA's `"${NAME}"` (so
      `reana-client run -p NAME=VALUE` works) when REANA's plain-text substitution keeps the
      value intact there: not null, a name string.Template accepts, no double quote, `$`,
      backquote or backslash (and no `'` inside an argument, where the value is single-quoted);
      otherwise its value is written in.
    """

    def __init__(self, compiler: ReanaCompiler, planned: PlanStep, used: dict[str, Any]) -> None:
        self.compiler, self.planned, self.used = compiler, planned, used

    def argument(self, arg: Arg) -> list[str]:
        flag = [_literal(arg.flag)] if arg.flag else []
        if arg.kind == "text":
            return flag + [_literal(arg.value)]
        if arg.kind == "template":
            return [self._word(self._template(arg.value))]
        if arg.kind == "input":
            return flag + [_literal(p) for p in self.compiler.input_paths(self.planned, arg.value)]
        if arg.kind == "output":
            return flag + [_literal(_clean(self.planned.outputs[arg.value]))]
        value = self.planned.parameters[arg.value]
        if value is None and arg.flag:
            return []  # a null parameter: its flag is left out (as the local engine does)
        glob = self._global(arg.value, inside=False)
        if glob is not None:
            return flag + [self._word([_Global(glob)])]
        return flag + [_literal(_text(value))]

    def _global(self, pname: str, inside: bool) -> str | None:
        glob = self.planned.parameter_sources.get(pname)
        if glob is None or not _TEMPLATE_NAME.fullmatch(glob):
            return None
        value = self.compiler.plan.parameters[glob]
        if value is None:
            return None
        text = render(value)
        if _DOUBLE_QUOTE_SPECIAL & set(text) or (inside and "'" in text):
            return None
        # REANA writes str(value): a boolean must reach it rendered (true, not True)
        self.used[glob] = text if isinstance(value, bool) else value
        return glob

    def _template(self, text: str) -> list[str | _Global]:
        if _MARK in text:
            raise ReanimateError(f"step {self.planned.name!r}: a command argument holds a NUL "
                                 "character")
        found: list[tuple[str, str]] = []
        marked = substitute(text, lambda kind, name: found.append((kind, name)) or _MARK)
        pieces: list[str | _Global] = []
        for index, literal in enumerate(marked.split(_MARK)):
            pieces.append(literal)
            if index < len(found):
                pieces += self._placeholder(*found[index])
        return pieces

    def _placeholder(self, kind: str, name: str) -> list[str | _Global]:
        """A placeholder inside an argument, as shell code: its value(s) shell-quoted."""
        if kind == "inputs":
            return [" ".join(shlex.quote(p)
                             for p in self.compiler.input_paths(self.planned, name))]
        if kind == "outputs":
            return [shlex.quote(_clean(self.planned.outputs[name]))]
        glob = self._global(name, inside=True)
        if glob is None:
            return [shlex.quote(_text(self.planned.parameters[name]))]
        text = render(self.compiler.plan.parameters[glob])
        quote = "" if shlex.quote(text) == text else "'"  # shlex.quote(text), done by REANA
        return [quote, _Global(glob), quote]

    @staticmethod
    def _word(pieces: list[str | _Global]) -> str:
        """Pieces joined into one shell word: literal runs quoted, globals as "${NAME}"."""
        out, text = [], ""
        for piece in pieces:
            if isinstance(piece, _Global):
                if text:
                    out.append(_literal(text))
                    text = ""
                out.append('"${' + piece.name + '}"')
            else:
                text += piece
        if text or not out:
            out.append(_literal(text))
        return "".join(out)


def _text(value: Any) -> str:
    """A parameter value in a command: rendered as everywhere, null as the empty string."""
    return "" if value is None else render(value)


def _dump(path: Path, doc: dict, header: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=100))
    return path


class ReanaCompiler:
    def __init__(self, plan: Plan, root: Path, workflow_type: str = "cwl",
                 reana_version: str = "0.9") -> None:
        if workflow_type not in ("cwl", "serial"):
            raise ReanimateError(f"unknown REANA workflow type {workflow_type!r} (cwl, serial)")
        if reana_version not in REANA_VERSIONS:
            raise ReanimateError(f"unknown REANA version {reana_version!r} "
                                 f"(known: {', '.join(REANA_VERSIONS)})")
        self.plan, self.loaded, self.spec = plan, plan.loaded, plan.spec
        self.root = root.resolve()
        self.type = workflow_type
        self.version = reana_version
        self.order = plan.order

    # -- shared pieces ---------------------------------------------------------------------
    def data_files(self) -> list[str]:
        """Dataset and file: inputs and command steps' code: files, relative to the export root
        (they are uploaded)."""
        files = [self._relative(item.key) for item in self.plan.external_inputs().values()
                 if item.path is not None]
        files += [self._relative(code) for name in self.order
                  for code in self.spec.steps[name].code]
        return list(dict.fromkeys(files))

    def _relative(self, key: str) -> str:
        absolute = (self.loaded.base_dir / key).resolve()
        if not absolute.is_relative_to(self.root):
            raise ReanimateError(
                f"input {key} lies outside {self.root}; REANA uploads only files inside the "
                "export folder (copy it in, or give it as an https:// or root:// URL)"
            )
        return absolute.relative_to(self.root).as_posix()

    def output_paths(self) -> tuple[list[str], list[str]]:
        files, directories = [], []
        for name in self.order:
            for path in self.plan.steps[name].outputs.values():
                clean = _clean(path)
                where = (f"outputs/{Path(clean).name}" if self.type == "cwl"
                         else f"results/{name}/{clean}")
                (directories if path.endswith("/") else files).append(where)
        return files, directories

    def dask_resources(self) -> dict | None:
        for name in self.order:
            step = self.spec.steps[name]
            if step.dask:
                image = step.dask.image or (
                    self.spec.containers[step.container].image if step.container else None)
                block = {"number_of_workers": step.dask.workers,
                         "single_worker_memory": step.dask.memory_per_worker,
                         "single_worker_threads": step.dask.threads_per_worker}
                return {"image": image, **block} if image else block
        return None

    # -- serial ---------------------------------------------------------------------------
    def serial_steps(self) -> tuple[list[dict], dict[str, Any]]:
        used: dict[str, Any] = {}
        steps = []
        for name in self.order:
            step = self.spec.steps[name]
            if not step.container:
                raise ReanimateError(f"step {name!r} has no container; a serial REANA workflow "
                                     "needs an image for every step")
            command = self._serial_command(name, used)
            entry: dict[str, Any] = {"name": name,
                                     "environment": self.spec.containers[step.container].image}
            if step.resources and step.resources.memory:
                entry["kubernetes_memory_limit"] = step.resources.memory
            if step.resources and step.resources.timeout_seconds:
                entry["kubernetes_job_timeout"] = step.resources.timeout_seconds
            entry["commands"] = [command]
            steps.append(entry)
        return steps, used

    def _serial_command(self, name: str, used: dict[str, Any]) -> str:
        """One step as the shell command REANA runs: `mkdir -p ... && cd results/STEP && ARGV`.

        Every argument is one shell word (shlex-quoted) and every literal `$` is written `$$`,
        because REANA expands `$NAME`/`${NAME}` in the whole command (string.Template) before
        bash runs it. See _Words for placeholders inside an argument and global parameters.
        """
        planned = self.plan.steps[name]
        words = _Words(self, planned, used)
        argv: list[str] = []
        for arg in planned.args:
            argv += words.argument(arg)
        folders = sorted({f"results/{name}/{Path(_clean(p)).parent}".rstrip("/.")
                          for p in planned.outputs.values()} | {f"results/{name}"})
        prefix = (f"mkdir -p {' '.join(_literal(f) for f in folders)} && "
                  f"cd {_literal(f'results/{name}')} && ")
        return prefix + " ".join(argv)

    def input_paths(self, planned: PlanStep, iname: str) -> list[str]:
        """The paths of an input as a serial step sees them from results/STEP/."""
        up = "../.."
        out = []
        for item in planned.inputs[iname]:
            if item.producer is not None:
                path = _clean(self.plan.steps[item.producer.step].outputs[item.producer.output])
                out.append(f"{up}/results/{item.producer.step}/{path}")
            elif item.external.path is None:
                out.append(item.external.key)
            else:
                out.append(f"{up}/{self._relative(item.external.key)}")
        return out

    # -- the document ---------------------------------------------------------------------
    def document(self, feature: str | None) -> dict:
        files_out, dirs_out = self.output_paths()
        doc: dict[str, Any] = {"version": "0.9.0"}
        inputs: dict[str, Any] = {}
        data = self.data_files()
        if self.type == "cwl":
            inputs["directories"] = ["workflow"]
            inputs["files"] = ["job.yml", *data]
            inputs["parameters"] = {"input": "job.yml"}
            workflow: dict[str, Any] = {"type": "cwl", "file": "workflow/main.cwl"}
        else:
            steps, used = self.serial_steps()
            if data:
                inputs["files"] = data
            if used:
                inputs["parameters"] = {k: used[k] for k in sorted(used)}
            workflow = {"type": "serial", "specification": {"steps": steps}}
        if inputs:
            doc["inputs"] = inputs
        dask = self.dask_resources() if self.version == "0.95" else None
        if dask:
            workflow["resources"] = {"dask": dask}
        doc["workflow"] = workflow
        outputs: dict[str, list[str]] = {}
        if files_out:
            outputs["files"] = files_out
        if dirs_out:
            outputs["directories"] = dirs_out
        doc["outputs"] = outputs
        if feature:
            doc["tests"] = {"files": [feature]}
        return doc

    def feature(self, blessed: Path | None) -> str:
        """Gherkin tests in the REANA 0.95 step vocabulary: outputs exist (and their sha256)."""
        files_out, dirs_out = self.output_paths()
        lines = [f"Feature: {self.spec.metadata.name} reproduces its preserved outputs", "",
                 "  Scenario: The workflow finishes", "    When the workflow execution completes",
                 '    Then the workflow status should be "finished"', "",
                 "  Scenario: Every declared output is in the workspace",
                 '    When the workflow is "finished"']
        lines += [f'    Then the workspace should include "{p}"' if i == 0 else
                  f'    And the workspace should include "{p}"'
                  for i, p in enumerate(files_out + dirs_out)]
        if blessed:
            sums = self._blessed_checksums(blessed)
            if sums:
                lines += ["", "  Scenario: Outputs are bit-for-bit the preserved ones",
                          '    When the workflow is "finished"']
                lines += [f"    {'Then' if i == 0 else 'And'} the sha256 checksum of the file "
                          f"{path} should be {digest}" for i, (path, digest) in enumerate(sums)]
        return "\n".join(lines) + "\n"

    def _blessed_checksums(self, workdir: Path) -> list[tuple[str, str]]:
        sums = []
        files_out, _ = self.output_paths()
        index = 0
        for name in self.order:
            for path in self.spec.steps[name].outputs.values():
                if path.endswith("/"):
                    continue
                local = workdir / "results" / name / path
                if not local.is_file():
                    raise ReanimateError(f"cannot bless: {local} not found; run the spec with "
                                         f"--workdir {workdir} first")
                sums.append((files_out[index], sha256_file(local)))
                index += 1
        return sums

    def write(self, output: Path, blessed: Path | None = None) -> dict[str, Path]:
        written: dict[str, Path] = {}
        if self.type == "cwl":
            written.update(CwlCompiler(self.plan, self.root).write())
        name = self.spec.metadata.name
        feature_rel = f"workflow/tests/{name}.feature"
        feature_path = self.root / feature_rel
        feature_path.parent.mkdir(parents=True, exist_ok=True)
        feature_path.write_text(self.feature(blessed))
        written["feature"] = feature_path
        header = (f"# Generated by `reanimate export reana` from "
                  f"{os.path.relpath(self.loaded.path, self.root)}; do not edit by hand.\n")
        written["reana"] = _dump(output, self.document(feature_rel), header)
        return written


def export_reana(loaded: LoadedSpec, output: Path, workflow_type: str = "cwl",
                 reana_version: str = "0.9", blessed: Path | None = None) -> dict[str, Path]:
    compiler = ReanaCompiler(make_plan(loaded), output.resolve().parent, workflow_type,
                             reana_version)
    return compiler.write(output.resolve(), blessed)


# -- submission through reana-client ------------------------------------------------------
def reana_client() -> str:
    candidates = [os.environ.get("REANIMATE_REANA_CLIENT"),
                  str(REPO_ROOT / ".venv-reana" / "bin" / "reana-client"),
                  shutil.which("reana-client")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise ReanimateError("reana-client not found: run `make .venv-reana` (it lives in its own "
                         "virtual environment) or set REANIMATE_REANA_CLIENT")


def require_server() -> None:
    missing = [v for v in ("REANA_SERVER_URL", "REANA_ACCESS_TOKEN") if not os.environ.get(v)]
    if missing:
        raise ReanimateError(f"{' and '.join(missing)} not set: export the address of your REANA "
                             "server and your access token (see `reana-client --help`)")


def client_commands(workflow: str, reana_yaml: Path) -> list[list[str]]:
    client = reana_client()
    return [[client, "validate", "-f", str(reana_yaml)],
            [client, "run", "-w", workflow, "-f", str(reana_yaml)]]


def call_client(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ReanimateError(f"`{' '.join(argv[1:3])}` failed (exit {proc.returncode}): "
                             + " | ".join(tail))
    return proc


def check_workflow_name(name: str) -> str:
    """`name` if REANA accepts it as a workflow name and it stays inside the staging root."""
    if not WORKFLOW_NAME.fullmatch(name):
        raise ReanimateError(
            f"workflow name {name!r} is not valid: use letters, digits, '-' and '_', starting "
            "with a letter or digit (REANA refuses dots; no slashes or spaces)")
    return name


def stage_submission(loaded: LoadedSpec, workdir: Path, name: str, workflow_type: str = "cwl",
                     reana_version: str = "0.9", *, dry_run: bool = False,
                     allow_outside: bool = False) -> Path:
    """Stage a REANA submission and return its folder (holding reana.yaml): WORKDIR/reana/NAME/.

    REANA uploads only what lies under the folder of reana.yaml, so a submission is built in a
    folder of its own: a copy of the spec with its local inputs copied under collision-free
    paths (see `staged_inputs`) and the exported workflow. It is built in a fresh folder under
    WORKDIR/reana/ and then takes the place of WORKDIR/reana/NAME/. Nothing outside
    WORKDIR/reana/ is ever written or deleted, and of what is inside only a folder this function
    made (it holds STAGING_MARKER), and only when not `dry_run`. A dry run that finds
    WORKDIR/reana/NAME/ already staged leaves it as it is and stages into a fresh
    WORKDIR/reana/NAME.dry-run-XXXXXXXX/ (a name with a dot: no workflow can have it).
    """
    check_workflow_name(name)
    copies = staged_inputs(loaded, allow_outside)
    root = Path(workdir) / "reana"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReanimateError(f"--workdir {workdir}: cannot create {root} ({exc})") from None
    root = root.resolve()
    target = root / name
    exists = _own_staging(target)
    keep_fresh = dry_run and exists
    fresh = Path(tempfile.mkdtemp(prefix=f"{name}.dry-run-" if keep_fresh else f".{name}.tmp-",
                                  dir=root))
    try:
        fresh.chmod(0o755)
        (fresh / STAGING_MARKER).write_text("staged by `reanimate submit`; it replaces this "
                                            "folder on the next submission\n")
        staged = _write_staged(loaded, fresh, copies)
        export_reana(staged, fresh / "reana.yaml", workflow_type, reana_version)
        if keep_fresh:
            return fresh
        if exists:
            if not _own_staging(target):  # it changed while we staged
                raise ReanimateError(f"{target} disappeared while staging; submit again")
            shutil.rmtree(target)
        os.rename(fresh, target)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    return target


def _own_staging(target: Path) -> bool:
    """True if `target` is a staging folder made by stage_submission, False if absent; anything
    else there (a folder without the marker, a file, a symbolic link) is refused."""
    if not target.is_symlink() and not target.exists():
        return False
    if target.is_symlink() or not target.is_dir() or not (target / STAGING_MARKER).is_file():
        raise ReanimateError(f"{target} exists and was not staged by reanimate; refusing to "
                             "replace it: move it away or choose another --name")
    return True


def staged_inputs(loaded: LoadedSpec, allow_outside: bool = False) -> dict[str, tuple[Path, str]]:
    """Local input files (dataset files, file: inputs, code: files) -> (source, staged path).

    A file inside the analysis folder (the spec's folder; symbolic links resolved) is staged at
    inputs/ + its path there, so two files never meet at one path. A file outside it is refused
    (REANA would upload it: a secret, or someone else's data) unless `allow_outside`; then it is
    staged at external/HASH/NAME, HASH naming its source folder. Inputs are checked against the
    lock and the spec's sha256 first, as a local run checks them.
    """
    base = loaded.base_dir.resolve()
    plan = make_plan(loaded)
    plan.verify_inputs(None, HashMemo(None))
    sources: dict[str, Path] = {key: item.path for key, item in plan.external_inputs().items()
                                if item.path is not None}
    copies: dict[str, tuple[Path, str]] = {}
    outside = []
    for key, path in sources.items():
        if path.is_relative_to(base):
            copies[key] = (path, f"inputs/{path.relative_to(base).as_posix()}")
        else:
            outside.append(f"{key} ({', '.join(_uses(loaded, key))})")
            folder = hashlib.sha256(str(path.parent).encode()).hexdigest()[:12]
            copies[key] = (path, f"external/{folder}/{path.name}")
    code_outside = []
    for sname, step in loaded.spec.steps.items():
        for code in step.code:
            path = (loaded.base_dir / code).resolve()
            if path.is_relative_to(base):
                copies.setdefault(code, (path, f"inputs/{path.relative_to(base).as_posix()}"))
            else:
                code_outside.append(f"{code} (steps.{sname}.code)")
    if code_outside:
        raise ReanimateError(
            f"code file(s) outside the analysis folder {base}: {', '.join(code_outside)}; a "
            "submission stages code beside the spec: move them into the folder")
    if outside and not allow_outside:
        raise ReanimateError(
            f"input(s) outside the analysis folder {base}: {', '.join(outside)}; REANA would "
            "upload them with the analysis: move them into the folder, or pass --allow-outside "
            "to upload them anyway")
    return copies


def _uses(loaded: LoadedSpec, key: str) -> list[str]:
    """Where the spec names the input file `key`: `dataset NAME`, `steps.STEP.inputs.INPUT`."""
    spec = loaded.spec
    uses = [f"dataset {name}" for name, dataset in spec.datasets.items()
            if any(f.path == key for f in dataset.files)]
    uses += [f"steps.{sname}.inputs.{iname}" for sname, step in spec.steps.items()
             for iname, refs in step.input_refs.items()
             if any(isinstance(r, FileRef) and r.path == key for r in refs)]
    return uses


def _write_staged(loaded: LoadedSpec, folder: Path,
                  copies: dict[str, tuple[Path, str]]) -> LoadedSpec:
    """Copy the inputs into `folder` and write the spec there with its paths rewritten."""
    from reanimate.spec.models import Spec

    for source, rel in copies.values():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    renamed = {key: rel for key, (_, rel) in copies.items()}
    data = loaded.spec.model_dump(mode="json", exclude_unset=True)
    for dataset in data.get("datasets", {}).values():
        for file in dataset["files"]:
            file["path"] = renamed.get(file["path"], file["path"])
    for name, step in loaded.spec.steps.items():
        for iname, refs in step.input_refs.items():
            new = [f"file:{renamed.get(r.path, r.path)}" if isinstance(r, FileRef) else str(r)
                   for r in refs]
            data["steps"][name]["inputs"][iname] = (
                new if isinstance(step.inputs[iname], list) else new[0])
        if step.code:
            data["steps"][name]["code"] = [renamed.get(c, c) for c in step.code]
    copy_path = folder / loaded.path.name
    copy_path.write_text(f"# Staged by `reanimate submit` from {loaded.path.name}; input paths "
                         "point to the staged copies.\n"
                         + yaml.safe_dump(data, sort_keys=False, width=100))
    return LoadedSpec(spec=Spec.model_validate(data), source=loaded.source, path=copy_path)
