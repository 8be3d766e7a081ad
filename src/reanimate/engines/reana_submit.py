"""Stage a spec for REANA and submit it through reana-client.

A submission is staged in WORKDIR/reana/NAME/ (`stage_submission`): a workflow name REANA
accepts, inputs from inside the spec's folder only (unless allowed), and nothing replaced but a
folder staged before, never on a dry run.

reana-client lives in its own virtual environment (.venv-reana): it pins jsonschema<4 and a 2021
cwltool that would downgrade ours, so we only ever call its command line.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from reanimate.engines.plan import make_plan
from reanimate.engines.reana import export_reana
from reanimate.errors import ReanimateError
from reanimate.hashing import HashMemo
from reanimate.spec.loader import LoadedSpec
from reanimate.spec.refs import FileRef

REPO_ROOT = Path(__file__).resolve().parents[3]
#: A REANA workflow name: letters, digits, '-' and '_' (REANA refuses dots; a slash or '..'
#: would leave the staging root), starting with a letter or digit (never an option look-alike).
WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
#: The file that marks WORKDIR/reana/NAME/ as made by `stage_submission`: only such a folder is
#: ever replaced.
STAGING_MARKER = ".reanimate-staging"


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
