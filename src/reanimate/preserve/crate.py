"""`reanimate bundle`: a preserved analysis as one Workflow Run RO-Crate zip.

The zip holds the spec folder as it is laid out (spec, lock, pinned models, container build
contexts, `code:` files, local inputs up to a size limit), the analysis code as a wheel of the
exact source (`code/`), the exported CWL workflow, job order and reana.yaml, the preserved
outputs of every step (`outputs/STEP/PATH`), the run's provenance and logs (`provenance/`) and,
on request, the images as `docker save` archives (`images/NAME.tar`). Its
`ro-crate-metadata.json` follows the Workflow Run Crate profiles (process, workflow and
provenance run crates 0.5): the exported CWL workflow is the main entity, one CreateAction per
step names its tool, inputs, parameters, outputs and image, and every file carries its sha256,
size and media type.

Same run, same bytes: members in a fixed order (the metadata first, then by name), every member
stamped with the run's end time and mode 0644, datePublished from the provenance, the wheel
built with a fixed SOURCE_DATE_EPOCH (and cached by source digest), no time of bundling
anywhere. The zip is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from reanimate import __version__
from reanimate.atomic import atomic_path
from reanimate.errors import ReanimateError
from reanimate.hashing import sha256_file
from reanimate.preserve.collect import Collected, Member, PreservedRun, check_run, collect, find_run
from reanimate.preserve.wheel import Wheel, build_wheel

METADATA = "ro-crate-metadata.json"
MB = 1000 * 1000
DEFAULT_MAX_INPUT_SIZE = 100 * MB

CRATE_VERSION = "1.1"
WFRUN = "https://w3id.org/ro/wfrun"
PROFILES = {
    f"{WFRUN}/process/0.5": "Process Run Crate",
    f"{WFRUN}/workflow/0.5": "Workflow Run Crate",
    f"{WFRUN}/provenance/0.5": "Provenance Run Crate",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
}
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
DOCKER_IMAGE = "https://w3id.org/ro/terms/workflow-run#DockerImage"
COMPLETED = "http://schema.org/CompletedActionStatus"

MEDIA_TYPES = {
    ".root": "application/x-root", ".json": "application/json", ".yaml": "application/yaml",
    ".yml": "application/yaml", ".cwl": "application/yaml", ".whl": "application/zip",
    ".zip": "application/zip", ".tar": "application/x-tar", ".png": "image/png",
    ".pdf": "application/pdf", ".txt": "text/plain", ".md": "text/markdown",
    ".stdout": "text/plain", ".stderr": "text/plain", ".feature": "text/plain",
    ".py": "text/x-python", ".toml": "application/toml", ".csv": "text/csv",
}
#: Members stored as they are: formats that are compressed already.
STORED = (".root", ".whl", ".zip", ".png", ".gz", ".xz", ".bz2", ".zst", ".jpg", ".jpeg")
Progress = Callable[[str], None]


def media_type(name: str) -> str:
    path = Path(name)
    if path.name == "Dockerfile":
        return "text/x-dockerfile"
    return (MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
            or "application/octet-stream")


@dataclass
class BundleResult:
    path: Path
    sha256: str
    size: int
    members: int
    run: str
    wheel: str
    warnings: list[str] = field(default_factory=list)


def default_name(plan) -> str:
    meta = plan.spec.metadata
    return f"{meta.name}-{meta.version}.crate.zip"


def build_bundle(spec_path: Path, workdir: Path, output: Path | None = None, *,
                 with_images: bool = False, max_input_size: int = DEFAULT_MAX_INPUT_SIZE,
                 progress: Progress | None = None) -> BundleResult:
    """Write the bundle of the latest complete run of `spec_path` in `workdir`."""
    from reanimate.engines.plan import make_plan
    from reanimate.spec import load_spec

    say = progress or (lambda text: None)
    plan = make_plan(load_spec(spec_path))
    run = find_run(plan, Path(workdir))
    check_run(plan, run, Path(workdir))
    say(f"run {run.run_id}: {len(plan.order)} step(s) complete, outputs match the cache")
    collected = collect(plan, run, Path(workdir), max_input_size)
    say("building the wheel of the analysis code")
    wheel = build_wheel(say)
    output = Path(output) if output else Path.cwd() / default_name(plan)
    if output.is_dir():
        output = output / default_name(plan)
    with tempfile.TemporaryDirectory(prefix="reanimate-bundle-") as scratch:
        stage = Path(scratch)
        members = dict(collected.members)
        members[f"code/{wheel.path.name}"] = Member(
            f"code/{wheel.path.name}", wheel.path, role="wheel",
            description=f"the analysis code: reanimate {__version__} built from source sha256 "
                        f"{wheel.source_sha256}")
        for member in _export(plan, run, collected, stage):
            members[member.arcname] = member
        images = {}
        if with_images:
            say("saving the container images")
            images = _save_images(plan, stage)
            for cname, path in images.items():
                members[f"images/{cname}.tar"] = Member(
                    f"images/{cname}.tar", path, role="image",
                    description=f"image of container {cname} (docker save)")
        say(f"hashing {len(members)} file(s)")
        digests = {name: _digest(m) for name, m in sorted(members.items())}
        metadata = crate_metadata(plan, run, collected, members, digests, wheel)
        text = json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        say(f"writing {output}")
        sha, size = _write_zip(output, text.encode(), members, digests, _zip_time(run))
    return BundleResult(output, sha, size, len(members) + 1, run.run_id, wheel.path.name,
                        collected.warnings)


# -- the generated files ------------------------------------------------------------------
def _export(plan, run: PreservedRun, collected: Collected, stage: Path) -> list[Member]:
    """CWL workflow, job order, reana.yaml and its Gherkin test (blessed with the run's
    outputs), exported from a copy of the spec placed as in the bundle."""
    from reanimate.engines.reana import export_reana
    from reanimate.spec import load_spec

    for member in collected.members.values():
        if member.role in ("spec", "lock", "code"):
            dest = stage / member.arcname
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(member.source, dest)
    # the REANA test is blessed with the run's outputs; not with model pins, whose outputs the
    # exported workflow does not produce
    bless = stage / ".bless" if not plan.pins else None
    for name in plan.order if bless else []:
        for out, declared in plan.steps[name].outputs.items():
            path = run.outputs[name][out]
            if path.is_file():
                link = bless / "results" / name / declared
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path)
    export_reana(load_spec(stage / collected.spec_arcname), stage / "reana.yaml", "cwl",
                 "0.9", bless)
    if bless:
        shutil.rmtree(bless)
    out = []
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        arcname = path.relative_to(stage).as_posix()
        if arcname.startswith("analysis/"):
            continue
        out.append(Member(arcname, data=path.read_bytes(), role="export",
                          description=_export_description(arcname)))
    return out


def _export_description(arcname: str) -> str:
    if arcname == "job.yml":
        return "CWL job order: the inputs and global parameters of workflow/main.cwl"
    if arcname == "reana.yaml":
        return "the REANA workflow (type cwl), exported from the spec"
    if arcname.endswith(".feature"):
        return "REANA test: the workflow finishes and its outputs have the preserved sha256"
    return "CWL, exported from the spec by reanimate"


def _save_images(plan, stage: Path) -> dict[str, Path]:
    from reanimate.containers.daemon import docker_client

    used = sorted({plan.spec.steps[n].container for n in plan.order
                   if plan.spec.steps[n].container})
    if not used:
        raise ReanimateError("--with-images: no step of the spec runs in a container")
    client = docker_client()
    out = {}
    for cname in used:
        entry = plan.lock.images.get(cname) or {}
        reference = entry.get("id") or plan.spec.containers[cname].image
        try:
            image = client.images.get(reference)
        except Exception as exc:  # docker.errors.ImageNotFound, APIError
            raise ReanimateError(f"--with-images: image {reference} of container {cname} is not "
                                 f"in the Docker daemon ({type(exc).__name__}); build it first "
                                 "(reanimate containers build)") from None
        path = stage / "images" / f"{cname}.tar"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            for chunk in image.save(named=True):
                handle.write(chunk)
        out[cname] = path
    return out


def _digest(member: Member) -> tuple[str, int]:
    if member.data is not None:
        return hashlib.sha256(member.data).hexdigest(), len(member.data)
    digest, size = hashlib.sha256(), 0
    with open(member.source, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def content_identifier(digests: dict[str, tuple[str, int]]) -> str:
    """The bundle's content address: sha256 over its sorted (name, sha256) pairs."""
    digest = hashlib.sha256()
    for name, (sha, _) in sorted(digests.items()):
        digest.update(f"{name}\0{sha}\n".encode())
    return "sha256:" + digest.hexdigest()


