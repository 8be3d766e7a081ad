"""`reanimate bundle`: a Workflow Run RO-Crate of the small AGC chain, byte for byte the same
for the same run; `bundle inspect` lists it and checks every digest; what it refuses."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest
from bundle_helpers import cli, copy_tree, rewrite_bundle, small_run

from reanimate.preserve.crate import PROFILES, build_bundle


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return small_run(tmp_path_factory)


def metadata(bundle: Path) -> dict:
    with zipfile.ZipFile(bundle) as zf:
        return json.loads(zf.read("ro-crate-metadata.json"))


def test_layout_keeps_the_analysis_folder(small):
    with zipfile.ZipFile(small.bundle) as zf:
        names = zf.namelist()
    assert names[0] == "ro-crate-metadata.json" and names[1:] == sorted(names[1:])
    for expected in ("analysis/specs/agc-small.yaml", "analysis/specs/agc-small.lock.json",
                     "analysis/containers/analysis/Dockerfile", "analysis/data/notes.txt",
                     "analysis/tools/stamp.py", "workflow/main.cwl",
                     "workflow/steps/histograms.cwl", "job.yml", "reana.yaml",
                     "outputs/histograms/histograms.root", "outputs/stamp/stamp/notes.sha256",
                     "outputs/statmodel/statmodel/workspace.json",
                     "outputs/datasets/samples/catalogue.json", "outputs/plots/plots/pulls.png",
                     "provenance/provenance.json", "provenance/logs/histograms.stderr"):
        assert expected in names, expected
    wheels = [n for n in names if n.startswith("code/")]
    assert len(wheels) == 1 and wheels[0].startswith("code/reanimate-")
    assert wheels[0].endswith(".whl")
    # the exported job order names the bundle's own copies of the inputs
    with zipfile.ZipFile(small.bundle) as zf:
        job = zf.read("job.yml").decode()
    assert "analysis/data/notes.txt" in job and "analysis/tools/stamp.py" in job


def test_members_are_stamped_alike(small):
    with zipfile.ZipFile(small.bundle) as zf:
        infos = zf.infolist()
    assert len({i.date_time for i in infos}) == 1
    assert {stat.S_IMODE(i.external_attr >> 16) for i in infos} == {0o644}
    assert all(stat.S_ISREG(i.external_attr >> 16) for i in infos)


def test_the_same_run_gives_the_same_bytes(small, tmp_path):
    again = build_bundle(small.spec, small.workdir, tmp_path / "again.crate.zip")
    assert again.path.read_bytes() == small.bundle.read_bytes()


def test_it_is_a_workflow_run_crate(small):
    from rocrate.rocrate import ROCrate

    crate = ROCrate(small.bundle)  # the rocrate package loads it
    assert crate.mainEntity.id == "workflow/main.cwl"
    assert "ComputationalWorkflow" in crate.mainEntity.type
    files = [e for e in crate.get_entities() if "File" in e.type]
    assert len(files) > 30
    for entity in files:
        assert len(entity["sha256"]) == 64 and int(entity["contentSize"]) >= 0, entity.id
        assert entity["encodingFormat"], entity.id
    doc = metadata(small.bundle)
    graph = {e["@id"]: e for e in doc["@graph"]}
    root = graph["./"]
    assert {p["@id"] for p in root["conformsTo"]} == set(PROFILES)
    assert "https://w3id.org/ro/terms/workflow-run/context" in doc["@context"]
    assert graph["ro-crate-metadata.json"]["conformsTo"][0]["@id"] == "https://w3id.org/ro/crate/1.1"
    prov = json.loads(zipfile.ZipFile(small.bundle).read("provenance/provenance.json"))
    assert root["datePublished"] == prov["ended"]
    actions = [e for e in graph.values() if e["@type"] == "CreateAction"]
    steps = {graph[a["instrument"]["@id"]].get("name"): a for a in actions
             if a["instrument"]["@id"] != "workflow/main.cwl"}
    assert set(steps) == {"datasets", "histograms", "statmodel", "fit", "plots", "stamp"}
    histograms = steps["histograms"]
    assert histograms["result"] == [{"@id": "outputs/histograms/histograms.root"}]
    assert {"@id": "outputs/datasets/samples/"} in histograms["object"]
    values = {graph[o["@id"]]["name"]: graph[o["@id"]]["value"] for o in histograms["object"]
              if graph.get(o["@id"], {}).get("@type") == "PropertyValue"}
    assert values == {"seed": 42, "chunk_size": 100000}
    tool = graph["workflow/steps/histograms.cwl"]
    assert tool["softwareRequirements"] == {"@id": "#image-analysis"}
    assert graph["#image-analysis"]["@type"] == "ContainerImage"
    produced = graph["outputs/histograms/histograms.root"]
    assert graph[produced["exampleOfWork"]["@id"]]["name"] == "histograms"
    stamp = steps["stamp"]
    assert {"@id": "analysis/data/notes.txt"} in stamp["object"]
    workflow_run = next(a for a in actions if a["instrument"]["@id"] == "workflow/main.cwl")
    assert root["mentions"] == [{"@id": workflow_run["@id"]}]
    assert any(e["@type"] == "OrganizeAction" for e in graph.values())
    # no host paths in the metadata
    text = json.dumps(doc)
    assert str(small.root) not in text and "/tmp/" not in text


def test_inspect_lists_and_checks_every_digest(small):
    res = cli("bundle", "inspect", small.bundle, "--json")
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)
    assert found["ok"] and found["problems"] == []
    assert found["name"] == "agc-ttbar" and found["version"] == "2.0.0"
    assert found["spec"] == "analysis/specs/agc-small.yaml"
    assert [s["name"] for s in found["steps"]] == ["datasets", "histograms", "statmodel",
                                                  "fit", "plots", "stamp"]
    outputs = {o["path"]: o for o in found["outputs"]}
    histograms = outputs["outputs/histograms/histograms.root"]
    assert histograms["step"] == "histograms" and len(histograms["sha256"]) == 64
    assert histograms["size"] > 1000
    assert outputs["outputs/datasets/samples/catalogue.json"]["step"] == "datasets"
    assert [i["path"] for i in found["inputs"]] == ["analysis/data/notes.txt",
                                                   "analysis/tools/stamp.py"]
    assert found["images"][0]["container"] == "analysis"
    text = cli("bundle", "inspect", small.bundle)
    assert text.returncode == 0 and "all" in text.stdout and "digests match" in text.stdout
    assert "histograms" in text.stdout and "agc-ttbar" in text.stdout


def test_a_digest_that_does_not_match_is_named(small, tmp_path):
    bad = rewrite_bundle(small.bundle, tmp_path / "bad.crate.zip",
                         {"outputs/stamp/stamp/notes.sha256": b"0" * 64 + b"\n"},
                         fix_metadata=False)
    res = cli("bundle", "inspect", bad)
    assert res.returncode == 1
    assert "mismatch: outputs/stamp/stamp/notes.sha256: sha256" in res.stdout
    as_json = json.loads(cli("bundle", "inspect", bad, "--json").stdout)
    assert len(as_json["problems"]) == 1 and not as_json["ok"]


def test_refuses_a_workdir_without_a_complete_run(small, tmp_path):
    res = cli("bundle", small.spec, "--workdir", tmp_path / "empty")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "no complete run of agc-small.yaml" in res.stderr
    # the spec edited since the run: its bytes were never run
    edited = small.spec.with_name("agc-edited.yaml")
    edited.write_text(small.spec.read_text().replace("events: 10000", "events: 10001"))
    try:
        res = cli("bundle", edited, "--workdir", small.workdir, "-o", tmp_path / "x.zip")
        assert res.returncode == 2 and "no complete run of agc-edited.yaml" in res.stderr
    finally:
        edited.unlink()
    assert not (tmp_path / "x.zip").exists()


def test_refuses_a_run_whose_outputs_differ_from_the_cache(small, tmp_path):
    copy = copy_tree(small, tmp_path)
    fit = next((copy.workdir / "cache" / "fit").glob("*/fit/fit_results.json"))
    fit.chmod(0o644)
    fit.write_text(fit.read_text().replace('"converged": true', '"converged": false'))
    res = cli("bundle", copy.spec, "--workdir", copy.workdir, "-o", tmp_path / "x.zip")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "output fit.results" in res.stderr and "differs from the cache" in res.stderr
    assert not (tmp_path / "x.zip").exists()


def test_refuses_an_input_changed_since_the_run(small, tmp_path):
    copy = copy_tree(small, tmp_path)
    (copy.root / "analysis" / "data" / "notes.txt").write_text("something else\n")
    res = cli("bundle", copy.spec, "--workdir", copy.workdir, "-o", tmp_path / "x.zip")
    assert res.returncode == 2 and "notes.txt" in res.stderr


def test_large_inputs_are_refused_with_the_limit_named(small, tmp_path):
    res = cli("bundle", small.spec, "--workdir", small.workdir, "-o", tmp_path / "x.zip",
              "--max-input-size", "10B")
    assert res.returncode == 2 and "over --max-input-size" in res.stderr


def test_with_images_adds_docker_save_archives(small, tmp_path, docker_daemon):
    from reanimate.lock import write_images

    copy = copy_tree(small, tmp_path)
    context = copy.root / "analysis" / "containers" / "analysis"
    (context / "hello.txt").write_text("hello\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    # a tag of its own: the flagship's tag belongs to the real image (the analysis_image fixture)
    image, _ = docker_daemon.images.build(path=str(context), tag="reanimate-test/bundle:1",
                                          rm=True)
    write_images(copy.spec, {"analysis": {"image": "reanimate/agc-analysis:0.1.0",
                                          "id": image.id}})
    out = build_bundle(copy.spec, copy.workdir, tmp_path / "images.crate.zip", with_images=True)
    with zipfile.ZipFile(out.path) as zf:
        assert "images/analysis.tar" in zf.namelist()
        with zf.open("images/analysis.tar") as tar_member:
            import tarfile

            with tarfile.open(fileobj=tar_member, mode="r|") as tar:
                assert any(m.name == "manifest.json" for m in tar)
    graph = {e["@id"]: e for e in metadata(out.path)["@graph"]}
    assert graph["#image-analysis"]["sha256"] == image.id.removeprefix("sha256:")
    assert graph["images/analysis.tar"]["about"] == {"@id": "#image-analysis"}
    found = json.loads(cli("bundle", "inspect", out.path, "--json").stdout)
    assert found["ok"] and found["images"][0]["archive"] == "images/analysis.tar"
