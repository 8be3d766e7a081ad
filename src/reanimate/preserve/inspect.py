"""`reanimate bundle inspect`: what a bundle holds, and whether every byte matches its metadata.

Read from the zip without unpacking it (the same safety checks as `verify`, `archive.py`):
the analysis (name, version, title, the run, datePublished, the content identifier), its steps
(status, image, parameters, times), the container images, the outputs with sizes and digests,
the inputs (in the bundle or by URL) and the code; then every member is read and hashed and
compared with the sha256 and size the metadata gives it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reanimate.preserve.archive import Bundle, Limits, entity_path, types


@dataclass
class Inspection:
    bundle: str
    sha256: str  # of the zip file
    size: int
    name: str
    version: str | None
    title: str | None
    published: str | None
    identifier: str | None
    conforms_to: list[str]
    spec: str | None
    code: dict
    run: dict
    steps: list[dict]
    images: list[dict]
    outputs: list[dict]
    pins: list[dict]
    inputs: list[dict]
    files: int
    problems: list[str] = field(default_factory=list)  # digest or size mismatches

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        out = asdict(self)
        out["ok"] = self.ok
        return out


def _ids(value) -> list[str]:
    values = value if isinstance(value, list) else [value] if value else []
    return [v["@id"] for v in values if isinstance(v, dict) and "@id" in v]


def _file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _image(entity: dict) -> dict:
    return {"container": entity.get("@id", "").removeprefix("#image-"),
            "name": entity.get("name"), "tag": entity.get("tag"),
            "sha256": entity.get("sha256"), "identifier": entity.get("identifier")}


def inspect_bundle(path: Path, limits: Limits = Limits(), check: bool = True) -> Inspection:
    path = Path(path)
    with Bundle(path, limits) as bundle:
        root = bundle.root
        workflow = bundle.ref(root.get("mainEntity"))
        spec = bundle.ref(workflow.get("isBasedOn")).get("@id")
        entities = bundle.entities
        images = [_image(e) for e in entities.values() if "ContainerImage" in types(e)]
        for image in images:
            archive = [m for m, e in bundle.files.items()
                       if _ids(e.get("about")) == [f"#image-{image['container']}"]]
            image["archive"] = archive[0] if archive else None
        run_action = next((e for e in bundle.refs(root.get("mentions"))
                           if "CreateAction" in types(e)), {})
        steps = []
        for entity in entities.values():
            if "CreateAction" not in types(entity) or entity is run_action:
                continue
            tool = bundle.ref(entity.get("instrument"))
            parameters = {}
            inputs = []
            for obj in bundle.refs(entity.get("object")):
                if "PropertyValue" in types(obj):
                    parameters[obj.get("name")] = obj.get("value")
                else:
                    inputs.append(obj.get("@id"))
            image = bundle.ref(entity.get("containerImage")) or \
                bundle.ref(tool.get("softwareRequirements"))
            steps.append({
                "name": tool.get("name"),
                "status": str(entity.get("description", "")).split(" ")[0],
                "image": (f"{image.get('name')}:{image.get('tag')}" if image.get("tag")
                          else image.get("name")) if image else None,
                "ran_in_image": bool(entity.get("containerImage")),
                "parameters": parameters, "inputs": inputs,
                "outputs": _ids(entity.get("result")),
                "start": entity.get("startTime"), "end": entity.get("endTime"),
                "cache_key": str(entity.get("identifier", "")).removeprefix("cache-key:"),
            })
        producer = {}
        for step in steps:
            for out in step["outputs"]:
                entity = entities.get(out, {})
                members = _ids(entity.get("hasPart")) if "Dataset" in types(entity) else [out]
                for member in members:
                    producer[entity_path(member)] = step["name"]
        outputs = [{"path": m, "step": producer.get(m, m.split("/")[1]),
                    "size": int(e.get("contentSize", 0)), "sha256": e["sha256"],
                    "encodingFormat": e.get("encodingFormat")}
                   for m, e in sorted(bundle.files.items()) if m.startswith("outputs/")]
        inputs = [{"path": m, "url": None, "size": int(e.get("contentSize", 0)),
                   "sha256": e["sha256"]}
                  for m, e in sorted(bundle.files.items())
                  if str(e.get("description", "")).startswith("input ")]
        inputs += [{"path": None, "url": url, "size": e.get("contentSize"),
                    "sha256": e.get("sha256")} for url, e in sorted(bundle.by_url.items())]
        wheel = next(({"wheel": m, "version": e.get("version"),
                       "source": str(e.get("identifier", "")).removeprefix("source-sha256:"),
                       "sha256": e["sha256"]}
                      for m, e in bundle.files.items() if m.startswith("code/")), {})
        pins = [{"path": m, "what": str(e.get("description"))}
                for m, e in sorted(bundle.files.items())
                if ": pinned model " in str(e.get("description", ""))]
        run = {"name": run_action.get("name"), "start": run_action.get("startTime"),
               "end": run_action.get("endTime"), "description": run_action.get("description")}
        problems = bundle.check_digests() if check else []
        return Inspection(
            str(path), _file_sha(path), path.stat().st_size,
            name=str(root.get("alternateName") or root.get("name") or ""),
            version=root.get("version"), title=root.get("name"),
            published=root.get("datePublished"),
            identifier=root.get("identifier"), conforms_to=_ids(root.get("conformsTo")),
            spec=spec, code=wheel, run=run, steps=steps, images=images, outputs=outputs,
            pins=pins, inputs=inputs, files=len(bundle.files), problems=problems)