# -- the zip ------------------------------------------------------------------------------
def _zip_time(run: PreservedRun) -> tuple[int, int, int, int, int, int]:
    """The run's end time (UTC) as a zip timestamp; 1980-01-01 if it has none."""
    try:
        ended = datetime.fromisoformat(str(run.provenance.get("ended")))
        stamp = (ended.year, ended.month, ended.day, ended.hour, ended.minute, ended.second)
    except ValueError:
        stamp = (1980, 1, 1, 0, 0, 0)
    return max(stamp, (1980, 1, 1, 0, 0, 0))


def _info(name: str, when: tuple) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when)
    info.create_system = 3  # unix, so the mode below is read
    info.external_attr = 0o100644 << 16
    info.compress_type = (zipfile.ZIP_STORED if name.lower().endswith(STORED)
                          else zipfile.ZIP_DEFLATED)
    return info


def _write_zip(output: Path, metadata: bytes, members: dict[str, Member],
               digests: dict[str, tuple[str, int]], when: tuple) -> tuple[str, int]:
    """Write the zip (atomically); every member is re-hashed as it is copied."""
    try:
        with atomic_path(output) as tmp:
            with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
                zf.writestr(_info(METADATA, when), metadata)
                for name in sorted(members):
                    member, (sha, size) = members[name], digests[name]
                    info = _info(name, when)
                    if member.data is not None:
                        zf.writestr(info, member.data)
                        continue
                    digest, copied = hashlib.sha256(), 0
                    with open(member.source, "rb") as src, \
                            zf.open(info, "w", force_zip64=size >= (1 << 31)) as dst:
                        while block := src.read(1 << 20):
                            digest.update(block)
                            copied += len(block)
                            dst.write(block)
                    if digest.hexdigest() != sha or copied != size:
                        raise ReanimateError(f"{member.source} changed while it was bundled; "
                                             "bundle again")
            sha = sha256_file(tmp)
            size = os.path.getsize(tmp)
    except OSError as exc:
        raise ReanimateError(f"cannot write {output}: {exc}") from None
    return sha, size


# -- ro-crate-metadata.json ----------------------------------------------------------------
def _ref(identifier: str) -> dict:
    return {"@id": identifier}


def _image_entity(plan, cname: str) -> dict:
    container = plan.spec.containers[cname]
    entry = plan.lock.images.get(cname) or {}
    reference = entry.get("image") or container.image
    name, _, tag = reference.rpartition(":")
    if "/" in tag or not name:
        name, tag = reference, ""
    entity = {"@id": f"#image-{cname}", "@type": "ContainerImage",
              "additionalType": _ref(DOCKER_IMAGE), "name": name,
              "description": f"image of container {cname} of the spec"}
    if tag:
        entity["tag"] = tag
    image_id = entry.get("id") or container.digest
    if image_id:
        entity["sha256"] = image_id.removeprefix("sha256:")
    pushed = entry.get("pushed") or {}
    if pushed:
        repository = entry.get("pushed_last") or sorted(pushed)[0]
        first = repository.split("/", 1)[0]
        if "." in first or ":" in first:
            entity["registry"] = first
        entity["identifier"] = f"{repository}@{pushed[repository]}"
    return entity


def _value(value):
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return value


def _parameter_type(value) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    return "Text"


def crate_metadata(plan, run: PreservedRun, collected: Collected, members: dict[str, Member],
                   digests: dict[str, tuple[str, int]], wheel: Wheel) -> dict:
    """The JSON-LD of the crate (built with the rocrate package, in a fixed order)."""
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    spec, meta, prov = plan.spec, plan.spec.metadata, run.provenance
    crate = ROCrate(version=CRATE_VERSION)
    crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
    ended = str(prov.get("ended") or "1980-01-01T00:00:00+00:00")
    root = crate.root_dataset
    root["datePublished"] = ended
    root["name"] = meta.title or meta.name
    root["alternateName"] = meta.name
    root["description"] = (meta.description or "").strip() or f"{meta.name} {meta.version}"
    root["version"] = meta.version
    root["identifier"] = content_identifier(digests)
    if meta.licence:
        root["license"] = meta.licence
    root["conformsTo"] = [_ref(p) for p in PROFILES]
    contextual: list[dict] = []

    def context(entity: dict) -> dict:
        contextual.append(entity)
        return _ref(entity["@id"])

    for profile, title in PROFILES.items():
        context({"@id": profile, "@type": "CreativeWork", "name": title,
                 "version": profile.rsplit("/", 1)[-1]})
    authors = [context({"@id": f"#author-{i}", "@type": "Person", "name": a.name,
                        **({"email": a.email} if getattr(a, "email", None) else {})})
               for i, a in enumerate(meta.authors, 1)]
    if authors:
        root["author"] = authors
    # the spec's references (papers, records, code): schema.org citation, one entity each
    citations = [context({"@id": str(ref), "@type": "CreativeWork", "name": str(ref),
                          "url": str(ref)}) for ref in dict.fromkeys(meta.references or [])]
    if citations:
        root["citation"] = citations

    # formal parameters: the slots of the workflow and its tools
    def formal(identifier: str, name: str, kind: str, description: str | None = None) -> dict:
        entity = {"@id": identifier, "@type": "FormalParameter", "name": name,
                  "additionalType": kind,
                  "conformsTo": _ref("https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE")}
        if description:
            entity["description"] = description
        return context(entity)

    # -- data entities, in name order ------------------------------------------------------
    output_entity: dict[tuple[str, str], str] = {}  # (step, output) -> entity id
    folders: dict[str, list[str]] = {}
    for name, member in sorted(members.items()):
        if member.role == "output":
            declared = plan.steps[member.step].outputs[member.output]
            if declared.endswith("/"):
                folder = f"outputs/{member.step}/{declared.rstrip('/')}/"
                folders.setdefault(folder, []).append(name)
                output_entity[(member.step, member.output)] = folder
            else:
                output_entity[(member.step, member.output)] = name
        if member.role == "pin":
            output_entity[(member.step, member.output)] = name
    workflow_arc = "workflow/main.cwl"
    for name, member in sorted(members.items()):
        sha, size = digests[name]
        props = {"name": Path(name).name, "sha256": sha, "contentSize": str(size),
                 "encodingFormat": media_type(name)}
        if member.description:
            props["description"] = member.description
        if member.role in ("output", "pin"):
            props["exampleOfWork"] = _ref(f"#param-{member.step}-output-{member.output}")
        if member.role == "image":
            props["about"] = _ref(f"#image-{Path(name).stem}")
        if member.role == "wheel":
            props["@type"] = ["File", "SoftwareSourceCode"]
            props["name"] = "reanimate"
            props["version"] = __version__
            props["identifier"] = f"source-sha256:{wheel.source_sha256}"
            props["programmingLanguage"] = _ref("#python")
        if name == workflow_arc:
            continue  # added as the workflow below
        if name.startswith("workflow/steps/") and name.endswith(".cwl"):
            step = Path(name).stem
            props["@type"] = ["File", "SoftwareApplication"]
            props["name"] = step
            planned = plan.steps[step]
            props["input"] = [
                _ref(f"#param-{step}-input-{i}") for i in planned.inputs] + [
                _ref(f"#param-{step}-parameter-{p}") for p in planned.parameters]
            props["output"] = [_ref(f"#param-{step}-output-{o}") for o in planned.outputs]
            if planned.step.container:
                props["softwareRequirements"] = _ref(f"#image-{planned.step.container}")
            if planned.step.description:
                props["description"] = planned.step.description.strip()
        crate.add_file(member.source, dest_path=name, properties=props)
    for folder, files in sorted(folders.items()):
        step = folder.split("/")[1]
        out = next(o for (s, o), e in output_entity.items() if s == step and e == folder)
        crate.add_dataset(None, dest_path=folder, properties={
            "name": Path(folder.rstrip("/")).name, "hasPart": [_ref(f) for f in files],
            "exampleOfWork": _ref(f"#param-{step}-output-{out}"),
            "description": f"output {out} of step {step} (a folder)"})
    context_files: dict[str, list[str]] = {}
    for name, member in sorted(members.items()):
        if member.role == "context":
            context_files.setdefault(member.output, []).append(name)
    for cname, files in sorted(context_files.items()):
        crate.add_dataset(None, dest_path=collected.contexts[cname] + "/", properties={
            "name": f"build context of container {cname}", "hasPart": [_ref(f) for f in files],
            "about": _ref(f"#image-{cname}")})
    remote_ids = {}
    for item in collected.remote_inputs:
        props = {"name": item.key.rsplit("/", 1)[-1], "encodingFormat": media_type(item.key),
                 "description": f"input {item.key}, by URL (not in the bundle)"}
        if item.sha256:
            props["sha256"] = item.sha256
        else:
            props["description"] += "; the spec pins no sha256, so the rerun reads it unverified"
        crate.add_file(item.key, properties=props)
        remote_ids[item.key] = item.key

    # -- the workflow ----------------------------------------------------------------------
    sha, size = digests[workflow_arc]
    run_steps = [n for n in plan.order if plan.steps[n].pin is None]
    workflow_props = {
        "name": meta.title or meta.name, "sha256": sha, "contentSize": str(size),
        "encodingFormat": media_type(workflow_arc),
        "description": "the CWL workflow exported from the spec by reanimate",
        "isBasedOn": _ref(collected.spec_arcname),
        "input": [_ref(f"#param-parameter-{p}") for p in plan.parameters],
        "output": [_ref(f"#param-{n}-output-{o}") for n in run_steps
                   for o in plan.steps[n].outputs],
        "step": [_ref(f"{workflow_arc}#{n}") for n in run_steps],
        "hasPart": [_ref(f"workflow/steps/{n}.cwl") for n in run_steps],
    }
    crate.add_workflow(members[workflow_arc].source, dest_path=workflow_arc, main=True,
                       lang="cwl", lang_version="1.2", properties=workflow_props)

    # -- contextual entities: parameters, tools, images, the run ----------------------------
    context({"@id": "#python", "@type": "ComputerLanguage", "name": "Python",
             "url": _ref("https://www.python.org/")})
    environment = prov.get("environment") or {}
    engine = context({"@id": "#reanimate", "@type": "SoftwareApplication", "name": "reanimate",
                      "softwareVersion": str(environment.get("reanimate") or __version__),
                      "description": "the engine that ran the analysis (its local engine)",
                      "downloadUrl": _ref(f"code/{wheel.path.name}")})
    for pname, value in plan.parameters.items():
        formal(f"#param-parameter-{pname}", pname, _parameter_type(value),
               "global parameter of the spec")
    for name in plan.order:
        planned = plan.steps[name]
        for iname in planned.inputs:
            formal(f"#param-{name}-input-{iname}", iname,
                   "Dataset" if any(i.producer and plan.steps[i.producer.step].output_is_dir(
                       i.producer.output) for i in planned.inputs[iname]) else "File")
        for pname, value in planned.parameters.items():
            formal(f"#param-{name}-parameter-{pname}", pname, _parameter_type(value))
        for oname, declared in planned.outputs.items():
            formal(f"#param-{name}-output-{oname}", oname,
                   "Dataset" if declared.endswith("/") else "File", f"declared path {declared}")
    for cname in sorted(spec.containers):
        context(_image_entity(plan, cname))
    for position, name in enumerate(run_steps):
        context({"@id": f"{workflow_arc}#{name}", "@type": "HowToStep", "name": name,
                 "position": str(position), "workExample": _ref(f"workflow/steps/{name}.cwl")})

    run_id = run.run_id
    step_actions, controls = [], []
    for name in run_steps:
        planned, record = plan.steps[name], run.records[name]
        objects = []
        for items in planned.inputs.values():
            for item in items:
                if item.external is not None:
                    key = item.external.key
                    objects.append(_ref(remote_ids.get(key) or collected.inputs[key]))
                else:
                    producer = item.producer
                    objects.append(_ref(output_entity[(producer.step, producer.output)]))
        for pname, value in planned.parameters.items():
            objects.append(context({
                "@id": f"#pv-{run_id}-{name}-{pname}", "@type": "PropertyValue",
                "name": pname, "value": _value(value),
                "exampleOfWork": _ref(f"#param-{name}-parameter-{pname}")}))
        action = {"@id": f"#run-{run_id}-{name}", "@type": "CreateAction",
                  "name": f"step {name} of run {run_id}",
                  "description": f"{record['status']} (exit code {record.get('exit_code')})",
                  "instrument": _ref(f"workflow/steps/{name}.cwl"),
                  "object": objects,
                  "result": [_ref(output_entity[(name, o)]) for o in planned.outputs],
                  "actionStatus": _ref(COMPLETED),
                  "identifier": f"cache-key:{record.get('key')}"}
        if record.get("start"):
            action["startTime"] = record["start"]
        if record.get("end"):
            action["endTime"] = record["end"]
        image = record.get("image") or (run.metas.get(name, {}).get("record") or {}).get("image")
        if image and planned.step.container:
            action["containerImage"] = _ref(f"#image-{planned.step.container}")
        step_actions.append(context(action))
        controls.append(context({"@id": f"#control-{run_id}-{name}", "@type": "ControlAction",
                                 "name": f"orchestrate step {name}",
                                 "instrument": _ref(f"{workflow_arc}#{name}"),
                                 "object": step_actions[-1]}))
    workflow_objects = [_ref(remote_ids.get(k) or collected.inputs[k])
                        for k in plan.external_inputs()]
    for pname, value in plan.parameters.items():
        workflow_objects.append(context({
            "@id": f"#pv-{run_id}-{pname}", "@type": "PropertyValue", "name": pname,
            "value": _value(value), "exampleOfWork": _ref(f"#param-parameter-{pname}")}))
    pinned = [f"{n} (pinned: {plan.steps[n].pin.get('name')} version "
              f"{plan.steps[n].pin.get('version')})" for n in plan.order if plan.steps[n].pin]
    workflow_action = context({
        "@id": f"#run-{run_id}", "@type": "CreateAction", "name": f"run {run_id} of {meta.name}",
        "description": "the run whose outputs this bundle preserves"
                       + (f"; steps served by model pins: {', '.join(pinned)}" if pinned else ""),
        "instrument": _ref(workflow_arc), "object": workflow_objects,
        "result": [_ref(output_entity[(n, o)]) for n in run_steps for o in plan.steps[n].outputs],
        "startTime": prov.get("started"), "endTime": prov.get("ended"),
        "actionStatus": _ref(COMPLETED)})
    context({"@id": f"#orchestrate-{run_id}", "@type": "OrganizeAction",
             "name": f"reanimate run {run_id}", "instrument": engine, "object": controls,
             "result": workflow_action, "startTime": prov.get("started"),
             "endTime": prov.get("ended")})
    root["mentions"] = [workflow_action]
    for entity in contextual:
        identifier = entity["@id"]
        crate.add(ContextEntity(crate, identifier,
                                properties={k: v for k, v in entity.items() if k != "@id"}))
    return crate.metadata.generate()
